# SPDX-License-Identifier: Apache-2.0
"""Acknowledge = durable, shown on the system calls.

kill -9 keeps the page cache, so no kill test can tell synchronous=FULL from
OFF. This test runs the daemon under strace -f and reads the order of the
real system calls instead:

- durability full (the default): every PUBACK (QoS 1), PUBREC (QoS 2),
  and SUBACK and UNSUBACK of a persistent session written to a client
  socket comes after the WAL frames holding that message (or subscription
  list) were written, the commit frame of their transaction included, and
  after an fsync or fdatasync of the WAL that started after that commit
  frame and returned before the ack's write was entered;
- durability normal: the ack still follows the commit frame, but no fsync
  or fdatasync of the WAL starts between the commit frame and the ack.

How the trace is read. strace -f writes one line per event in the order it
handles them; an event of one thread that caused an event of another (the
store thread's eventfd write, then the loop's write of the ack) is
handled first, so line order is a valid order of the calls. A call another
thread interrupted is split into 'NAME(args <unfinished ...>' and
'<... NAME resumed>) = RET'; a call's entry is its first line, its exit the
line holding its return value. -xx prints every byte of a buffer as \\xHH
and -s is large, so WAL pages and socket writes are read back byte-exact.

WAL writes are cut into frames by offset (32-byte WAL header, then frames
of 24-byte header + page), whether SQLite writes header and page apart or
together, and whatever the WAL restarts. A frame header with a non-zero
"database size" field is a commit frame. Every publish carries a unique
marker in its payload (a subscription in its filter); the first frame
holding the marker is where its transaction wrote it, and the first commit
frame at or after it in the same thread's frame sequence is its commit.
An UNSUBSCRIBE leaves no text of its own: filters are removed in order,
and the first saved JSON array of the session's filters holding only later
filters is where it was saved.
Socket writes are taken per client connection, cut to the bytes the call
returned, concatenated and parsed as MQTT packets, so several acks in one
write and an ack split over two writes are both handled; an ack is dated by
the entry of the write holding its first byte.

The test checks every ack it expects (all of them must appear, so it cannot
pass on an empty trace) and that every marker was seen in a WAL write.
strace needs ptrace; where ptrace is refused the test fails and says so.
LeakSanitizer cannot run under ptrace, so an ASan build runs with
detect_leaks=0 here (the rest of ASan and UBSan stay on).
"""

import bisect
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import unittest

from mqlite_harness import (PUBACK, PUBCOMP, PUBREC, PUBREL, SUBACK,
                            UNSUBACK, Broker, E2ETestCase, ack_pkt,
                            publish_pkt, subscribe_pkt, unsubscribe_pkt)
from mqtt5_util import connect_v5, publish5

STRACE = shutil.which("strace") or "/usr/bin/strace"
SEND_CALLS = ("write", "writev", "sendto", "sendmsg", "send")
WRITE_CALLS = ("pwrite64", "pwrite", "write")
SYNC_CALLS = ("fsync", "fdatasync")
TRACED = ("pwrite64,pwritev,pwritev2,write,writev,sendto,sendmsg,"
          "fsync,fdatasync,sync_file_range")
WAL_HDR = 32            # bytes of the WAL file header
FRAME_HDR = 24          # bytes of a WAL frame header


# ---------------------------------------------------------------------------
# Reading strace -f -ttt -yy -xx output.

LINE_RE = re.compile(r"^(\d+)\s+\d+\.\d+\s+(.*)$")
RESUMED_RE = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
CALL_RE = re.compile(r"^(\w+)\((.*)$")
FD_RE = re.compile(r"^\s*(\d+)<(TCP(?:v6)?:\[[^\]]*\]|[^>]*)>")
STR_RE = re.compile(r'"((?:[^"\\]|\\.)*)"(\.\.\.)?')
IOV_RE = re.compile(r'iov_base="((?:[^"\\]|\\.)*)"(\.\.\.)?')
RET_RE = re.compile(r"\)\s*=\s*(-?\d+|\?)(?:\s+\w+(?:\s+\(.*\))?)?\s*$")
PWRITE_TAIL_RE = re.compile(r"^\s*,\s*(\d+)\s*,\s*(\d+)")
PEER_RE = re.compile(r"->(?:\[[^\]]*\]|[0-9.]+):(\d+)\]$")
UNFINISHED = " <unfinished ...>"
ESCAPES = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, "a": 7, "b": 8,
           "e": 27, "\\": 92, '"': 34, "'": 39, "?": 63}


