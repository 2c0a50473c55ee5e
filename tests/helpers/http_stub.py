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
  --tls-cert FILE --tls-key FILE
                      serve HTTPS with this certificate chain (PEM) and
                      key; every request record then also has "tls": true
                      and "client_cn" (the client certificate's common
                      name, or null)
  --tls-client-ca FILE
                      require a client certificate signed by this CA
  --conn-log FILE     one JSON object per accepted connection (peer_port,
                      tls, ok, error, client_cn, t), written once its TLS
                      handshake succeeded or failed (at accept without TLS)
  --proxy-connect     answer CONNECT host:port (recorded like any request)
                      by tunnelling to that address on 127.0.0.1 only, so
                      the stub can act as an https proxy; without it
                      CONNECT is answered 501 as before. A proxied plain
                      http request needs nothing: its request target (the
                      absolute url) is recorded as "path"

Standard library only; run with /usr/bin/python3.
"""

import argparse
import hashlib
import hmac
import json
import select
import socket
import ssl
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
        self.conn_log = (open(args.conn_log, "a", buffering=1)
                         if args.conn_log else None)
        self.proxy_connect = args.proxy_connect
        self.tls = None
        if args.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.tls_cert, args.tls_key)
            if args.tls_client_ca:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(args.tls_client_ca)
            self.tls = ctx

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

    def record_conn(self, rec):
        if self.conn_log is None:
            return
        line = json.dumps(rec, sort_keys=True)
        with self.lock:
            self.conn_log.write(line + "\n")
            self.conn_log.flush()


def parse_list(text):
    if not text:
        return []
    return [int(x) for x in text.split(",") if x.strip()]


def client_cn(sock):
    """The common name of the peer's certificate on a TLS socket, or None."""
    try:
        cert = sock.getpeercert()
    except (AttributeError, ValueError, OSError):
        return None
    for rdn in (cert or {}).get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


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
        rec = {
            "t_start": t_start, "t_end": time.time(),
            "method": self.command, "path": self.path,
            "headers": {k: v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
            "status": status, "hmac_ok": hmac_ok,
            "peer_port": self.client_address[1],
        }
        if st.tls is not None:
            rec["tls"] = True
            rec["client_cn"] = client_cn(self.connection)
        st.record(rec)
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

    def do_CONNECT(self):
        st = self.server.state
        if not st.proxy_connect:
            self.send_error(501, "Unsupported method ('CONNECT')")
            return
        host, _, port = self.path.rpartition(":")
        st.record({
            "t_start": time.time(), "t_end": time.time(),
            "method": self.command, "path": self.path,
            "headers": {k: v for k, v in self.headers.items()},
            "body": "", "status": 200, "hmac_ok": None,
            "peer_port": self.client_address[1],
        })
        try:
            if host not in ("127.0.0.1", "localhost"):
                raise OSError("tunnels go to 127.0.0.1 only")
            up = socket.create_connection(("127.0.0.1", int(port)), 10)
        except (OSError, ValueError):
            self.send_error(502)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        down = self.connection
        try:
            while True:
                r, _, _ = select.select([down, up], [], [], 30)
                if not r:
                    break
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (up if s is down else down).sendall(data)
        except OSError:
            pass
        finally:
            up.close()


class Server(ThreadingHTTPServer):
    """With TLS, each connection's handshake runs on its own thread."""

    def finish_request(self, request, client_address):
        st = self.state
        if st.tls is None:
            st.record_conn({"t": time.time(), "peer_port": client_address[1],
                            "tls": False, "ok": True, "error": None,
                            "client_cn": None})
            return super().finish_request(request, client_address)
        try:
            request.settimeout(10)
            conn = st.tls.wrap_socket(request, server_side=True)
            conn.settimeout(None)
        except (ssl.SSLError, OSError) as e:
            st.record_conn({"t": time.time(), "peer_port": client_address[1],
                            "tls": True, "ok": False, "error": str(e),
                            "client_cn": None})
            return
        st.record_conn({"t": time.time(), "peer_port": client_address[1],
                        "tls": True, "ok": True, "error": None,
                        "client_cn": client_cn(conn)})
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass


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
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-client-ca")
    ap.add_argument("--conn-log")
    ap.add_argument("--proxy-connect", action="store_true")
    args = ap.parse_args()
    if (args.tls_cert is None) != (args.tls_key is None):
        ap.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        ap.error("--tls-client-ca needs --tls-cert")

    srv = Server(("127.0.0.1", args.port), Handler)
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
