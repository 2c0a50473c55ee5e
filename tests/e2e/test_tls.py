# SPDX-License-Identifier: Apache-2.0
"""TLS listeners end to end: the real daemon with a plain and a TLS
listener side by side on 127.0.0.1 (ports the test picks), real clients
(python's ssl module speaking MQTT over raw sockets, mosquitto_pub with
--cafile/--cert/--key), the real database read back. Every certificate is
made at test time with the openssl command line tool in the test's
directory: a CA, a server certificate for IP 127.0.0.1, client
certificates signed by the CA, one signed by an unrelated CA, and an
expired one (openssl ca with -startdate/-enddate in the past: Debian 12's
OpenSSL 3.0 has no x509 -not_before).

- A valid client certificate connects, publishes, and the row is stored;
  the plain listener keeps serving next to the TLS one.
- Refused (no CONNACK, connection closed, the log says why): a client
  certificate from another CA, an expired one, none when
  require_client_cert is set, TLS 1.0 and 1.1 (the same client completes
  a TLS 1.1 handshake with a permissive control server, so the refusal is
  mqlite's), plain MQTT sent to the TLS port.
- use_identity_as_username: the certificate's CN becomes {username}, the
  username in CONNECT is ignored; with a password file and an ACL, that
  listener takes no password (as Mosquitto 2) and the CN user gets its ACL,
  while the plain listener beside it still asks for passwords.
- A TLS handshake that never completes counts inside
  limits.connect_timeout.
- Pipelined QoS 1 publishes with max_inflight 1 and a small
  max_packet_bytes: the connection pauses with decrypted bytes still
  inside OpenSSL (SSL_pending) and must resume without new socket input.
- SIGHUP while a client publishes over TLS: new connections get the new
  certificate, the open connection keeps going, every acknowledged publish
  is stored; a broken certificate file keeps the old one and the log
  names the file and the reason.
- --check (and start) open and validate every file: missing, not PEM,
  key of another certificate, expired server certificate, each reported
  as FILE: listeners[N].tls.KEY: REASON.

Every wait is bounded."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest

from mqlite_harness import (CONNACK, HOST, PUBACK, Broker, Client, Closed,
                            E2ETestCase, connect_pkt, daemon_path, free_port,
                            mqlite_only, publish_pkt, wait_until)

OPENSSL = shutil.which("openssl")
EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
CA_EXT = ["-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"]

# `openssl ca` signs with dates of our choosing (the expired certificate).
CA_CNF = """[ ca ]
default_ca = ca_default
[ ca_default ]
dir = .
database = index.txt
new_certs_dir = .
certificate = ca.pem
private_key = ca.key
serial = serial
default_md = sha256
policy = any
unique_subject = no
[ any ]
commonName = supplied
"""


def openssl(*args, cwd):
    r = subprocess.run([OPENSSL] + list(args), cwd=cwd, capture_output=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (
            " ".join(args), r.stderr.decode(errors="replace")))


def make_ca(d, name, cn):
    openssl("req", "-x509", *EC, "-keyout", name + ".key", "-out",
            name + ".pem", "-days", "2", "-subj", "/CN=" + cn, *CA_EXT,
            cwd=d)


def make_leaf(d, name, cn, ca="ca", server=False):
    openssl("req", *EC, "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/CN=" + cn, cwd=d)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n" if server else
                "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
            "-CAkey", ca + ".key", "-CAcreateserial", "-out", name + ".pem",
            "-days", "2", "-extfile", ext, cwd=d)


def make_expired(d, name, cn):
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write(CA_CNF)
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")
    openssl("req", *EC, "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/CN=" + cn, cwd=d)
    openssl("ca", "-batch", "-config", "ca.cnf", "-in", name + ".csr",
            "-out", name + ".pem", "-notext", "-startdate", "20200101000000Z",
            "-enddate", "20200102000000Z", cwd=d)


def make_certs(d):
    os.makedirs(d, exist_ok=True)
    make_ca(d, "ca", "mqlite-test-ca")
    make_ca(d, "other-ca", "mqlite-unrelated-ca")
    make_leaf(d, "server", "mqlite-server", server=True)
    make_leaf(d, "server2", "mqlite-server-reloaded", server=True)
    make_leaf(d, "client", "dev-42")
    make_leaf(d, "stranger", "dev-stranger", ca="other-ca")
    make_expired(d, "expired", "dev-expired")


class TLSClient(Client):
    """The harness's raw MQTT client over a TLS connection."""

    def __init__(self, port, ctx, timeout=5.0):
        raw = socket.create_connection((HOST, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=HOST)
        self.buf = b""
        self.backlog = []
        self.timeout = timeout
        self.next_pid = 1
        self.auto_pubcomp = True

    def _recv_some(self, deadline):
        try:
            return super()._recv_some(deadline)
        except ssl.SSLError:
            raise Closed()


@mqlite_only("mqlite TLS listener configuration")
class TestTLS(E2ETestCase):
    auto_start = False
    needs_db = True

    def setUp(self):
        super().setUp()
        self.certs = os.path.join(self.workdir, "certs")
        make_certs(self.certs)

    # -- helpers ---------------------------------------------------------
    def cert(self, name):
        return os.path.join(self.certs, name)

    def start_tls(self, tls=None, limits=None, rules=None, check=True,
                  auth=None):
        """A broker with a plain listener (br.port) and a TLS one
        (br.tls_port); tls overrides the listener's tls keys."""
        br = Broker(self.workdir, name="broker%d" % len(self.brokers))
        br.tls_port = free_port()
        t = {"cert": self.cert("server.pem"), "key": self.cert("server.key"),
             "ca": self.cert("ca.pem"), "require_client_cert": True}
        t.update(tls or {})
        cfg = {"listeners": [{"port": br.port, "bind": HOST},
                             {"port": br.tls_port, "bind": HOST, "tls": t}],
               "database": {"path": br.db_path}}
        if limits:
            cfg["limits"] = limits
        if rules:
            cfg["rules"] = rules
        if auth:
            cfg["auth"] = auth
        with open(br.conf_path, "w") as f:
            json.dump(cfg, f)
        self.brokers.append(br)
        br.start()
        # The plain listener answers first; TLS is up once "ready".
        self.assertTrue(wait_until(lambda: " ready, database " in
                                   br.log_text(), timeout=10))
        return br

    def ctx(self, cert="client", ca="ca.pem"):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.load_verify_locations(self.cert(ca))
        if cert:
            c.load_cert_chain(self.cert(cert + ".pem"),
                              self.cert(cert + ".key"))
        return c

    def tls_client(self, br, ctx=None, client_id=None, **kw):
        c = TLSClient(br.tls_port, ctx or self.ctx())
        self.clients.append(c)
        c.connect(client_id or "tls-%d" % len(self.clients), **kw)
        return c

    def assert_refused(self, br, ctx, why, send_connect=True):
        """The handshake fails, or (TLS 1.3 verifies the client after the
        client's side completed) CONNECT gets no CONNACK: closed."""
        before = br.log_text().count("TLS handshake failed")
        try:
            c = TLSClient(br.tls_port, ctx)
        except (ssl.SSLError, ConnectionError):
            c = None
        if c is not None:
            self.clients.append(c)
            try:
                if send_connect:
                    c.send(connect_pkt("refused"))
                p = c.read_raw(timeout=5)
                self.fail("%s: got %r instead of a refusal" % (why, p))
            except (Closed, ssl.SSLError, ConnectionError):
                pass
        self.assertTrue(wait_until(lambda: br.log_text().count(
            "TLS handshake failed") > before, timeout=5),
            "%s: no handshake failure in the log" % why)

    def mosquitto_pub(self, br, *args):
        return subprocess.run(
            ["mosquitto_pub", "-h", HOST, "-p", str(br.tls_port),
             "--cafile", self.cert("ca.pem")] + list(args),
            capture_output=True, timeout=30)

    # -- tests -----------------------------------------------------------
    def test_valid_certificate_connects_plain_listener_too(self):
        br = self.start_tls()
        r = self.mosquitto_pub(br, "--cert", self.cert("client.pem"),
                               "--key", self.cert("client.key"), "-q", "1",
                               "-t", "tls/mosq", "-m", "via-mosquitto")
        self.assertEqual(r.returncode, 0, r.stderr)
        c = self.tls_client(br)
        c.publish("tls/py", b"via-python", qos=1)
        self.assertEqual(c.sock.version() in ("TLSv1.2", "TLSv1.3"), True)
        c.disconnect()
        self.assertEqual(br.wait_count(2, "topic like 'tls/%'"), 2)
        self.assertEqual(br.count("payload='via-mosquitto'"), 1)
        self.assertEqual(br.count("payload='via-python'"), 1)
        self.assert_serving(br)         # the plain listener, same daemon

    def test_tls12_client_connects_with_aead_ciphers_only(self):
        br = self.start_tls()
        ctx = self.ctx()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        c = self.tls_client(br, ctx)
        self.assertEqual(c.sock.version(), "TLSv1.2")
        self.assertIn("GCM", c.sock.cipher()[0])
        c.publish("tls/12", b"x", qos=1)
        # CBC with SHA-1 MACs is not offered by the server.
        ctx = self.ctx()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA")
        self.assert_refused(br, ctx, "CBC cipher", send_connect=False)

    def test_other_ca_expired_and_missing_certificates_refused(self):
        br = self.start_tls()
        self.assert_refused(br, self.ctx("stranger"), "other CA")
        self.assert_refused(br, self.ctx("expired"), "expired")
        self.assertIn("certificate has expired", br.log_text())
        self.assert_refused(br, self.ctx(None), "no client certificate")
        r = self.mosquitto_pub(br, "-t", "tls/nocert", "-m", "x", "-q", "1")
        self.assertNotEqual(r.returncode, 0)
        # The server's own certificate checked against the wrong CA.
        with self.assertRaises(ssl.SSLCertVerificationError):
            TLSClient(br.tls_port, self.ctx(ca="other-ca.pem"))
        self.assertEqual(br.count("topic like 'tls/%'"), 0)
        self.assert_serving(br)

    def test_without_required_certificate_anyone_with_the_ca_connects(self):
        br = self.start_tls({"require_client_cert": False})
        c = self.tls_client(br, self.ctx(None))
        c.publish("tls/anon", b"x", qos=1)
        r = self.mosquitto_pub(br, "-t", "tls/anon", "-m", "y", "-q", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(br.wait_count(2, "topic='tls/anon'"), 2)

    def test_tls10_and_tls11_refused(self):
        br = self.start_tls({"require_client_cert": False})
        for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            ctx = self.old_ctx(v)
            self.assertEqual(self.control_handshake(ctx), v.name.replace(
                "_", ".").replace("TLSv1.0", "TLSv1"))
            self.assert_refused(br, ctx, v.name, send_connect=False)
        self.assertIn("unsupported protocol", br.log_text())

    def old_ctx(self, v):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.minimum_version = v
            ctx.maximum_version = v
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        return ctx

    def control_handshake(self, client_ctx):
        """The client's protocol version with a server that allows it."""
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            sctx.minimum_version = ssl.TLSVersion.TLSv1
            sctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        sctx.load_cert_chain(self.cert("server.pem"), self.cert("server.key"))
        ls = socket.socket()
        ls.bind((HOST, 0))
        ls.listen(1)
        ls.settimeout(10)

        def serve():
            try:
                s, _ = ls.accept()
                s.settimeout(10)
                sctx.wrap_socket(s, server_side=True).close()
            except OSError:
                pass
        th = threading.Thread(target=serve)
        th.start()
        try:
            raw = socket.create_connection(ls.getsockname(), timeout=10)
            t = client_ctx.wrap_socket(raw)
            v = t.version()
            t.close()
            return v
        finally:
            th.join(15)
            ls.close()

    def test_plain_mqtt_to_tls_port_refused(self):
        br = self.start_tls()
        c = Client(br.tls_port)
        self.clients.append(c)
        c.send(connect_pkt("plain-on-tls"))
        data = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                c.sock.settimeout(max(0.1, deadline - time.monotonic()))
                chunk = c.sock.recv(4096)
            except (socket.timeout, ConnectionError):
                break
            if not chunk:
                break
            data += chunk
        else:
            self.fail("connection still open")
        self.assertFalse(data.startswith(b"\x20\x02"), data)   # no CONNACK
        self.assertIn("TLS handshake failed", br.log_text())
        self.assert_serving(br)

    def test_identity_as_username(self):
        rules = [{"name": "who", "topic": "#", "sqlite": {
            "table": "who", "columns": {"u": "{username}",
                                        "t": "{topic}"}}}]
        br = self.start_tls({"use_identity_as_username": True},
                            rules=rules)
        c = TLSClient(br.tls_port, self.ctx())
        self.clients.append(c)
        c.connect("dev", username="mallory", password="pw")
        c.publish("id/1", b"x", qos=1)
        r = self.mosquitto_pub(br, "--cert", self.cert("client.pem"),
                               "--key", self.cert("client.key"), "-q", "1",
                               "-t", "id/2", "-m", "y", "-u", "eve")
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_until(lambda: br.scalar("select count(*) from who") == 2,
                   timeout=10)
        self.assertEqual(br.rows("select u, t from who order by t"),
                         [["dev-42", "id/1"], ["dev-42", "id/2"]])

    def test_identity_with_password_file_and_acl(self):
        """As Mosquitto 2's use_identity_as_username: on that listener the
        certificate's CN is the user and the password file is not used (a
        password, right or wrong, or another user name changes nothing);
        the ACL applies to the CN user. The plain listener beside it still
        asks for a password, also for the CN's name."""
        pw = os.path.join(self.workdir, "passwd")
        subprocess.run(["mosquitto_passwd", "-c", "-b", pw, "alice", "apw"],
                       check=True, timeout=30)
        acl = os.path.join(self.workdir, "acl.json")
        with open(acl, "w") as f:
            json.dump({"users": {
                "dev-42": [{"topic": "dev/42/#", "access": "readwrite"}],
                "alice": [{"topic": "alice/#", "access": "readwrite"}]}}, f)
        br = self.start_tls({"use_identity_as_username": True},
                            auth={"password_file": pw, "acl_file": acl})
        c = TLSClient(br.tls_port, self.ctx())
        self.clients.append(c)
        c.connect("cn-dev", username="alice", password="wrong")
        self.assertEqual(c.subscribe([("dev/42/#", 1), ("alice/#", 1)]),
                         [1, 0x80])
        c.publish("dev/42/t", b"mine", qos=1)
        c.publish("alice/x", b"not mine", qos=1)
        self.assertEqual(c.recv_publish().topic, "dev/42/t")
        self.assertIsNone(c.quiet(0.5))
        # No password at all: the same.
        c2 = TLSClient(br.tls_port, self.ctx())
        self.clients.append(c2)
        c2.connect("cn-dev2")
        c2.publish("dev/42/u", b"also", qos=1)
        br.wait_count(2, "topic like 'dev/42/%'")
        self.assertEqual(br.count("topic='alice/x'"), 0)
        self.assertIn("publish to alice/x denied by the ACL", br.log_text())
        # The plain listener: the password file applies.
        self.client(br, client_id="p1", username="dev-42", expect_rc=5)
        self.client(br, client_id="p2", username="alice", password="nope",
                    expect_rc=5)
        a = self.client(br, client_id="p3", username="alice",
                        password="apw")
        a.publish("alice/y", b"y", qos=1)
        a.publish("dev/42/v", b"v", qos=1)
        br.wait_count(1, "topic='alice/y'")
        self.assertEqual(br.count("topic='dev/42/v'"), 0)

    def test_identity_needs_required_certificate(self):
        cfg = {"listeners": [{"port": 0, "tls": {
            "cert": self.cert("server.pem"), "key": self.cert("server.key"),
            "use_identity_as_username": True}}]}
        path = os.path.join(self.workdir, "c.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([daemon_path(), "-c", path, "--check"],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("listeners[0].tls.use_identity_as_username: ",
                      r.stderr.decode())

    def test_handshake_counts_in_connect_timeout(self):
        br = self.start_tls(limits={"connect_timeout": "1s"})
        silent = Client(br.tls_port)            # TCP only, no ClientHello
        half = Client(br.tls_port)              # 5 bytes of a record
        self.clients += [silent, half]
        half.send(b"\x16\x03\x01\x02\x00")
        t0 = time.monotonic()
        self.assert_closed(silent, timeout=10)
        self.assert_closed(half, timeout=10)
        self.assertLess(time.monotonic() - t0, 9)
        self.assertIn("no CONNECT within connect_timeout", br.log_text())
        self.assert_serving(br)

    def test_paused_connection_resumes_with_decrypted_bytes_buffered(self):
        br = self.start_tls(limits={"max_inflight": 1,
                                    "max_packet_bytes": "1KB"})
        c = self.tls_client(br, client_id="pipeline")
        n = 400
        data = b"".join(publish_pkt("pipe/%d" % i, b"p" * 200, qos=1,
                                    pid=i + 1) for i in range(n))
        c.send(data, timeout=30)
        acked = set()
        deadline = time.monotonic() + 30
        while len(acked) < n and time.monotonic() < deadline:
            p = c.expect(PUBACK, timeout=max(0.1, deadline -
                                              time.monotonic()))
            acked.add(p.pid)
        self.assertEqual(len(acked), n)
        self.assertEqual(br.wait_count(n, "topic like 'pipe/%'"), n)

    def test_slow_tls_subscriber_gets_every_byte(self):
        """Output larger than the socket takes: SSL_write reports
        WANT_WRITE and is repeated while the output buffer keeps growing
        (and moving); the subscriber gets every message intact, in
        order."""
        # Output bound well above what loopback socket buffers hold.
        br = self.start_tls(limits={"max_packet_bytes": "16MB",
                                    "output_bytes": "32MB"})
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(10)
        raw.connect((HOST, br.tls_port))
        sub = TLSClient.__new__(TLSClient)
        sub.sock = self.ctx().wrap_socket(raw, server_hostname=HOST)
        sub.buf, sub.backlog, sub.timeout = b"", [], 10.0
        sub.next_pid, sub.auto_pubcomp = 1, True
        self.clients.append(sub)
        sub.connect("slow-sub")
        sub.subscribe([("big/#", 1)])
        pub = self.client(br, client_id="big-pub")
        n, size = 120, 32 * 1024
        for i in range(n):
            body = (b"%05d" % i) * (size // 5)
            pub.send(publish_pkt("big/%d" % i, body, qos=1, pid=i + 1))
        for i in range(n):
            pub.expect(PUBACK, timeout=20)
        time.sleep(1.0)                 # the subscriber has not read yet
        got = sub.collect(n, timeout=60)
        self.assertEqual([p.topic for p in got],
                         ["big/%d" % i for i in range(n)])
        for i, p in enumerate(got):
            self.assertEqual(p.payload, (b"%05d" % i) * (size // 5))
        # QoS 0 has no window: the output buffer grows (and is moved by
        # realloc) while a write waits to be repeated.
        sub.subscribe([("fast/#", 0)])
        n0 = 300
        for i in range(n0):
            pub.publish("fast/%d" % i, (b"%05d" % i) * (size // 5))
            if i % 10 == 0:
                time.sleep(0.01)
        pub.ping()
        time.sleep(0.5)
        got = sub.collect(n0, timeout=60)
        self.assertEqual([p.topic for p in got],
                         ["fast/%d" % i for i in range(n0)])
        for i, p in enumerate(got):
            self.assertEqual(p.payload, (b"%05d" % i) * (size // 5))
        self.assertNotIn("TLS error", br.log_text())

    def test_reload_certificates_under_load(self):
        br = self.start_tls()
        stop = threading.Event()
        state = {"acked": 0, "error": None}
        pub = self.tls_client(br, client_id="loader")

        def load():
            i = 0
            try:
                while not stop.is_set() and i < 20000:
                    pub.publish("load/%d" % i, b"v", qos=1)
                    state["acked"] += 1
                    i += 1
            except Exception as e:      # reported below
                state["error"] = repr(e)
        th = threading.Thread(target=load)
        th.start()
        try:
            self.assertEqual(self.server_cn(br), "mqlite-server")
            # New files under the configured names, then SIGHUP.
            for ext in ("pem", "key"):
                shutil.copy(self.cert("server2." + ext),
                            self.cert("server." + ext + ".new"))
                os.replace(self.cert("server." + ext + ".new"),
                           self.cert("server." + ext))
            br.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: "TLS certificates of "
                                       "listener 1" in br.log_text()))
            self.assertEqual(self.server_cn(br), "mqlite-server-reloaded")
            # A broken certificate keeps the last good one.
            with open(self.cert("server.pem"), "w") as f:
                f.write("not a certificate\n")
            br.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: "keeps its current "
                                       "certificates" in br.log_text()))
            self.assertIn("listeners[1].tls.cert: %s: not a usable PEM "
                          "certificate" % self.cert("server.pem"),
                          br.log_text())
            self.assertEqual(self.server_cn(br), "mqlite-server-reloaded")
            time.sleep(0.3)
        finally:
            stop.set()
            th.join(30)
        self.assertIsNone(state["error"])
        self.assertGreater(state["acked"], 0)
        self.assertEqual(br.wait_count(state["acked"],
                                       "topic like 'load/%'"),
                         state["acked"])
        pub.ping()                      # the open connection survived

    def server_cn(self, br):
        c = self.tls_client(br)
        cert = c.sock.getpeercert()
        c.disconnect()
        return dict(x[0] for x in cert["subject"])["commonName"]

    def test_check_validates_files(self):
        bad = os.path.join(self.workdir, "bad.pem")
        with open(bad, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnope\n")
        make_expired(self.certs, "expired-server", "old-server")
        cases = [
            ({"cert": self.cert("missing.pem")}, "cert",
             "cannot open: No such file or directory"),
            ({"cert": bad}, "cert", "not a usable PEM certificate"),
            ({"key": self.cert("client.key")}, "key",
             "the key does not match the certificate"),
            ({"key": bad}, "key", "not a usable PEM private key"),
            ({"ca": bad}, "ca", "not a usable PEM CA bundle"),
            ({"cert": self.cert("expired-server.pem"),
              "key": self.cert("expired-server.key")}, "cert",
             "the certificate has expired"),
        ]
        for tls, key, reason in cases:
            t = {"cert": self.cert("server.pem"),
                 "key": self.cert("server.key"), "ca": self.cert("ca.pem")}
            t.update(tls)
            path = os.path.join(self.workdir, "c.json")
            with open(path, "w") as f:
                json.dump({"listeners": [{"port": 0, "bind": HOST},
                                         {"port": 0, "bind": HOST,
                                          "tls": t}]}, f)
            for args in (["--check"], ["-d", os.path.join(
                    self.workdir, "x.db")]):
                r = subprocess.run([daemon_path(), "-c", path] + args,
                                   capture_output=True, timeout=30)
                err = r.stderr.decode()
                self.assertEqual(r.returncode, 1, (tls, args, err))
                self.assertIn("%s: listeners[1].tls.%s: " % (path, key),
                              err, tls)
                self.assertIn(reason, err, tls)
                self.assertFalse(os.path.exists(os.path.join(
                    self.workdir, "x.db")))
        # And a good configuration passes.
        t = {"cert": self.cert("server.pem"), "key": self.cert("server.key"),
             "ca": self.cert("ca.pem"), "require_client_cert": True}
        with open(path, "w") as f:
            json.dump({"listeners": [{"port": 0, "tls": t}]}, f)
        r = subprocess.run([daemon_path(), "-c", path, "--check"],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_p_is_the_first_plain_listener(self):
        port, tls_port = free_port(), free_port()
        br = Broker(self.workdir, name="pbroker", port=port,
                    extra_args=["-p", str(port)])
        with open(br.conf_path, "w") as f:
            json.dump({"listeners": [
                {"port": tls_port, "bind": HOST, "tls": {
                    "cert": self.cert("server.pem"),
                    "key": self.cert("server.key")}},
                {"port": 1, "bind": HOST}],
                "database": {"path": br.db_path}}, f)
        br.tls_port = tls_port
        self.brokers.append(br)
        br.start()                      # plain MQTT answers on -p's port
        self.assertTrue(wait_until(lambda: " ready, database " in
                                   br.log_text(), timeout=10))
        self.assert_serving(br)
        c = self.tls_client(br, self.ctx(None))   # TLS kept its port
        c.publish("p/tls", b"x", qos=1)


if __name__ == "__main__":
    unittest.main()