def unescape(s):
    """Bytes of a string as strace prints it (\\xHH, octal, C escapes)."""
    out = bytearray()
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c != "\\" or i + 1 >= n:
            out += c.encode("latin-1", "replace")
            i += 1
            continue
        e = s[i + 1]
        if e == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        elif e in "01234567":
            j = i + 1
            while j < n and j < i + 4 and s[j] in "01234567":
                j += 1
            out.append(int(s[i + 1:j], 8) & 0xFF)
            i = j
        else:
            out.append(ESCAPES.get(e, ord(e)))
            i += 2
    return bytes(out)


class Call:
    """One system call: entry and exit are line numbers in the trace."""

    __slots__ = ("tid", "name", "entry", "exit", "ret", "path", "data",
                 "truncated", "offset")

    def __init__(self, tid, name, entry):
        self.tid = tid
        self.name = name
        self.entry = entry
        self.exit = None        # None: never returned in the trace
        self.ret = None
        self.path = None        # what -yy says the descriptor is
        self.data = None        # the buffer written, for write calls
        self.truncated = False
        self.offset = None      # pwrite64

    def done(self):
        """Line at which the call had returned (its entry if it never
        did: the conservative choice is made by the callers)."""
        return self.exit if self.exit is not None else self.entry

    def sent(self):
        """The bytes the call actually wrote (its return value)."""
        if self.data is None:
            return b""
        if self.ret is None:
            return self.data
        return self.data[:self.ret] if self.ret > 0 else b""

    def __repr__(self):
        return "<%s tid %d lines %s-%s %s ret %s>" % (
            self.name, self.tid, self.entry, self.exit, self.path, self.ret)


def _decode_args(call, args):
    m = FD_RE.match(args)
    if m:
        call.path = unescape(m.group(2)).decode("utf-8", "replace")
    if call.name in ("writev", "sendmsg"):
        parts = list(IOV_RE.finditer(args))
    else:
        parts = list(STR_RE.finditer(args))[:1]
    if parts:
        call.data = b"".join(unescape(p.group(1)) for p in parts)
        call.truncated = any(p.group(2) for p in parts)
        if call.name in ("pwrite64", "pwrite"):
            t = PWRITE_TAIL_RE.match(args[parts[0].end():])
            if t:
                call.offset = int(t.group(2))


def _ret(text):
    m = RET_RE.search(text)
    if not m or m.group(1) == "?":
        return None
    return int(m.group(1))


def parse_trace(lines):
    """Calls of the traced names, in order of entry."""
    calls = []
    pending = {}
    for idx, line in enumerate(lines):
        m = LINE_RE.match(line.rstrip("\n"))
        if not m:
            continue
        tid, rest = int(m.group(1)), m.group(2)
        r = RESUMED_RE.match(rest)
        if r:
            call = pending.pop(tid, None)
            if call is not None and call.name == r.group(1):
                call.exit = idx
                call.ret = _ret(r.group(2))
            continue
        c = CALL_RE.match(rest)
        if not c:
            continue
        call = Call(tid, c.group(1), idx)
        body = c.group(2)
        if body.endswith(UNFINISHED):
            args = body[:-len(UNFINISHED)]
            pending[tid] = call
        else:
            rm = RET_RE.search(body)
            args = body[:rm.start()] if rm else body
            call.exit = idx
            call.ret = _ret(body)
        _decode_args(call, args)
        calls.append(call)
    return calls


class Frame:
    """One WAL frame as a thread wrote it."""

    __slots__ = ("tid", "offset", "commit", "hdr_call", "page", "page_call")

    def __init__(self, tid, offset, commit, hdr_call):
        self.tid = tid
        self.offset = offset
        self.commit = commit
        self.hdr_call = hdr_call
        self.page = bytearray()
        self.page_call = None   # last write into the frame's page

    def written(self):
        """Line by which the whole frame had been written."""
        return (self.page_call or self.hdr_call).done()


