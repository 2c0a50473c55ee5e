# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 packets built and read by hand, byte-exact, for the raw-socket
tests (the 3.1.1 ones, and the CONNECT builder both share, are in
mqlite_harness). Property ids and reason codes are those of the 5.0
standard (tables 2-4 and 2-6)."""

import struct
import time

from mqlite_harness import (Closed, CONNACK, PUBACK, PUBCOMP, PUBLISH,
                            PUBREC, PUBREL, SUBACK, UNSUBACK, b,
                            connect_pkt, mstr, packet, varint)

DISCONNECT = 14

AUTH_TYPE = 15

# Property identifiers.
P_PAYLOAD_FORMAT = 0x01
P_MESSAGE_EXPIRY = 0x02
P_CONTENT_TYPE = 0x03
P_SESSION_EXPIRY = 0x11
P_ASSIGNED_ID = 0x12
P_SERVER_KEEPALIVE = 0x13
P_AUTH_METHOD = 0x15
P_AUTH_DATA = 0x16
P_REQUEST_PROBLEM = 0x17
P_WILL_DELAY = 0x18
P_REASON_STRING = 0x1F
P_RECEIVE_MAXIMUM = 0x21
P_TOPIC_ALIAS_MAXIMUM = 0x22
P_TOPIC_ALIAS = 0x23
P_MAXIMUM_QOS = 0x24
P_RETAIN_AVAILABLE = 0x25
P_USER_PROPERTY = 0x26
P_MAXIMUM_PACKET_SIZE = 0x27
P_WILDCARD_AVAILABLE = 0x28
P_SUB_ID_AVAILABLE = 0x29
P_SHARED_AVAILABLE = 0x2A
P_SUBSCRIPTION_ID = 0x0B

_KIND = {0x01: "b", 0x02: "i", 0x03: "s", 0x08: "s", 0x09: "d", 0x0B: "v",
         0x11: "i", 0x12: "s", 0x13: "h", 0x15: "s", 0x16: "d", 0x17: "b",
         0x18: "i", 0x19: "b", 0x1A: "s", 0x1C: "s", 0x1F: "s", 0x21: "h",
         0x22: "h", 0x23: "h", 0x24: "b", 0x25: "b", 0x26: "p", 0x27: "i",
         0x28: "b", 0x29: "b", 0x2A: "b"}


def props(*items):
    """items: (id, value) pairs; returns the property block with its
    length. Values: int, str/bytes, or (name, value) for user props."""
    out = b""
    for pid, val in items:
        k = _KIND[pid]
        out += varint(pid)
        if k == "b":
            out += bytes([val])
        elif k == "h":
            out += struct.pack("!H", val)
        elif k == "i":
            out += struct.pack("!I", val)
        elif k == "v":
            out += varint(val)
        elif k in "sd":
            out += mstr(val)
        elif k == "p":
            out += mstr(val[0]) + mstr(val[1])
    return varint(len(out)) + out


def raw_props(body):
    """A property block of arbitrary bytes (for malformed forms)."""
    return varint(len(body)) + body


def parse_props(data):
    """Returns (dict id -> value or list for user props, bytes used)."""
    n, mult, i = 0, 1, 0
    while True:
        c = data[i]
        n += (c & 0x7F) * mult
        mult *= 128
        i += 1
        if not c & 0x80:
            break
    end = i + n
    out = {}
    while i < end:
        pid = data[i]
        i += 1
        k = _KIND[pid]
        if k == "b":
            v = data[i]
            i += 1
        elif k == "h":
            v = struct.unpack("!H", data[i:i + 2])[0]
            i += 2
        elif k == "i":
            v = struct.unpack("!I", data[i:i + 4])[0]
            i += 4
        elif k == "v":
            v, mult = 0, 1
            while True:
                c = data[i]
                i += 1
                v += (c & 0x7F) * mult
                mult *= 128
                if not c & 0x80:
                    break
        elif k in "sd":
            ln = struct.unpack("!H", data[i:i + 2])[0]
            v = data[i + 2:i + 2 + ln]
            if k == "s":
                v = v.decode("utf-8")
            i += 2 + ln
        else:
            ln = struct.unpack("!H", data[i:i + 2])[0]
            name = data[i + 2:i + 2 + ln].decode()
            i += 2 + ln
            ln = struct.unpack("!H", data[i:i + 2])[0]
            v = (name, data[i + 2:i + 2 + ln].decode())
            i += 2 + ln
            out.setdefault(pid, []).append(v)
            continue
        if pid == P_SUBSCRIPTION_ID:
            # A PUBLISH may carry several: a list, in packet order.
            out.setdefault(pid, []).append(v)
            continue
        out[pid] = v
    return out, end


def connect5(client_id, prop=None, will_prop=None, name="MQTT", level=5,
             **kw):
    """The 5.0 CONNECT: connect_pkt() with both property blocks (empty
    unless given). kw as connect_pkt: clean, keepalive, will = (topic,
    payload, qos, retain), username, password, flags."""
    return connect_pkt(client_id, proto_name=name, level=level,
                       prop=props() if prop is None else prop,
                       will_prop=props() if will_prop is None else will_prop,
                       **kw)


def publish5(topic, payload=b"", qos=0, retain=False, dup=False, pid=None,
             prop=None):
    flags = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = mstr(topic)
    if qos > 0:
        body += struct.pack("!H", 1 if pid is None else pid)
    body += prop if prop is not None else props()
    return packet(PUBLISH, flags, body + b(payload))


def ack5(ptype, pid, reason=None, prop=None):
    body = struct.pack("!H", pid)
    if reason is not None:
        body += bytes([reason])
        if prop is not None:
            body += prop
    return packet(ptype, 2 if ptype == PUBREL else 0, body)


def subscribe5(pid, filters, prop=None):
    """filters: list of (filter, options byte)."""
    body = struct.pack("!H", pid) + (prop if prop is not None else props())
    for flt, opt in filters:
        body += mstr(flt) + bytes([opt])
    return packet(8, 2, body)


def unsubscribe5(pid, filters, prop=None):
    body = struct.pack("!H", pid) + (prop if prop is not None else props())
    for flt in filters:
        body += mstr(flt)
    return packet(10, 2, body)


def disconnect5(reason=None, prop=None):
    body = b""
    if reason is not None:
        body = bytes([reason])
        if prop is not None:
            body += prop
    return packet(DISCONNECT, 0, body)


def opts(qos=0, no_local=False, rap=False, rh=0):
    """A subscription options byte."""
    return qos | (4 if no_local else 0) | (8 if rap else 0) | (rh << 4)


class P5:
    """A packet read from a 5.0 connection, decoded by type."""

    def __init__(self, pkt):
        self.type = pkt.type
        self.flags = pkt.flags
        self.body = body = pkt.body
        self.reason = 0
        self.props = {}
        t = self.type
        if t == CONNACK:
            self.session_present = bool(body[0] & 1)
            self.reason = body[1]
            if len(body) > 2:
                self.props, _ = parse_props(body[2:])
        elif t == PUBLISH:
            self.qos = (self.flags >> 1) & 3
            self.retain = bool(self.flags & 1)
            self.dup = bool(self.flags & 8)
            n = struct.unpack("!H", body[:2])[0]
            self.topic = body[2:2 + n].decode()
            i = 2 + n
            self.pid = None
            if self.qos:
                self.pid = struct.unpack("!H", body[i:i + 2])[0]
                i += 2
            self.props, used = parse_props(body[i:])
            self.payload = body[i + used:]
        elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            self.pid = struct.unpack("!H", body[:2])[0]
            if len(body) > 2:
                self.reason = body[2]
            if len(body) > 3:
                self.props, _ = parse_props(body[3:])
        elif t in (SUBACK, UNSUBACK):
            self.pid = struct.unpack("!H", body[:2])[0]
            self.props, used = parse_props(body[2:])
            self.codes = list(body[2 + used:])
        elif t in (DISCONNECT, AUTH_TYPE):
            if body:
                self.reason = body[0]
            if len(body) > 1:
                self.props, _ = parse_props(body[1:])

    def __repr__(self):
        return "<P5 type %d reason 0x%02x props %r body %s>" % (
            self.type, self.reason, self.props, self.body[:40].hex())


def read5(c, timeout=None):
    """The next packet of raw client c, decoded as 5.0."""
    return P5(c.read_raw(timeout))


def expect5(c, ptype, timeout=5.0):
    """The next 5.0 packet of type ptype; the others read meanwhile are
    kept in c.skipped5 (see skipped5()). Raises Closed or TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        p = P5(c.read_raw(max(0.001, deadline - time.monotonic())))
        if p.type == ptype:
            return p
        if not hasattr(c, "skipped5"):
            c.skipped5 = []
        c.skipped5.append(p)


def skipped5(c):
    """The packets expect5() passed over on c since the last call."""
    out = getattr(c, "skipped5", [])
    c.skipped5 = []
    return out


def closing_packets(c, timeout=5.0):
    """Every packet read until the broker closes c (decoded as 5.0);
    raises AssertionError if it stays open."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            out.append(P5(c.read_raw(max(0.001,
                                         deadline - time.monotonic()))))
        except Closed:
            return out
        except TimeoutError:
            raise AssertionError("connection still open; read %r" % out)


def connect_v5(c, client_id, **kw):
    """Sends a 5.0 CONNECT on raw client c; returns the CONNACK (P5)."""
    c.send(connect5(client_id, **kw))
    return expect5(c, CONNACK)
