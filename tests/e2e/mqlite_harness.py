# SPDX-License-Identifier: Apache-2.0
"""
End-to-end harness for mqlite: starts the daemon (or Mosquitto when
E2E_TARGET=mosquitto) on a free loopback port with a temporary database,
waits until it accepts connections, stops it with SIGTERM or SIGKILL,
restarts it on the same database, queries the database through the sqlite3
shell, and speaks MQTT 3.1.1 over raw sockets (packets built by hand).

Every wait is bounded and every socket has a timeout: a hung daemon makes a
test fail, never the suite hang. The daemon's stderr goes to one log file per
broker; the log is printed when a test fails.
"""

import json
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.environ.get("E2E_TARGET", "mqlite")
MOSQUITTO = TARGET == "mosquitto"
HOST = "127.0.0.1"

# Packet types.
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = range(1, 8)
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = range(8, 12)
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
TYPE_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK",
              5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE",
              9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
              12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT"}

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "WARNING: ThreadSanitizer")


def build_dir():
    b = os.environ.get("top_builddir")
    if b:
        return os.path.abspath(b)
    return os.path.abspath(os.path.join(HERE, "..", ".."))


def daemon_path():
    return os.environ.get("MQLITE_BIN") or os.path.join(build_dir(), "src",
                                                        "mqlite")


def helper_path(name):
    return os.path.join(build_dir(), "tests", "helpers", name)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _die_with_parent():
    """In the child before exec: SIGKILL when the test process dies, so a
    test killed by the runner's timeout leaves no broker behind."""
    try:
        import ctypes
        # prctl(PR_SET_PDEATHSIG = 1, SIGKILL)
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))
    except (OSError, AttributeError):
        pass


_spawn_q = None
_spawn_lock = threading.Lock()


def _spawner():
    while True:
        args, kw, box, done = _spawn_q.get()
        try:
            box.append(subprocess.Popen(*args, **kw))
        except BaseException as e:
            box.append(e)
        done.set()


