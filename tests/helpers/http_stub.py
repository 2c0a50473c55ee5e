#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""HTTP receiver for webhook tests: a real server on 127.0.0.1.

Prints the port it listens on as the first line of stdout, then records
every request (method, path, headers, body, status answered, t_start when
it was read, t_end when the answer was ready, peer port) as one JSON
object per line in --log, written before the answer is sent. Behaviour
is set by flags and can be changed at run time with POST /__control (a
JSON object with any of status, statuses, delay_ms, retry_after, body,
close, rules), which is answered 204 and not recorded.

  --status N          answer N (default 200)
  --statuses 500,500,200
                      answer these in turn, then --status
  --rule PATH=500,200 same as --statuses but only for PATH (repeatable)
  --delay-ms N        sleep N ms before answering
  --retry-after V     send Retry-After: V with every non-2xx answer
  --body TEXT         response body (default "ok")
  --hmac-secret S     verify X-Mqlite-Signature (t=..,sha256=..) over
                      "<t>.<body>"; answer 401 when missing or wrong
  --close             close the connection after each answer
  --max-seconds N     exit after N seconds (default 60)

Standard library only; run with /usr/bin/python3.
"""

import argparse
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.status = args.status
        self.statuses = parse_list(args.statuses)
        self.rules = {}
        for r in args.rule or []:
            path, _, seq = r.partition("=")
            self.rules[path] = parse_list(seq)
        self.delay_ms = args.delay_ms
        self.retry_after = args.retry_after
        self.body = args.body
        self.close = args.close
        self.secret = args.hmac_secret
        self.log = open(args.log, "a", buffering=1) if args.log else None

    def next_status(self, path):
        with self.lock:
            seq = self.rules.get(path)
            if seq is None:
                seq = self.statuses
            if seq:
                return seq.pop(0)
            return self.status

    def record(self, rec):
        if self.log is None:
            return
        line = json.dumps(rec, sort_keys=True)
        with self.lock:
            self.log.write(line + "\n")
            self.log.flush()


def parse_list(text):
    if not text:
        return []
    return [int(x) for x in text.split(",") if x.strip()]


def check_hmac(secret, header, body):
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t, sig = parts.get("t"), parts.get("sha256")
    if not t or not sig:
        return False
    want = hmac.new(secret.encode(), t.encode() + b"." + body,
                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, sig)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "http_stub"
    # Headers and body go out in separate writes: without TCP_NODELAY,
    # Nagle plus the client's delayed ACK costs 40 ms per response.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def handle_any(self):
        st = self.server.state
        t_start = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if self.path == "/__control":
            self.control(st, body)
            return
        hmac_ok = None
        if st.secret is not None:
            hmac_ok = check_hmac(st.secret,
                                 self.headers.get("X-Mqlite-Signature"),
                                 body)
        # A bad signature is answered 401 without using up the sequence.
        status = st.next_status(self.path) if hmac_ok is not False else 401
        if st.delay_ms > 0:
            time.sleep(st.delay_ms / 1000.0)
        # Logged before answering: once a client has its answer, the
        # request is in the log.
        st.record({
            "t_start": t_start, "t_end": time.time(),
            "method": self.command, "path": self.path,
            "headers": {k: v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
            "status": status, "hmac_ok": hmac_ok,
            "peer_port": self.client_address[1],
        })
        out = st.body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(out)))
            if st.retry_after and not 200 <= status < 300:
                self.send_header("Retry-After", st.retry_after)
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:1/moved")
            if st.close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(out)
            self.wfile.flush()
        except OSError:
            self.close_connection = True    # the client went away

    def control(self, st, body):
        try:
            c = json.loads(body or b"{}")
            with st.lock:
                if "status" in c:
                    st.status = int(c["status"])
                if "statuses" in c:
                    st.statuses = [int(x) for x in c["statuses"]]
                if "delay_ms" in c:
                    st.delay_ms = int(c["delay_ms"])
                if "retry_after" in c:
                    st.retry_after = c["retry_after"]
                if "body" in c:
                    st.body = str(c["body"])
                if "close" in c:
                    st.close = bool(c["close"])
                if "rules" in c:
                    st.rules = {k: [int(x) for x in v]
                                for k, v in c["rules"].items()}
            code = 204
        except (ValueError, TypeError, AttributeError):
            code = 400
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET = handle_any


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--statuses")
    ap.add_argument("--rule", action="append")
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--retry-after")
    ap.add_argument("--body", default="ok")
    ap.add_argument("--hmac-secret")
    ap.add_argument("--close", action="store_true")
    ap.add_argument("--max-seconds", type=float, default=60)
    args = ap.parse_args()

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    print(srv.server_address[1], flush=True)
    timer = threading.Timer(args.max_seconds, srv.shutdown)
    timer.daemon = True
    timer.start()
    try:
        srv.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
