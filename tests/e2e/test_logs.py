# SPDX-License-Identifier: Apache-2.0
"""Log lines as systemd's journal wants them and without floods: when
JOURNAL_STREAM names the daemon's stderr (device:inode, as systemd sets it;
here the log file itself), every line starts with its syslog priority
"<N>" and carries no timestamp of its own; a JOURNAL_STREAM naming some
other file keeps the timestamps; log.syslog: true writes nothing to
stderr. A subscriber that cannot keep up gets its QoS 0 messages dropped:
the first ten drops are logged, the rest are counted in one line
"... (repeated N times)" logged when the 10 s window ends, and the lines
plus N equal mqlite_qos0_dropped_total."""

import os
import re
import signal
import urllib.request

from mqlite_harness import (Broker, E2ETestCase, free_port, mqlite_only,
                            publish_pkt, wait_until)

JOURNAL_LINE = re.compile(r"^(<[3467]>(error|warn|info|debug): |=== e2e)")
STAMPED_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \w+: |"
                          r"=== e2e)")
PRIO = {"error": 3, "warn": 4, "info": 6, "debug": 7}


@mqlite_only("log format")
class LogsCase(E2ETestCase):
    auto_start = False

    def broker_with_journal(self, stream=None, **cfg):
        br = Broker(self.workdir)
        self.brokers.append(br)
        # The harness appends stderr to log_path: create it now to name it.
        open(br.log_path, "ab").close()
        st = os.stat(br.log_path)
        br.env["JOURNAL_STREAM"] = stream or "%d:%d" % (st.st_dev,
                                                        st.st_ino)
        if cfg:
            br.update_config(**cfg)
        br.start()
        return br

    def test_journal_priority_prefixes(self):
        br = self.broker_with_journal()
        self.assert_serving(br)
        # A warning (restart-only key) and an error (broken file).
        br.update_config(database={"path": br.db_path, "commit_max_ms": 7})
        br.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: "needs a restart" in
                                   br.log_text(), timeout=15))
        with open(br.conf_path, "a") as f:
            f.write("{")
        br.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: "not reloaded" in br.log_text(),
                                   timeout=15))
        text = br.log_text()
        seen = set()
        for line in text.splitlines():
            self.assertRegex(line, JOURNAL_LINE)
            m = re.match(r"^<(\d)>(\w+): ", line)
            if m:
                self.assertEqual(int(m.group(1)), PRIO[m.group(2)], line)
                seen.add(m.group(2))
        self.assertEqual(seen, {"error", "warn", "info", "debug"})
        self.assertRegex(text, r"(?m)^<6>info: mqlite \S+ ready")
        self.assertRegex(text, r"(?m)^<4>warn: SIGHUP: .*commit_max_ms "
                         r"changed: needs a restart")
        self.assertRegex(text, r"(?m)^<3>error: .*JSON syntax error")

    def test_other_stream_keeps_timestamps(self):
        br = self.broker_with_journal(stream="1:1")
        self.assert_serving(br)
        for line in br.log_text().splitlines():
            self.assertRegex(line, STAMPED_LINE)

    def test_syslog_writes_nothing_to_stderr(self):
        br = self.broker_with_journal(log={"syslog": True})
        self.assert_serving(br)
        lines = [ln for ln in br.log_text().splitlines()
                 if not ln.startswith("=== e2e")]
        self.assertEqual(lines, [])

    def test_slow_subscriber_drops_are_rate_limited(self):
        mport = free_port()
        br = Broker(self.workdir)
        self.brokers.append(br)
        br.update_config(metrics={"bind": "127.0.0.1", "port": mport})
        br.start()
        slow = self.client(br, client_id="slow", rcvbuf=4096)
        slow.subscribe([("flood/#", 0)])
        pub = self.client(br, client_id="pub")
        payload = b"d" * 8000           # 8 MB in all: over the bounds
        for i in range(0, 1000, 100):
            pub.send(b"".join(publish_pkt("flood/%d" % k, payload)
                              for k in range(i, i + 100)), timeout=60)
        pub.ping(timeout=30)

        def dropped():
            url = "http://127.0.0.1:%d/metrics" % mport
            with urllib.request.urlopen(url, timeout=5) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith("mqlite_qos0_dropped_total "):
                        return int(float(line.split()[1]))
            return 0
        total = dropped()
        self.assertGreater(total, 100, "the subscriber never fell behind")
        # The summary comes when the window ends, with no further drop.
        self.assertTrue(wait_until(
            lambda: "(repeated" in br.log_text(), timeout=25),
            "no '(repeated N times)' line")
        text = br.log_text()
        logged = len(re.findall(
            r"(?m)^\S+ warn: client slow: dropping QoS 0 \(client not "
            r"reading\) message on flood/\d+$", text))
        m = [int(n) for n in re.findall(
            r"(?m)^\S+ warn: client slow: dropping QoS 0 \(client not "
            r"reading\) message on flood/\d+ \.\.\. \(repeated (\d+) "
            r"times\)$", text)]
        # Ten lines and one summary per 10 s window (one, unless this
        # machine is very slow), and together they count every drop.
        self.assertGreaterEqual(len(m), 1, "no summary line")
        self.assertEqual(logged, 10 * len(m))
        self.assertEqual(logged + sum(m), dropped())
        pub.ping()