def wal_frames(calls, wal_path, page_size):
    """Frames of the WAL file at wal_path, per writing thread, in order.
    Returns {tid: [Frame...]}."""
    fsz = FRAME_HDR + page_size
    frames, cur = {}, {}
    for call in calls:
        if call.path != wal_path or call.name not in WRITE_CALLS or \
                call.data is None or call.ret is None or call.ret < 0:
            continue
        off = call.offset if call.offset is not None else -1
        if off < 0:
            continue
        data = call.sent()
        p, end = off, off + len(data)
        while p < end:
            if p < WAL_HDR:
                p = WAL_HDR
                continue
            fstart = WAL_HDR + (p - WAL_HDR) // fsz * fsz
            if p == fstart:
                if p + FRAME_HDR > end:
                    break
                hdr = data[p - off:p - off + FRAME_HDR]
                fr = Frame(call.tid, p,
                           int.from_bytes(hdr[4:8], "big") != 0, call)
                frames.setdefault(call.tid, []).append(fr)
                cur[call.tid] = fr
                p += FRAME_HDR
                continue
            stop = min(end, fstart + fsz)
            fr = cur.get(call.tid)
            if fr is not None and fr.offset == fstart:
                fr.page += data[p - off:stop - off]
                fr.page_call = call
            p = stop
    return frames


def commits_of(frames, marker_re, key_of=None):
    """{marker: (frame holding it first, its commit frame or None)}; the
    marker is the text marker_re matched, or key_of(match)."""
    first = {}
    for tid, frs in frames.items():
        for i, fr in enumerate(frs):
            for m in marker_re.finditer(bytes(fr.page)):
                key = key_of(m) if key_of else m.group(0)
                if key in first and first[key][0].written() <= \
                        fr.written():
                    continue
                commit = next((f for f in frs[i:] if f.commit), None)
                first[key] = (fr, commit)
    return first


def socket_packets(calls, peer_port):
    """MQTT packets the daemon wrote to the connection whose peer is
    peer_port: [(type, body, line of entry of the write holding the first
    byte)]."""
    stream = bytearray()
    starts, lines = [], []
    for call in calls:
        if call.name not in SEND_CALLS or not call.path:
            continue
        m = PEER_RE.search(call.path)
        if not m or int(m.group(1)) != peer_port:
            continue
        data = call.sent()
        if data:
            starts.append(len(stream))
            lines.append(call.entry)
            stream += data
    out, i = [], 0
    while i + 2 <= len(stream):
        n, mult, j = 0, 1, i + 1
        while True:
            if j >= len(stream):
                return out
            c = stream[j]
            n += (c & 0x7F) * mult
            mult *= 128
            j += 1
            if not c & 0x80:
                break
        if j + n > len(stream):
            break
        line = lines[bisect.bisect_right(starts, i) - 1]
        out.append((stream[i] >> 4, bytes(stream[j:j + n]), line))
        i = j + n
    return out


def check_acks(calls, acks, first, wal_path, full):
    """Problems found for acks [(what, marker, ack line)]; first is the
    commits_of() result. full: an fsync of the WAL must separate commit
    frame and ack; else none may start between them."""
    syncs = sorted((c for c in calls if c.name in SYNC_CALLS and
                    c.path == wal_path), key=lambda c: c.entry)
    entries = [c.entry for c in syncs]
    # Earliest return among the syncs entered at or after position i.
    min_exit = [float("inf")] * (len(syncs) + 1)
    for i in range(len(syncs) - 1, -1, -1):
        ex = syncs[i].exit if syncs[i].exit is not None else float("inf")
        min_exit[i] = min(ex, min_exit[i + 1])
    problems = []
    for what, marker, ack in acks:
        got = first.get(marker)
        if got is None:
            problems.append("%s: %r never seen in a WAL write"
                            % (what, marker))
            continue
        frame, commit = got
        if commit is None:
            problems.append("%s: %r written to the WAL (line %d) but no "
                            "commit frame follows" % (what, marker,
                                                      frame.written()))
            continue
        cline = commit.written()
        if cline >= ack:
            problems.append("%s: acked (line %d) before its commit frame "
                            "was written (line %d)" % (what, ack, cline))
            continue
        i = bisect.bisect_right(entries, cline)
        if full and not min_exit[i] < ack:
            problems.append("%s: no fsync/fdatasync of the WAL between its "
                            "commit frame (line %d) and the ack (line %d)"
                            % (what, cline, ack))
        elif not full:
            j = bisect.bisect_left(entries, ack)
            if j > i:
                problems.append("%s: durability normal, yet an fsync of "
                                "the WAL (line %d) sits between its commit "
                                "frame (line %d) and the ack (line %d)"
                                % (what, syncs[i].entry, cline, ack))
    return problems


