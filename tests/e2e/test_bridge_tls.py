# SPDX-License-Identifier: Apache-2.0
"""The mqtt action through TLS with a client certificate: the upstream
Mosquitto (started by the test on a free loopback port) requires one, the
CA and certificates are made at test time with the openssl command line
tool. Upstream down -> 10,000 QoS 1 publishes -> kill -9 mqlite -> restart
-> upstream up: every publish arrives once, in order (test_bridge.py)."""

import os
import unittest

from test_bridge import BridgeCase
from test_tls import make_ca, make_leaf


class TestBridgeTLS(BridgeCase):
    def test_tls_client_certificate(self):
        d = os.path.join(self.workdir, "certs")
        os.makedirs(d)
        make_ca(d, "ca", "bridge-test-ca")
        make_leaf(d, "server", "upstream", server=True)
        make_leaf(d, "client", "mqlite-gw")
        make_leaf(d, "counter", "counter")
        c = lambda x: os.path.join(d, x)
        tls = {"ca": c("ca.pem"), "cert": c("server.pem"),
               "key": c("server.key"), "ccert": c("counter.pem"),
               "ckey": c("counter.key")}
        self.run_outage(tls=tls, scheme="ssl", mq_tls={
            "ca_file": c("ca.pem"), "cert": c("client.pem"),
            "key": c("client.key")})


if __name__ == "__main__":
    unittest.main()
