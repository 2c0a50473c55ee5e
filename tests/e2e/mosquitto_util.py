# SPDX-License-Identifier: Apache-2.0
"""A real Mosquitto started by a test beside mqlite as another broker: the
bridge's upstream (Upstream, used by every test_bridge*.py and the foreach
rules), the site broker a source subscribes to (test_sources.py). Not the
E2E_TARGET=mosquitto run, where the harness's Broker runs Mosquitto in
mqlite's place. Subscriber is a python3-paho-mqtt client on such a broker
recording what arrives (the bridge tests' Counter and Sub5).

Mosquitto writes its config file and log in the test's directory, listens
on a free loopback port picked here, is started with the harness's
parent-death guard (a test killed by the runner leaves no broker behind),
is waited for until every port it was given accepts a connection (it
exiting first is an error naming its log), and is stopped with SIGTERM,
then SIGKILL. Every wait is bounded."""

import os
import signal
import subprocess
import threading

from mqlite_harness import HOST, free_port, popen_with_parent, wait_until

MOSQUITTO_BIN = "/usr/sbin/mosquitto"


def _accepts(port):
    import socket
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


class Mosquitto:
    """One Mosquitto process: name.conf and name.log in workdir; port (a
    free one unless given) is its first listener. configure() writes the
    config; start() and stop() may alternate (a restart keeps the port)."""

    def __init__(self, workdir, name, port=None):
        self.port = port or free_port()
        self.conf = os.path.join(workdir, name + ".conf")
        self.log = os.path.join(workdir, name + ".log")
        self.ports = [self.port]        # waited for by start()
        self.proc = None

    def configure(self, lines):
        """Writes the config file, one directive per item of lines."""
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, timeout=20.0):
        with open(self.log, "ab") as log:
            self.proc = popen_with_parent([MOSQUITTO_BIN, "-c", self.conf],
                                          stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=log)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto -c %s exited with %d, see %s"
                                   % (self.conf, self.proc.returncode,
                                      self.log))
            return all(_accepts(p) for p in self.ports)
        if not wait_until(ready, timeout, 0.05):
            self.stop()
            raise RuntimeError("mosquitto -c %s not accepting after %g s"
                               % (self.conf, timeout))
        return self

    def stop(self, timeout=15.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class Upstream(Mosquitto):
    """The bridge's upstream: a persistence file in workdir, so a
    subscriber's session and its queued messages survive a restart; no
    limit on queued or in-flight messages. With tls (PEM files ca, cert,
    key) the listener wants a client certificate. extra: more directives
    (an acl_file)."""

    def __init__(self, workdir, tls=None, extra=()):
        super().__init__(workdir, "upstream")
        lines = ["per_listener_settings false", "allow_anonymous true",
                 "user root",
                 "persistence true", "persistence_location %s/" % workdir,
                 "autosave_interval 0", "max_queued_messages 0",
                 "max_inflight_messages 0", "log_dest stderr",
                 "log_type error", "log_type warning",
                 "listener %d %s" % (self.port, HOST)]
        if tls is not None:
            lines += ["cafile %s" % tls["ca"], "certfile %s" % tls["cert"],
                      "keyfile %s" % tls["key"],
                      "require_certificate true"]
        self.configure(lines + list(extra))


class Subscriber:
    """A QoS 1 subscription to topic on the broker at port through client
    (a paho client, set up but not connected): got holds record(msg) of
    every message, in arrival order, under lock. connect() waits for the
    SUBACK; a reconnect after close() subscribes again."""

    def __init__(self, port, topic, client, got=None):
        self.port = port
        self.topic = topic
        self.got = got if got is not None else []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.c = client
        client.on_message = self._on_message
        client.on_subscribe = lambda *a: self.subscribed.set()

    def record(self, msg):
        """What got keeps of msg; the payload unless overridden."""
        return msg.payload

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.got.append(self.record(msg))

    def connect(self, **kw):
        """Connects (kw as paho's connect()) and subscribes."""
        self.subscribed.clear()
        self.c.connect(HOST, self.port, 60, **kw)
        self.c.loop_start()
        self.c.subscribe(self.topic, qos=1)
        if not self.subscribed.wait(10):
            raise RuntimeError("no SUBACK from port %d" % self.port)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def upstream_for(case, workdir=None, start=True, **kw):
    """An Upstream in test case's work directory (or workdir), stopped by
    the case's clean-up; started unless start is false. kw as Upstream."""
    up = Upstream(workdir or case.workdir, **kw)
    case.addCleanup(up.stop)
    return up.start() if start else up