# ---------------------------------------------------------------------------
# The daemon under strace.

class TracedBroker(Broker):
    """The harness broker with its command prefixed by strace."""

    def __init__(self, workdir, trace_path, **kw):
        self.trace_path = trace_path
        Broker.__init__(self, workdir, **kw)

    def command(self):
        return [STRACE, "-f", "-ttt", "-yy", "-xx", "-s", "1048576",
                "-e", "trace=" + TRACED, "-o", self.trace_path] + \
            Broker.command(self)

    def daemon_pid(self):
        """The traced daemon: strace's child."""
        try:
            with open("/proc/%d/task/%d/children" % (self.pid, self.pid)) \
                    as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            return None
        return kids[0] if kids else None

    def stop_traced(self, timeout=60.0):
        """SIGTERM to the daemon (not to strace, which would detach), then
        waits for strace to end with the daemon's status."""
        if self.proc is None:
            return None
        pid = self.daemon_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        return self.stop()


def strace_works():
    """None when strace can trace a child here, else why not."""
    if not os.access(STRACE, os.X_OK):
        return "strace not installed (apt-get install strace)"
    r = subprocess.run([STRACE, "-f", "-o", os.devnull, "/bin/true"],
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        return "'strace -f /bin/true' failed with status %d (ptrace " \
            "refused? in a container: --cap-add SYS_PTRACE): %s" % \
            (r.returncode, r.stderr.decode(errors="replace").strip())
    return None


def windows(total, sizes):
    """Splits range(total) into consecutive runs of the given sizes,
    cycling: [[0], [1, 2], ...]."""
    out, i, k = [], 0, 0
    while i < total:
        n = min(sizes[k % len(sizes)], total - i)
        out.append(list(range(i, i + n)))
        i += n
        k += 1
    return out


class TestFsyncOrder(E2ETestCase):
    """The order of WAL writes, WAL fsyncs and acks on the system calls."""

    needs_db = True
    auto_start = False
    N_QOS1 = 150
    N_QOS2 = 40
    N_SUBS = 12
    ACK_TIMEOUT = 60.0

    def setUp(self):
        E2ETestCase.setUp(self)
        why = strace_works()
        if why:
            self.fail("this test needs strace with ptrace allowed: %s" % why)
        self.token = "%08x" % random.getrandbits(32)

    def tearDown(self):
        for br in self.brokers:
            if isinstance(br, TracedBroker) and br.running():
                br.stop_traced()
        E2ETestCase.tearDown(self)

    def start_traced(self, durability, **database):
        trace = os.path.join(self.workdir, "strace.txt")
        env = {"ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") +
                                ":detect_leaks=0").lstrip(":")}
        br = TracedBroker(self.workdir, trace, name="broker", env=env,
                          database=dict(database, durability=durability))
        self.brokers.append(br)
        br.start(wait=False)
        br.wait_ready(tries=600, interval=0.05)
        return br

    # -- traffic --------------------------------------------------------
    def qos_traffic(self, br, qos, n, sizes, tag, noise=None, v5=False):
        """n publishes of qos in pipelined windows; returns the client's
        local port and {packet id: marker}. With noise, a client that
        sends QoS 0 publishes (lazy work) before each window; their count
        is added to self.n_qos0. v5: the client speaks MQTT 5.0."""
        cid = "fsync-%s-%s" % (tag, self.token)
        if v5:
            c = self.client(br, connect=False)
            self.assertEqual(connect_v5(c, cid).reason, 0)
        else:
            c = self.client(br, client_id=cid)
        pub = publish5 if v5 else publish_pkt
        expect = {}
        for win in windows(n, sizes):
            if noise is not None:
                noise.send(b"".join(
                    publish_pkt("fsync/q0/%d" % (self.n_qos0 + k),
                                "q0-%s" % self.token, 0)
                    for k in range(3)))
                self.n_qos0 += 3
            data = b""
            for i in win:
                pid = i + 1
                marker = "fsync%s-%s-%05d" % (tag, self.token, i)
                expect[pid] = marker.encode()
                data += pub("fsync/%s/%d" % (tag, i),
                            "{\"m\":\"%s;\"}" % marker, qos, pid=pid)
            c.send(data, timeout=self.ACK_TIMEOUT)
            ack = PUBACK if qos == 1 else PUBREC
            for i in win:
                p = c.expect(ack, self.ACK_TIMEOUT)
                self.assertEqual(p.pid, i + 1)
            if qos == 2:
                c.send(b"".join(ack_pkt(PUBREL, i + 1) for i in win))
                for i in win:
                    self.assertEqual(c.expect(PUBCOMP,
                                              self.ACK_TIMEOUT).pid, i + 1)
        port = c.sock.getsockname()[1]
        c.disconnect()
        return port, expect

    def sub_traffic(self, br, n, sizes):
        """n SUBSCRIBEs of a persistent session, pipelined, then n - 1
        UNSUBSCRIBEs. Returns the local port, {SUBACK packet id: marker}
        and {UNSUBACK packet id: subscription set key}."""
        c = self.client(br, client_id="fsync-sub-%s" % self.token,
                        clean=False)
        expect, unexpect = {}, {}
        for win in windows(n, sizes):
            data = b""
            for i in win:
                marker = "fsyncsub-%s-%05d" % (self.token, i)
                expect[i + 1] = marker.encode()
                data += subscribe_pkt(i + 1, [(marker + "/#", 1)])
            c.send(data, timeout=self.ACK_TIMEOUT)
            for i in win:
                p = c.expect(SUBACK, self.ACK_TIMEOUT)
                self.assertEqual((p.pid, p.codes), (i + 1, [1]))
        # Unsubscribed in order, the last one kept.
        for win in windows(n - 1, sizes):
            data = b""
            for i in win:
                unexpect[1000 + i] = b"unsubscribed-%05d" % i
                data += unsubscribe_pkt(1000 + i, [
                    "fsyncsub-%s-%05d/#" % (self.token, i)])
            c.send(data, timeout=self.ACK_TIMEOUT)
            for i in win:
                p = c.expect(UNSUBACK, self.ACK_TIMEOUT)
                self.assertEqual(p.pid, 1000 + i)
        port = c.sock.getsockname()[1]
        c.disconnect()
        return port, expect, unexpect

    # -- the check ------------------------------------------------------
    def run_and_check(self, durability, kinds=("q1", "q2", "sub"),
                      v5=False, **database):
        """Runs the traffic of kinds under strace and checks every ack."""
        full = durability == "full"
        br = self.start_traced(durability, **database)
        runs = []
        noise = None
        self.n_qos0 = 0
        if "q0" in kinds:
            noise = self.client(br, client_id="fsync-q0-%s" % self.token)
        if "q1" in kinds:
            runs.append(self.qos_traffic(br, 1, self.N_QOS1,
                                         [1, 1, 2, 5, 20, 3, 40, 1, 8],
                                         "q1", noise, v5) +
                        (PUBACK, "PUBACK"))
        if "q2" in kinds:
            runs.append(self.qos_traffic(br, 2, self.N_QOS2,
                                         [1, 4, 10, 1, 2], "q2", noise, v5) +
                        (PUBREC, "PUBREC"))
        if noise is not None:
            noise.disconnect()
        if "sub" in kinds:
            port, subs, unsubs = self.sub_traffic(br, self.N_SUBS,
                                                  [1, 1, 5, 2])
            runs.append((port, subs, SUBACK, "SUBACK"))
            runs.append((port, unsubs, UNSUBACK, "UNSUBACK"))
        rc = br.stop_traced()
        self.assertEqual(rc, 0, "daemon under strace exited with %s" % rc)

        # Everything acked is in the database, read back by sqlite3; the
        # QoS 0 work too, committed by the stop at the latest.
        if noise is not None:
            self.assertGreater(self.n_qos0, 0)
            self.assertEqual(br.count("payload = 'q0-%s'" % self.token),
                             self.n_qos0)
        for tag, n in (("q1", self.N_QOS1), ("q2", self.N_QOS2)):
            if tag in kinds:
                self.assertEqual(br.count("payload like '%%fsync%s-%s-%%'"
                                          % (tag, self.token)), n)
        page_size = br.scalar("pragma page_size")

        with open(br.trace_path, encoding="latin-1") as f:
            lines = f.readlines()
        calls = parse_trace(lines)
        wal = br.db_path + "-wal"
        frames = wal_frames(calls, wal, page_size)
        wal_writes = [c for c in calls if c.path == wal and
                      c.name in WRITE_CALLS]
        self.assertTrue(wal_writes, "no write to %s in the trace" % wal)
        self.assertFalse([c for c in wal_writes if c.truncated],
                         "strace cut a WAL write short (-s too small)")
        marker_re = re.compile(
            ("fsync(?:q1|q2|sub)-%s-\\d{5}" % self.token).encode())
        first = commits_of(frames, marker_re)
        # A session's subscriptions are saved as one JSON array; the
        # UNSUBSCRIBE of filter i is saved by the first array left with
        # filters above i only (one transaction may hold several saves).
        subs_re = re.compile(
            ('\\[(?:\\{"filter":"fsyncsub-%s-\\d{5}/#","qos":1\\},?)*\\]'
             % self.token).encode())
        sets = commits_of(frames, subs_re, lambda m: frozenset(
            int(x) for x in re.findall(rb"-(\d{5})/#", m.group(0))))
        for i in range(self.N_SUBS - 1):
            left = [v for k, v in sets.items() if k and min(k) > i]
            if left:
                first[b"unsubscribed-%05d" % i] = min(
                    left, key=lambda v: v[0].written())

        acks = []
        for port, expect, ptype, what in runs:
            seen = {}
            for t, body, line in socket_packets(calls, port):
                if t != ptype:
                    continue
                pid = int.from_bytes(body[:2], "big")
                self.assertNotIn(pid, seen, "%s %d written twice"
                                 % (what, pid))
                seen[pid] = line
            self.assertEqual(sorted(seen), sorted(expect),
                             "the %ss in the trace are not the %d "
                             "expected" % (what, len(expect)))
            for pid, marker in expect.items():
                acks.append(("%s %d (%s)" % (what, pid, marker.decode()),
                             marker, seen[pid]))
        self.assertEqual(len(acks), sum(len(r[1]) for r in runs))
        self.assertEqual(len(set(m for _, m, _ in acks)), len(acks))
        self.assertGreaterEqual(len(acks), min(self.N_SUBS, self.N_QOS2))
        missing = [m for _, m, _ in acks if m not in first]
        self.assertFalse(missing, "%d markers never seen in a WAL write, "
                         "e.g. %r" % (len(missing), missing[:3]))

        if not full:
            # Precondition of the check: no checkpoint (which syncs the
            # WAL by design, off the ack path) ran while clients waited.
            begin = min(first[m][0].hdr_call.entry for _, m, _ in acks)
            end = max(a[2] for a in acks)
            ckpt = [c for c in calls if c.path == br.db_path and
                    c.name in WRITE_CALLS and begin < c.entry < end]
            self.assertFalse(ckpt, "a checkpoint ran during the traffic "
                             "(%d writes to the database file); lower the "
                             "message counts of this test" % len(ckpt))
        problems = check_acks(calls, acks, first, wal, full)
        syncs = len([c for c in calls if c.name in SYNC_CALLS and
                     c.path == wal])
        sys.stderr.write("\nfsync order (%s): %d acks checked, %d WAL "
                         "writes, %d commit frames, %d WAL syncs, %d trace "
                         "lines\n" % (durability, len(acks), len(wal_writes),
                                      sum(f.commit for fr in frames.values()
                                          for f in fr), syncs, len(lines)))
        self.assertFalse(problems, "%d of %d acks break the order, e.g.:\n%s"
                         % (len(problems), len(acks),
                            "\n".join(problems[:10])))

    def test_full_puback_pubrec_follow_wal_fsync(self):
        self.run_and_check("full", ("q1", "q2"))

    def test_full_persistent_suback_unsuback_follow_wal_fsync(self):
        self.run_and_check("full", ("sub",))

    def test_full_ack_window_acks_still_follow_wal_fsync(self):
        # Acks wait up to 20 ms for company; never for less than the sync.
        self.run_and_check("full", ("q1", "q2"), ack_window_ms=20)

    def test_full_acks_after_qos0_still_follow_wal_fsync(self):
        # QoS 0 work waits up to a second for company: the QoS 1/2 work
        # behind it commits at once, synced, and the ack follows.
        self.run_and_check("full", ("q0", "q1", "q2"))

    def test_normal_no_fsync_on_ack_path(self):
        self.run_and_check("normal")

    def test_full_mqtt5_puback_pubrec_follow_wal_fsync(self):
        # The 5.0 acks (reason codes, properties) follow the same order.
        self.run_and_check("full", ("q1", "q2"), v5=True)


