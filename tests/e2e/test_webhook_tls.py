# SPDX-License-Identifier: Apache-2.0
"""Webhook HTTPS, client certificates and proxies end to end: a real mqlite
daemon with webhook rules and real receivers (tests/helpers/http_stub.py,
serving HTTPS with --tls-cert/--tls-key) on 127.0.0.1, on ports the test
picks. Certificates are made at test time with the openssl command line
tool in the test's directory: a CA, a server certificate for IP 127.0.0.1
signed by it, a client certificate signed by it, and an unrelated
self-signed CA.

- tls.ca_file = the CA (a name relative to the rules file's folder): the
  message is delivered over TLS and leaves the outbox.
- No ca_file (the system store does not know the CA), or the unrelated CA,
  or a url whose host the certificate does not name: nothing reaches the
  receiver (its TLS handshakes fail), the row stays in the outbox with
  attempts counting up and last_error naming the certificate problem, and
  nothing is dead-lettered (a TLS failure is a network error: retried).
- A ca_file or client certificate that is missing fails each attempt
  with the reason in last_error and is retried; once the file is put in
  place the backlog is delivered without a restart.
- tls.insecure: delivered without ca_file, and to a host name the
  certificate does not match.
- A receiver that requires a client certificate: tls.cert + tls.key are
  presented (the receiver sees the client's common name); a route without
  them is refused and retried.
- Proxies from the environment, as libcurl reads them: http_proxy carries
  a plain http request to 127.0.0.1 (the proxy sees the absolute url as
  request target; the target port itself is never listening), no_proxy
  bypasses it, upper-case HTTP_PROXY is ignored, all_proxy is used,
  https_proxy tunnels HTTPS with CONNECT (the TLS peer is still verified
  end to end). Every daemon gets empty proxy variables but those its test
  sets, so an outer environment cannot leak in.
- Keep-alive: several messages, one at a time with idle gaps, go over one
  TLS connection (one handshake, one peer port).

Every wait is bounded."""

import json
import os
import re
import shutil
import subprocess
import time
import unittest

from mqlite_harness import HOST, Broker, free_port, wait_until
from test_webhook import NUDGE_RULE, Receiver, WebhookCase, write_json

OPENSSL = shutil.which("openssl")
RETRY = {"base_ms": 20, "cap_ms": 100}
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
              "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")
# Empty: libcurl then uses no proxy, whatever the outer environment holds.
NO_PROXY_ENV = {k: "" for k in PROXY_VARS}
CLIENT_CN = "mqlite-test-client"


def openssl(*args, cwd):
    r = subprocess.run([OPENSSL] + list(args), cwd=cwd,
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s"
                           % (" ".join(args),
                              r.stderr.decode(errors="replace")))


def make_certs(d):
    """CA, server (IP:127.0.0.1), client (both signed by the CA) and an
    unrelated self-signed CA, as PEM files in d. Returns their paths."""
    os.makedirs(d, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    for name, cn in (("ca", "mqlite-test-ca"),
                     ("other-ca", "mqlite-unrelated-ca")):
        openssl("req", "-x509", *ec, "-keyout", name + ".key",
                "-out", name + ".pem", "-days", "2", "-subj", "/CN=" + cn,
                *ca_ext, cwd=d)
    leaves = (("server", "127.0.0.1",
               "subjectAltName=IP:127.0.0.1\n"
               "extendedKeyUsage=serverAuth\n"
               "basicConstraints=CA:FALSE\n"),
              ("client", CLIENT_CN,
               "extendedKeyUsage=clientAuth\n"
               "basicConstraints=CA:FALSE\n"))
    for name, cn, ext in leaves:
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + cn, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                "-extfile", name + ".ext", "-out", name + ".pem", cwd=d)
    return {n: os.path.join(d, n) for n in
            ("ca.pem", "ca.key", "other-ca.pem", "server.pem", "server.key",
             "client.pem", "client.key")}


def tls13_refusal(alert):
    """What curl reports when a TLS 1.3 server refuses the client's
    certificate: it checks it after curl considers the handshake done and
    writes its request, so the error depends on timing (the alert read, or
    the reset seen while writing). The receiver's side is exact."""
    return (r"^(OpenSSL SSL_read: .*tlsv1[3]? alert %s, errno 0|"
            r"Send failure: Connection reset by peer|"
            r"Recv failure: Connection reset by peer|"
            r"SSL_write\(\) error: .*bad write retry|"
            r"getpeername\(\) failed with errno 107: .*)$" % alert)


