# SPDX-License-Identifier: Apache-2.0
"""The status page at / of the metrics listener, loaded in headless Chromium
(Debian's chromium package): the page's own script fetches /metrics,
/healthz and /errors and fills the DOM, and what it shows is checked
against /metrics read around the load: database size and max_bytes, rows,
publishes, commits, one table row per rule and per route with their
counters (outbox depth of a webhook whose receiver is down), the health
badge and the last warnings. The page is one document with no external
asset (no src= or href= pointing anywhere). A failing page load, a script
error or a missing value fails the test; Chromium missing fails it too (it
is in contrib/quickstart's TEST_PKGS). Set STATUS_SCREENSHOT=FILE.png to
also save a screenshot."""

import html.parser
import json
import os
import shutil
import subprocess
import urllib.request

from mqlite_harness import (HOST, Broker, E2ETestCase, free_port,
                            mqlite_only, wait_until)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Dom(html.parser.HTMLParser):
    """Collects, by id, the text and data-value of elements, and the rows
    of the rules and routes tables (data-rule / data-route)."""

    def __init__(self):
        super().__init__()
        self.ids, self.rows, self.refs = {}, {}, []
        self.stack = []         # (tag, id or None)
        self.row = None
        self.body = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        for k in ("src", "href"):
            if k in a:
                self.refs.append(a[k])
        if "id" in a:
            self.ids[a["id"]] = {"text": "", "value": a.get("data-value")}
        if tag == "tr":
            for k in ("data-rule", "data-route"):
                if k in a:
                    self.row = self.rows.setdefault(
                        (k[5:], a[k]), {})
        if tag == "td" and self.row is not None and "data-metric" in a:
            self.row[a["data-metric"]] = a.get("data-value")
        if tag not in ("meta", "br", "img", "input", "link"):
            self.stack.append((tag, a.get("id")))

    def handle_endtag(self, tag):
        if tag == "tr":
            self.row = None
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        for _, i in reversed(self.stack):
            if i is not None:
                self.ids[i]["text"] += data
                break


