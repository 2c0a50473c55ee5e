# SPDX-License-Identifier: Apache-2.0
"""One row per array element ("foreach") end to end, against the real
daemon: 1,000 readings in one QoS 1 publish read back exactly (values and
typeof) as soon as the PUBACK arrives; a where that tests the element; an
element the table refuses going to `rejected` alone with its index while
the others are stored; arrays over max_items, objects and scalars kept in
`rejected`, missing arrays counted, all visible at /metrics and in the log;
a webhook action sending one request per element to a real HTTP server on
127.0.0.1; an mqtt action publishing one message per element to a real
Mosquitto; the shipped example loading and storing rows. Every wait is
bounded."""

import json
import os
import threading

import paho.mqtt.client as mqtt

import test_bridge
import test_rules
import test_webhook
from mqlite_harness import HOST, free_port, labelled_metric, wait_until
from mosquitto_util import upstream_for

SRCDIR = test_rules.SRCDIR


def metric(port, name, rule):
    """name{rule="..."} from the daemon's /metrics, or None."""
    return labelled_metric(port, name, "rule", rule)


class ForeachCase(test_rules.RulesCase):

    def start_with_metrics(self, rules):
        """A daemon with rules and a metrics listener; (broker, port)."""
        mport = free_port()
        path = self.rules_file(rules, "foreach-rules.json")
        br = self.new_broker(config_extra={"metrics": {
            "bind": HOST, "port": mport}}, extra_args=["-r", path])
        br.start()
        self.broker = br
        return br, mport