class TestTraceReading(unittest.TestCase):
    """The trace reader on strace lines of the forms the live run may or
    may not happen to produce."""

    WAL = "/tmp/x.db-wal"

    @staticmethod
    def hx(data):
        return "".join("\\x%02x" % c for c in data)

    def wal_write(self, tid, data, off, split=False):
        path = self.hx(self.WAL.encode())
        head = "%d 1.0 pwrite64(6<%s>, \"%s\", %d, %d" % (
            tid, path, self.hx(data), len(data), off)
        if split:
            return [head + " <unfinished ...>",
                    "%d 1.1 <... pwrite64 resumed>) = %d" % (tid, len(data))]
        return [head + ") = %d" % len(data)]

    def sync(self, tid):
        return ["%d 1.0 fdatasync(6<%s>) = 0" % (tid,
                                                self.hx(self.WAL.encode()))]

    def send(self, tid, data, ret=None, call="sendto"):
        sock = "12<TCP:[127.0.0.1:1883->127.0.0.1:40000]>"
        ret = len(data) if ret is None else ret
        if call == "writev":
            return ["%d 1.0 writev(%s, [{iov_base=\"%s\", iov_len=%d}, "
                    "{iov_base=\"\", iov_len=0}], 2) = %d"
                    % (tid, sock, self.hx(data), len(data), ret)]
        return ["%d 1.0 sendto(%s, \"%s\", %d, MSG_NOSIGNAL, NULL, 0) = %d"
                % (tid, sock, self.hx(data), len(data), ret)]

    def frame(self, commit, page):
        hdr = (7).to_bytes(4, "big") + (commit).to_bytes(4, "big") + \
            bytes(16)
        return hdr, page.ljust(64, b"\0")

    def build(self, sync_before_ack):
        lines = []
        lines += self.wal_write(2, b"\x37\x7f\x06\x82" + bytes(28), 0)
        h, p = self.frame(0, b"..mk-00001;..mk-00002;")
        lines += self.wal_write(2, h, 32)
        lines += self.wal_write(2, p, 56, split=True)
        h, p = self.frame(5, b"mk-00003;")
        lines += self.wal_write(2, h + p, 120)     # header and page at once
        if sync_before_ack:
            lines += self.sync(2)
        # Two PUBACKs in one write, the third split over two writes, the
        # second of which first fails (EAGAIN, nothing written).
        lines += self.send(1, b"\x40\x02\x00\x01\x40\x02\x00\x02\x40")
        lines.append("1 1.0 sendto(12<TCP:[127.0.0.1:1883->127.0.0.1:40000]>"
                     ", \"\\x02\", 1, MSG_NOSIGNAL, NULL, 0) = -1 EAGAIN "
                     "(Resource temporarily unavailable)")
        lines += self.send(1, b"\x02\x00\x03\x90\x03", ret=3, call="writev")
        if not sync_before_ack:
            lines += self.sync(2)
        return lines

    def check(self, lines, full):
        calls = parse_trace(lines)
        frames = wal_frames(calls, self.WAL, 64)
        first = commits_of(frames, re.compile(rb"mk-\d{5}"))
        pk = socket_packets(calls, 40000)
        self.assertEqual([(t, b) for t, b, _ in pk],
                         [(PUBACK, b"\0\1"), (PUBACK, b"\0\2"),
                          (PUBACK, b"\0\3")])
        acks = [("a%d" % i, b"mk-%05d" % i, pk[i - 1][2])
                for i in (1, 2, 3)]
        return check_acks(calls, acks, first, self.WAL, full)

    def test_reader(self):
        self.assertEqual(unescape(r"a\x00\n\\\"\177"), b"a\0\n\\\"\x7f")
        self.assertEqual(self.check(self.build(True), True), [])
        self.assertEqual(len(self.check(self.build(False), True)), 3)
        self.assertEqual(self.check(self.build(False), False), [])
        self.assertEqual(len(self.check(self.build(True), False)), 3)
        # An ack before the commit frame is caught in both modes.
        lines = self.build(True)
        acks_first = lines[-3:] + lines[:-3]
        self.assertEqual(len(self.check(acks_first, True)), 3)
        self.assertEqual(len(self.check(acks_first, False)), 3)


if __name__ == "__main__":
    unittest.main()
