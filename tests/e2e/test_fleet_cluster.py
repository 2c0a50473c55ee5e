# SPDX-License-Identifier: Apache-2.0
# e2e-timeout: 600
"""
Scale-out: three mqlite gateways bridge QoS 1 into a three-node RabbitMQ
cluster (Debian's rabbitmq-server with its MQTT plugin, every node on
loopback with ports the test picks). Each gateway's `mqtt` action names all
three nodes in `urls`, its own node first. A subscriber on node 1 counts
what arrives. Mid-stream the test kills node 3 (gateway 3's first choice)
and gateway 2 (kill -9), restarts gateway 2 and checks that every publish
each gateway acknowledged arrived at least once, and that per gateway the
first arrivals are in publish order.

Every wait is bounded (the whole file in 2 to 3 minutes on a loaded
2-core machine, 600 s at most). The RabbitMQ nodes run in sessions of
their own, out of reach of the runner's signals: the cluster is stopped by
tearDownClass, and by a SIGTERM or SIGINT handler when the runner's
timeout (or a user) ends the test early. The gateways die with the test
process (the harness's parent-death signal).
"""

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from mqlite_harness import (Broker, Client, Closed, HOST, mqlite_only,
                            wait_until)
import rabbit_cluster

PER_GATEWAY = 1500      # QoS 1 publishes per gateway
KILL_NODE_AT = 500      # after this many acks of gateway 3
KILL_GW_AT = 700        # after this many acks of gateway 2
DELIVERY_WAIT = 120.0   # for the backlog to reach the subscriber


class Counter:
    """Subscriber on node 1 (paho-mqtt, persistent session, QoS 1) that
    records every payload per gateway in arrival order."""

    def __init__(self, port):
        import paho.mqtt.client as mqtt
        self.lock = threading.Lock()
        self.seen = {}
        self.ready = threading.Event()
        try:
            self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1,
                                 client_id="fleet-counter",
                                 clean_session=False)
        except AttributeError:
            self.c = mqtt.Client(client_id="fleet-counter",
                                 clean_session=False)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda *a: self.ready.set()
        self.c.on_message = self._on_message
        self.c.connect(HOST, port, keepalive=30)
        self.c.loop_start()

    def _on_connect(self, client, userdata, flags, rc):
        client.subscribe("fleet/#", qos=1)

    def _on_message(self, client, userdata, m):
        gw = m.topic.split("/")[1]
        with self.lock:
            self.seen.setdefault(gw, []).append(int(m.payload))

    def arrivals(self, gw):
        with self.lock:
            return list(self.seen.get(gw, []))

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