class TlsReceiver(Receiver):
    """http_stub.py with --conn-log (and TLS when given a certificate)."""

    def __init__(self, workdir, name, port, args=()):
        super().__init__(workdir, name, port, args)
        self.conn_log_path = os.path.join(workdir, name + ".conns.jsonl")
        self.args += ["--conn-log", self.conn_log_path]

    def conns(self):
        """Every connection recorded so far: dicts with peer_port, tls, ok,
        error, client_cn."""
        out = []
        try:
            with open(self.conn_log_path, "rb") as f:
                data = f.read()
        except OSError:
            return out
        for line in data.split(b"\n"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue            # empty, or a line being written
        return out


class TlsCase(WebhookCase):

    def setUp(self):
        # A missing tool is a failure, never a skip (as in run.sh).
        self.assertIsNotNone(OPENSSL, "the openssl command line tool is "
                             "missing: apt-get install openssl")
        super().setUp()
        # The rules file lives in its own folder with the certificates
        # below it; the daemon runs in self.workdir, so relative names only
        # work when resolved against the rules file's folder.
        self.rules_dir = os.path.join(self.workdir, "rules")
        self.certs = make_certs(os.path.join(self.rules_dir, "certs"))

    def tls_receiver(self, client_ca=False, args=()):
        a = ["--tls-cert", self.certs["server.pem"],
             "--tls-key", self.certs["server.key"]]
        if client_ca:
            a += ["--tls-client-ca", self.certs["ca.pem"]]
        return self.plain_receiver(args=a + list(args))

    def plain_receiver(self, args=()):
        r = TlsReceiver(self.workdir, "recv%d" % len(self.receivers),
                        free_port(), args)
        self.receivers.append(r)
        r.start()
        return r

    def daemon(self, rules, env=None, name="broker"):
        """A daemon with -r rules/NAME-rules.json; proxy variables empty
        unless env sets them."""
        rules_path = write_json(os.path.join(self.rules_dir,
                                             name + "-rules.json"),
                                {"rules": list(rules) + [NUDGE_RULE]})
        e = dict(NO_PROXY_ENV)
        e.update(env or {})
        br = Broker(self.workdir, name=name, env=e,
                    extra_args=["-r", rules_path])
        self.brokers.append(br)
        self.broker = br
        br.start()
        return br

    def send(self, topic, seq, client_id="tls"):
        c = self.client(client_id="%s-%d" % (client_id, seq))
        c.publish(topic, b'{"seq": %d}' % seq, qos=1)
        c.disconnect()

    def outbox_rows(self, route=None):
        where = "" if route is None else \
            " where route = '%s'" % route.replace("'", "''")
        return json.loads(self.broker.query(
            "select json_group_array(json_object('id', id, 'route', route,"
            " 'url', url, 'attempts', attempts, 'last_error', last_error))"
            " from (select * from outbox%s order by id)" % where))

    def assert_delivered(self, recv, path, seqs, route=None, timeout=15.0):
        """recv got exactly one 200 request per seq on path, in order,
        and the outbox (only route's rows, when given) drained with
        nothing dead."""
        reqs = recv.wait_requests(len(seqs), path, timeout=timeout)
        if route is None:
            self.wait_drained()
        else:
            self.assertTrue(wait_until(lambda: self.outbox_rows(route) == [],
                                       timeout=timeout, interval=0.05),
                            "%s rows left in the outbox" % route)
        time.sleep(0.2)             # nothing more arrives
        reqs = recv.requests(path)
        self.assertEqual(
            [(json.loads(r["body"])["payload"]["seq"], r["method"],
              r["status"]) for r in reqs],
            [(s, "POST", 200) for s in seqs])
        self.assertEqual(self.broker.scalar(
            "select count(*) from outbox_dead"), 0)
        return reqs

    def assert_pending(self, route, error_re, min_attempts=3, timeout=15.0):
        """The route's one row stays in the outbox and is retried (attempts
        reach min_attempts), nothing is dead-lettered; last_error matches
        error_re. Returns the row."""
        rows = [None]

        def retried():
            rows[0] = self.outbox_rows(route)
            return len(rows[0]) == 1 and \
                rows[0][0]["attempts"] >= min_attempts
        self.assertTrue(wait_until(retried, timeout=timeout, interval=0.05),
                        "not retried %d times within %.0f s: %r"
                        % (min_attempts, timeout, rows[0]))
        row = rows[0][0]
        self.assertRegex(row["last_error"] or "", error_re)
        self.assertEqual(self.broker.scalar(
            "select count(*) from outbox_dead"), 0)
        return row

    def assert_handshakes_failed(self, recv, n, error_re):
        """recv saw at least n connections, every one a failed TLS
        handshake matching error_re, and no request at all."""
        self.assertTrue(wait_until(lambda: len(recv.conns()) >= n,
                                   timeout=10))
        conns = recv.conns()
        self.assertEqual([(c["tls"], c["ok"]) for c in conns],
                         [(True, False)] * len(conns))
        for c in conns:
            self.assertRegex(c["error"], error_re)
        self.assertEqual(recv.requests(), [])

    @staticmethod
    def url(recv, path="/hook", host=HOST, scheme="https"):
        return "%s://%s:%d%s" % (scheme, host, recv.port, path)


# ---------------------------------------------------------------------------

class TestPeerVerification(TlsCase):

    def test_ca_file_relative_to_rules_folder_delivers(self):
        recv = self.tls_receiver()
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "certs")))
        self.daemon([self.hook("r", "t/+", self.url(recv), retry=RETRY,
                               tls={"ca_file": "certs/ca.pem"})])
        self.send("t/x", 1)
        reqs = self.assert_delivered(recv, "/hook", [1])
        self.assertEqual((reqs[0]["tls"], reqs[0]["client_cn"]),
                         (True, None))
        conns = recv.conns()
        self.assertEqual([(c["tls"], c["ok"]) for c in conns],
                         [(True, True)])
        self.assertEqual(conns[0]["peer_port"], reqs[0]["peer_port"])

    def test_no_ca_file_system_store_refuses_our_ca(self):
        recv = self.tls_receiver()
        self.daemon([self.hook("r", "t/+", self.url(recv), retry=RETRY)])
        self.send("t/x", 1)
        self.assert_pending(
            "r/webhook",
            r"^SSL certificate problem: unable to get local issuer "
            r"certificate$")
        self.assert_handshakes_failed(recv, 3, r"(?i)alert unknown ca")

    def test_unrelated_ca_refused(self):
        recv = self.tls_receiver()
        self.daemon([self.hook("r", "t/+", self.url(recv), retry=RETRY,
                               tls={"ca_file": self.certs["other-ca.pem"]})])
        self.send("t/x", 1)
        self.assert_pending(
            "r/webhook",
            r"^SSL certificate problem: unable to get local issuer "
            r"certificate$")
        self.assert_handshakes_failed(recv, 3, r"(?i)alert unknown ca")

    def test_host_name_checked(self):
        # The certificate names IP 127.0.0.1 only; "localhost" reaches the
        # same receiver but must not be accepted.
        recv = self.tls_receiver()
        self.daemon([self.hook("r", "t/+", self.url(recv, host="localhost"),
                               retry=RETRY,
                               tls={"ca_file": "certs/ca.pem"})])
        self.send("t/x", 1)
        self.assert_pending(
            "r/webhook",
            r"^SSL: no alternative certificate subject name matches "
            r"target host name 'localhost'$")
        # curl drops the connection after the handshake completed.
        self.assertEqual(recv.requests(), [])

    def test_insecure_delivers_without_ca_file(self):
        recv = self.tls_receiver()
        self.daemon([
            self.hook("ip", "t/ip", self.url(recv, "/ip"), retry=RETRY,
                      tls={"insecure": True}),
            self.hook("name", "t/name",
                      self.url(recv, "/name", host="localhost"),
                      retry=RETRY, tls={"insecure": True})])
        self.send("t/ip", 1)
        self.send("t/name", 2)
        self.assert_delivered(recv, "/ip", [1])
        self.assert_delivered(recv, "/name", [2])
        self.assertTrue(all(r["tls"] for r in recv.requests()))

    def test_missing_tls_files_retried_until_put_in_place(self):
        # Files are read at each attempt, not when the rules load: a
        # missing one fails the attempt before any request is sent, the
        # row is retried with the reason, and once the file is there the
        # backlog flows without a restart.
        recv = self.tls_receiver()
        d = os.path.dirname(self.certs["ca.pem"])
        ca_missing = os.path.join(d, "late-ca.pem")
        cert_missing = os.path.join(d, "late-client.pem")
        self.daemon([
            self.hook("ca", "t/ca", self.url(recv, "/ca"), retry=RETRY,
                      tls={"ca_file": "certs/late-ca.pem"}),
            self.hook("cert", "t/cert", self.url(recv, "/cert"),
                      retry=RETRY, tls={"ca_file": "certs/ca.pem",
                                        "cert": "certs/late-client.pem",
                                        "key": "certs/client.key"})])
        self.send("t/ca", 1)
        self.send("t/cert", 2)
        self.assert_pending("ca/webhook", r"^error setting certificate "
                            r"file: %s$" % re.escape(ca_missing))
        self.assert_pending("cert/webhook", r"^could not load PEM client "
                            r"certificate from %s, " % re.escape(cert_missing))
        self.assertEqual(recv.requests(), [])
        self.assertEqual([c for c in recv.conns() if c["ok"]], [])
        shutil.copy(self.certs["ca.pem"], ca_missing)
        shutil.copy(self.certs["client.pem"], cert_missing)
        self.assert_delivered(recv, "/ca", [1])
        self.assert_delivered(recv, "/cert", [2])

    def test_insecure_false_still_verifies(self):
        recv = self.tls_receiver()
        self.daemon([self.hook("r", "t/+", self.url(recv), retry=RETRY,
                               tls={"insecure": False})])
        self.send("t/x", 1)
        self.assert_pending(
            "r/webhook", r"^SSL certificate problem: unable to get local "
            r"issuer certificate$")
        self.assert_handshakes_failed(recv, 3, r"(?i)alert unknown ca")