class TestForeachSqlite(ForeachCase):

    def test_thousand_readings_in_one_publish(self):
        br = self.start_rules([{
            "name": "batch", "topic": "b/{dev}",
            "sqlite": {"table": "readings", "foreach": "{payload.readings}",
                       "columns": {"dev": "{dev}", "fw": "{payload.fw}",
                                   "seq": "{item_index}",
                                   "ts": "{item.ts}", "v": "{item.v}",
                                   "tag": "{item.tags[1].name}",
                                   "q": "{qos}"},
                       "types": {"v": "REAL"}}}])
        readings = []
        for i in range(1000):
            r = {"ts": 1733450000000 + i * 1000, "v": i * 0.25 - 100}
            if i % 100 == 7:
                r["tags"] = [{"name": "a"}, {"name": "t%d" % i}]
            readings.append(r)
        payload = json.dumps({"fw": "1.4", "readings": readings}).encode()
        c = self.client(br, client_id="batcher")
        c.publish("b/d1", payload, qos=1)
        # The PUBACK came after the commit: every row is there already.
        rows = br.rows("select dev, fw, seq, typeof(seq), ts, typeof(ts), "
                       "v, typeof(v), coalesce(tag, '-'), q from readings "
                       "order by id")
        self.assertEqual(len(rows), 1000)
        want = []
        for i, r in enumerate(readings):
            v = r["v"]
            want.append(["d1", "1.4", str(i), "integer", str(r["ts"]),
                         "integer", repr(float(v)), "real",
                         r["tags"][1]["name"] if "tags" in r else "-",
                         "1"])
        self.assertEqual(rows, want)
        # Exact doubles, compared in SQL rather than through text.
        self.assertEqual(br.scalar("select count(*) from readings where "
                                   "v = seq * 0.25 - 100"), 1000)
        self.assertEqual(br.scalar("select count(*) from rejected"), 0)

    def test_where_on_the_element_filters_elements(self):
        br, mport = self.start_with_metrics([{
            "name": "warm", "topic": "w/{dev}",
            "where": {"all": [
                {"value": "{item.temp}", "op": ">", "to": 20},
                {"value": "{dev}", "op": "!=", "to": "ignored"}]},
            "sqlite": {"table": "warm", "foreach": "{payload}",
                       "columns": {"dev": "{dev}", "i": "{item_index}",
                                   "temp": "{item.temp}"}}}])
        c = self.client(br, client_id="w")
        c.publish("w/a", b'[{"temp": 19.5}, {"temp": 21}, {"x": 1}, '
                  b'{"temp": 25.5}, 30]', qos=1)
        c.publish("w/ignored", b'[{"temp": 40}]', qos=1)
        self.assertEqual(br.rows("select dev, i, temp, typeof(temp) from "
                                 "warm order by id"),
                         [["a", "1", "21", "integer"],
                          ["a", "3", "25.5", "real"]])
        self.assertEqual(metric(mport, "mqlite_rule_matched_total",
                                "warm"), 2)
        self.assertEqual(metric(mport, "mqlite_rule_filtered_total",
                                "warm"), 0)
        # 19.5, no temp, 30 (no .temp), and the one element of w/ignored.
        self.assertEqual(metric(mport, "mqlite_rule_items_filtered_total",
                                "warm"), 4)
        self.assertEqual(metric(mport, "mqlite_rule_written_total",
                                "warm"), 2)

    def test_bad_element_rejected_alone(self):
        br = self.start_rules({"rules": []})
        self.assertEqual(br.stop(), 0)
        br.query("create table strict_r (id integer primary key, "
                 "dev text, i integer, v real) strict")
        br.extra_args = ["-r", self.rules_file([{
            "name": "strict", "topic": "s/{dev}",
            "sqlite": {"table": "strict_r", "foreach": "{payload.r}",
                       "columns": {"dev": "{dev}", "i": "{item_index}",
                                   "v": "{item}"}}}], "strict.json")]
        br.start()
        c = self.client(br, client_id="strict")
        payload = b'{"r": [1.5, 2, "abc", 4.25, {"v": 1}, 6]}'
        c.publish("s/d", payload, qos=1)
        self.assertEqual(br.rows("select dev, i, v, typeof(v) from strict_r "
                                 "order by id"),
                         [["d", "0", "1.5", "real"],
                          ["d", "1", "2.0", "real"],
                          ["d", "3", "4.25", "real"],
                          ["d", "5", "6.0", "real"]])
        rows = br.rows("select rule, topic, client_id, qos, payload, "
                       "reason from rejected order by id")
        self.assertEqual([r[:5] for r in rows],
                         [["strict", "s/d", "strict", "1",
                           payload.decode()]] * 2)
        self.assertTrue(rows[0][5].startswith("item 2: cannot store TEXT "
                                              "value in REAL column"),
                        rows[0][5])
        self.assertTrue(rows[1][5].startswith("item 4: "), rows[1][5])
        self.assertIn("rule strict: row for s/d rejected: item 2:",
                      br.log_text())

    def test_max_items_not_an_array_and_missing(self):
        br, mport = self.start_with_metrics([{
            "name": "capped", "topic": "c/{dev}",
            "sqlite": {"table": "capped", "foreach": "{payload.r}",
                       "max_items": 5,
                       "columns": {"dev": "{dev}", "v": "{item}"}}}])
        c = self.client(br, client_id="cap")
        six = b'{"r": [1, 2, 3, 4, 5, 6]}'
        c.publish("c/over", six, qos=1)
        c.publish("c/five", b'{"r": [1, 2, 3, 4, 5]}', qos=1)
        c.publish("c/obj", b'{"r": {"a": 1}}', qos=1)
        c.publish("c/num", b'{"r": 7}', qos=2)
        c.publish("c/text", b'not json', qos=1)
        c.publish("c/missing", b'{"x": [1]}', qos=1)
        c.publish("c/null", b'{"r": null}', qos=1)
        c.publish("c/empty", b'{"r": []}', qos=1)
        self.assertEqual(br.rows("select dev, group_concat(v) from capped "
                                 "group by dev"), [["five", "1,2,3,4,5"]])
        self.assertEqual(br.rows("select topic, payload, reason from "
                                 "rejected order by id"), [
            ["c/over", six.decode(),
             "foreach {payload.r}: 6 elements, more than max_items 5"],
            ["c/obj", '{"r": {"a": 1}}',
             "foreach {payload.r}: not an array (an object)"],
            ["c/num", '{"r": 7}',
             "foreach {payload.r}: not an array (a number)"],
            ["c/text", "not json", "foreach {payload.r}: not an array "
             "(the payload is not JSON)"]])
        self.assertEqual(metric(mport, "mqlite_rule_items_over_max_total",
                                "capped"), 1)
        self.assertEqual(metric(mport, "mqlite_rule_foreach_missing_total",
                                "capped"), 2)
        self.assertEqual(metric(mport, "mqlite_rule_rejected_total",
                                "capped"), 4)
        self.assertEqual(metric(mport, "mqlite_rule_written_total",
                                "capped"), 5)
        self.wait_log("rule capped: sqlite action for c/over kept in "
                      "rejected: foreach {payload.r}: 6 elements, more "
                      "than max_items 5")
        # Rate-limited: a flood of oversized arrays logs a bounded number
        # of lines, and the daemon keeps serving.
        big = json.dumps({"r": list(range(50))}).encode()
        for _ in range(40):
            c.publish("c/over", big, qos=1)
        self.assertEqual(metric(mport, "mqlite_rule_items_over_max_total",
                                "capped"), 41)
        self.assertEqual(br.scalar("select count(*) from rejected"), 44)
        self.assertLessEqual(self.log_count("kept in rejected"), 10)
        self.assert_serving(br, store_check=False)
        c.publish("c/after", b'{"r": [9]}', qos=1)
        self.assertEqual(br.scalar("select count(*) from capped where "
                                   "dev = 'after' and v = 9"), 1)

    def test_example_file_loads_and_stores(self):
        example = os.path.join(SRCDIR, "rules", "examples",
                               "batched-readings.json")
        rc, lines = self.check("-r", example, "-d",
                               os.path.join(self.workdir, "never.db"))
        self.assertEqual(rc, 0, "\n".join(lines))
        br = self.start_broker(extra_args=["-r", example])
        self.broker = br
        c = self.client(br, client_id="ex")
        c.publish("site/s1/dev/d1/batch",
                  b'{"fw": "1.4", "readings": [{"ts": 1733450000, '
                  b'"temp": 21.5}, {"ts": 1733450060}, {"ts": 1733450120, '
                  b'"temp": 22}]}', qos=1)
        self.assertEqual(br.rows(
            "select site, device, fw, seq, device_ts, temp, typeof(temp) "
            "from readings order by id"),
            [["s1", "d1", "1.4", "0", "1733450000", "21.5", "real"],
             ["s1", "d1", "1.4", "2", "1733450120", "22.0", "real"]])

    def test_check_reports_item_outside_foreach(self):
        path = self.rules_file([
            {"name": "a", "topic": "a", "sqlite": {
                "table": "a", "columns": {"v": "{item.v}"}}},
            {"name": "b", "topic": "b", "where": {
                "value": "{item}", "op": "exists"},
             "sqlite": {"table": "b", "foreach": "{payload}",
                        "columns": {"v": "{item}"}},
             "webhook": {"url": "http://127.0.0.1:9/x"}},
            {"name": "c", "topic": "c", "sqlite": {
                "table": "c", "foreach": "{topic}", "max_items": 0,
                "columns": {"v": "{item}"}}}], "bad.json")
        rc, lines = self.check("-r", path)
        self.assertEqual(rc, 1)
        text = "\n".join(lines)
        self.assertIn("rules[0].sqlite.columns.v: {item.v} needs "
                      "\"foreach\" on the action", text)
        self.assertIn("rules[1].where.value: {item} needs \"foreach\"",
                      text)
        self.assertIn("rules[2].sqlite.foreach: expected one payload "
                      "placeholder naming an array", text)
        self.assertIn("rules[2].sqlite.max_items: must be between 1 and "
                      "100000", text)