@mqlite_only("three mqlite gateways bridging into a RabbitMQ cluster")
class FleetClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not rabbit_cluster.available():
            raise AssertionError("rabbitmq-server is not installed "
                                 "(contrib/quickstart test installs it)")
        cls.tmp = tempfile.mkdtemp(prefix="mqlite-fleet-")
        cls.cluster = rabbit_cluster.RabbitCluster(cls.tmp, nodes=3)
        cls.old_handlers = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            cls.old_handlers[sig] = signal.signal(sig, cls._on_signal)
        try:
            cls.cluster.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _on_signal(cls, signum, frame):
        """The runner's timeout or ^C: stop the nodes, then die of the
        same signal."""
        cls.cluster.stop()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()
        for sig, h in cls.old_handlers.items():
            signal.signal(sig, h)
        if not os.environ.get("E2E_KEEP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def gateway(self, i):
        ports = self.cluster.mqtt_ports
        order = [ports[(i + k) % 3] for k in range(3)]
        urls = ["tcp://%s:%d" % (HOST, p) for p in order]
        b = Broker(self.tmp, name="gw%d" % (i + 1))
        b.update_config(rules=[{
            "name": "uplink",
            "topic": "dev/#",
            "mqtt": {"url": urls[0], "urls": urls[1:],
                     "topic": "fleet/gw%d" % (i + 1),
                     "qos": 1, "client_id": "gw%d" % (i + 1),
                     "max_in_flight": 16, "keepalive": 5}}])
        return b

    def publish_all(self, gw, acked, hooks):
        """Publishes PER_GATEWAY QoS 1 messages to gw, restarting the
        publisher's connection when the gateway goes away; acked gets every
        sequence number the gateway acknowledged. hooks: {count: fn}."""
        seq = 0
        c = None
        deadline = time.monotonic() + 300
        while seq < PER_GATEWAY and time.monotonic() < deadline:
            try:
                if c is None:
                    c = Client(gw.port, timeout=10)
                    c.connect("dev-%s" % gw.name)
                c.publish("dev/%s/t" % gw.name, b"%d" % seq, qos=1)
                acked.append(seq)
                seq += 1
                fn = hooks.pop(seq, None)
                if fn is not None:
                    fn()
            except (Closed, OSError, AssertionError):
                if c is not None:
                    c.abort()
                c = None
                # The gateway is being restarted: wait for it.
                wait_until(lambda: gw.running() and self._accepts(gw),
                           timeout=30, interval=0.2)
        if c is not None:
            c.close()

    def _accepts(self, gw):
        import socket
        try:
            socket.create_connection((HOST, gw.port), 1).close()
            return True
        except OSError:
            return False

    def test_fleet_survives_node_and_gateway_loss(self):
        counter = Counter(self.cluster.mqtt_ports[0])
        self.addCleanup(counter.close)
        self.assertTrue(counter.ready.wait(30), "subscriber not ready")
        gws = [self.gateway(i) for i in range(3)]
        for g in gws:
            g.start()
            self.addCleanup(g.stop)
        acked = [[], [], []]

        def kill_node3():
            self.cluster.kill(2)

        def kill_gw2():
            gws[1].kill()
            gws[1].start()

        hooks = [{}, {KILL_GW_AT: kill_gw2}, {KILL_NODE_AT: kill_node3}]
        threads = [threading.Thread(target=self.publish_all,
                                    args=(gws[i], acked[i], hooks[i]))
                   for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=400)
        self.assertFalse(any(t.is_alive() for t in threads),
                         "publishers did not finish")
        for i in range(3):
            self.assertEqual(len(acked[i]), PER_GATEWAY,
                             "gateway %d acknowledged %d of %d"
                             % (i + 1, len(acked[i]), PER_GATEWAY))
        self.assertEqual(self.cluster.procs[2], None, "node 3 not killed")
        self.assertIn(("sigkill", -9), gws[1].exits, "gateway 2 not killed")

        # A gateway that died (after its restart, say) can forward nothing:
        # say so now rather than after the delivery wait.
        for g in gws:
            self.assertTrue(g.running(), "%s is not running; log:\n%s"
                            % (g.name, g.log_text()[-4000:]))

        def all_arrived():
            return all(set(acked[i]) <= set(counter.arrivals("gw%d"
                                                             % (i + 1)))
                       for i in range(3))
        wait_until(all_arrived, timeout=DELIVERY_WAIT, interval=0.5)
        report = []
        for i in range(3):
            got = counter.arrivals("gw%d" % (i + 1))
            missing = sorted(set(acked[i]) - set(got))
            first = []
            seen = set()
            for s in got:
                if s not in seen:
                    seen.add(s)
                    first.append(s)
            report.append((i, got, missing, first))
            print("gw%d: %d acknowledged, %d arrived, %d duplicates, "
                  "%d missing" % (i + 1, len(acked[i]), len(got),
                                  len(got) - len(first), len(missing)))
        for i, got, missing, first in report:
            self.assertEqual(missing, [],
                             "gateway %d (%s): %d acknowledged publishes "
                             "never arrived (first %s), %s rows in its "
                             "outbox; log:\n%s"
                             % (i + 1, "running" if gws[i].running() else
                                "dead", len(missing), missing[:10],
                                gws[i].scalar("SELECT count(*) FROM outbox"),
                                gws[i].log_text()[-4000:]))
            self.assertEqual(first, sorted(first),
                             "gateway %d: arrivals out of order" % (i + 1))
        for g in gws:
            self.assertIsNone(g.sanitizer_report(), g.name)


if __name__ == "__main__":
    unittest.main()
