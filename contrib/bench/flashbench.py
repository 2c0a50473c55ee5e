#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2024 The mqlite authors.
#
# flashbench.py MQLITE [MQBENCH]: bytes and flushes mqlite writes to storage
# per stored message, the figure that wears out an SD card.
#
# DESIGN
#
# Each row starts a fresh daemon (a new database in a temporary directory,
# a free 127.0.0.1 port), runs a load, stops it with SIGTERM and reads the
# daemon's whole-life rusage from wait4(): ru_oublock counts the 512-byte
# blocks the process made the kernel write (WAL, database, checkpoints and
# the final one included). A daemon started and stopped idle is measured
# the same way first and subtracted. Flushes are the daemon's own
# mqlite_storage_fsyncs_total, scraped just before the stop.
#
# Paced rows: DEVICES raw-socket clients publish in turn so that the total
# is RATE msgs/s, for SECONDS; QoS 1 devices wait for each PUBACK before
# their next publish (a device sending once every DEVICES/RATE s never has
# two in flight at these rates), so a commit holds at most DEVICES
# messages whatever ack_window_ms is. FLASH_ACK_WINDOWS (50,100,200) adds
# QoS 1 rows at 100 msgs/s per window, 4 KB and 1 KB pages; for the
# largest window FLASH_INFLIGHT (4; 1 turns them off) adds two rows whose
# devices keep up to that many publishes in flight, still paced, so a
# window can gather more than DEVICES messages. msg/cmt is stored messages
# per commit (mqlite_store_commits_total, the idle run's subtracted); ack
# p50/p99 the PUBACK latency seen by the devices, in ms. The flat-out rows
# run mqbench (-n messages, 8 connections, QoS 1 with 20 in flight each).
# The logical size of a row is what the table keeps: topic + payload +
# client id + 18 bytes of fixed fields (id, received_ms, qos, retain).
#
# Floor: after each row, a child process on the same filesystem makes as
# many flushes as the row's flushed commits (its commits or its flushes,
# whichever is fewer, the idle row's subtracted), each after appending a
# share of the rows' logical bytes to a plain file: what the best possible
# writer that keeps the same promise (every acknowledged message flushed
# before its ack, as often as mqlite flushed) would write. Its whole-life
# ru_oublock per message is the "floor B/msg" column. The kernel writes
# whole pages, so it cannot fall below one filesystem page per flush
# (4,096 bytes / messages per commit); a target below the floor of its
# row cannot be met by any store at that flush rate.
#
# Block device: where the bench may attach a loop device and mount (root,
# losetup, mkfs.ext4; FLASH_BLOCKDEV=0 turns it off), each row's database
# lives on a fresh 512 MB ext4 image of its own, and the sectors its loop
# device wrote (/sys/block/loopN/stat) from the mount to the unmount are
# the "dev B/msg" column: the filesystem's journal and metadata included,
# an idle row subtracted. Otherwise the column reads "-" and the first
# line says why.
#
# Output: one line per row, then nothing else; exit 1 when a row lost
# messages (rows in the table fewer than sent).

import json
import os
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

