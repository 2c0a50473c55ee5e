# SPDX-License-Identifier: Apache-2.0
"""
A RabbitMQ cluster with the MQTT plugin, started by a test on loopback.

Debian's rabbitmq-server runs here without its service: every node is a
child process with its own folder (config, data, logs, Erlang cookie), its
own ports picked free on 127.0.0.1, and a private epmd on a free port, so a
test never touches a system RabbitMQ or another test's cluster. Node 1
starts first; the others then join it at boot through the classic_config
peer discovery. A node is up when it answers an MQTT CONNECT, and the
cluster is formed when a message published on each node reaches a
subscriber on node 1 (no Erlang CLI: it is slow to start on a busy
machine). Nodes can be killed with SIGKILL and restarted; stop()
kills every process the cluster started, epmd included, and any helper a
node left behind (found by the private epmd port in its environment).

Every wait is bounded: a node that is not up in time fails the test with
the tail of its log.
"""

import os
import shutil
import signal
import subprocess
import time

from mqlite_harness import Client, Closed, HOST, free_port, wait_until

RABBIT_BIN = "/usr/lib/rabbitmq/bin"
START_TIMEOUT = 150.0


def available():
    """True when Debian's rabbitmq-server and its MQTT plugin are here."""
    return (os.path.exists(os.path.join(RABBIT_BIN, "rabbitmq-server"))
            and shutil.which("epmd") is not None)