class TestClientCertificates(TlsCase):

    def test_cert_and_key_presented_route_without_refused(self):
        recv = self.tls_receiver(client_ca=True)
        self.daemon([
            self.hook("with", "t/with", self.url(recv, "/with"), retry=RETRY,
                      tls={"ca_file": "certs/ca.pem",
                           "cert": "certs/client.pem",
                           "key": "certs/client.key"}),
            self.hook("without", "t/without", self.url(recv, "/without"),
                      retry=RETRY, tls={"ca_file": "certs/ca.pem"})])
        self.send("t/with", 1)
        self.send("t/without", 2)
        reqs = self.assert_delivered(recv, "/with", [1],
                                     route="with/webhook")
        self.assertEqual(reqs[0]["client_cn"], CLIENT_CN)
        row = self.assert_pending("without/webhook",
                                  tls13_refusal("certificate required"))
        self.assertEqual(recv.requests("/without"), [])
        conns = recv.conns()
        good = [c for c in conns if c["ok"]]
        bad = [c for c in conns if not c["ok"]]
        self.assertEqual([c["client_cn"] for c in good], [CLIENT_CN])
        self.assertGreaterEqual(len(bad), row["attempts"])
        for c in bad:
            self.assertRegex(c["error"],
                             r"(?i)peer did not return a certificate")

    def test_client_cert_from_unrelated_ca_refused(self):
        # The receiver only trusts client certificates signed by the CA:
        # a certificate it cannot verify is refused like none at all.
        d = os.path.join(self.rules_dir, "rogue")
        rogue = make_certs(d)       # its own CA, client signed by that
        recv = self.tls_receiver(client_ca=True)
        self.daemon([self.hook("r", "t/+", self.url(recv), retry=RETRY,
                               tls={"ca_file": "certs/ca.pem",
                                    "cert": rogue["client.pem"],
                                    "key": rogue["client.key"]})])
        self.send("t/x", 1)
        self.assert_pending("r/webhook", tls13_refusal("unknown ca"))
        self.assertEqual(recv.requests(), [])
        conns = recv.conns()
        self.assertGreaterEqual(len(conns), 3)
        for c in conns:
            self.assertFalse(c["ok"])
            self.assertRegex(c["error"], r"(?i)certificate verify failed")