FIXED = 18
PAYLOAD = b'{"temp":21.5,"hum":40,"seq":%06d,"status":"ok"}'


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def varint(n):
    out = bytearray()
    while True:
        d = n % 128
        n //= 128
        out.append(d | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mstr(s):
    return len(s).to_bytes(2, "big") + s


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def connect_pkt(cid):
    return packet(0x10, mstr(b"MQTT") + bytes([4, 2, 0, 0]) + mstr(cid))


def publish_pkt(topic, payload, qos, pid):
    body = mstr(topic) + (pid.to_bytes(2, "big") if qos else b"") + payload
    return packet(0x30 | (qos << 1), body)


class BlockDev:
    """A fresh ext4 image on a loop device, mounted at dir/mnt."""

    def __init__(self, workdir):
        self.img = os.path.join(workdir, "fs.img")
        self.mnt = os.path.join(workdir, "mnt")
        self.dev = None
        self.mounted = False
        with open(self.img, "wb") as f:
            f.truncate(512 << 20)
        self.dev = self._run(["losetup", "-f", "--show", self.img]).strip()
        # Nothing left for the kernel to initialise after the mount.
        self._run(["mkfs.ext4", "-q", "-F", "-E",
                   "lazy_itable_init=0,lazy_journal_init=0", self.dev])
        os.mkdir(self.mnt)
        self._run(["mount", self.dev, self.mnt])
        self.mounted = True
        self.start = self.sectors()

    @staticmethod
    def _run(cmd):
        return subprocess.run(cmd, check=True, capture_output=True,
                              text=True, timeout=60).stdout

    def sectors(self):
        name = os.path.basename(self.dev)
        with open("/sys/block/%s/stat" % name) as f:
            return int(f.read().split()[6])

    def close(self):
        """Unmounts and detaches; returns the bytes written since mount."""
        written = None
        if self.mounted:
            self._run(["umount", self.mnt])
            self.mounted = False
            written = (self.sectors() - self.start) * 512
        if self.dev:
            self._run(["losetup", "-d", self.dev])
            self.dev = None
        return written


def blockdev_probe():
    """None when loop-mounted images work here, else the reason."""
    if os.environ.get("FLASH_BLOCKDEV", "1") == "0":
        return "FLASH_BLOCKDEV=0"
    for tool in ("losetup", "mkfs.ext4", "mount"):
        if shutil.which(tool) is None:
            return "no %s" % tool
    with tempfile.TemporaryDirectory(prefix="flashbench.") as wd:
        b = None
        try:
            b = BlockDev(wd)
        except (OSError, subprocess.SubprocessError) as e:
            err = getattr(e, "stderr", None) or str(e)
            return "cannot mount a loop device: %s" % err.strip()
        finally:
            if b is not None:
                b.close()
    return None


class Daemon:
    def __init__(self, binary, workdir, database, dbdir=None):
        self.port = free_port()
        self.mport = free_port()
        self.db = os.path.join(dbdir or workdir, "flash.db")
        cfg = {"listeners": [{"port": self.port, "bind": "127.0.0.1"}],
               "database": dict({"path": self.db}, **database),
               "metrics": {"port": self.mport, "bind": "127.0.0.1"}}
        self.lat = []  # PUBACK latencies (s) of a paced QoS 1 load
        self.conf = os.path.join(workdir, "flash.json")
        with open(self.conf, "w") as f:
            json.dump(cfg, f)
        self.log = open(os.path.join(workdir, "flash.log"), "w")
        self.proc = subprocess.Popen([binary, "-c", self.conf],
                                     stdout=self.log, stderr=self.log)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mqlite did not start")

    def metric(self, name):
        url = "http://127.0.0.1:%d/metrics" % self.mport
        with urllib.request.urlopen(url, timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return int(float(line.split()[1]))
        return 0

    def stop(self):
        """SIGTERM; returns the bytes the daemon wrote in its life."""
        self.proc.send_signal(signal.SIGTERM)
        _, status, ru = os.wait4(self.proc.pid, 0)
        self.proc.returncode = status
        self.log.close()
        return ru.ru_oublock * 512

    def rows(self):
        c = sqlite3.connect(self.db)
        try:
            return c.execute("SELECT count(*), coalesce(sum(length(topic) "
                             "+ length(CAST(payload AS BLOB)) + "
                             "length(client_id)), 0) FROM messages").fetchone()
        finally:
            c.close()


def acks(d, x, waiting, part):
    """Reads x's PUBACKs (4 bytes each), records their latencies."""
    got = x.recv(4096)
    if not got:
        raise RuntimeError("closed")
    part[x] = part.get(x, 0) + len(got)
    while part[x] >= 4 and waiting.get(x):
        part[x] -= 4
        d.lat.append(time.monotonic() - waiting[x].pop(0))
    if not waiting.get(x):
        waiting.pop(x, None)


def paced(d, qos, rate, seconds, devices, inflight=1):
    socks = []
    for i in range(devices):
        s = socket.create_connection(("127.0.0.1", d.port), 10)
        s.sendall(connect_pkt(b"dev%02d" % i))
        if s.recv(4)[:1] != b"\x20":
            raise RuntimeError("no CONNACK")
        s.setblocking(False)
        socks.append(s)
    total = int(rate * seconds)
    start = time.monotonic()
    waiting = {}  # socket: send times of its publishes not yet acked
    part = {}
    del d.lat[:]
    for k in range(total):
        due = start + k / rate
        s = socks[k % devices]
        while True:
            now = time.monotonic()
            wait = due - now
            if wait <= 0 and len(waiting.get(s, ())) < inflight:
                break
            r, _, _ = select.select(list(waiting), [], [],
                                    max(0.0, min(wait, 1.0)) if wait > 0
                                    else 1.0)
            for x in r:
                acks(d, x, waiting, part)
            if time.monotonic() - due > 30:
                raise RuntimeError("no PUBACK in 30 s")
        topic = b"site/s1/dev/%02d/telemetry" % (k % devices)
        pid = k % 65535 + 1
        s.setblocking(True)
        s.sendall(publish_pkt(topic, PAYLOAD % k, qos, pid))
        s.setblocking(False)
        if qos:
            waiting.setdefault(s, []).append(time.monotonic())
    deadline = time.monotonic() + 30
    while waiting and time.monotonic() < deadline:
        r, _, _ = select.select(list(waiting), [], [], 1.0)
        for x in r:
            acks(d, x, waiting, part)
    for s in socks:
        s.setblocking(True)
        s.sendall(b"\xe0\x00")
        s.close()
    return total


def flat(d, mqbench, n, qos):
    subprocess.run([mqbench, "-h", "127.0.0.1", "-p", str(d.port),
                    "-n", str(n), "-q", str(qos), "-c", "8", "-s", "64",
                    "-w", "20", "-T", "300"], check=True,
                   stdout=subprocess.DEVNULL)
    # QoS 0 rows: wait until they are all committed.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if d.metric("mqlite_store_rows_total") >= n:
            break
        time.sleep(0.2)
    return n


FLOOR_WRITER = r"""
import os, sys
path, flushes, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
done = 0
for i in range(flushes):
    n = total * (i + 1) // flushes - done
    os.write(fd, b"r" * n)
    os.fdatasync(fd)
    done += n
os.close(fd)
"""


def floor_bytes(directory, flushes, total):
    """Bytes an append-and-flush writer writes for total bytes in flushes
    flushes (its whole-life ru_oublock, like the daemon's)."""
    if flushes < 1 or total < 1:
        return 0
    path = os.path.join(directory, "floor.log")
    p = subprocess.Popen([sys.executable, "-c", FLOOR_WRITER, path,
                          str(flushes), str(total)])
    _, status, ru = os.wait4(p.pid, 0)
    os.unlink(path)
    if status != 0:
        raise RuntimeError("floor writer failed")
    return ru.ru_oublock * 512


def run(binary, mqbench, name, database, load, blockdev, idle=(0, 0)):
    with tempfile.TemporaryDirectory(prefix="flashbench.") as wd:
        b = BlockDev(wd) if blockdev else None
        dev = None
        try:
            d = Daemon(binary, wd, database, b.mnt if b else None)
            try:
                sent = load(d)
                time.sleep(0.2)
                fsyncs = d.metric("mqlite_storage_fsyncs_total")
                commits = d.metric("mqlite_store_commits_total")
            finally:
                written = d.stop()
            rows, logical = d.rows()
            floor = floor_bytes(b.mnt if b else wd,
                                min(commits - idle[0], fsyncs - idle[1]),
                                logical + FIXED * rows)
        finally:
            if b is not None:
                dev = b.close()
    return (name, sent, rows, logical, written, fsyncs, commits, dev, d.lat,
            floor)


def quantile_ms(lat, q):
    """The q quantile of the latencies, in ms, or "-" when there are none."""
    if not lat:
        return "-"
    v = sorted(lat)
    return "%.1f" % (1000 * v[min(len(v) - 1, int(q * len(v)))])


def main():
    # Killed: unmount and detach on the way out (the finally clauses).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    binary = sys.argv[1]
    mqbench = sys.argv[2] if len(sys.argv) > 2 else None
    seconds = float(os.environ.get("FLASH_SECONDS", "20"))
    devices = int(os.environ.get("FLASH_DEVICES", "10"))
    only = os.environ.get("FLASH_ROWS", "")
    extra = json.loads(os.environ.get("FLASH_DATABASE", "{}"))
    small = dict(extra, page_size=1024)
    windows = [int(x) for x in os.environ.get(
               "FLASH_ACK_WINDOWS", "50,100,200").split(",") if x]
    inflight = int(os.environ.get("FLASH_INFLIGHT", "4"))
    rows = []
    for qos in (0, 1):
        for rate in (10, 100, 1000):
            rows.append(("QoS %d %d/s" % (qos, rate), dict(extra),
                         lambda d, q=qos, r=rate:
                         paced(d, q, r, seconds, devices)))
        if qos == 1:
            rows.append(("QoS 1 100/s ack_window_ms 20",
                         dict(extra, ack_window_ms=20),
                         lambda d: paced(d, 1, 100, seconds, devices)))
            rows.append(("QoS 1 100/s page_size 1024", dict(small),
                         lambda d: paced(d, 1, 100, seconds, devices)))
            rows.append(("QoS 1 100/s ack 20 page 1024",
                         dict(small, ack_window_ms=20),
                         lambda d: paced(d, 1, 100, seconds, devices)))
            for w in windows:
                for name, db in (("ack_window_ms %d" % w, extra),
                                 ("ack %d page 1024" % w, small)):
                    rows.append(("QoS 1 100/s " + name,
                                 dict(db, ack_window_ms=w),
                                 lambda d: paced(d, 1, 100, seconds,
                                                 devices)))
            if windows and inflight > 1:
                w = max(windows)
                for name, db in (("ack_window_ms %d" % w, extra),
                                 ("ack %d page 1024" % w, small)):
                    rows.append(("QoS 1 100/s %s inflight %d" % (
                                 name, inflight),
                                 dict(db, ack_window_ms=w),
                                 lambda d: paced(d, 1, 100, seconds,
                                                 devices, inflight)))
    if mqbench:
        n = int(os.environ.get("FLASH_FLAT_N", "200000"))
        for qos in (0, 1):
            rows.append(("QoS %d flat out" % qos, dict(extra),
                         lambda d, q=qos: flat(d, mqbench, n, q)))
        rows.append(("QoS 1 flat out page_size 1024", dict(small),
                     lambda d: flat(d, mqbench, n, 1)))
    why = blockdev_probe()
    blockdev = why is None
    print("block device: %s" % ("a fresh loop-mounted ext4 image per row"
                                if blockdev else "not measured (%s)" % why))
    idle_run = run(binary, mqbench, "idle", dict(extra), lambda d: 0,
                   blockdev)
    idle, idle_fsyncs, idle_dev = idle_run[4], idle_run[5], idle_run[7]
    idle_commits = idle_run[6]
    print("idle start+stop: %d bytes written, %d flushes%s" %
          (idle, idle_fsyncs, ", block device %d bytes" % idle_dev
           if blockdev else ""))
    print("%-42s %8s %8s %10s %8s %8s %10s %10s %8s %8s %8s %10s" % (
          "row", "msgs", "row B", "B/msg", "x row", "commits", "flush/msg",
          "dev B/msg", "msg/cmt", "ack p50", "ack p99", "floor B/msg"))
    lost = False
    got = {}
    for name, database, load in rows:
        if only and not [x for x in only.split(",") if x in name]:
            continue
        (_, sent, nrows, logical, written, fsyncs, commits, dev, lat,
         floor) = run(binary, mqbench, name, database, load, blockdev,
                      (idle_commits, idle_fsyncs))
        if nrows < sent:
            lost = True
        per = max(0, written - idle) / max(1, nrows)
        size = logical / max(1, nrows) + FIXED
        floor = floor / max(1, nrows)
        got[name] = (per, per / size, floor, floor / size)
        print("%-42s %8d %8.0f %10.0f %8.2f %8d %10.3f %10s %8.1f %8s %8s"
              " %10.0f%s"
              % (name, nrows, size, per, per / size, commits,
                 max(0, fsyncs - idle_fsyncs) / max(1, nrows),
                 "%.0f" % (max(0, dev - idle_dev) / max(1, nrows))
                 if dev is not None else "-",
                 nrows / max(1, commits - idle_commits),
                 quantile_ms(lat, 0.5), quantile_ms(lat, 0.99), floor,
                 "" if nrows >= sent else "  LOST %d" % (sent - nrows)))
        sys.stdout.flush()
    for name, limit, i, what in (
            ("QoS 0 100/s", 600, 0, "bytes/msg"),
            ("QoS 1 100/s ack_window_ms 20", 700, 0, "bytes/msg"),
            ("QoS 0 flat out", 3, 1, "x row"),
            ("QoS 1 flat out", 3, 1, "x row")):
        if name in got:
            v, f = got[name][i], got[name][i + 2]
            print("Target, %s <= %g %s: %s (%.2f; floor at its flush rate"
                  " %.2f%s)" % (
                      name, limit, what, "met" if v <= limit else "NOT met",
                      v, f, ", below it" if limit < f else ""))
    # Which QoS 1 100/s setting gets there instead, if any.
    meet = [n for n in got if n.startswith("QoS 1 100/s ack")
            and got[n][0] <= 700]
    if [n for n in got if n.startswith("QoS 1 100/s ack")]:
        print("QoS 1 100/s at <= 700 bytes/msg: %s" %
              ("; ".join(meet) if meet else "no row"))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
