# SPDX-License-Identifier: Apache-2.0
"""$SYS/broker topics, /healthz and the latency histograms end to end.

$SYS: a subscriber to $SYS/# receives the broker's values at once (retained,
as Mosquitto sends them) under Mosquitto 2's names, updated every
sys_interval and only when they change; the values agree with /metrics; a
"#" subscription never sees them; none is stored in `messages`; the
names shared with Mosquitto are checked against Mosquitto too
(E2E_TARGET=mosquitto);
sys_interval "0" publishes nothing; the ACL decides who may read them.
/healthz answers 200 "ok", and 503 while the database cannot commit (a full
tmpfs), then 200 again. The commit and publish-to-ack histograms parse
(cumulative buckets, +Inf equal to _count) and count what happened, and the
process_* families agree with /proc. Every wait is bounded."""

import json
import os
import re
import time
import unittest
import urllib.error
import urllib.request

from mqlite_harness import (HOST, PUBACK, Broker, E2ETestCase, free_port,
                            mqlite_only, publish_pkt, wait_until)
from tmpfs_util import TmpfsMixin

# Topic -> pattern of its value; Mosquitto 2's names and mqlite's own.
SYS_TOPICS = {
    "$SYS/broker/version": r"mqlite version \S+",
    "$SYS/broker/uptime": r"\d+ seconds",
    "$SYS/broker/clients/connected": r"\d+",
    "$SYS/broker/clients/total": r"\d+",
    "$SYS/broker/clients/disconnected": r"\d+",
    "$SYS/broker/clients/expired": r"\d+",
    "$SYS/broker/messages/received": r"\d+",
    "$SYS/broker/bytes/received": r"\d+",
    "$SYS/broker/bytes/sent": r"\d+",
    "$SYS/broker/publish/messages/received": r"\d+",
    "$SYS/broker/publish/messages/sent": r"\d+",
    "$SYS/broker/publish/messages/dropped": r"\d+",
    "$SYS/broker/subscriptions/count": r"\d+",
    "$SYS/broker/retained messages/count": r"\d+",
    "$SYS/broker/heap/current": r"\d+",
    "$SYS/broker/database/queue": r"\d+",
    "$SYS/broker/database/rows": r"\d+",
    "$SYS/broker/database/commits": r"\d+",
    "$SYS/broker/database/commit_failures": r"\d+",
    "$SYS/broker/database/bytes": r"\d+",
}


