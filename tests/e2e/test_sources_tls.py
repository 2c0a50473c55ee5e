# SPDX-License-Identifier: Apache-2.0
"""
Sources through TLS: mqlite subscribes to a real Mosquitto's TLS listener
(started here on free loopback ports, certificates made at test time with
the openssl command line tool, as in test_tls.py).

- QoS 1 and 2 through TLS with a client certificate (the listener requires
  one): kill -9 of mqlite mid-stream and a restart lose nothing; QoS 2 is
  stored exactly once, QoS 1 at least once.
- Refused with a clear log line, logged once however often the source
  retries with its backoff: a CA that did not sign the broker's
  certificate, a certificate for another host, an expired broker
  certificate, no client certificate where the broker requires one.
  tls.insecure connects anyway and the start warns about it.
- --check (and the start) open every file of a source's "tls" and report
  FILE: sources[N].tls.KEY: REASON.
- A broker that packs many packets into one TLS record (played by this
  test with python's ssl module) and a read buffer smaller than a record:
  the bytes OpenSSL holds decrypted are read without waiting for the
  socket.

Every wait is bounded; every process started here is stopped.
"""

import json
import os
import ssl
import subprocess
import urllib.request

from mqlite_harness import (Broker, HOST, daemon_path, free_port,
                            mqlite_only, publish_pkt, wait_until)
from test_sources import ScriptedSite, SiteMosquitto, SourceCase
from test_tls import CA_CNF, make_ca, make_expired, make_leaf, openssl

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def make_server(d, name, san, expired=False):
    """A server certificate signed by ca for subjectAltName san; expired
    in 2020 if asked (openssl ca signs with the dates given)."""
    openssl("req", *EC, "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/CN=" + name, cwd=d)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\n" % san)
    if not expired:
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-out",
                name + ".pem", "-days", "2", "-extfile", ext, cwd=d)
        return
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write(CA_CNF)
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("2000\n")
    openssl("ca", "-batch", "-config", "ca.cnf", "-in", name + ".csr",
            "-out", name + ".pem", "-notext", "-extfile", ext,
            "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
            cwd=d)


class TLSScriptedSite(ScriptedSite):
    """The scripted site broker of test_sources.py behind TLS (python's
    ssl module, server side)."""

    def __init__(self, cert, key):
        super().__init__()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)

    def accept(self, timeout=15.0):
        c = super().accept(timeout)
        c.sock.settimeout(timeout)
        c.sock = self.ctx.wrap_socket(c.sock, server_side=True)
        return c


