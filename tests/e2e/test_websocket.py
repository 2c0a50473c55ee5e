# SPDX-License-Identifier: Apache-2.0
"""MQTT over WebSockets end to end: the real daemon with a plain TCP
listener and a WebSocket listener (and a TLS WebSocket one) on 127.0.0.1,
ports the test picks; a WebSocket client written here over raw sockets
(RFC 6455: the upgrade, masked binary frames, fragments, ping, close) that
carries the harness's MQTT packets; the rows read back from SQLite.

- QoS 0, 1 and 2 publishes over ws are stored and acknowledged; an MQTT
  packet split over several frames (with a ping between fragments) and
  several packets in one frame are the same stream.
- A subscriber over ws receives what a TCP publisher sends.
- Bad upgrade requests get 400, 404 or 426 and no upgrade.
- Malformed frames close with the RFC's code (1002 unmasked, reserved bit,
  long or fragmented control frame, stray continuation; 1003 text; 1009
  over limits.max_packet_bytes) while the broker keeps serving.
- A close frame is echoed; a ping gets its pong.
- A real browser: headless Chromium loads a page served by the test from
  127.0.0.1 (tests/e2e/ws_page.html, a minimal MQTT client in JS) that
  subscribes, receives a retained message a TCP client published and its
  own echo, and publishes QoS 0 and 1; the page posts what it received to
  the test's server and the rows are read back from SQLite.
- python3-paho-mqtt with transport="websockets" publishes QoS 1 and 2
  and subscribes.
- Output backpressure as on TCP: a ws client subscribed to what it
  publishes sends QoS 1 publishes without reading is no longer read once
  its output passes limits.output_bytes (the log says so); once it reads,
  every publish is acknowledged and stored.
- An upgrade that never completes counts inside limits.connect_timeout.
- --check refuses a websocket_path that is not a path.
- wss: the same over a TLS listener with websocket: true (certificates
  made at test time with openssl, as in test_tls).

Every wait is bounded."""

import base64
import hashlib
import http.server
import json
import os
import socket
import shutil
import ssl
import struct
import subprocess
import threading
import time

import paho.mqtt.client as paho

from mqlite_harness import (HOST, PINGRESP, PUBACK, Broker, Client, Closed,
                            E2ETestCase, connect_pkt, daemon_path, free_port,
                            mqlite_only, publish_pkt, wait_until)

import test_tls as tlsmod

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_frame(payload, opcode=2, fin=True, mask=True, rsv=0, length=None):
    """One client frame; length overrides the encoded payload length."""
    n = len(payload) if length is None else length
    h = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    m = 0x80 if mask else 0
    if n < 126:
        h += bytes([m | n])
    elif n < 65536:
        h += bytes([m | 126]) + struct.pack("!H", n)
    else:
        h += bytes([m | 127]) + struct.pack("!Q", n)
    if not mask:
        return h + payload
    key = os.urandom(4)
    return h + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def http_request(path="/mqtt", key=None, version="13", proto="mqtt",
                 upgrade=True, extra=""):
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % HOST]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: keep-alive, Upgrade"]
    if key != "-":
        lines.append("Sec-WebSocket-Key: " + key)
    if version:
        lines.append("Sec-WebSocket-Version: " + version)
    if proto:
        lines.append("Sec-WebSocket-Protocol: " + proto)
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode(), key


