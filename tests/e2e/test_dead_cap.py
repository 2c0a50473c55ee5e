# SPDX-License-Identifier: Apache-2.0
"""outbox.dead_max_bytes bounds the dead letters: a receiver that refuses
every request (HTTP 400) dead-letters every message; with a 4 KB bound the
oldest dead letters are deleted so the bytes they hold (url, headers, body,
response, as the sqlite3 shell measures them) stay under it, the newest
ones are those kept, every deletion is counted in
mqlite_outbox_dead_pruned_total (kept + deleted = dead-lettered) and
logged; after a restart the bound still holds (the total is read back at
start)."""

import json
import urllib.request

from mqlite_harness import HOST, free_port, mqlite_only, wait_until
from test_webhook import WebhookCase

BYTES = ("coalesce(length(CAST(url AS BLOB)), 0) + "
         "coalesce(length(CAST(headers AS BLOB)), 0) + "
         "coalesce(length(CAST(body AS BLOB)), 0) + "
         "coalesce(length(CAST(response AS BLOB)), 0)")


@mqlite_only("outbox.dead_max_bytes")
class DeadCapCase(WebhookCase):

    def metric(self, name):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" %
                                    self.mport, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return int(float(line.split()[1]))
        self.fail("no %s in /metrics" % name)

    def dead_seqs(self):
        rows = self.broker.rows("select body from outbox_dead order by id")
        return [json.loads("|".join(r))["payload"]["seq"] for r in rows]

    def dead_bytes(self):
        return self.broker.scalar("select total(%s) from outbox_dead"
                                  % BYTES)

    def test_oldest_dead_letters_deleted_over_the_bound(self):
        recv = self.receiver(args=["--status", "400"])
        self.mport = free_port()
        br = self.daemon([self.hook("r", "t/+", "http://%s:%d/hook" %
                                    (HOST, recv.port))],
                         outbox={"dead_max_bytes": "4KB"}, start=False)
        br.update_config(metrics={"bind": "127.0.0.1", "port": self.mport})
        br.start()
        c = self.client(client_id="dc")
        pad = "p" * 400
        n = 30
        self.publish_many(c, [("t/x", b'{"seq": %d, "pad": "%s"}' %
                               (i, pad.encode())) for i in range(n)])
        recv.wait_requests(n)
        self.wait_drained()

        def settled():
            kept = br.scalar("select count(*) from outbox_dead")
            return kept + self.metric("mqlite_outbox_dead_pruned_total") \
                == n
        self.assertTrue(wait_until(settled, timeout=20))
        kept = self.dead_seqs()
        self.assertGreater(len(kept), 1)
        self.assertLess(len(kept), 10)
        self.assertEqual(kept, list(range(n - len(kept), n)),
                         "not the newest kept")
        self.assertLessEqual(float(self.dead_bytes()), 4096)
        self.assertIn("over outbox.dead_max_bytes: deleted the",
                      br.log_text())

        # After a restart the running total starts from what is there.
        br.restart()
        c = self.client(client_id="dc2")
        self.publish_many(c, [("t/x", b'{"seq": %d, "pad": "%s"}' %
                               (i, pad.encode())) for i in range(n, n + 5)])
        recv.wait_requests(n + 5)
        self.assertTrue(wait_until(
            lambda: self.dead_seqs()[-1:] == [n + 4], timeout=20))
        self.assertLessEqual(float(self.dead_bytes()), 4096)
        kept = self.dead_seqs()
        self.assertEqual(kept, list(range(n + 5 - len(kept), n + 5)))

    def test_zero_means_unbounded(self):
        recv = self.receiver(args=["--status", "400"])
        self.daemon([self.hook("r", "t/+", "http://%s:%d/hook" %
                               (HOST, recv.port))],
                    outbox={"dead_max_bytes": 0})
        c = self.client(client_id="dz")
        self.publish_many(c, [("t/x", b'{"seq": %d, "pad": "%s"}' %
                               (i, b"q" * 400)) for i in range(20)])
        recv.wait_requests(20)
        self.assertTrue(wait_until(
            lambda: len(self.dead_seqs()) == 20, timeout=20))
