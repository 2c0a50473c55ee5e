# SPDX-License-Identifier: Apache-2.0
"""Webhook forwarding end to end: a real mqlite daemon with webhook rules
and a real HTTP receiver (tests/helpers/http_stub.py) on 127.0.0.1, both on
ports the test picks. Store and forward across an outage and kill -9 (5,000
QoS 1 publishes, in order per route, distinct Idempotency-Keys, outbox empty
at the end); 5xx retried with the same key and body, in order; 4xx and 3xx
dead-lettered with status and response; a slow receiver (timeouts retried);
batching as a JSON array and as NDJSON; HMAC signatures verified by the
receiver with the secret from the environment, which never reaches the
database or the log; a full outbox under drop_oldest and under reject
(backpressure: no PUBACK until the outbox drains); the default envelope,
body and header templates and a percent-encoded url capture; SIGTERM with
rows pending; Retry-After honoured and clamped, max_attempts; delivered
rows leave the outbox while the broker is otherwise idle. Every wait is
bounded."""

import base64
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

from mqlite_harness import (HOST, PUBACK, Broker, E2ETestCase, free_port,
                            publish_pkt, wait_until)

SRCDIR = os.environ.get("top_srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
STUB = os.path.join(os.path.abspath(SRCDIR), "tests", "helpers",
                    "http_stub.py")
PY = "/usr/bin/python3"
ENVELOPE_KEYS = {"topic", "payload", "received_ms", "client_id", "username",
                 "qos", "retain"}
# A rule unrelated to the webhooks, for publishes that only touch SQLite.
NUDGE_RULE = {"name": "nudge", "topic": "nudge/#",
              "sqlite": {"table": "nudges", "columns": {"v": "{payload}"}}}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    return path


class PortHold:
    """Reserves a loopback port: bound, never listening, so a connection
    to it is refused (a receiver that is down). release() frees it for the
    receiver that comes up later."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]

    def release(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Receiver:
    """One http_stub.py process on a given port; its request log parsed."""

    def __init__(self, workdir, name, port, args=()):
        self.port = port
        self.log_path = os.path.join(workdir, name + ".requests.jsonl")
        self.args = list(args)
        self.proc = None

    def start(self, timeout=10.0):
        assert self.proc is None
        self.proc = subprocess.Popen(
            [PY, STUB, "--port", str(self.port), "--log", self.log_path,
             "--max-seconds", "300"] + self.args,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if r else b""
        if line.strip() != str(self.port).encode():
            self.stop()
            raise RuntimeError("http_stub did not start on port %d: %r"
                               % (self.port, line))
        return self

    def stop(self):
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
        p.stdout.close()

    def control(self, **kw):
        req = urllib.request.Request(
            "http://%s:%d/__control" % (HOST, self.port),
            data=json.dumps(kw).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 204, r.status

    def requests(self, path=None):
        """Every request recorded so far (complete lines), in log order,
        optionally only those for path."""
        out = []
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return out
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue            # a line being written
            rec["hdr"] = {k.lower(): v for k, v in rec["headers"].items()}
            if path is None or rec["path"] == path:
                out.append(rec)
        return out

    def wait_requests(self, n, path=None, timeout=15.0):
        got = [[]]

        def enough():
            got[0] = self.requests(path)
            return len(got[0]) >= n
        wait_until(enough, timeout=timeout, interval=0.05)
        return got[0]


def key_of(rec):
    return rec["hdr"].get("idempotency-key")


def seq_of(rec):
    """The sequence number of a single-message request with the default
    envelope and a {"seq": N} payload."""
    return json.loads(rec["body"])["payload"]["seq"]


class WebhookCase(E2ETestCase):
    """Each test starts its own daemon with the webhook rules it needs."""

    needs_db = True
    auto_start = False

    def setUp(self):
        super().setUp()
        self.receivers = []
        self.holds = []

    def tearDown(self):
        for r in self.receivers:
            r.stop()
        for h in self.holds:
            h.release()
        super().tearDown()

    # -- helpers ------------------------------------------------------------
    def hold_port(self):
        h = PortHold()
        self.holds.append(h)
        return h

    def receiver(self, port=None, args=(), start=True, name=None):
        r = Receiver(self.workdir, name or "recv%d" % len(self.receivers),
                     port or free_port(), args)
        self.receivers.append(r)
        if start:
            r.start()
        return r

    def daemon(self, rules, outbox=None, env=None, name="broker",
               start=True):
        """A daemon started with -r FILE holding rules and, when given, the
        config's "outbox" object; sets self.broker."""
        rules_path = write_json(os.path.join(self.workdir,
                                             name + "-rules.json"),
                                {"rules": list(rules) + [NUDGE_RULE]})
        br = Broker(self.workdir, name=name, env=env,
                    extra_args=["-r", rules_path])
        if outbox is not None:
            with open(br.conf_path) as f:
                cfg = json.load(f)
            cfg["outbox"] = outbox
            write_json(br.conf_path, cfg)
        self.brokers.append(br)
        self.broker = br
        if start:
            br.start()
        return br

    def publish_until_held(self, c, topic, pad):
        """QoS 1 publishes of {"seq": i, "pad": pad} on topic, one at a
        time, until one gets no PUBACK within 1.5 s: the outbox is full
        (reject). Returns (publishes acked, packet id of the held one)."""
        acked, held_pid = 0, None
        if isinstance(pad, str):
            pad = pad.encode()
        for i in range(100):
            pid = c.pid()
            c.send(publish_pkt(topic, b'{"seq": %d, "pad": "%s"}' % (i, pad),
                               qos=1, pid=pid))
            p = c.quiet(1.5)
            if p is None:
                held_pid = pid
                break
            self.assertEqual((p.type, p.pid), (PUBACK, pid))
            acked += 1
        self.assertIsNotNone(held_pid, "the outbox never filled")
        self.assertGreater(acked, 5)
        return acked, held_pid

    def publish_many(self, c, items, timeout=30.0):
        """Pipelines QoS 1 publishes [(topic, payload)] and waits for every
        PUBACK, in order."""
        n = len(items)
        c.send(b"".join(publish_pkt(t, p, qos=1, pid=i % 65535 + 1)
                        for i, (t, p) in enumerate(items)), timeout=60)
        for i in range(n):
            a = c.expect(PUBACK, timeout=timeout)
            self.assertEqual(a.pid, i % 65535 + 1)
        return n

    def outbox_count(self, br=None):
        return (br or self.broker).scalar("select count(*) from outbox")

    def wait_drained(self, br=None, timeout=20.0):
        """Waits until the outbox is empty (its rows delivered or dead),
        with no other store activity."""
        br = br or self.broker
        ok = wait_until(lambda: self.outbox_count(br) == 0,
                        timeout=timeout, interval=0.05)
        self.assertTrue(ok, "outbox not empty after %.0f s: %s rows"
                        % (timeout, self.outbox_count(br)))

    def instance_id(self, br=None):
        return (br or self.broker).query(
            "select value from mqlite_meta where key = 'instance_id'")

    def dead_rows(self, br=None):
        """outbox_dead rows as dicts, by id."""
        out = (br or self.broker).query(
            "select json_group_array(json_object('id', id, 'route', route,"
            " 'status', status, 'last_error', last_error, 'response',"
            " response, 'body', body, 'headers', headers, 'attempts',"
            " attempts)) from (select * from outbox_dead order by id)")
        return json.loads(out)

    @staticmethod
    def hook(name, topic, url, **opts):
        w = {"url": url}
        w.update(opts)
        return {"name": name, "topic": topic, "webhook": w}


# ---------------------------------------------------------------------------

class TestStoreAndForward(WebhookCase):

    def test_outage_kill9_restart_then_all_5000_in_order(self):
        hold = self.hold_port()
        base = "http://%s:%d" % (HOST, hold.port)
        retry = {"base_ms": 50, "cap_ms": 500}
        br = self.daemon([
            self.hook("ra", "fw/a", base + "/a", retry=retry),
            self.hook("rb", "fw/b", base + "/b", retry=retry)])
        n = 5000
        c = self.client(client_id="sf")
        items = [("fw/a" if i % 2 == 0 else "fw/b",
                  b'{"seq": %d, "pad": "%s"}' % (i, b"x" * 40))
                 for i in range(n)]
        self.publish_many(c, items)         # every one PUBACKed
        # Acknowledged means the forward is durable: kill -9 mid-outage.
        br.kill()
        br.start()
        self.assertEqual(self.outbox_count(), n)
        self.assertEqual(br.scalar("select count(*) from outbox_dead"), 0)
        inst = self.instance_id()
        self.assertRegex(inst, r"^[0-9A-Za-z]+$")
        hold.release()
        recv = self.receiver(port=hold.port)
        t0 = time.monotonic()
        reqs = recv.wait_requests(n, timeout=60)
        self.assertEqual(len(reqs), n, "requests received")
        self.wait_drained(timeout=20)
        elapsed = time.monotonic() - t0
        # Exactly once each: nothing was in flight at the kill (the
        # receiver was down), so no duplicates at all.
        self.assertEqual(len(recv.requests()), n)
        keys = [key_of(r) for r in reqs]
        self.assertEqual(len(set(keys)), n, "distinct Idempotency-Keys")
        for k in keys:
            self.assertRegex(k, "^%s-[0-9]+$" % re.escape(inst))
        for path, first in (("/a", 0), ("/b", 1)):
            got = [r for r in reqs if r["path"] == path]
            self.assertEqual([seq_of(r) for r in got],
                             list(range(first, n, 2)), "order on " + path)
            ids = [int(key_of(r).rsplit("-", 1)[1]) for r in got]
            self.assertEqual(ids, sorted(ids))
            self.assertTrue(all(r["status"] == 200 and r["method"] == "POST"
                                for r in got))
        self.assertEqual(br.scalar("select count(*) from outbox_dead"), 0)
        sys.stderr.write("drained %d in %.1f s; " % (n, elapsed))


class TestRetries(WebhookCase):

    def test_500_500_then_200_same_key_and_body_in_order(self):
        recv = self.receiver(args=["--statuses", "500,500"])
        self.daemon([self.hook(
            "r", "t/+", "http://%s:%d/hook" % (HOST, recv.port),
            retry={"base_ms": 50, "cap_ms": 200})])
        c = self.client(client_id="retry")
        self.publish_many(c, [("t/x", b'{"seq": %d}' % i) for i in range(3)])
        reqs = recv.wait_requests(5)
        self.wait_drained()
        time.sleep(0.3)
        reqs = recv.requests()
        self.assertEqual([(seq_of(r), r["status"]) for r in reqs],
                         [(0, 500), (0, 500), (0, 200), (1, 200), (2, 200)])
        # The retries are the same request: same key, same body.
        self.assertEqual(len({key_of(r) for r in reqs[:3]}), 1)
        self.assertEqual(len({r["body"] for r in reqs[:3]}), 1)
        self.assertEqual(len({key_of(r) for r in reqs}), 3)
        # The ordered route did not overtake the failing message.
        self.assertLessEqual(reqs[2]["t_end"], reqs[3]["t_start"])
        self.assertEqual(self.broker.scalar(
            "select count(*) from outbox_dead"), 0)

    def test_retry_after_honoured_and_clamped_to_cap(self):
        recv = self.receiver(args=["--rule", "/slow=503", "--rule",
                                   "/capped=503", "--retry-after", "2"])
        base = "http://%s:%d" % (HOST, recv.port)
        self.daemon([
            self.hook("slow", "ra/slow", base + "/slow",
                      retry={"base_ms": 10, "cap_ms": 60000}),
            self.hook("capped", "ra/capped", base + "/capped",
                      retry={"base_ms": 10, "cap_ms": 300})])
        c = self.client(client_id="ra")
        self.publish_many(c, [("ra/slow", b'{"seq": 0}'),
                              ("ra/capped", b'{"seq": 0}')])
        slow = recv.wait_requests(2, "/slow", timeout=10)
        capped = recv.wait_requests(2, "/capped", timeout=10)
        self.assertEqual([r["status"] for r in slow[:2]], [503, 200])
        self.assertEqual([r["status"] for r in capped[:2]], [503, 200])
        # Retry-After: 2 waited for (base_ms 10 alone would retry at once).
        self.assertGreaterEqual(slow[1]["t_start"] - slow[0]["t_end"], 1.8)
        # ... but clamped to cap_ms 300.
        self.assertLess(capped[1]["t_start"] - capped[0]["t_end"], 1.5)
        self.wait_drained()

    def test_max_attempts_dead_letters(self):
        recv = self.receiver(args=["--status", "500"])
        self.daemon([self.hook(
            "r", "t/+", "http://%s:%d/hook" % (HOST, recv.port),
            retry={"base_ms": 20, "cap_ms": 50, "max_attempts": 3})])
        c = self.client(client_id="ma")
        self.publish_many(c, [("t/x", b'{"seq": 0}')])
        self.assertTrue(wait_until(
            lambda: self.broker.scalar("select count(*) from outbox_dead")
            == 1, timeout=10))
        self.wait_drained()
        time.sleep(0.3)
        self.assertEqual(len(recv.requests()), 3)
        d = self.dead_rows()[0]
        self.assertEqual((d["route"], d["status"], d["attempts"]),
                         ("r/webhook", 500, 3))
        self.assertIn("max_attempts", d["last_error"])


class TestDeadLetters(WebhookCase):

    def test_400_and_301_dead_letter_and_route_continues(self):
        recv = self.receiver(args=["--statuses", "400,301",
                                   "--body", "field x is bad"])
        self.daemon([self.hook(
            "r", "t/+", "http://%s:%d/hook" % (HOST, recv.port),
            retry={"base_ms": 50, "cap_ms": 200})])
        c = self.client(client_id="dead")
        self.publish_many(c, [("t/x", b'{"seq": %d}' % i) for i in range(4)])
        recv.wait_requests(4)
        self.wait_drained()
        self.assertTrue(wait_until(
            lambda: self.broker.scalar("select count(*) from outbox_dead")
            == 2, timeout=5))
        time.sleep(0.3)
        reqs = recv.requests()
        # Each message sent exactly once; the 301 was not followed (its
        # Location points at port 1) and not retried.
        self.assertEqual([(seq_of(r), r["status"]) for r in reqs],
                         [(0, 400), (1, 301), (2, 200), (3, 200)])
        dead = self.dead_rows()
        self.assertEqual(len(dead), 2)
        self.assertEqual([(d["route"], d["status"], d["response"])
                          for d in dead],
                         [("r/webhook", 400, "field x is bad"),
                          ("r/webhook", 301, "field x is bad")])
        for d, seq in zip(dead, (0, 1)):
            self.assertEqual(json.loads(d["body"])["payload"], {"seq": seq})
            self.assertTrue(d["last_error"], "last_error empty: %r" % d)
            self.assertEqual(d["attempts"], 1)
        self.assertIn("400", dead[0]["last_error"])
        self.assertIn("301", dead[1]["last_error"])
        # The dead ids are those the receiver saw as keys.
        inst = self.instance_id()
        self.assertEqual(["%s-%d" % (inst, d["id"]) for d in dead],
                         [key_of(r) for r in reqs[:2]])


class TestSlowReceiver(WebhookCase):

    def test_timeout_retried_then_delivered(self):
        recv = self.receiver(args=["--delay-ms", "1000"])
        self.daemon([self.hook(
            "r", "t/+", "http://%s:%d/hook" % (HOST, recv.port),
            timeout_ms=300, retry={"base_ms": 50, "cap_ms": 200})])
        c = self.client(client_id="slow")
        self.publish_many(c, [("t/x", b'{"seq": %d}' % i) for i in range(2)])
        # At least two attempts time out (each recorded when its 1 s sleep
        # ends, after the client has given up).
        ok = wait_until(lambda: self.broker.scalar(
            "select max(attempts) from outbox") or 0, timeout=10)
        self.assertTrue(ok)
        err = self.broker.query("select last_error from outbox order by id"
                                " limit 1")
        self.assertRegex(err.lower(), "time")
        recv.wait_requests(2, timeout=10)
        self.assertEqual(self.outbox_count(), 2)    # nothing delivered yet
        recv.control(delay_ms=0)
        self.wait_drained(timeout=15)
        time.sleep(1.2)             # let sleeping stub threads log
        reqs = recv.requests()
        first = [r for r in reqs if seq_of(r) == 0]
        second = [r for r in reqs if seq_of(r) == 1]
        self.assertGreaterEqual(len(first), 2, "the timed-out one retried")
        self.assertEqual(len({key_of(r) for r in first}), 1)
        self.assertEqual(len({r["body"] for r in first}), 1)
        fast = [r for r in first if r["t_end"] - r["t_start"] < 0.3]
        self.assertTrue(fast, "never answered within timeout_ms")
        # In order: the second message waited for the first's success.
        self.assertGreaterEqual(min(r["t_start"] for r in second),
                                fast[0]["t_start"])
        self.assertEqual(self.broker.scalar(
            "select count(*) from outbox_dead"), 0)


class TestBatching(WebhookCase):

    def test_array_and_ndjson_batches(self):
        recv = self.receiver()
        base = "http://%s:%d" % (HOST, recv.port)
        self.daemon([
            self.hook("arr", "b/arr", base + "/arr",
                      batch={"max_messages": 50, "max_delay_ms": 200,
                             "format": "array"}),
            self.hook("nd", "b/nd", base + "/nd",
                      batch={"max_messages": 50, "max_delay_ms": 200,
                             "format": "ndjson"})])
        n = 230
        c = self.client(client_id="batch")
        self.publish_many(c, [("b/arr" if i % 2 == 0 else "b/nd",
                               b'{"seq": %d}' % i) for i in range(2 * n)])
        self.wait_drained(timeout=20)
        time.sleep(0.3)
        inst = self.instance_id()
        for path, parse in (
                ("/arr", json.loads),
                ("/nd", lambda t: [json.loads(ln) for ln in t.split("\n")
                                   if ln.strip()])):
            reqs = recv.requests(path)
            first = 0 if path == "/arr" else 1
            seqs, last_id = [], 0
            for r in reqs:
                self.assertEqual(r["status"], 200)
                if path == "/arr":
                    self.assertTrue(r["body"].lstrip().startswith("["))
                else:
                    self.assertFalse(r["body"].lstrip().startswith("["))
                items = parse(r["body"])
                self.assertIsInstance(items, list)
                self.assertTrue(1 <= len(items) <= 50, len(items))
                for e in items:
                    self.assertEqual(set(e), ENVELOPE_KEYS)
                    self.assertEqual(e["topic"], "b" + path)
                seqs += [e["payload"]["seq"] for e in items]
                # <instance>-<first>-<last>, or <instance>-<id> for a
                # batch that happened to hold one row.
                m = re.match(r"^%s-([0-9]+)(?:-([0-9]+))?$"
                             % re.escape(inst), key_of(r))
                self.assertTrue(m, "batch key %r" % key_of(r))
                lo = int(m.group(1))
                hi = int(m.group(2)) if m.group(2) else lo
                self.assertEqual(m.group(2) is None, len(items) == 1,
                                 "batch key %r for %d rows"
                                 % (key_of(r), len(items)))
                self.assertLessEqual(lo, hi)
                self.assertGreater(lo, last_id)
                last_id = hi
            self.assertEqual(seqs, list(range(first, 2 * n, 2)),
                             "batched content on " + path)
            # 115 messages in batches of at most 50: 3 requests at least,
            # far fewer than one per message.
            self.assertGreaterEqual(len(reqs), 3)
            self.assertLessEqual(len(reqs), 20)
            self.assertEqual(len({key_of(r) for r in reqs}), len(reqs))
        # A lone message goes out within max_delay_ms (plus slack).
        c.publish("b/arr", b'{"seq": 1000}', qos=1)
        t0 = time.time()
        got = recv.wait_requests(len(recv.requests("/arr")) + 1, "/arr",
                                 timeout=5)
        self.assertEqual([e["payload"]["seq"]
                          for e in json.loads(got[-1]["body"])], [1000])
        self.assertLess(got[-1]["t_start"] - t0, 2.0)


class TestHmac(WebhookCase):

    SECRET = "hm4c-s3cret-Q7wz9"
    TOKEN = "tok3n-Zp81x"
    WRONG = "wr0ng-s3cret-K2m"

    def test_signature_verified_and_secrets_never_stored_or_logged(self):
        recv = self.receiver(args=["--hmac-secret", self.SECRET])
        base = "http://%s:%d" % (HOST, recv.port)
        br = self.daemon([
            self.hook("good", "h/good", base + "/good",
                      hmac={"secret": "${HOOK_SECRET}"},
                      headers={"Authorization": "Bearer ${HOOK_TOKEN}"}),
            self.hook("bad", "h/bad", base + "/bad",
                      hmac={"secret": "${WRONG_SECRET}"},
                      headers={"Authorization": "Bearer ${HOOK_TOKEN}"})],
            env={"HOOK_SECRET": self.SECRET, "HOOK_TOKEN": self.TOKEN,
                 "WRONG_SECRET": self.WRONG})
        c = self.client(client_id="hmac")
        self.publish_many(c, [("h/good", b'{"seq": %d}' % i)
                              for i in range(20)] +
                          [("h/bad", b'{"seq": 0}')])
        self.wait_drained()
        self.assertTrue(wait_until(
            lambda: br.scalar("select count(*) from outbox_dead") == 1,
            timeout=5))
        good = recv.requests("/good")
        self.assertEqual([seq_of(r) for r in good], list(range(20)))
        now = time.time()
        for r in good:
            self.assertIs(r["hmac_ok"], True)
            self.assertEqual(r["status"], 200)
            self.assertEqual(r["hdr"]["authorization"],
                             "Bearer " + self.TOKEN)
            m = re.match(r"^t=([0-9]+),sha256=([0-9a-f]{64})$",
                         r["hdr"]["x-mqlite-signature"])
            self.assertTrue(m, r["hdr"]["x-mqlite-signature"])
            self.assertLess(abs(int(m.group(1)) - now), 60)
        bad = recv.requests("/bad")
        self.assertEqual([(r["hmac_ok"], r["status"]) for r in bad],
                         [(False, 401)])
        dead = self.dead_rows()
        self.assertEqual([(d["route"], d["status"]) for d in dead],
                         [("bad/webhook", 401)])
        # The stored request keeps the placeholder, not the value.
        self.assertIn("${HOOK_TOKEN}", dead[0]["headers"])
        self.assertNotIn(self.TOKEN, dead[0]["headers"])
        # Neither the database (file, WAL, shm) nor the log holds a secret,
        # while running and after a clean stop.
        for when in ("running", "stopped"):
            if when == "stopped":
                self.assertEqual(br.stop(), 0)
            blobs = {}
            for suffix in ("", "-wal", "-shm", "-journal"):
                try:
                    with open(br.db_path + suffix, "rb") as f:
                        blobs[suffix or "db"] = f.read()
                except OSError:
                    pass
            self.assertIn("db", blobs)
            blobs["log"] = br.log_text().encode()
            for name, data in blobs.items():
                for s in (self.SECRET, self.TOKEN, self.WRONG):
                    self.assertNotIn(s.encode(), data,
                                     "%s found in %s (%s)" % (s, name, when))


class TestFullOutbox(WebhookCase):

    def test_drop_oldest_keeps_acking_and_logs_drops(self):
        hold = self.hold_port()
        br = self.daemon([self.hook(
            "r", "t/+", "http://%s:%d/hook" % (HOST, hold.port),
            retry={"base_ms": 50, "cap_ms": 200})],
            outbox={"max_bytes": "64KB", "overflow": "drop_oldest"})
        n = 400
        pad = b"p" * 400
        c = self.client(client_id="drop")
        # All PUBACKed although ~200 KB go to a 64 KB outbox.
        self.publish_many(c, [("t/x", b'{"seq": %d, "pad": "%s"}' % (i, pad))
                              for i in range(n)])
        self.assertLessEqual(br.scalar(
            "select coalesce(sum(length(url) + length(headers) + "
            "length(body)), 0) from outbox"), 64 * 1024)
        left = [int(x) for x in br.query(
            "select json_extract(body, '$.payload.seq') from outbox"
            " order by id").split()]
        self.assertGreater(len(left), 10)
        self.assertLess(len(left), n)
        # The newest survive, the oldest went, except the rows the delivery
        # thread had already read ahead (claimed: consecutive, at most its
        # prefetch of 32) while the receiver was down: those are kept.
        # Which rows those are depends on how the publishes fell into
        # commits (the first commit may already overflow the outbox).
        self.assertEqual(left[-1], n - 1)
        k = len(left)
        while k > 0 and left[k - 1] == n - len(left) + k - 1:
            k -= 1
        kept_head, tail = left[:k], left[k:]
        self.assertLessEqual(len(kept_head), 32, "old rows kept: %r" % left)
        if kept_head:
            self.assertEqual(kept_head, list(range(
                kept_head[0], kept_head[0] + len(kept_head))),
                "kept rows not one read-ahead run: %r" % left)
        self.assertGreater(len(tail), len(kept_head))
        dropped = sum(int(m) for m in re.findall(
            r"dropped the ([0-9]+) oldest row\(s\) of route r/webhook",
            br.log_text()))
        self.assertEqual(dropped, n - len(left), "drops logged")
        # Receiver up: exactly the rows left are delivered, in order.
        hold.release()
        recv = self.receiver(port=hold.port)
        recv.wait_requests(len(left), timeout=15)
        self.wait_drained()
        time.sleep(0.3)
        self.assertEqual([seq_of(r) for r in recv.requests()], left)

    def test_reject_holds_puback_until_drained(self):
        hold = self.hold_port()
        br = self.daemon([
            self.hook("r", "t/+", "http://%s:%d/hook" % (HOST, hold.port),
                      retry={"base_ms": 50, "cap_ms": 200}),
            {"name": "other", "topic": "other/#",
             "sqlite": {"table": "other", "columns": {"v": "{payload}"}}}],
            outbox={"max_bytes": "16KB", "overflow": "reject"})
        pad = b"p" * 900
        c = self.client(client_id="rej")
        acked, held_pid = self.publish_until_held(c, "t/x", pad)
        n = acked + 1
        self.assertEqual(self.outbox_count(), acked)
        # Still no PUBACK a while later while the receiver is down.
        self.assertIsNone(c.quiet(1.0))
        # Another client, not routed to the webhook, is served meanwhile.
        o = self.client(client_id="other")
        t0 = time.monotonic()
        o.publish("other/1", b"42", qos=1, timeout=3)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(br.query("select v from other"), "42")
        # Receiver up: the outbox drains and the held publish is acked.
        hold.release()
        recv = self.receiver(port=hold.port)
        p = None
        try:
            p = c.expect(PUBACK, timeout=20)
        except TimeoutError:
            pass
        self.assertIsNotNone(p, "held publish never acknowledged")
        self.assertEqual(p.pid, held_pid)
        recv.wait_requests(n, timeout=15)
        self.wait_drained()
        time.sleep(0.3)
        self.assertEqual([seq_of(r) for r in recv.requests()],
                         list(range(n)))
        # The connection works normally again.
        c.publish("t/x", b'{"seq": %d}' % n, qos=1, timeout=5)


class TestTemplates(WebhookCase):

    def test_default_envelope(self):
        recv = self.receiver()
        self.daemon([self.hook("env", "env/#",
                               "http://%s:%d/env" % (HOST, recv.port))])
        c = self.client(client_id="env-client", username="alice")
        before = int(time.time() * 1000)
        c.publish("env/json", b'{"a": 1, "b": [true, null, 2.5], "s": "x"}',
                  qos=1)
        c.publish("env/text", b"hello world", qos=1)
        c.publish("env/bin", b"\xff\x00\x01\x80", qos=1)
        c.publish("env/ret", b"7", qos=0, retain=True)
        reqs = recv.wait_requests(4, timeout=10)
        after = int(time.time() * 1000)
        self.assertEqual(len(reqs), 4)
        bodies = [json.loads(r["body"]) for r in reqs]
        for b_ in bodies:
            self.assertGreaterEqual(b_["received_ms"], before)
            self.assertLessEqual(b_["received_ms"], after)
            del b_["received_ms"]
        common = {"client_id": "env-client", "username": "alice"}
        self.assertEqual(bodies[0], dict(
            common, topic="env/json", qos=1, retain=False,
            payload={"a": 1, "b": [True, None, 2.5], "s": "x"}))
        self.assertEqual(bodies[1], dict(
            common, topic="env/text", qos=1, retain=False,
            payload="hello world"))
        self.assertEqual(bodies[2], dict(
            common, topic="env/bin", qos=1, retain=False,
            payload=base64.b64encode(b"\xff\x00\x01\x80").decode(),
            payload_encoding="base64"))
        self.assertEqual(bodies[3], dict(
            common, topic="env/ret", qos=0, retain=True, payload=7))
        for r in reqs:
            self.assertEqual(r["method"], "POST")
            self.assertTrue(r["hdr"]["content-type"].startswith(
                "application/json"), r["hdr"])
        # Without a username: null.
        c2 = self.client(client_id="anon")
        c2.publish("env/x", b"1", qos=1)
        r = recv.wait_requests(5, timeout=10)[4]
        self.assertIsNone(json.loads(r["body"])["username"])

    def test_body_headers_method_and_encoded_url_capture(self):
        recv = self.receiver()
        base = "http://%s:%d" % (HOST, recv.port)
        self.daemon([
            self.hook("obj", "dev/{dev}/obj", base + "/d/{dev}/obj",
                      method="PUT",
                      headers={"X-Dev": "{dev}", "X-Const": "abc",
                               "X-Temp": "t={payload.t}"},
                      body={"dev": "{dev}", "t": "{payload.t}",
                            "inner": {"list": ["{payload.s}", "{qos}"]},
                            "note": "dev {dev} says {payload.s}"}),
            self.hook("txt", "dev/{dev}/txt", base + "/txt?d={dev}",
                      body="{dev}:{payload.t}:{topic}")])
        c = self.client(client_id="tpl")
        dev = "a b&c?é%"
        c.publish("dev/%s/obj" % dev, b'{"t": 21.5, "s": "q\\"x"}', qos=1)
        c.publish("dev/%s/txt" % dev, b'{"t": 3}', qos=1)
        reqs = recv.wait_requests(2, timeout=10)
        self.assertEqual(len(reqs), 2)
        enc = "a%20b%26c%3F%C3%A9%25"
        obj = [r for r in reqs if r["method"] == "PUT"]
        txt = [r for r in reqs if r["method"] == "POST"]
        self.assertEqual(len(obj), 1)
        self.assertEqual(len(txt), 1)
        obj, txt = obj[0], txt[0]
        self.assertEqual(obj["path"], "/d/%s/obj" % enc)
        self.assertEqual(json.loads(obj["body"]), {
            "dev": dev, "t": 21.5, "inner": {"list": ['q"x', 1]},
            "note": 'dev %s says q"x' % dev})
        self.assertEqual(obj["hdr"]["x-dev"].encode("latin-1").decode(),
                         dev)
        self.assertEqual(obj["hdr"]["x-const"], "abc")
        self.assertEqual(obj["hdr"]["x-temp"], "t=21.5")
        self.assertEqual(txt["path"], "/txt?d=%s" % enc)
        self.assertEqual(txt["body"], "%s:3:dev/%s/txt" % (dev, dev))


class TestRestart(WebhookCase):

    def test_sigterm_with_rows_pending_then_delivered(self):
        hold = self.hold_port()
        br = self.daemon([self.hook(
            "r", "t/+", "http://%s:%d/hook" % (HOST, hold.port),
            retry={"base_ms": 50, "cap_ms": 200})])
        n = 50
        c = self.client(client_id="term")
        self.publish_many(c, [("t/x", b'{"seq": %d}' % i) for i in range(n)])
        c.close()
        self.assertEqual(br.stop(), 0)
        self.assertEqual(self.outbox_count(), n)
        br.start()
        self.assertEqual(self.outbox_count(), n)
        hold.release()
        recv = self.receiver(port=hold.port)
        recv.wait_requests(n, timeout=15)
        self.wait_drained()
        time.sleep(0.3)
        reqs = recv.requests()
        self.assertEqual([seq_of(r) for r in reqs], list(range(n)))
        self.assertEqual(len({key_of(r) for r in reqs}), n)


class TestResultsApplied(WebhookCase):

    def test_delivered_rows_removed_while_idle(self):
        # Bursts of one message on each of 8 routes, the broker idle in
        # between: after every burst, once the receiver has answered 2xx
        # to all, the outbox must empty without any other activity. (The
        # gap strands the last results of a burst in 15-30 % of bursts;
        # 40 bursts.)
        routes = 8
        recv = self.receiver()
        base = "http://%s:%d" % (HOST, recv.port)
        self.daemon([self.hook("r%d" % i, "idle/%d" % i, base + "/%d" % i)
                     for i in range(routes)])
        c = self.client(client_id="idle")
        for rnd in range(40):
            self.publish_many(c, [("idle/%d" % i, b'{"seq": %d}' % rnd)
                                  for i in range(routes)])
            reqs = recv.wait_requests((rnd + 1) * routes, timeout=10)
            self.assertEqual(len(reqs), (rnd + 1) * routes)
            self.assertTrue(all(r["status"] == 200 for r in reqs))
            left = None
            if not wait_until(lambda: self.outbox_count() == 0, timeout=4,
                              interval=0.05):
                left = self.broker.rows("select id, route from outbox")
            self.assertIsNone(left, "burst %d: rows still in the outbox 4 s "
                              "after their 2xx, the broker idle" % rnd)


if __name__ == "__main__":
    unittest.main()