class TestForeachForward(ForeachCase):

    def test_webhook_one_request_per_element(self):
        recv = test_webhook.Receiver(self.workdir, "recv", free_port())
        recv.start()
        self.addCleanup(recv.stop)
        base = "http://%s:%d" % (HOST, recv.port)
        br = self.start_rules([
            {"name": "each", "topic": "h/{dev}",
             "where": {"value": "{item.level}", "op": ">=", "to": 2},
             "webhook": {"url": base + "/each/{dev}/{item_index}",
                         "foreach": "{payload.alarms}",
                         "body": {"dev": "{dev}", "n": "{item_index}",
                                  "code": "{item.code}",
                                  "alarm": "{item}"}}},
            {"name": "env", "topic": "h/{dev}",
             "webhook": {"url": base + "/env",
                         "foreach": "{payload.alarms}"}}])
        c = self.client(br, client_id="hooks")
        payload = (b'{"alarms": [{"code": "A1", "level": 3}, '
                   b'{"code": "B2", "level": 1}, '
                   b'{"code": "C3", "level": 2, "extra": [1.5, null]}]}')
        c.publish("h/d7", payload, qos=1)
        reqs = recv.wait_requests(5, timeout=20)
        each = [r for r in reqs if r["path"].startswith("/each")]
        env = [r for r in reqs if r["path"] == "/env"]
        self.assertEqual([r["path"] for r in each],
                         ["/each/d7/0", "/each/d7/2"])
        self.assertEqual([json.loads(r["body"]) for r in each], [
            {"dev": "d7", "n": 0, "code": "A1",
             "alarm": {"code": "A1", "level": 3}},
            {"dev": "d7", "n": 2, "code": "C3",
             "alarm": {"code": "C3", "level": 2, "extra": [1.5, None]}}])
        bodies = [json.loads(r["body"]) for r in env]
        self.assertEqual([(b["item_index"], b["item"]) for b in bodies], [
            (0, {"code": "A1", "level": 3}), (1, {"code": "B2", "level": 1}),
            (2, {"code": "C3", "level": 2, "extra": [1.5, None]})])
        for b in bodies:
            self.assertEqual(b["topic"], "h/d7")
            self.assertEqual(b["payload"], json.loads(payload))
        # Each element is its own outbox entry with its own key.
        keys = {r["hdr"]["idempotency-key"] for r in each + env}
        self.assertEqual(len(keys), 5)
        self.assertTrue(wait_until(
            lambda: br.scalar("select count(*) from outbox") == 0, 20))
        self.assertEqual(len(recv.requests()), 5)

    def test_mqtt_one_publish_per_element(self):
        up = upstream_for(self)
        got, subscribed = [], threading.Event()
        sub = mqtt.Client(client_id="foreach-sub")
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.on_message = lambda cl, ud, msg: got.append(
            (msg.topic, msg.payload.decode()))
        sub.connect(HOST, up.port, 60)
        sub.loop_start()
        self.addCleanup(sub.loop_stop)
        self.addCleanup(sub.disconnect)
        sub.subscribe("up/#", qos=1)
        self.assertTrue(subscribed.wait(10), "no SUBACK from upstream")
        br = self.start_rules([{
            "name": "up", "topic": "m/{dev}",
            "mqtt": {"url": "tcp://%s:%d" % (HOST, up.port), "qos": 1,
                     "topic": "up/{dev}/{item_index}",
                     "foreach": "{payload.r}"}}],
            env={"LSAN_OPTIONS": "suppressions=" + test_bridge.LSAN_SUPP})
        c = self.client(br, client_id="bridge-src")
        c.publish("m/d2", b'{"r": [{"v": 1}, 2.5, "x"]}', qos=1)
        self.assertTrue(wait_until(lambda: len(got) >= 3, 60), got)
        self.assertEqual(sorted(got), [
            ("up/d2/0", '{"v":1}'), ("up/d2/1", "2.5"),
            ("up/d2/2", '"x"')])
        self.assertTrue(wait_until(
            lambda: br.scalar("select count(*) from outbox") == 0, 20))
        self.assertEqual(len(got), 3)