@mqlite_only("mqlite sources")
class TestSourcesTLS(SourceCase):
    def setUp(self):
        super().setUp()
        self.certs = os.path.join(self.workdir, "certs")
        os.makedirs(self.certs)
        make_ca(self.certs, "ca", "source-test-ca")
        make_ca(self.certs, "other-ca", "unrelated-ca")
        make_server(self.certs, "server", "IP:127.0.0.1,DNS:localhost")
        make_leaf(self.certs, "client", "mqlite-gw")

    def cert(self, name):
        return os.path.join(self.certs, name)

    def site(self, name, cert="server", require_cert=True):
        d = os.path.join(self.workdir, name)
        os.makedirs(d)
        s = SiteMosquitto(d, tls={"ca": self.cert("ca.pem"),
                                  "cert": self.cert(cert + ".pem"),
                                  "key": self.cert(cert + ".key"),
                                  "require_cert": require_cert})
        self.sites.append(s)
        return s

    def client_tls(self, **kw):
        t = {"ca_file": self.cert("ca.pem"), "cert": self.cert("client.pem"),
             "key": self.cert("client.key")}
        t.update(kw)
        return t

    def test_qos1_qos2_kill9_with_client_certificate(self):
        site = self.site("site")
        br = self.kill9_midstream(site, n=2000, port=site.tls_port,
                                  scheme="mqtts", tls=self.client_tls())
        self.assertIn("source site (127.0.0.1:%d): connected as "
                      "mqlite-site" % site.tls_port, br.log_text())
        self.assertNotIn("connection failed", br.log_text())

    def test_decrypted_bytes_held_by_tls_are_read(self):
        """A broker that packs many packets into one TLS record (this test
        plays it), and a read buffer smaller than the record (a small
        limits.max_packet_bytes): OpenSSL keeps the rest of the record,
        which epoll does not report. Every message must still be stored
        although nothing more comes on the socket."""
        n = 30
        site = TLSScriptedSite(self.cert("server.pem"),
                               self.cert("server.key"))
        self.scripted.append(site)
        br = self.mqlite(site.port, [{"topic": "big/#", "qos": 0}],
                         scheme="mqtts", tls=self.client_tls(),
                         start=False)
        br.update_config(limits={"max_packet_bytes": "1KB"})
        br.start()
        c, _, _ = site.session(present=False)
        burst = b"".join(publish_pkt("big/a", b"%04d" % i + b"x" * 500)
                         for i in range(n))
        self.assertLess(len(burst), 16384)     # one record
        c.send(burst)
        self.assertEqual(br.wait_count(n, timeout=15), n)
        self.assertEqual(br.scalar("select count(distinct substr(payload, "
                                   "1, 4)) from messages"), n)
        c.close()

    def test_refusals_logged_once_and_insecure(self):
        good = self.site("good")
        make_server(self.certs, "elsewhere", "DNS:broker.example")
        wrong_host = self.site("wronghost", cert="elsewhere")
        make_server(self.certs, "expired", "IP:127.0.0.1", expired=True)
        expired = self.site("expired", cert="expired")

        def src(name, port, tls, scheme="mqtts"):
            host = "localhost" if name.endswith("name") else HOST
            return {"name": name, "url": "%s://%s:%d" % (scheme, host, port),
                    "topics": ["t/#"], "tls": tls,
                    "reconnect": {"min": "100ms", "max": "300ms"}}
        other_ca = self.cert("other-ca.pem")
        sources = [
            src("good", good.tls_port, self.client_tls()),
            src("wrongca", good.tls_port, self.client_tls(ca_file=other_ca)),
            src("wronghost", wrong_host.tls_port, self.client_tls()),
            src("expired", expired.tls_port, self.client_tls()),
            src("nocert", good.tls_port, {"ca_file": self.cert("ca.pem")}),
            # By name: SNI and the certificate's DNS entries.
            src("byname", good.tls_port, self.client_tls()),
            src("wrongname", wrong_host.tls_port, self.client_tls()),
            src("insecure", good.tls_port,
                self.client_tls(ca_file=other_ca, insecure=True), "ssl"),
        ]
        br = Broker(self.workdir, name="gw")
        self.brokers.append(br)
        self.metrics_port = free_port()
        br.update_config(sources=sources, unmatched="messages",
                         metrics={"bind": HOST, "port": self.metrics_port})
        br.start()
        line = "source %s (%s:%d): connection failed: "
        want = {
            # Mosquitto sends its CA along: OpenSSL then finds a
            # self-signed certificate it does not trust in the chain.
            "wrongca": (good.tls_port, "TLS handshake failed: certificate "
                        "verify failed (self-signed certificate in "
                        "certificate chain)"),
            "wronghost": (wrong_host.tls_port, "TLS handshake failed: "
                          "certificate verify failed (IP address "
                          "mismatch)"),
            "expired": (expired.tls_port, "TLS handshake failed: "
                        "certificate verify failed (certificate has "
                        "expired)"),
            "nocert": (good.tls_port, "certificate required"),
            "wrongname": (wrong_host.tls_port, "TLS handshake failed: "
                          "certificate verify failed (hostname "
                          "mismatch)"),
        }
        def at(name, port):
            return line % (name, "localhost" if name.endswith("name")
                           else HOST, port)
        for name, (port, why) in want.items():
            self.wait_log(br, at(name, port))
        self.wait_log(br, "source good (127.0.0.1:%d): subscribed"
                      % good.tls_port)
        self.wait_log(br, "source insecure (127.0.0.1:%d): subscribed"
                      % good.tls_port)
        self.wait_log(br, "source byname (localhost:%d): subscribed"
                      % good.tls_port)
        self.assertIn("source insecure: tls.insecure: the broker's "
                      "certificate and host name are not verified",
                      br.log_text())

        def reconnects(name):
            url = "http://%s:%d/metrics" % (HOST, self.metrics_port)
            with urllib.request.urlopen(url, timeout=10) as r:
                for ln in r.read().decode().splitlines():
                    if ln.startswith('mqlite_source_reconnects_total'
                                     '{source="%s"}' % name):
                        return int(ln.split()[-1])
            return 0
        # Several attempts each, one warning each: the state changed once.
        for name in want:
            self.assertTrue(wait_until(lambda: reconnects(name) >= 4,
                                       timeout=20), name)
        log = br.log_text()
        for name, (port, why) in want.items():
            lines = [ln for ln in log.splitlines()
                     if at(name, port) in ln]
            if name not in ("nocert", "wrongname"):
                self.assertEqual(len(lines), 1, (name, lines))
                self.assertIn(why, lines[0], name)
                continue
            # The broker's alert comes after our side of the handshake:
            # an attempt may find the socket closed first and say so.
            # "localhost" may also name ::1 first, where nothing listens.
            self.assertLessEqual(len(lines), 2, lines)
            self.assertTrue(any(why in ln for ln in lines), lines)
        # The ones that connected receive through TLS.
        subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(good.port),
                        "-t", "t/x", "-q", "1", "-m", "hello"], check=True,
                       timeout=30)
        self.assertEqual(br.wait_count(3, "payload='hello'"), 3)
        self.assertEqual(sorted(r[0] for r in br.rows(
            "select client_id from messages where payload='hello'")),
            ["mqlite-byname", "mqlite-good", "mqlite-insecure"])

    def test_check_reports_tls_files(self):
        make_expired(self.certs, "expired", "expired-client")
        bad = self.cert("bad.pem")
        with open(bad, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64\n")
        cases = [
            ({"ca_file": bad}, "ca_file", "not a usable PEM CA bundle"),
            ({"ca_file": self.cert("nothere.pem")}, "ca_file",
             "cannot open: No such file or directory"),
            ({"cert": bad}, "cert", "not a usable PEM certificate"),
            ({"key": self.cert("server.key")}, "key",
             "the key does not match the certificate"),
            ({"cert": self.cert("expired.pem"),
              "key": self.cert("expired.key")}, "cert",
             "the certificate has expired"),
        ]
        path = os.path.join(self.workdir, "c.json")
        for tls, key, reason in cases:
            with open(path, "w") as f:
                json.dump({"sources": [
                    {"name": "ok", "url": "tcp://%s:1" % HOST,
                     "topics": ["a"]},
                    {"name": "s", "url": "mqtts://%s:1" % HOST,
                     "topics": ["a"], "tls": self.client_tls(**tls)}]}, f)
            for args in (["--check"], ["-d", os.path.join(
                    self.workdir, "x.db"), "-p", "0"]):
                r = subprocess.run([daemon_path(), "-c", path] + args,
                                   capture_output=True, timeout=30)
                err = r.stderr.decode()
                self.assertEqual(r.returncode, 1, (tls, args, err))
                self.assertIn("%s: sources[1].tls.%s: " % (path, key), err,
                              tls)
                self.assertIn(reason, err, tls)
                self.assertFalse(os.path.exists(os.path.join(
                    self.workdir, "x.db")))
        with open(path, "w") as f:
            json.dump({"sources": [
                {"name": "s", "url": "mqtts://%s:1" % HOST,
                 "topics": ["a"], "tls": self.client_tls()}]}, f)
        r = subprocess.run([daemon_path(), "-c", path, "--check"],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