class RabbitCluster:
    def __init__(self, workdir, nodes=3):
        self.dir = os.path.join(workdir, "rabbit")
        os.makedirs(self.dir, exist_ok=True)
        self.epmd_port = free_port()
        self.cookie = "MQLITE%d" % os.getpid()
        self.n = nodes
        self.names = ["rabbit%d@localhost" % (i + 1) for i in range(nodes)]
        self.mqtt_ports = [free_port() for _ in range(nodes)]
        self.amqp_ports = [free_port() for _ in range(nodes)]
        self.dist_ports = [free_port() for _ in range(nodes)]
        self.procs = [None] * nodes
        self.epmd = None
        for i in range(nodes):
            self._write_node(i)

    # -- set-up ---------------------------------------------------------

    def _node_dir(self, i):
        return os.path.join(self.dir, "n%d" % (i + 1))

    def _write_node(self, i):
        d = self._node_dir(i)
        os.makedirs(d, exist_ok=True)
        cookie = os.path.join(d, ".erlang.cookie")
        with open(cookie, "w") as f:
            f.write(self.cookie)
        os.chmod(cookie, 0o400)
        peers = "".join(
            "cluster_formation.classic_config.nodes.%d = %s\n" % (j + 1, n)
            for j, n in enumerate(self.names))
        with open(os.path.join(d, "rabbitmq.conf"), "w") as f:
            f.write("listeners.tcp.default = %s:%d\n"
                    "mqtt.listeners.tcp.default = %s:%d\n"
                    "loopback_users = none\n"
                    "cluster_formation.peer_discovery_backend = "
                    "classic_config\n%s"
                    "log.file.level = info\n"
                    "log.console = false\n"
                    % (HOST, self.amqp_ports[i], HOST, self.mqtt_ports[i],
                       peers))
        with open(os.path.join(d, "enabled_plugins"), "w") as f:
            f.write("[rabbitmq_mqtt].\n")

    def _env(self, i):
        d = self._node_dir(i)
        env = dict(os.environ)
        env.update({
            "HOME": d,
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": HOST,
            "RABBITMQ_NODENAME": self.names[i],
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_DIST_PORT": str(self.dist_ports[i]),
            "RABBITMQ_MNESIA_BASE": os.path.join(d, "data"),
            "RABBITMQ_LOG_BASE": os.path.join(d, "log"),
            "RABBITMQ_CONFIG_FILE": os.path.join(d, "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(d,
                                                          "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(d, "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(d,
                                                          "enabled_plugins"),
            "RABBITMQ_PID_FILE": os.path.join(d, "pid"),
        })
        env.pop("NOTIFY_SOCKET", None)
        return env

    def _start_epmd(self):
        env = dict(os.environ, ERL_EPMD_ADDRESS=HOST)
        self.epmd = subprocess.Popen(
            ["epmd", "-port", str(self.epmd_port)], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

    def start_node(self, i):
        log = open(os.path.join(self._node_dir(i), "console.log"), "ab")
        self.procs[i] = subprocess.Popen(
            [os.path.join(RABBIT_BIN, "rabbitmq-server")], env=self._env(i),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()

    def wait_node(self, i, timeout=START_TIMEOUT):
        """Waits until node i answers an MQTT CONNECT with CONNACK 0."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[i].poll() is not None:
                break
            if self.mqtt_ready(i):
                return
            time.sleep(1)
        raise AssertionError("rabbit node %d did not start:\n%s"
                             % (i + 1, self.log_tail(i)))

    def mqtt_ready(self, i):
        import socket
        try:
            # A bare probe first: a refused Client() would leave its socket
            # to the garbage collector (a ResourceWarning per second).
            socket.create_connection((HOST, self.mqtt_ports[i]), 1).close()
            c = Client(self.mqtt_ports[i], timeout=5)
        except OSError:
            return False
        try:
            c.connect("probe-ready-%d" % i)
            c.disconnect()
            return True
        except (Closed, OSError, AssertionError):
            return False
        finally:
            c.abort()

    def routes_across(self):
        """True when a message published on every other node reaches a
        subscriber on node 1: the nodes form one cluster."""
        sub = None
        try:
            sub = Client(self.mqtt_ports[0], timeout=5)
            sub.connect("probe-sub")
            sub.subscribe([("probe/#", 1)])
            for i in range(1, self.n):
                c = Client(self.mqtt_ports[i], timeout=5)
                c.connect("probe-pub-%d" % i)
                c.publish("probe/%d" % i, b"x", qos=1)
                c.disconnect()
                c.abort()
            got = set()
            for _ in range(self.n - 1):
                got.add(sub.recv_publish(timeout=5).topic)
            return len(got) == self.n - 1
        except (Closed, OSError, AssertionError):
            return False
        finally:
            if sub is not None:
                sub.abort()

    def start(self):
        """Starts every node; node 1 first, the others join it."""
        self._start_epmd()
        wait_until(lambda: self._epmd_up(), timeout=10)
        self.start_node(0)
        self.wait_node(0)
        for i in range(1, self.n):
            self.start_node(i)
        for i in range(1, self.n):
            self.wait_node(i)
        if not wait_until(self.routes_across, timeout=60, interval=1):
            raise AssertionError("the nodes did not form one cluster:\n%s"
                                 % self.log_tail(1))

    def _epmd_up(self):
        import socket
        try:
            socket.create_connection((HOST, self.epmd_port), 1).close()
            return True
        except OSError:
            return False

    # -- faults and teardown -------------------------------------------

    def kill(self, i):
        """SIGKILLs node i and everything it started."""
        p = self.procs[i]
        if p is None:
            return
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=10)
        self.procs[i] = None

    def stop(self):
        for i in range(self.n):
            self.kill(i)
        if self.epmd is not None:
            try:
                os.killpg(self.epmd.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.epmd.wait(timeout=10)
            self.epmd = None
        # A node killed while it started may have spawned helpers that left
        # its session: `epmd -daemon` (which erl runs at every start, and
        # which stays if it finds the private port free once ours is gone),
        # erl_child_setup. They carry the private epmd port in their
        # environment: kill every such process, until none is left.
        for _ in range(10):
            strays = self._strays()
            if not strays:
                break
            for pid in strays:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)

    def _strays(self):
        """Pids of live processes with this cluster's ERL_EPMD_PORT."""
        mark = b"ERL_EPMD_PORT=%d" % self.epmd_port
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    env = f.read().split(b"\0")
                with open("/proc/%s/stat" % d, "rb") as f:
                    zombie = f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
            except OSError:
                continue
            if mark in env and not zombie:
                pids.append(int(d))
        return pids

    def log_tail(self, i, lines=40):
        out = []
        for name in ("console.log",):
            p = os.path.join(self._node_dir(i), name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    out += f.read().splitlines()[-lines:]
        logdir = os.path.join(self._node_dir(i), "log")
        if os.path.isdir(logdir):
            for name in sorted(os.listdir(logdir)):
                with open(os.path.join(logdir, name),
                          errors="replace") as f:
                    out += f.read().splitlines()[-lines:]
        return "\n".join(out)