class TestProxies(TlsCase):

    def test_http_proxy_carries_request_to_127_0_0_1(self):
        proxy = self.plain_receiver()
        hold = self.hold_port()         # bound, never listening
        target = "http://%s:%d/hook" % (HOST, hold.port)
        self.daemon([self.hook("r", "t/+", target, retry=RETRY)],
                    env={"http_proxy": "http://%s:%d" % (HOST, proxy.port)})
        self.send("t/x", 1)
        # The proxy got the request in absolute form: it went through the
        # proxy (the target port refuses connections).
        reqs = self.assert_delivered(proxy, target, [1])
        self.assertEqual(reqs[0]["hdr"]["host"], "%s:%d" % (HOST, hold.port))
        self.assertEqual(proxy.requests(), reqs)

    def test_no_proxy_bypasses_http_proxy(self):
        proxy = self.plain_receiver()
        recv = self.plain_receiver()
        self.daemon([self.hook("r", "t/+", self.url(recv, scheme="http"),
                               retry=RETRY)],
                    env={"http_proxy": "http://%s:%d" % (HOST, proxy.port),
                         "no_proxy": HOST})
        self.send("t/x", 1)
        self.assert_delivered(recv, "/hook", [1])
        self.assertEqual(proxy.requests(), [])
        self.assertEqual(proxy.conns(), [])

    def test_upper_case_HTTP_PROXY_ignored(self):
        # libcurl reads http_proxy in lower case only (HTTP_PROXY can come
        # from a CGI request header).
        proxy = self.plain_receiver()
        recv = self.plain_receiver()
        self.daemon([self.hook("r", "t/+", self.url(recv, scheme="http"),
                               retry=RETRY)],
                    env={"HTTP_PROXY": "http://%s:%d" % (HOST, proxy.port)})
        self.send("t/x", 1)
        self.assert_delivered(recv, "/hook", [1])
        self.assertEqual(proxy.conns(), [])

    def test_all_proxy_used_for_http(self):
        proxy = self.plain_receiver()
        hold = self.hold_port()
        target = "http://%s:%d/hook" % (HOST, hold.port)
        self.daemon([self.hook("r", "t/+", target, retry=RETRY)],
                    env={"all_proxy": "http://%s:%d" % (HOST, proxy.port)})
        self.send("t/x", 1)
        self.assert_delivered(proxy, target, [1])

    def test_https_proxy_tunnels_and_peer_still_verified(self):
        proxy = self.plain_receiver(args=["--proxy-connect"])
        recv = self.tls_receiver()
        self.daemon([
            self.hook("good", "t/good", self.url(recv, "/good"), retry=RETRY,
                      tls={"ca_file": "certs/ca.pem"}),
            self.hook("bad", "t/bad", self.url(recv, "/bad"), retry=RETRY,
                      tls={"ca_file": "certs/other-ca.pem"})],
            env={"https_proxy": "http://%s:%d" % (HOST, proxy.port)})
        self.send("t/good", 1)
        reqs = self.assert_delivered(recv, "/good", [1])
        self.assertTrue(reqs[0]["tls"])
        connects = proxy.requests()
        self.assertEqual([(r["method"], r["path"]) for r in connects],
                         [("CONNECT", "%s:%d" % (HOST, recv.port))])
        # Through the tunnel the certificate is checked as before.
        self.send("t/bad", 2)
        self.assert_pending(
            "bad/webhook", r"^SSL certificate problem: unable to get local "
            r"issuer certificate$")
        self.assertEqual(recv.requests("/bad"), [])
        self.assertGreaterEqual(len(proxy.requests()), 1 + 3)
        for r in proxy.requests():
            self.assertEqual((r["method"], r["path"]),
                             ("CONNECT", "%s:%d" % (HOST, recv.port)))

    def test_http_proxy_not_used_for_https(self):
        # http_proxy is for http:// urls only; an https url goes direct.
        proxy = self.plain_receiver(args=["--proxy-connect"])
        recv = self.tls_receiver()
        self.daemon([self.hook("r", "t/+", self.url(recv), retry=RETRY,
                               tls={"ca_file": "certs/ca.pem"})],
                    env={"http_proxy": "http://%s:%d" % (HOST, proxy.port)})
        self.send("t/x", 1)
        self.assert_delivered(recv, "/hook", [1])
        self.assertEqual(proxy.conns(), [])


class TestKeepAlive(TlsCase):

    def test_one_tls_connection_for_several_messages(self):
        recv = self.tls_receiver()
        self.daemon([self.hook("r", "t/+", self.url(recv), retry=RETRY,
                               tls={"ca_file": "certs/ca.pem"})])
        n = 6
        for i in range(n):
            self.send("t/x", i)
            recv.wait_requests(i + 1, "/hook", timeout=10)
            time.sleep(0.2)         # idle between messages
        reqs = self.assert_delivered(recv, "/hook", list(range(n)))
        self.assertEqual(len({r["peer_port"] for r in reqs}), 1)
        conns = recv.conns()
        self.assertEqual([(c["tls"], c["ok"], c["peer_port"])
                          for c in conns],
                         [(True, True, reqs[0]["peer_port"])])


if __name__ == "__main__":
    unittest.main()
