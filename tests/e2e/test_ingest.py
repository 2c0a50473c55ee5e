# SPDX-License-Identifier: Apache-2.0
"""Ingest into the default table: every publish except '$' topics becomes a
row in messages, payload TEXT when valid UTF-8 without NUL, else BLOB,
byte-exact; QoS 1/2 acknowledgement means committed; SIGTERM commits what
was accepted and exits 0. Driven by mosquitto_pub and raw sockets, checked
with the sqlite3 shell."""

import os
import subprocess
import time
import unittest

from mqlite_harness import HOST, E2ETestCase, publish_pkt


class IngestCase(E2ETestCase):
    needs_db = True

    def mosquitto_pub(self, *args, stdin=None, timeout=60, check=True):
        cmd = ["mosquitto_pub", "-h", HOST, "-p", str(self.broker.port),
               "-V", "mqttv311"] + list(args)
        r = subprocess.run(cmd, input=stdin, capture_output=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            self.fail("%s failed (%d): %s" % (" ".join(cmd), r.returncode,
                                               r.stderr.decode()))
        return r


class TestIngest(IngestCase):

    def test_schema(self):
        cols = self.broker.query("select group_concat(name, ',') from "
                                 "pragma_table_info('messages')")
        self.assertEqual(cols, "id,received_ms,topic,client_id,qos,retain,"
                         "payload")

    def test_qos_levels_become_rows(self):
        before = int(time.time() * 1000)
        for q in (0, 1, 2):
            self.mosquitto_pub("-i", "pub-q%d" % q, "-t", "ing/q%d" % q,
                               "-m", "hello %d" % q, "-q", str(q))
        self.assertEqual(self.broker.wait_count(3, "topic like 'ing/q%'"), 3)
        after = int(time.time() * 1000)
        rows = self.broker.rows("select topic, client_id, qos, retain, "
                                "payload, typeof(payload), received_ms from "
                                "messages where topic like 'ing/q%' "
                                "order by id")
        self.assertEqual([r[:6] for r in rows],
                         [["ing/q%d" % q, "pub-q%d" % q, str(q), "0",
                           "hello %d" % q, "text"] for q in (0, 1, 2)])
        for r in rows:
            self.assertTrue(before - 1000 <= int(r[6]) <= after + 1000,
                            "received_ms %s not near now" % r[6])
        ids = [int(x) for x in self.broker.query(
            "select id from messages order by id").split()]
        self.assertEqual(ids, sorted(set(ids)))

    def test_retain_flag_recorded(self):
        self.mosquitto_pub("-t", "ing/ret", "-m", "r", "-q", "1", "-r")
        self.mosquitto_pub("-t", "ing/ret", "-m", "n", "-q", "1")
        self.assertEqual(self.broker.rows(
            "select payload, retain from messages where topic='ing/ret' "
            "order by id"), [["r", "1"], ["n", "0"]])

    def test_text_payload_exact(self):
        text = "héllo wörld ✓ 𝄞 \t\r\n\"'"
        self.mosquitto_pub("-t", "ing/text", "-m", text, "-q", "1")
        row = self.broker.rows("select typeof(payload), hex(payload) from "
                               "messages where topic='ing/text'")
        self.assertEqual(row, [["text", text.encode().hex().upper()]])

    def test_binary_payloads_exact(self):
        cases = {
            "nul": b"abc\x00def",
            "invalid_utf8": b"\xff\xfe\xfd",
            "truncated_utf8": b"ok\xe2\x82",
            "surrogate": b"\xed\xa0\x80",
            "overlong": b"\xc0\xaf",
            "all_bytes": bytes(range(256)),
            "random_100k": os.urandom(100 * 1024),
        }
        for name, data in cases.items():
            path = os.path.join(self.workdir, name + ".bin")
            with open(path, "wb") as f:
                f.write(data)
            self.mosquitto_pub("-t", "ing/bin/" + name, "-f", path, "-q", "1")
        for name, data in cases.items():
            with self.subTest(payload=name):
                row = self.broker.rows(
                    "select typeof(payload), hex(payload), length(payload) "
                    "from messages where topic='ing/bin/%s'" % name)
                self.assertEqual(row, [["blob", data.hex().upper(),
                                        str(len(data))]])

    def test_empty_payload(self):
        self.mosquitto_pub("-t", "ing/empty", "-n", "-q", "1")
        row = self.broker.rows("select typeof(payload), length(payload) "
                               "from messages where topic='ing/empty'")
        self.assertEqual(row, [["text", "0"]])

    def test_utf8_topic_and_client_id_exact(self):
        topic = "ing/ü/测试/🌡"
        c = self.client(client_id="clïent-ü")
        c.publish(topic, b"t", qos=1)
        self.assertEqual(self.broker.rows(
            "select hex(topic), hex(client_id) from messages where "
            "payload='t'"), [[topic.encode().hex().upper(),
                              "clïent-ü".encode().hex().upper()]])

    def test_empty_client_id_row(self):
        c = self.client(client_id="", clean=True)
        c.publish("ing/anon", b"a", qos=1)
        self.assertEqual(self.broker.count("topic='ing/anon'"), 1)

    def test_payload_near_default_limit(self):
        data = os.urandom(1000 * 1000)
        path = os.path.join(self.workdir, "big.bin")
        with open(path, "wb") as f:
            f.write(data)
        self.mosquitto_pub("-t", "ing/big", "-f", path, "-q", "1")
        self.assertEqual(self.broker.rows(
            "select length(payload), typeof(payload) from messages "
            "where topic='ing/big'"), [[str(len(data)), "blob"]])
        self.assertEqual(self.broker.query(
            "select hex(substr(payload, 999001, 1000)) from messages "
            "where topic='ing/big'"), data[999000:].hex().upper())

    def test_dollar_topics_not_stored(self):
        c = self.client(client_id="dollar")
        c.publish("$test/x", b"hidden", qos=1)
        c.publish("$SYS/fake", b"hidden", qos=1)
        c.publish("visible/x", b"shown", qos=1)
        self.assertEqual(self.broker.count("payload='hidden'"), 0)
        self.assertEqual(self.broker.count("topic='visible/x'"), 1)
        self.assertEqual(self.broker.count("topic like '$%'"), 0)

    def test_5000_qos1_exactly_5000_rows(self):
        lines = "".join("m-%d\n" % i for i in range(5000)).encode()
        self.mosquitto_pub("-i", "bulk", "-t", "ing/bulk", "-q", "1", "-l",
                           stdin=lines, timeout=120)
        # Acknowledged means committed: the rows are there at once.
        self.assertEqual(self.broker.count("topic='ing/bulk'"), 5000)
        self.assertEqual(self.broker.scalar(
            "select count(distinct payload) from messages "
            "where topic='ing/bulk'"), 5000)
        # In order of arrival.
        payloads = self.broker.query("select payload from messages where "
                                     "topic='ing/bulk' order by id")
        self.assertEqual(payloads.split("\n"),
                         ["m-%d" % i for i in range(5000)])

    def test_ack_means_committed_each_time(self):
        c = self.client(client_id="ack-commit")
        for i in range(20):
            c.publish("ing/ack", b"%d" % i, qos=1 + i % 2)
            self.assertEqual(self.broker.count("topic='ing/ack'"), i + 1)

    def test_qos0_pipelined_all_stored(self):
        c = self.client(client_id="q0-bulk")
        c.send(b"".join(publish_pkt("ing/q0bulk", b"%d" % i)
                        for i in range(3000)))
        c.ping()
        self.assertEqual(self.broker.wait_count(3000, "topic='ing/q0bulk'"),
                         3000)

    def test_many_publishers_parallel(self):
        procs = []
        errlog = open(os.path.join(self.workdir, "pub.err"), "w+b")
        self.addCleanup(errlog.close)
        for k in range(4):
            lines = "".join("p%d-%d\n" % (k, i) for i in range(500)).encode()
            p = subprocess.Popen(
                ["mosquitto_pub", "-h", HOST, "-p", str(self.broker.port),
                 "-i", "par-%d" % k, "-t", "ing/par/%d" % k, "-q",
                 str(1 + k % 2), "-l"], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=errlog)
            p.stdin.write(lines)
            p.stdin.close()
            procs.append(p)
        for p in procs:
            self.assertEqual(p.wait(timeout=120), 0, errlog.name)
        for k in range(4):
            self.assertEqual(self.broker.count("topic='ing/par/%d' and "
                                               "client_id='par-%d'"
                                               % (k, k)), 500)

    def test_reader_does_not_block_ingest(self):
        # A long sqlite3 shell read while publishing QoS 1 (WAL).
        reader = subprocess.Popen(
            ["sqlite3", self.broker.db_path,
             "begin; select count(*) from messages; "
             "select 1 from (with recursive r(x) as (select 1 union all "
             "select x + 1 from r where x < 3000000) select max(x) from r); "
             "commit;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            c = self.client(client_id="while-reading")
            t0 = time.monotonic()
            for i in range(200):
                c.publish("ing/reader", b"%d" % i, qos=1, timeout=10)
            self.assertLess(time.monotonic() - t0, 30)
        finally:
            reader.wait(timeout=60)
        self.assertEqual(self.broker.count("topic='ing/reader'"), 200)


class TestShutdown(IngestCase):

    def test_sigterm_commits_accepted_and_exits_0(self):
        c = self.client(client_id="term")
        n = 3000
        c.send(b"".join(publish_pkt("ing/term", b"t%d" % i)
                        for i in range(n)))
        c.ping()            # every publish before it was read and accepted
        rc = self.broker.stop()
        self.assertEqual(rc, 0)
        self.assertEqual(self.broker.count("topic='ing/term'"), n)
        self.assertEqual(self.broker.query("pragma integrity_check"), "ok")

    def test_sigterm_with_idle_and_subscribed_clients(self):
        s = self.client(client_id="term-sub", clean=False)
        s.subscribe([("ing/x", 1)])
        self.client(client_id="term-idle")
        p = self.client(client_id="term-pub")
        p.publish("ing/x", b"1", qos=1)
        self.assertEqual(self.broker.stop(), 0)
        self.assertTrue(s.wait_closed(5))

    def test_sigint_also_clean(self):
        c = self.client(client_id="int")
        c.publish("ing/int", b"x", qos=1)
        proc = self.broker.proc
        proc.send_signal(2)
        self.assertEqual(proc.wait(timeout=30), 0)
        self.broker.proc = None
        self.assertEqual(self.broker.count("topic='ing/int'"), 1)

    def test_restart_appends(self):
        c = self.client(client_id="r1")
        c.publish("ing/restart", b"before", qos=1)
        c.close()
        self.assertEqual(self.broker.stop(), 0)
        self.broker.start()
        c = self.client(client_id="r2")
        c.publish("ing/restart", b"after", qos=1)
        self.assertEqual(self.broker.query(
            "select group_concat(payload, ',') from (select payload from "
            "messages where topic='ing/restart' order by id)"),
            "before,after")


if __name__ == "__main__":
    unittest.main()
