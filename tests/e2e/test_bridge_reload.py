# SPDX-License-Identifier: Apache-2.0
"""A reload (SIGHUP) that changes or removes mqtt routes, against real
Mosquittos started by the test. A backlog stored for a route whose upstream
is down keeps going after the reload moved the route to another broker and
topic template: the stored rows go out first, in order, with the topic they
were stored with, then the rows rendered with the new template. The rows of
a route the reload removed stay in the outbox, said in the log and counted
by mqlite_bridge_depth, and go out once the route comes back. Every wait
is bounded."""

import json
import os
import signal
import unittest

from mqlite_harness import HOST, free_port, wait_until
from mosquitto_util import upstream_for
from test_bridge import BridgeCase, Counter


class TopicCounter(Counter):
    """Records "topic|payload" in arrival order."""

    def record(self, msg):
        return "%s|%s" % (msg.topic, msg.payload.decode())


class TestBridgeReload(BridgeCase):
    def rules(self, rules):
        with open(os.path.join(self.workdir, "rules.json"), "w") as f:
            json.dump({"rules": rules}, f)

    def reload(self, br):
        before = br.log_text().count("SIGHUP: ")
        os.kill(br.pid, signal.SIGHUP)
        self.assertTrue(wait_until(
            lambda: br.log_text().count("SIGHUP: ") > before and
            "reloaded" in br.log_text().split("SIGHUP: ")[-1], 30),
            "no reload in the log")

    def route_rows(self, br, route):
        return br.scalar("SELECT count(*) FROM outbox WHERE route = '%s'"
                         % route)

    def test_changed_route_keeps_its_backlog_removed_route_keeps_rows(self):
        n_old, n_new, n_gone = 300, 200, 50
        os.makedirs(os.path.join(self.workdir, "b"))
        down = free_port()      # the first upstream, never started
        up = upstream_for(self, os.path.join(self.workdir, "b"))
        counter = TopicCounter(up.port, "#")
        counter.connect()
        self.addCleanup(counter.close)
        mport = free_port()
        br = self.mqlite(down, extra={"max_in_flight": 8},
                         metrics_port=mport)
        self.rules([
            {"name": "up", "topic": "dev/#", "mqtt": {
                "url": "tcp://%s:%d" % (HOST, down), "topic": "up/{topic}",
                "qos": 1, "max_in_flight": 8}},
            {"name": "old", "topic": "old/#", "mqtt": {
                "url": "tcp://%s:%d" % (HOST, down), "topic": "o/{topic}",
                "qos": 1}}])
        self.reload(br)
        self.publish(br, n_old, topic="dev/a", prefix="msg")
        self.publish(br, n_gone, topic="old/x", prefix="gone")
        self.assertEqual(self.route_rows(br, "up/mqtt"), n_old)
        self.assertEqual(self.route_rows(br, "old/mqtt"), n_gone)

        # "up" moves to the running upstream with a new template; "old"
        # goes away.
        self.rules([
            {"name": "up", "topic": "dev/#", "mqtt": {
                "url": "tcp://%s:%d" % (HOST, up.port),
                "topic": "v2/{topic}", "qos": 1, "max_in_flight": 8}}])
        self.reload(br)
        self.publish(br, n_new, topic="dev/a", prefix="new")
        want = (["up/dev/a|msg-%d" % i for i in range(n_old)] +
                ["v2/dev/a|new-%d" % i for i in range(n_new)])
        self.assertTrue(wait_until(
            lambda: self.route_rows(br, "up/mqtt") == 0 and
            counter.count() >= len(want), 60),
            "up/mqtt: %d rows left, %d arrived"
            % (self.route_rows(br, "up/mqtt"), counter.count()))
        with counter.lock:
            got = list(counter.got)
        self.assertEqual(got, want)

        # The removed route's rows are kept, logged and counted.
        self.assertIn("bridge: route up/mqtt changed", br.log_text())
        self.assertIn("bridge: route old/mqtt removed: its %d row(s) stay "
                      "in the outbox" % n_gone, br.log_text())
        self.assertEqual(self.route_rows(br, "old/mqtt"), n_gone)
        self.assertTrue(wait_until(lambda: self.metric(
            mport, "mqlite_bridge_depth", route="old/mqtt") == n_gone, 20))
        self.assertEqual(self.metric(mport, "mqlite_bridge_up",
                                     route="old/mqtt"), 0)
        self.assertEqual(self.route_rows(br, "old/mqtt"), n_gone)

        # It comes back (to the running upstream): its rows go out.
        self.rules([
            {"name": "up", "topic": "dev/#", "mqtt": {
                "url": "tcp://%s:%d" % (HOST, up.port),
                "topic": "v2/{topic}", "qos": 1, "max_in_flight": 8}},
            {"name": "old", "topic": "old/#", "mqtt": {
                "url": "tcp://%s:%d" % (HOST, up.port), "topic": "o/{topic}",
                "qos": 1}}])
        self.reload(br)
        self.assertTrue(wait_until(
            lambda: self.route_rows(br, "old/mqtt") == 0 and
            counter.count() >= len(want) + n_gone, 60),
            "old/mqtt: %d rows left" % self.route_rows(br, "old/mqtt"))
        with counter.lock:
            got = list(counter.got)
        self.assertEqual(got[len(want):],
                         ["o/old/x|gone-%d" % i for i in range(n_gone)])


if __name__ == "__main__":
    unittest.main()