def popen_with_parent(*args, **kw):
    """subprocess.Popen with _die_with_parent. The kernel sends the
    parent-death signal when the THREAD that forked the child ends, not the
    process: a daemon started from a short-lived thread (a publisher thread
    that restarts its broker) would be killed the moment that thread
    returns. So a call from any thread but the main one forks on one
    spawner thread that lives as long as the test process."""
    global _spawn_q
    kw["preexec_fn"] = _die_with_parent
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(*args, **kw)
    with _spawn_lock:
        if _spawn_q is None:
            _spawn_q = queue.Queue()
            threading.Thread(target=_spawner, name="harness-spawner",
                             daemon=True).start()
    box, done = [], threading.Event()
    _spawn_q.put((args, kw, box, done))
    if not done.wait(60):
        raise RuntimeError("the spawner thread did not start %r" % (args,))
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def wait_until(pred, timeout=10.0, interval=0.02):
    """Polls pred() until it returns a true value or timeout; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def labelled_metric(port, name, label, value):
    """The value of name{label="value"} at the daemon's /metrics on port,
    as an int, or None when the line is absent."""
    url = "http://%s:%d/metrics" % (HOST, port)
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    key = '%s{%s="%s"} ' % (name, label, value)
    for line in text.splitlines():
        if line.startswith(key):
            return int(float(line[len(key):]))
    return None


# ---------------------------------------------------------------------------
# The broker process.

class Broker:
    """One daemon process (mqlite or mosquitto) with its own port, database
    and log file. restart() keeps port and database."""

    def __init__(self, workdir, name="broker", limits=None, database=None,
                 port=None, env=None, extra_args=None):
        self.workdir = workdir
        self.name = name
        self.port = port or free_port()
        self.db_path = os.path.join(workdir, name + ".db")
        self.log_path = os.path.join(workdir, name + ".log")
        self.conf_path = os.path.join(workdir, name +
                                      (".conf" if MOSQUITTO else ".json"))
        self.limits = dict(limits or {})
        self.database = dict(database or {})
        self.env = dict(env or {})
        self.extra_args = list(extra_args or [])
        self.proc = None
        self.starts = 0
        self.exits = []         # (how, returncode) for every stop
        self._write_config()

    # -- configuration ------------------------------------------------------
    def update_config(self, **sections):
        """Replaces top-level keys of the mqlite JSON config (takes effect
        at the next start or SIGHUP)."""
        with open(self.conf_path) as f:
            cfg = json.load(f)
        cfg.update(sections)
        with open(self.conf_path, "w") as f:
            json.dump(cfg, f)

    def _write_config(self):
        if MOSQUITTO:
            lines = ["per_listener_settings false",
                     "allow_anonymous true",
                     "persistence false",
                     "user root",
                     "log_dest stderr",
                     "log_type error", "log_type warning",
                     "log_type notice", "log_type information",
                     "connection_messages true"]
            lim = self.limits
            if "max_packet_bytes" in lim:
                lines.append("max_packet_size %d" % lim["max_packet_bytes"])
            if "max_inflight" in lim:
                lines.append("max_inflight_messages %d" % lim["max_inflight"])
            if "max_queued" in lim:
                lines.append("max_queued_messages %d" % lim["max_queued"])
            lines.append("listener %d %s" % (self.port, HOST))
            if "max_connections" in lim:
                # Mosquitto 2.0 admits max_connections + 1 clients.
                lines.append("max_connections %d"
                             % max(1, lim["max_connections"] - 1))
            text = "\n".join(lines) + "\n"
        else:
            import json
            db = {"path": self.db_path}
            db.update(self.database)
            cfg = {"listeners": [{"port": self.port, "bind": HOST}],
                   "database": db}
            if self.limits:
                cfg["limits"] = self.limits
            text = json.dumps(cfg, indent=2) + "\n"
        with open(self.conf_path, "w") as f:
            f.write(text)

    def command(self):
        if MOSQUITTO:
            return ["/usr/sbin/mosquitto", "-c", self.conf_path]
        return [daemon_path(), "-c", self.conf_path, "-v"] + self.extra_args

    # -- lifecycle ----------------------------------------------------------
    def start(self, wait=True):
        assert self.proc is None, "broker already running"
        if not MOSQUITTO and not os.access(daemon_path(), os.X_OK):
            raise RuntimeError("daemon not built: %s" % daemon_path())
        env = dict(os.environ)
        env.update(self.env)
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(b"=== e2e: start #%d: %s\n" %
                  (self.starts, " ".join(self.command()).encode()))
        log.flush()
        self.proc = popen_with_parent(self.command(),
                                      stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=log, env=env,
                                      cwd=self.workdir)
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, tries=400, interval=0.05):
        """Retries a TCP connect until the listener accepts (bounded)."""
        for _ in range(tries):
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s during startup"
                                   % (self.name, self.proc.returncode))
            try:
                s = socket.create_connection((HOST, self.port), timeout=1)
                s.close()
                return
            except OSError:
                time.sleep(interval)
        raise RuntimeError("%s not accepting on port %d after %.1f s"
                           % (self.name, self.port, tries * interval))

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30.0):
        """SIGTERM and wait (bounded). Returns the exit status; a daemon that
        does not exit in time is killed and None is returned."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
            self.exits.append(("sigterm-timeout", None))
            return None
        self.exits.append(("sigterm", rc))
        return rc

    def kill(self):
        """SIGKILL and reap."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        self.exits.append(("sigkill", p.returncode))

    def restart(self, kill=False):
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    # -- inspection ---------------------------------------------------------
    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def sanitizer_report(self):
        text = self.log_text()
        for m in SANITIZER_MARKERS:
            if m in text:
                i = text.index(m)
                return text[max(0, i - 200):i + 3000]
        return None

    def query(self, sql, timeout=30):
        """Runs sql through the sqlite3 shell; returns stdout stripped."""
        r = subprocess.run(["sqlite3", "-batch", "-noheader",
                            "-cmd", ".timeout 5000", self.db_path, sql],
                           capture_output=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("sqlite3 %r failed: %s" %
                               (sql, r.stderr.decode(errors="replace")))
        return r.stdout.decode("utf-8", "replace").strip()

    def rows(self, sql):
        """Rows as lists of strings ('|'-separated columns)."""
        out = self.query(sql)
        return [line.split("|") for line in out.splitlines()] if out else []

    def scalar(self, sql):
        out = self.query(sql)
        return int(out) if out.lstrip("-").isdigit() else out

    def count(self, where="1"):
        return self.scalar("select count(*) from messages where %s" % where)

    def wait_count(self, n, where="1", timeout=20.0):
        """Waits until count(where) >= n; returns the last count."""
        last = [0]

        def check():
            last[0] = self.count(where)
            return last[0] >= n
        wait_until(check, timeout=timeout, interval=0.05)
        return last[0]


# ---------------------------------------------------------------------------
# MQTT 3.1.1 packets built by hand (CONNECT also in its 5.0 form).

def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def b(s):
    return s.encode("utf-8") if isinstance(s, str) else bytes(s)


def mstr(s):
    s = b(s)
    return struct.pack("!H", len(s)) + s


def packet(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


def connect_pkt(client_id, clean=True, keepalive=60, will=None,
                username=None, password=None, proto_name="MQTT", level=4,
                flags=None, prop=None, will_prop=None):
    """will = (topic, payload, qos, retain). flags overrides the flag byte.
    prop and will_prop are encoded property blocks (5.0): each goes in
    only when given (will_prop only with a will), so the 3.1.1 form has
    neither and mqtt5_util.connect5() passes both."""
    f = 0x02 if clean else 0
    payload = mstr(client_id)
    if will:
        wt, wp, wq, wr = will
        f |= 0x04 | (wq << 3) | (0x20 if wr else 0)
        if will_prop is not None:
            payload += will_prop
        payload += mstr(wt) + mstr(wp)
    if username is not None:
        f |= 0x80
        payload += mstr(username)
    if password is not None:
        f |= 0x40
        payload += mstr(password)
    if flags is not None:
        f = flags
    body = mstr(proto_name) + bytes([level, f]) + struct.pack("!H", keepalive)
    if prop is not None:
        body += prop
    return packet(CONNECT, 0, body + payload)


def publish_pkt(topic, payload=b"", qos=0, retain=False, dup=False, pid=None):
    flags = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = mstr(topic)
    if qos > 0:
        body += struct.pack("!H", 1 if pid is None else pid)
    return packet(PUBLISH, flags, body + b(payload))


def ack_pkt(ptype, pid):
    return packet(ptype, 2 if ptype == PUBREL else 0, struct.pack("!H", pid))


def subscribe_pkt(pid, filters):
    """filters: list of (filter, qos)."""
    body = struct.pack("!H", pid)
    for flt, q in filters:
        body += mstr(flt) + bytes([q])
    return packet(SUBSCRIBE, 2, body)


def unsubscribe_pkt(pid, filters):
    body = struct.pack("!H", pid)
    for flt in filters:
        body += mstr(flt)
    return packet(UNSUBSCRIBE, 2, body)


PINGREQ_PKT = b"\xc0\x00"
DISCONNECT_PKT = b"\xe0\x00"


class Packet:
    def __init__(self, first, body):
        self.type = first >> 4
        self.flags = first & 0x0F
        self.body = body
        if self.type == PUBLISH:
            self.qos = (self.flags >> 1) & 3
            self.dup = bool(self.flags & 8)
            self.retain = bool(self.flags & 1)
            n = struct.unpack("!H", body[:2])[0]
            self.topic = body[2:2 + n].decode("utf-8", "replace")
            rest = body[2 + n:]
            if self.qos:
                self.pid = struct.unpack("!H", rest[:2])[0]
                rest = rest[2:]
            else:
                self.pid = None
            self.payload = rest
        elif self.type == CONNACK:
            self.session_present = bool(body[0] & 1)
            self.rc = body[1]
        elif self.type in (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK):
            self.pid = struct.unpack("!H", body[:2])[0]
        elif self.type == SUBACK:
            self.pid = struct.unpack("!H", body[:2])[0]
            self.codes = list(body[2:])

    def __repr__(self):
        name = TYPE_NAMES.get(self.type, str(self.type))
        if self.type == PUBLISH:
            return "<PUBLISH %r q%d%s%s pid=%s %r>" % (
                self.topic, self.qos, " dup" if self.dup else "",
                " retain" if self.retain else "", self.pid, self.payload[:40])
        return "<%s flags=%x %s>" % (name, self.flags, self.body.hex())


class Closed(Exception):
    """The peer closed the connection (EOF or reset)."""


class Client:
    """A raw MQTT client on one TCP connection. Packets that arrive while
    waiting for something else are kept in a backlog, in order."""

    def __init__(self, port, timeout=5.0, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((HOST, port))
        self.buf = b""
        self.backlog = []
        self.timeout = timeout
        self.next_pid = 1
        self.auto_pubcomp = True

    def pid(self):
        p = self.next_pid
        self.next_pid = self.next_pid % 65535 + 1
        return p

    def send(self, data, timeout=None):
        """sendall, bounded by timeout (default: the client's timeout x 4,
        as the broker may pause reading for backpressure)."""
        self.sock.settimeout(timeout or self.timeout * 4)
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Closes with RST (abnormal disconnect)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def _recv_some(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out waiting for data")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("timed out waiting for data")
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            raise Closed()
        if not data:
            raise Closed()
        self.buf += data

    def read_raw(self, timeout=None):
        """Reads the next packet from the socket (ignores the backlog)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            if len(self.buf) >= 2:
                mult, n, i = 1, 0, 1
                complete = False
                while i < len(self.buf) and i <= 4:
                    c = self.buf[i]
                    n += (c & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not c & 0x80:
                        complete = True
                        break
                if complete and len(self.buf) >= i + n:
                    first, body = self.buf[0], self.buf[i:i + n]
                    self.buf = self.buf[i + n:]
                    return Packet(first, body)
            self._recv_some(deadline)

    def expect(self, ptype, timeout=None):
        """Returns the next packet of type ptype; other packets go to the
        backlog. A PUBREL is answered with PUBCOMP when auto_pubcomp."""
        for i, p in enumerate(self.backlog):
            if p.type == ptype:
                return self.backlog.pop(i)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            p = self.read_raw(max(0.001, deadline - time.monotonic()))
            if p.type == PUBREL and self.auto_pubcomp and ptype != PUBREL:
                self.send(ack_pkt(PUBCOMP, p.pid))
                continue
            if p.type == ptype:
                return p
            self.backlog.append(p)

    # -- high level ---------------------------------------------------------
    def connect(self, client_id, expect_rc=0, **kw):
        self.send(connect_pkt(client_id, **kw))
        p = self.expect(CONNACK)
        if expect_rc is not None and p.rc != expect_rc:
            raise AssertionError("CONNACK rc %d, expected %d"
                                 % (p.rc, expect_rc))
        return p

    def publish(self, topic, payload=b"", qos=0, retain=False, pid=None,
                dup=False, timeout=None):
        """Publishes and completes the QoS flow. Returns the packet id."""
        if qos and pid is None:
            pid = self.pid()
        self.send(publish_pkt(topic, payload, qos, retain, dup, pid))
        if qos == 1:
            a = self.expect(PUBACK, timeout)
            assert a.pid == pid, "PUBACK pid %d, expected %d" % (a.pid, pid)
        elif qos == 2:
            r = self.expect(PUBREC, timeout)
            assert r.pid == pid, "PUBREC pid %d, expected %d" % (r.pid, pid)
            self.send(ack_pkt(PUBREL, pid))
            c = self.expect(PUBCOMP, timeout)
            assert c.pid == pid, "PUBCOMP pid %d, expected %d" % (c.pid, pid)
        return pid

    def subscribe(self, filters, timeout=None):
        """filters: list of (filter, qos) or one filter string (QoS 0).
        Returns the SUBACK return codes."""
        if isinstance(filters, str):
            filters = [(filters, 0)]
        pid = self.pid()
        self.send(subscribe_pkt(pid, filters))
        a = self.expect(SUBACK, timeout)
        assert a.pid == pid, "SUBACK pid %d, expected %d" % (a.pid, pid)
        return a.codes

    def unsubscribe(self, filters, timeout=None):
        pid = self.pid()
        self.send(unsubscribe_pkt(pid, filters))
        a = self.expect(UNSUBACK, timeout)
        assert a.pid == pid
        return a

    def ping(self, timeout=None):
        self.send(PINGREQ_PKT)
        return self.expect(PINGRESP, timeout)

    def disconnect(self):
        try:
            self.send(DISCONNECT_PKT)
        except OSError:
            pass
        self.close()

    def recv_publish(self, timeout=None, ack=True):
        """Next PUBLISH; QoS 1 is PUBACKed and QoS 2 PUBRECed when ack."""
        p = self.expect(PUBLISH, timeout)
        if ack and p.qos == 1:
            self.send(ack_pkt(PUBACK, p.pid))
        elif ack and p.qos == 2:
            self.send(ack_pkt(PUBREC, p.pid))
        return p

    def collect(self, n, timeout=10.0, ack=True):
        """Exactly n PUBLISH packets within timeout (raises on timeout)."""
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            out.append(self.recv_publish(
                max(0.001, deadline - time.monotonic()), ack))
        return out

    def collect_until(self, topic, timeout=10.0, ack=True):
        """PUBLISH packets until (excluding) one on topic, the sentinel."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            p = self.recv_publish(max(0.001, deadline - time.monotonic()), ack)
            if p.topic == topic:
                return out
            out.append(p)

    def quiet(self, timeout=0.3):
        """Returns the first packet arriving within timeout, or None. A
        PUBREL is answered (auto_pubcomp) and not returned."""
        if self.backlog:
            return self.backlog.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            try:
                p = self.read_raw(max(0.001, deadline - time.monotonic()))
            except TimeoutError:
                return None
            if p.type == PUBREL and self.auto_pubcomp:
                self.send(ack_pkt(PUBCOMP, p.pid))
                continue
            return p

    def wait_closed(self, timeout=5.0):
        """True when the peer closes the connection within timeout; packets
        read meanwhile are appended to the backlog."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.backlog.append(
                    self.read_raw(max(0.001, deadline - time.monotonic())))
            except Closed:
                return True
            except TimeoutError:
                return False