def read_http(sock, timeout=5.0):
    """The HTTP answer head (up to the blank line) and what follows."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


class WSClient(Client):
    """The harness's raw MQTT client, its bytes carried in WebSocket binary
    frames. Control frames from the server are kept in self.control;
    a close frame ends the stream (Closed) with its code in close_code."""

    def __init__(self, port, path="/mqtt", timeout=5.0, sock=None,
                 proto="mqtt", frame_size=None):
        self.sock = sock or socket.create_connection((HOST, port),
                                                     timeout=timeout)
        self.buf = b""
        self.raw = b""
        self.backlog = []
        self.timeout = timeout
        self.next_pid = 1
        self.auto_pubcomp = True
        self.control = []
        self.close_code = None
        self.frame_size = frame_size
        req, key = http_request(path, proto=proto)
        self.sock.sendall(req)
        head, self.raw = read_http(self.sock, timeout)
        self.status = head.split("\r\n")[0]
        self.headers = {}
        for line in head.split("\r\n")[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        want = base64.b64encode(hashlib.sha1(
            (key + GUID).encode()).digest()).decode()
        if not self.status.startswith("HTTP/1.1 101"):
            raise AssertionError("upgrade refused: " + head)
        assert self.headers.get("sec-websocket-accept") == want, head

    def send(self, data, timeout=None):
        """Sends MQTT bytes in binary frames (split every frame_size bytes
        into a fragmented message when set)."""
        self.sock.settimeout(timeout or self.timeout * 4)
        if not self.frame_size or len(data) <= self.frame_size:
            self.sock.sendall(ws_frame(data))
            return
        parts = [data[i:i + self.frame_size]
                 for i in range(0, len(data), self.frame_size)]
        out = b""
        for i, p in enumerate(parts):
            out += ws_frame(p, opcode=2 if i == 0 else 0,
                            fin=i == len(parts) - 1)
        self.sock.sendall(out)

    def send_raw(self, data):
        self.sock.settimeout(self.timeout * 4)
        self.sock.sendall(data)

    def _frames(self):
        """Decodes whole server frames from self.raw."""
        while len(self.raw) >= 2:
            b0, b1 = self.raw[0], self.raw[1]
            assert not b1 & 0x80, "server frames are never masked"
            n, hl = b1 & 0x7F, 2
            if n == 126:
                if len(self.raw) < 4:
                    return
                n, hl = struct.unpack("!H", self.raw[2:4])[0], 4
            elif n == 127:
                if len(self.raw) < 10:
                    return
                n, hl = struct.unpack("!Q", self.raw[2:10])[0], 10
            if len(self.raw) < hl + n:
                return
            payload = self.raw[hl:hl + n]
            self.raw = self.raw[hl + n:]
            op = b0 & 0x0F
            if op in (0, 2):
                self.buf += payload
            elif op == 8:
                self.close_code = struct.unpack("!H", payload[:2])[0] \
                    if len(payload) >= 2 else 1005
                self.control.append((op, payload))
            else:
                self.control.append((op, payload))

    def _recv_some(self, deadline):
        before = len(self.buf)
        while len(self.buf) == before:
            if self.close_code is not None:
                raise Closed()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out waiting for data")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("timed out waiting for data")
            except (ConnectionResetError, BrokenPipeError):
                raise Closed()
            if not data:
                raise Closed()
            self.raw += data
            self._frames()

    def wait_close(self, timeout=5.0):
        """Reads until the server's close frame and EOF; the close code."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self._recv_some(deadline)
        except (Closed, TimeoutError):
            pass
        return self.close_code

    def wait_control(self, op, timeout=5.0):
        """The payload of the next control frame of opcode op, or None."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (o, p) in enumerate(self.control):
                if o == op:
                    return self.control.pop(i)[1]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, OSError):
                return None
            if not data:
                return None
            self.raw += data
            self._frames()


@mqlite_only("mqlite WebSocket listener configuration")
class TestWebSocket(E2ETestCase):
    auto_start = False
    needs_db = True

    def start_ws(self, limits=None, path=None, extra=None):
        br = Broker(self.workdir, name="broker%d" % len(self.brokers))
        br.ws_port = free_port()
        br.ws_path = path or "/mqtt"
        ws = {"port": br.ws_port, "bind": HOST, "websocket": True}
        if path:
            ws["websocket_path"] = path
        cfg = {"listeners": [{"port": br.port, "bind": HOST}, ws] +
               (extra or []), "database": {"path": br.db_path}}
        if limits:
            cfg["limits"] = limits
        with open(br.conf_path, "w") as f:
            json.dump(cfg, f)
        self.brokers.append(br)
        br.start()
        self.assertTrue(wait_until(lambda: " ready, database " in
                                   br.log_text(), timeout=10))
        return br

    def ws(self, br, client_id=None, **kw):
        kw.setdefault("path", br.ws_path)
        c = WSClient(br.ws_port, **kw)
        self.clients.append(c)
        if client_id:
            c.connect(client_id)
        return c

    def assert_serving(self, br, tag):
        """A TCP and a ws client still publish and are stored."""
        c = self.client(br, "tcp-" + tag)
        c.publish("alive/tcp/" + tag, b"x", qos=1)
        c.disconnect()
        w = self.ws(br, "ws-" + tag)
        w.publish("alive/ws/" + tag, b"x", qos=1)
        w.disconnect()
        self.assertEqual(br.wait_count(1, "topic='alive/ws/%s'" % tag), 1)
        self.assertEqual(br.wait_count(1, "topic='alive/tcp/%s'" % tag), 1)

    # -- tests -----------------------------------------------------------
    def test_publish_qos_0_1_2_stored(self):
        br = self.start_ws()
        w = self.ws(br, "ws-pub")
        self.assertEqual(w.headers.get("sec-websocket-protocol"), "mqtt")
        w.publish("ws/q0", b"zero", qos=0)
        w.publish("ws/q1", b"one", qos=1)
        w.publish("ws/q2", b"two", qos=2)
        self.assertEqual(w.ping().type, PINGRESP)
        w.disconnect()
        self.assertEqual(br.wait_count(3, "topic like 'ws/q%'"), 3)
        self.assertEqual(br.rows(
            "select topic, cast(payload as text), qos from messages "
            "where topic like 'ws/q%' order by topic"),
            [["ws/q0", "zero", "0"], ["ws/q1", "one", "1"],
             ["ws/q2", "two", "2"]])

    def test_packets_across_frames_and_frames_with_many_packets(self):
        br = self.start_ws()
        # A packet over many 3-byte fragments, a ping between two of them.
        w = self.ws(br, frame_size=3)
        w.connect("ws-frag")
        pkt = publish_pkt("ws/frag", b"f" * 300, qos=1, pid=7)
        frames = b""
        for i in range(0, len(pkt), 5):
            last = i + 5 >= len(pkt)
            frames += ws_frame(pkt[i:i + 5], opcode=2 if i == 0 else 0,
                               fin=last)
            if i == 10:
                frames += ws_frame(b"mid", opcode=9)
        w.send_raw(frames)
        self.assertEqual(w.expect(PUBACK).pid, 7)
        self.assertEqual(w.wait_control(10), b"mid")
        # Ten packets in one frame, then one packet split over two frames
        # sent one byte at a time.
        many = b"".join(publish_pkt("ws/many", b"%d" % i, qos=1,
                                    pid=100 + i) for i in range(10))
        w.send_raw(ws_frame(many))
        pids = sorted(w.expect(PUBACK).pid for _ in range(10))
        self.assertEqual(pids, list(range(100, 110)))
        pkt = publish_pkt("ws/slow", b"s", qos=1, pid=200)
        data = ws_frame(pkt[:4]) + ws_frame(pkt[4:])
        for i in range(len(data)):
            w.send_raw(data[i:i + 1])
            time.sleep(0.002)
        self.assertEqual(w.expect(PUBACK).pid, 200)
        w.disconnect()
        self.assertEqual(br.wait_count(12, "topic like 'ws/%'"), 12)
        self.assertEqual(br.scalar("select length(payload) from messages "
                                   "where topic='ws/frag'"), 300)

    def test_subscriber_over_ws_receives(self):
        br = self.start_ws()
        sub = self.ws(br, "ws-sub")
        self.assertEqual(sub.subscribe([("feed/#", 1)]), [1])
        pub = self.client(br, "tcp-pub")
        for i in range(5):
            pub.publish("feed/%d" % i, b"m%d" % i, qos=1)
        # A large one: the server splits nothing the client cannot read.
        pub.publish("feed/big", b"B" * 100000, qos=1)
        got = sub.collect(6)
        self.assertEqual([p.topic for p in got],
                         ["feed/%d" % i for i in range(5)] + ["feed/big"])
        self.assertEqual(got[5].payload, b"B" * 100000)
        self.assertEqual(got[0].payload, b"m0")
        sub.disconnect()

    def test_bad_upgrade_requests(self):
        br = self.start_ws(path="/ws/mqtt")
        cases = [
            (http_request("/mqtt")[0], "404"),
            (http_request("/ws/mqtt", upgrade=False)[0], "426"),
            (http_request("/ws/mqtt", version="8")[0], "426"),
            (http_request("/ws/mqtt", key="-")[0], "400"),
            (http_request("/ws/mqtt", key="c2hvcnQ=")[0], "400"),
            (http_request("/ws/mqtt", proto="chat, superchat")[0], "400"),
            (b"POST /ws/mqtt HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
            (http_request("/ws/mqtt", extra="X-Pad: %s\r\n" %
                          ("p" * 9000))[0], "400"),
            (connect_pkt("plain-mqtt") + b"\r\n\r\n", "400"),
        ]
        for req, code in cases:
            s = socket.create_connection((HOST, br.ws_port), timeout=5)
            try:
                s.sendall(req)
                head, _ = read_http(s)
            finally:
                s.close()
            self.assertTrue(head.startswith("HTTP/1.1 " + code),
                            "%r... answered %r" % (req[:40], head))
        # The path with a query string, and "mqttv3.1" as sub-protocol.
        s = socket.create_connection((HOST, br.ws_port), timeout=5)
        w = WSClient(br.ws_port, path="/ws/mqtt?x=1", sock=s,
                     proto="mqttv3.1")
        self.clients.append(w)
        self.assertEqual(w.headers.get("sec-websocket-protocol"),
                         "mqttv3.1")
        w.connect("ws-path")
        w.disconnect()
        self.assert_serving(br, "after-upgrades")

    def test_malformed_frames_closed_with_code(self):
        br = self.start_ws(limits={"max_packet_bytes": "4KB"})
        ok = publish_pkt("bad/x", b"x", qos=0)
        cases = [
            ("unmasked", ws_frame(ok, mask=False), 1002),
            ("reserved bit", ws_frame(ok, rsv=4), 1002),
            ("text frame", ws_frame(ok, opcode=1), 1003),
            ("unknown opcode", ws_frame(ok, opcode=3), 1002),
            ("long ping", ws_frame(b"p" * 126, opcode=9), 1002),
            ("fragmented ping", ws_frame(b"p", opcode=9, fin=False), 1002),
            ("stray continuation", ws_frame(ok, opcode=0), 1002),
            ("new message in a fragmented one",
             ws_frame(ok[:2], fin=False) + ws_frame(ok[2:]), 1002),
            ("frame over max_packet_bytes",
             ws_frame(b"", length=10 ** 6), 1009),
            ("64-bit length with the top bit", ws_frame(b"", length=0) [:1] +
             bytes([0x80 | 127]) + b"\x80" + b"\0" * 7 + b"abcd", 1002),
            ("close of 1 byte", ws_frame(b"\x03", opcode=8), 1002),
        ]
        for why, data, code in cases:
            w = self.ws(br, "bad-%d" % code)
            w.send_raw(data)
            self.assertEqual(w.wait_close(), code, why)
            w.close()
        self.assertEqual(br.count("topic='bad/x'"), 0)
        self.assert_serving(br, "after-malformed")
        self.assertIn("websocket: text frame (close 1003)", br.log_text())

    def test_ping_pong_and_close_handshake(self):
        br = self.start_ws()
        w = self.ws(br, "ws-ping")
        w.send_raw(ws_frame(b"hello", opcode=9))
        self.assertEqual(w.wait_control(10), b"hello")
        w.send_raw(ws_frame(b"ignored", opcode=10))
        self.assertEqual(w.ping().type, PINGRESP)
        w.send_raw(ws_frame(struct.pack("!H", 1001) + b"bye", opcode=8))
        self.assertEqual(w.wait_close(), 1001)
        w.close()
        # A server-side close (DISCONNECT) ends with a close frame 1000.
        w = self.ws(br, "ws-disc")
        w.send(bytes([0xE0, 0]))
        self.assertEqual(w.wait_close(), 1000)
        self.assert_serving(br, "after-close")

    def test_wss_publish_and_subscribe(self):
        certs = os.path.join(self.workdir, "certs")
        os.makedirs(certs)
        tlsmod.make_ca(certs, "ca", "mqlite-test-ca")
        tlsmod.make_leaf(certs, "server", "mqlite-server", server=True)
        wss_port = free_port()
        br = self.start_ws(extra=[{
            "port": wss_port, "bind": HOST, "websocket": True,
            "websocket_path": "/secure",
            "tls": {"cert": os.path.join(certs, "server.pem"),
                    "key": os.path.join(certs, "server.key")}}])
        self.assertIn("(TLS) WebSocket /secure", br.log_text())
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(certs, "ca.pem"))

        def wss(cid):
            raw = socket.create_connection((HOST, wss_port), timeout=5)
            c = WSClient(wss_port, path="/secure",
                         sock=ctx.wrap_socket(raw, server_hostname=HOST))
            self.clients.append(c)
            c.connect(cid)
            return c
        sub = wss("wss-sub")
        self.assertEqual(sub.subscribe([("sec/#", 2)]), [2])
        pub = wss("wss-pub")
        pub.publish("sec/q0", b"zero", qos=0)
        pub.publish("sec/q1", b"one", qos=1)
        pub.publish("sec/q2", b"two", qos=2)
        pub.publish("sec/big", b"S" * 200000, qos=1)
        got = sub.collect(4)
        self.assertEqual(sorted(p.topic for p in got),
                         ["sec/big", "sec/q0", "sec/q1", "sec/q2"])
        self.assertEqual([p.payload for p in got
                          if p.topic == "sec/big"], [b"S" * 200000])
        pub.disconnect()
        sub.disconnect()
        self.assertEqual(br.wait_count(4, "topic like 'sec/%'"), 4)
        self.assertEqual(br.rows(
            "select topic, qos from messages where topic like 'sec/q%' "
            "order by topic"), [["sec/q0", "0"], ["sec/q1", "1"],
                                ["sec/q2", "2"]])
        # Plain ws on the TLS port is refused by the TLS handshake.
        s = socket.create_connection((HOST, wss_port), timeout=5)
        s.sendall(http_request("/secure")[0])
        s.settimeout(5)
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        s.close()
        self.assertNotIn(b"101", data)
        self.assert_serving(br, "after-wss")

    def test_browser_page_publishes_and_subscribes(self):
        self.assertIsNotNone(CHROMIUM, "chromium is not installed (apt-get "
                             "install chromium; see contrib/quickstart)")
        br = self.start_ws()
        tcp = self.client(br, "tcp-retainer")
        tcp.publish("browser/in/retained", b"from-tcp", qos=1, retain=True)
        tcp.disconnect()
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "ws_page.html")) as f:
            page = f.read().replace(
                "WSURL", "ws://%s:%d/mqtt" % (HOST, br.ws_port)).encode()
        results = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200 if self.path == "/" else 404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                results.append(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass
        srv = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        prof = os.path.join(self.workdir, "chromium-profile")
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
               "--no-first-run", "--disable-extensions",
               "--user-data-dir=" + prof, "--remote-debugging-port=0",
               "http://%s:%d/" % (HOST, srv.server_address[1])]
        # Headless Chromium with a debugging port stays up until killed:
        # the page's own result (posted to /result) ends the wait.
        errlog = open(os.path.join(self.workdir, "chromium.log"), "w+b")
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                stderr=errlog)
        try:
            wait_until(lambda: results or proc.poll() is not None,
                       timeout=90, interval=0.1)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=60)
            errlog.seek(0)
            err = errlog.read()
            errlog.close()
        self.assertTrue(results, "the page posted nothing; chromium said: " +
                        err.decode(errors="replace")[-2000:])
        r = results[0]
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["received"], {"browser/in/retained": "from-tcp",
                                         "browser/echo/1": "echo-me"})
        self.assertEqual(r["pubacks"], 2)
        self.assertEqual(br.wait_count(4, "topic like 'browser/%'"), 4)
        self.assertEqual(br.rows(
            "select topic, cast(payload as text), qos from messages where "
            "topic in ('browser/q0', 'browser/q1', 'browser/echo/1') "
            "order by topic"),
            [["browser/echo/1", "echo-me", "1"],
             ["browser/q0", "page-q0", "0"], ["browser/q1", "page-q1", "1"]])
        self.assertIn("client browser-page", br.log_text())

    def test_paho_websockets_transport(self):
        br = self.start_ws()
        got, acked = [], []

        def on_message(c, u, m):
            got.append((m.topic, m.payload, m.qos))
        c = paho.Client(client_id="paho-ws", transport="websockets",
                        protocol=paho.MQTTv311)
        c.ws_set_options(path="/mqtt")
        c.on_message = on_message
        c.on_publish = lambda cl, u, mid: acked.append(mid)
        c.connect(HOST, br.ws_port, keepalive=30)
        c.loop_start()
        try:
            r, _ = c.subscribe("paho/#", qos=2)
            self.assertEqual(r, 0)
            time.sleep(0.3)
            infos = [c.publish("paho/q%d" % q, b"p%d" % q, qos=q)
                     for q in (1, 2)]
            for i in infos:
                i.wait_for_publish(timeout=10)
            self.assertTrue(wait_until(lambda: len(got) == 2, timeout=10),
                            got)
        finally:
            c.disconnect()
            c.loop_stop()
        self.assertEqual(sorted(got), [("paho/q1", b"p1", 1),
                                       ("paho/q2", b"p2", 2)])
        self.assertEqual(len(acked), 2)
        self.assertEqual(br.rows(
            "select topic, qos from messages where topic like 'paho/%' "
            "order by topic"), [["paho/q1", "1"], ["paho/q2", "2"]])

    def test_check_refuses_bad_path(self):
        for bad in ("mqtt", "/a b", "/x?y"):
            path = os.path.join(self.workdir, "c.json")
            with open(path, "w") as f:
                json.dump({"listeners": [
                    {"port": free_port(), "bind": HOST, "websocket": True,
                     "websocket_path": bad}]}, f)
            r = subprocess.run([daemon_path(), "-c", path, "--check"],
                               capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 1, bad)
            self.assertIn("listeners[0].websocket_path: expected a path",
                          r.stderr.decode())

    def test_output_limit_pauses_a_ws_client_that_does_not_read(self):
        br = self.start_ws(limits={"output_bytes": "8KB"})
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(5)
        sock.connect((HOST, br.ws_port))
        w = WSClient(br.ws_port, sock=sock)
        self.clients.append(w)
        w.connect("ws-flood")
        self.assertEqual(w.subscribe([("flood/#", 0)]), [0])
        n = 6000
        data = b"".join(ws_frame(publish_pkt("flood/%d" % (i % 10),
                                             b"x" * 1024, qos=1,
                                             pid=i % 65535 + 1))
                        for i in range(n))
        sender = socket.socket(fileno=os.dup(sock.fileno()))
        sender.settimeout(120)
        err = []

        def send():
            try:
                sender.sendall(data)
            except OSError as e:
                err.append(e)
        t = threading.Thread(target=send, daemon=True)
        t.start()
        self.assertTrue(wait_until(lambda: "not reading: " in br.log_text(),
                                   timeout=30), "no output pause logged")
        acks = 0
        deadline = time.monotonic() + 120
        while acks < n and time.monotonic() < deadline:
            p = w.read_raw(timeout=30)
            acks += p.type == PUBACK
        t.join(timeout=60)
        sender.close()
        self.assertEqual(err, [])
        self.assertEqual(acks, n)
        w.disconnect()
        self.assertEqual(br.wait_count(n, "topic like 'flood/%'",
                                       timeout=60), n)

    def test_unfinished_upgrade_counts_in_connect_timeout(self):
        br = self.start_ws(limits={"connect_timeout": "1s"})
        s = socket.create_connection((HOST, br.ws_port), timeout=5)
        self.addCleanup(s.close)
        s.sendall(http_request()[0][:30])
        s.settimeout(15)
        t0 = time.monotonic()
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
        self.assertEqual(data, b"")
        self.assertLess(time.monotonic() - t0, 14)
        self.assert_serving(br, "after-timeout")