def metrics_values(text):
    """{name or name{label}: float} from the Prometheus text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, v = line.rpartition(" ")
        out[key] = float(v)
    return out


# The names both brokers publish, with the same meaning.
COMMON = [t for t in SYS_TOPICS if "/database/" not in t]


class TestSysLikeMosquitto(E2ETestCase):
    """Runs against Mosquitto too (E2E_TARGET=mosquitto): the topics a
    Mosquitto user reads are there under the same names, retained, with
    values of the same form, at the default interval."""

    def test_mosquitto_names(self):
        sub = self.client(client_id="sys-names")
        self.assertEqual(sub.subscribe([("$SYS/#", 0)]), [0])
        want = {t: SYS_TOPICS[t] for t in COMMON}
        want["$SYS/broker/version"] = r"(mqlite|mosquitto) version \S+"
        seen = {}
        deadline = time.monotonic() + 20
        while not set(want) <= set(seen):
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("missing %s" % sorted(set(want) - set(seen)))
            p = sub.recv_publish(timeout=left)
            if p.topic in want and p.topic not in seen:
                seen[p.topic] = p
        for t, pat in want.items():
            self.assertRegex(seen[t].payload.decode(), "^%s$" % pat, t)
            self.assertTrue(seen[t].retain, t)


@mqlite_only("mqlite's $SYS, /healthz and histograms")
class SysCase(E2ETestCase):
    auto_start = False

    def setUp(self):
        super().setUp()
        self.latest = {}

    def start_sys(self, interval=None, acl=None, rules=None, database=None):
        br = Broker(self.workdir, name="sys%d" % len(self.brokers),
                    database=database)
        self.mport = free_port()
        cfg = {"metrics": {"bind": HOST, "port": self.mport}}
        if interval is not None:
            cfg["sys_interval"] = interval
        if acl is not None:
            path = os.path.join(self.workdir, "acl.json")
            with open(path, "w") as f:
                json.dump(acl, f)
            cfg["auth"] = {"acl_file": path}
        if rules is not None:
            path = os.path.join(self.workdir, "rules.json")
            with open(path, "w") as f:
                json.dump({"rules": rules}, f)
            cfg["rules"] = path
        br.update_config(**cfg)
        self.brokers.append(br)
        self.broker = br
        br.start()
        self.assertTrue(wait_until(lambda: "metrics on http://" in
                                   br.log_text(), timeout=10))
        return br

    def get(self, path):
        url = "http://%s:%d%s" % (HOST, self.mport, path)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self):
        status, text = self.get("/metrics")
        self.assertEqual(status, 200)
        return metrics_values(text)

    def read_sys(self, c, timeout):
        """The next PUBLISH on c; remembers the latest value per topic."""
        p = c.recv_publish(timeout=timeout)
        self.latest.setdefault(id(c), {})[p.topic] = p.payload.decode()
        return p

    def sys_values(self, c, want, timeout=10.0):
        """Reads PUBLISH packets until every topic of want is seen;
        returns {topic: [(payload, retain), ...]}."""
        seen = {}
        deadline = time.monotonic() + timeout
        while not set(want) <= set(seen):
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("no value for %s" % sorted(set(want) - set(seen)))
            p = self.read_sys(c, left)
            seen.setdefault(p.topic, []).append((p.payload.decode(),
                                                 p.retain))
        return seen

    def wait_sys(self, c, topic, value, timeout=20.0):
        """Waits until the latest value of topic on c is value."""
        deadline = time.monotonic() + timeout
        latest = self.latest.setdefault(id(c), {})
        while latest.get(topic) != value:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("%s never became %r (last %r)"
                          % (topic, value, latest.get(topic)))
            try:
                self.read_sys(c, left)
            except TimeoutError:
                pass


class TestSysTopics(SysCase):

    def test_values_retained_updated_and_not_stored(self):
        br = self.start_sys(interval="1s")
        pub = self.client(client_id="sys-pub")
        for i in range(3):
            pub.publish("t/x", b"%d" % i, qos=1)

        sub = self.client(client_id="sys-sub")
        self.assertEqual(sub.subscribe([("$SYS/#", 0)]), [0])
        seen = self.sys_values(sub, SYS_TOPICS)
        for topic, pat in SYS_TOPICS.items():
            payload, retain = seen[topic][0]
            self.assertRegex(payload, "^%s$" % pat, topic)
            # What a new subscriber gets first is the retained value.
            self.assertTrue(retain, topic)
        self.assertEqual(seen["$SYS/broker/version"][0][0].split()[-1],
                         re.search(r'version="([^"]+)"', self.get(
                             "/metrics")[1]).group(1))

        # Updated every second, and they agree with /metrics.
        self.wait_sys(sub, "$SYS/broker/database/rows", "3")
        self.wait_sys(sub, "$SYS/broker/publish/messages/received", "3")
        self.wait_sys(sub, "$SYS/broker/clients/connected", "2")
        m = self.metrics()
        self.assertEqual(m["mqlite_store_rows_total"], 3)
        self.assertEqual(m["mqlite_publish_received_total"], 3)
        self.assertEqual(m["mqlite_connections"], 2)
        # Uptime moves on with the interval (two different values).
        ups = set()
        deadline = time.monotonic() + 15
        while len(ups) < 2 and time.monotonic() < deadline:
            p = self.read_sys(sub, max(0.01, deadline - time.monotonic()))
            if p.topic == "$SYS/broker/uptime":
                ups.add(p.payload)
        self.assertEqual(len(ups), 2, "uptime not updated every second")
        # Live updates carry retain 0, as for any existing subscriber.
        p = sub.recv_publish(timeout=5)
        self.assertFalse(p.retain)

        # A "#" subscriber sees the telemetry but never $SYS.
        every = self.client(client_id="sys-every")
        self.assertEqual(every.subscribe([("#", 0)]), [0])
        pub.publish("t/y", b"after", qos=1)
        got = every.recv_publish(timeout=5)
        self.assertEqual(got.topic, "t/y")
        self.assertIsNone(every.quiet(2.5))

        # Nothing of $SYS reaches the database.
        self.assertEqual(br.count("topic like '$SYS%'"), 0)
        self.assertEqual(br.count(), 4)
        self.assertEqual(br.scalar("select count(*) from retained where "
                                   "topic like '$SYS%'"), 0)

    def test_interval_zero_publishes_nothing(self):
        self.start_sys(interval="0")
        sub = self.client(client_id="sys-off")
        self.assertEqual(sub.subscribe([("$SYS/#", 0)]), [0])
        self.assertIsNone(sub.quiet(2.5))

    def test_long_interval_sends_start_values_only(self):
        self.start_sys(interval="1h")
        sub = self.client(client_id="sys-slow")
        self.assertEqual(sub.subscribe([("$SYS/broker/uptime", 0)]), [0])
        p = sub.recv_publish(timeout=5)
        self.assertEqual(p.payload, b"0 seconds")
        self.assertIsNone(sub.quiet(3.0))

    def test_default_interval_is_on(self):
        self.start_sys()
        sub = self.client(client_id="sys-default")
        self.assertEqual(sub.subscribe([("$SYS/broker/version", 0)]), [0])
        self.assertTrue(sub.recv_publish(timeout=5).payload.startswith(
            b"mqlite version "))

    def test_outbox_route_topics(self):
        port = free_port()      # nothing listens: rows wait in the outbox
        self.start_sys(interval="1s", rules=[
            {"name": "alarms", "topic": "alarm/#",
             "webhook": {"url": "http://127.0.0.1:%d/hook" % port}}])
        pub = self.client(client_id="sys-route-pub")
        for i in range(2):
            pub.publish("alarm/x", b"%d" % i, qos=1)
        sub = self.client(client_id="sys-route-sub")
        self.assertEqual(sub.subscribe([("$SYS/broker/outbox/#", 0)]), [0])
        self.wait_sys(sub, "$SYS/broker/outbox/alarms/webhook/depth", "2",
                      timeout=30)
        m = self.metrics()
        self.assertEqual(m['mqlite_webhook_depth{route="alarms/webhook"}'],
                         2)


class TestSysAcl(SysCase):

    ACL = {"users": {"ops": [{"topic": "$SYS/broker/#", "access": "read"}],
                     "dev": [{"topic": "#", "access": "readwrite"}]}}

    def test_acl_decides_who_reads_sys(self):
        self.start_sys(interval="1s", acl=self.ACL)
        ops = self.client(client_id="ops-1", username="ops")
        self.assertEqual(ops.subscribe([("$SYS/broker/#", 0)]), [0])
        self.sys_values(ops, ["$SYS/broker/version", "$SYS/broker/uptime"])

        # "#" does not cover $SYS: refused, and "#" delivers none of it.
        dev = self.client(client_id="dev-1", username="dev")
        self.assertEqual(dev.subscribe([("$SYS/#", 0)]), [0x80])
        self.assertEqual(dev.subscribe([("#", 0)]), [0])
        self.assertIsNone(dev.quiet(2.5))
        # Anonymous clients have no entry at all.
        anon = self.client(client_id="anon-1")
        self.assertEqual(anon.subscribe([("$SYS/broker/uptime", 0)]),
                         [0x80])
        self.assertIsNone(anon.quiet(1.5))
        # ops keeps receiving the updates meanwhile.
        self.wait_sys(ops, "$SYS/broker/clients/connected", "3")


class TestHealthz(TmpfsMixin, SysCase):
    needs_db = True

    def test_healthz_follows_the_store(self):
        db = os.path.join(self.mnt, "t.db")
        br = self.start_sys(database={"path": db})
        br.db_path = db
        self.assertEqual(self.get("/healthz"), (200, "ok\n"))

        filler = self.fill_tmpfs(64 * 1024)
        pub = self.client(client_id="health-pub")
        stuck = None
        for i in range(500):
            pid = pub.pid()
            pub.send(publish_pkt("h/t", b"x" * 4000, 1, pid=pid))
            try:
                pub.expect(PUBACK, timeout=3.0)
            except TimeoutError:
                stuck = pid
                break
        self.assertIsNotNone(stuck, "the disk never filled")
        self.assertTrue(wait_until(lambda: self.get("/healthz")[0] == 503,
                                   timeout=20), self.get("/healthz"))
        status, body = self.get("/healthz")
        self.assertIn("cannot commit", body)
        self.assertGreaterEqual(self.metrics()["mqlite_store_failing"], 5)
        # The failure is among the last errors the status page shows.
        self.assertIn("rolled back and retried", self.get("/errors")[1])

        os.unlink(filler)
        self.assertEqual(pub.expect(PUBACK, timeout=30).pid, stuck)
        self.assertTrue(wait_until(lambda: self.get("/healthz")[0] == 200,
                                   timeout=20))
        self.assertEqual(self.metrics()["mqlite_store_failing"], 0)


class TestHistograms(SysCase):

    def check_hist(self, m, name):
        buckets = sorted(((float(k.split('"')[1]), v) for k, v in m.items()
                          if k.startswith(name + "_bucket{")),
                         key=lambda x: x[0])
        self.assertGreaterEqual(len(buckets), 10)
        self.assertEqual(buckets[-1][0], float("inf"))
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts), "buckets not cumulative")
        self.assertEqual(counts[-1], m[name + "_count"])
        self.assertGreaterEqual(m[name + "_sum"], 0)
        return m[name + "_count"], m[name + "_sum"]

    def test_histograms_and_process_metrics(self):
        t0 = time.time()
        br = self.start_sys()
        t1 = time.time()
        pub = self.client(client_id="hist-pub")
        n = 20
        for i in range(n):
            pub.publish("h/t", b"%d" % i, qos=1 + i % 2)
        pub.publish("h/t", b"q0", qos=0)
        m = self.metrics()
        count, total = self.check_hist(m, "mqlite_publish_ack_seconds")
        self.assertEqual(count, n)      # QoS 1 and 2 only
        self.assertLess(total, n * 10.0)
        self.assertTrue(wait_until(lambda: br.count() == n + 1, timeout=10))

        def commits_agree():
            v = self.metrics()
            return (self.check_hist(v, "mqlite_store_commit_seconds")[0] ==
                    v["mqlite_store_commits_total"])
        self.assertTrue(wait_until(commits_agree, timeout=10))
        self.assertGreaterEqual(self.metrics()[
            "mqlite_store_commit_seconds_count"], 1)

        m = self.metrics()
        pid = br.pid
        self.assertGreater(m["process_cpu_seconds_total"], 0)
        self.assertLessEqual(t0 - 2, m["process_start_time_seconds"])
        self.assertLessEqual(m["process_start_time_seconds"], t1 + 2)
        fds = len(os.listdir("/proc/%d/fd" % pid))
        self.assertLessEqual(abs(m["process_open_fds"] - fds), 5)
        rss = br.rss_kb() * 1024
        self.assertGreater(m["process_resident_memory_bytes"], rss / 2)
        self.assertLess(m["process_resident_memory_bytes"], rss * 2)
        self.assertGreater(m["process_max_fds"], 0)


if __name__ == "__main__":
    unittest.main()