# ---------------------------------------------------------------------------
# Test case base.

def mqlite_only(reason="mqlite-specific behaviour"):
    """Skips a test (or class) in mosquitto mode."""
    return unittest.skipIf(MOSQUITTO, "mqlite only: " + reason)


def known_gap(reason):
    """Marks a test of the contract that the daemon does not meet yet: in
    mqlite mode it is an expected failure (reported as a known gap; an
    unexpected success fails the run, so the mark is removed once fixed).
    E2E_STRICT=1 runs it as a normal test."""
    def deco(fn):
        if MOSQUITTO or os.environ.get("E2E_STRICT") == "1":
            return fn
        fn.known_gap = reason
        return unittest.expectedFailure(fn)
    return deco


class E2ETestCase(unittest.TestCase):
    """Starts self.broker before each test (unless auto_start is False) in a
    fresh temporary directory; stops every broker after it and fails the test
    when a broker exited badly or a sanitizer reported; prints the logs of a
    failed test."""

    auto_start = True
    needs_db = False            # whole class skipped in mosquitto mode
    limits = None               # limits for self.broker
    database = None             # extra database keys for self.broker

    def setUp(self):
        if self.needs_db and MOSQUITTO:
            self.skipTest("needs the mqlite database")
        self.workdir = tempfile.mkdtemp(prefix="mqlite-e2e-")
        self.brokers = []
        self.clients = []
        self.broker = None
        if self.auto_start:
            self.broker = self.start_broker(limits=self.limits,
                                            database=self.database)

    def require_db(self):
        if MOSQUITTO:
            self.skipTest("needs the mqlite database")

    def start_broker(self, **kw):
        kw.setdefault("name", "broker%d" % len(self.brokers)
                      if self.brokers else "broker")
        br = Broker(self.workdir, **kw)
        self.brokers.append(br)
        br.start()
        return br

    def client(self, broker=None, client_id=None, connect=True, **kw):
        """A raw client (connected with client_id when connect)."""
        br = broker or self.broker
        rcvbuf = kw.pop("rcvbuf", None)
        c = Client(br.port, rcvbuf=rcvbuf)
        self.clients.append(c)
        if connect:
            c.connect(client_id if client_id is not None else
                      "%s-%d" % (self._testMethodName[:40], len(self.clients)),
                      **kw)
        return c

    def assert_closed(self, c, timeout=5.0, msg=None):
        if not c.wait_closed(timeout):
            self.fail(msg or "connection not closed within %.1f s "
                      "(received %r)" % (timeout, c.backlog))

    def assert_serving(self, broker=None, store_check=True):
        """A fresh client connects, publishes QoS 1 and pings; with the
        database, the row is there."""
        br = broker or self.broker
        c = self.client(br, client_id="serving-probe")
        topic = "probe/%s" % self._testMethodName
        c.publish(topic, b"alive", qos=1)
        c.ping()
        c.disconnect()
        if store_check and not MOSQUITTO:
            self.assertGreaterEqual(
                br.count("topic='%s' and payload='alive'" % topic), 1)

    def tearDown(self):
        for c in self.clients:
            c.close()
        problems = []
        for br in self.brokers:
            if br.running():
                rc = br.stop()
                if rc != 0:
                    problems.append("%s: exit status %s after SIGTERM"
                                    % (br.name, rc))
            elif br.proc is not None:
                rc = br.proc.returncode
                br.proc = None
                problems.append("%s: died during the test (status %s)"
                                % (br.name, rc))
            rep = br.sanitizer_report()
            if rep:
                problems.append("%s: sanitizer report:\n%s" % (br.name, rep))
        if problems:
            self.fail("\n".join(problems))

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        try:
            return super().run(result)
        finally:
            failed = result is not None and \
                len(result.failures) + len(result.errors) > before
            if failed:
                self._dump_logs()
            wd = getattr(self, "workdir", None)
            if wd and os.environ.get("E2E_KEEP") != "1":
                shutil.rmtree(wd, ignore_errors=True)

    def _dump_logs(self):
        for br in getattr(self, "brokers", []):
            text = br.log_text()
            lines = text.splitlines()
            if len(lines) > 300:
                lines = ["... (%d lines omitted)" % (len(lines) - 300)] + \
                    lines[-300:]
            sys.stderr.write("\n----- %s log (%s) for %s -----\n%s\n"
                             "----- end of log -----\n"
                             % (br.name, br.log_path, self.id(),
                                "\n".join(lines)))
        sys.stderr.flush()