@mqlite_only("mqlite's status page")
class TestStatusPage(E2ETestCase):
    auto_start = False

    def get(self, path):
        url = "http://%s:%d%s" % (HOST, self.mport, path)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def metrics(self):
        out = {}
        for line in self.get("/metrics")[2].splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def chromium(self, *args):
        self.assertIsNotNone(CHROMIUM, "chromium is not installed (apt-get "
                             "install chromium; see contrib/quickstart)")
        prof = os.path.join(self.workdir, "chromium-profile")
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
               "--no-first-run", "--disable-extensions",
               "--user-data-dir=" + prof, "--virtual-time-budget=4000",
               "--hide-scrollbars", "--window-size=1000,760"] + list(args) + \
              ["http://%s:%d/" % (HOST, self.mport)]
        r = subprocess.run(cmd, capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode()[-2000:])
        return r.stdout.decode()

    def test_page_shows_what_metrics_say(self):
        hook = free_port()      # nothing listens: the route keeps its rows
        rules = os.path.join(self.workdir, "rules.json")
        with open(rules, "w") as f:
            json.dump({"rules": [
                {"name": "readings", "topic": "site/+/t",
                 "sqlite": {"table": "readings",
                            "columns": {"topic": "{topic}",
                                        "v": "{payload.v}"}},
                 "where": {"value": "{payload.v}", "op": ">", "to": 1}},
                {"name": "alarms \"<b>x</b>\"", "topic": "alarm/#",
                 "webhook": {"url": "http://127.0.0.1:%d/h" % hook}}]}, f)
        br = Broker(self.workdir, database={"max_bytes": "64MB"})
        self.mport = free_port()
        br.update_config(metrics={"bind": HOST, "port": self.mport},
                         rules=rules)
        self.brokers.append(br)
        self.broker = br
        br.start()
        self.assertTrue(wait_until(lambda: "metrics on http://" in
                                   br.log_text(), timeout=10))
        c = self.client(client_id="page-pub")
        for i in range(4):
            c.publish("site/a/t", json.dumps({"v": i}).encode(), qos=1)
        for i in range(3):
            c.publish("alarm/x", b"%d" % i, qos=1)
        c.disconnect()
        self.assertTrue(wait_until(lambda: self.metrics().get(
            'mqlite_connections') == 0, timeout=10))
        # Wait for the failed deliveries to be logged and the depth shown.
        route = 'alarms "<b>x</b>"/webhook'
        self.assertTrue(wait_until(lambda: self.metrics().get(
            'mqlite_webhook_depth{route="alarms \\"<b>x</b>\\"/webhook"}')
            == 3, timeout=30))

        status, headers, page = self.get("/")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        before = self.metrics()
        dom_text = self.chromium("--dump-dom")
        after = self.metrics()
        dom = Dom()
        dom.feed(dom_text)
        self.assertEqual(dom.body.get("data-ready"), "1",
                         "the page's script did not render")
        self.assertEqual(dom.refs, [], "external references")

        def same(elem, key, stable=True):
            v = float(dom.ids[elem]["value"])
            if stable:
                self.assertEqual(before[key], after[key], key)
                self.assertEqual(v, before[key], elem)
            else:
                # A counter may move while the page loads: the page's
                # value lies between the two reads around it.
                self.assertGreaterEqual(v, before[key], elem)
                self.assertLessEqual(v, after[key], elem)
            return v

        def shown(elem, key):
            v = same(elem, key)
            self.assertEqual(dom.ids[elem]["text"], "%d" % v, elem)
            return v

        self.assertEqual(dom.ids["up"]["text"], "UP")
        self.assertEqual(dom.ids["health"]["text"], "ok")
        self.assertIn(dom.ids["version"]["text"], self.get("/metrics")[2])
        same("db-size", "mqlite_database_file_bytes", stable=False)
        self.assertEqual(same("db-max", "mqlite_database_max_bytes"),
                         64 * 1024 * 1024)
        self.assertIn("64.0 MB", dom.ids["db-max"]["text"])
        self.assertEqual(shown("rows", "mqlite_store_rows_total"), 2)
        self.assertEqual(shown("publishes", "mqlite_publish_received_total"),
                         7)
        self.assertEqual(shown("connections", "mqlite_connections"), 0)
        same("commits", "mqlite_store_commit_seconds_count", stable=False)
        self.assertNotEqual(dom.ids["commit-avg"]["text"], "-")
        self.assertRegex(dom.ids["commit-p95"]["text"], r"\d")
        self.assertRegex(dom.ids["ingest-rate"]["text"], r"^\d+\.\d$")

        readings = dom.rows[("rule", "readings")]
        self.assertEqual(float(readings["mqlite_rule_matched_total"]), 4)
        self.assertEqual(float(readings["mqlite_rule_filtered_total"]), 2)
        self.assertEqual(float(readings["mqlite_rule_written_total"]), 2)
        alarms = dom.rows[("rule", 'alarms "<b>x</b>"')]
        self.assertEqual(float(alarms["mqlite_rule_matched_total"]), 3)
        r = dom.rows[("route", route)]
        self.assertEqual(float(r["mqlite_webhook_depth"]), 3)
        self.assertEqual(float(r["mqlite_webhook_delivered_total"]), 0)
        self.assertGreater(float(r["mqlite_webhook_oldest_age_seconds"]), 0)
        # The route's delivery failures are among the last errors shown.
        self.assertIn(route, dom.ids["errors"]["text"])

        shot = os.environ.get("STATUS_SCREENSHOT")
        if shot:
            self.chromium("--screenshot=" + os.path.abspath(shot))
            self.assertTrue(os.path.getsize(shot) > 1000)


if __name__ == "__main__":
    import unittest
    unittest.main()
