# SPDX-License-Identifier: Apache-2.0
"""
Settings that cannot be honoured as written (a "tls" object on a source
whose url says plain tcp://) are refused, by --check and at start, never
silently ignored: a gateway configured for TLS must not run in clear text.
"""

import json
import os
import subprocess
import tempfile
import unittest

from mqlite_harness import daemon_path, mqlite_only


@mqlite_only("mqlite configuration")
class TestUnsupportedSettings(unittest.TestCase):
    def run_daemon(self, cfg, *args):
        d = tempfile.mkdtemp(prefix="mqlite-unsup-")
        path = os.path.join(d, "c.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([daemon_path(), "-c", path] + list(args),
                           capture_output=True, timeout=30, cwd=d)
        return r, d

    def test_each_unsupported_setting_is_an_error(self):
        cases = [
            ({"sources": [{"name": "s", "url": "tcp://127.0.0.1:1",
                           "topics": ["#"], "tls": {}}]}, "sources[0].tls"),
        ]
        for cfg, key in cases:
            for args in (["--check"], []):
                r, d = self.run_daemon(cfg, *args)
                err = r.stderr.decode()
                self.assertEqual(r.returncode, 1, (cfg, args, err))
                self.assertIn(": %s" % key, err, (cfg, args))
                # Refused before anything was created.
                self.assertFalse(os.path.exists(
                    os.path.join(d, "telemetry.db")), (cfg, args))

    def test_tls_listener_is_not_refused(self):
        # TLS listeners are supported (tests/e2e/test_tls.py): a tls
        # object is checked for its files, never refused as unsupported.
        cfg = {"listeners": [{"port": 0, "bind": "127.0.0.1",
                              "tls": {"cert": "c", "key": "k"}}]}
        r, d = self.run_daemon(cfg, "--check")
        err = r.stderr.decode()
        self.assertNotIn("not supported", err)
        self.assertIn("listeners[0].tls.cert: ", err)
        self.assertIn("cannot open", err)


if __name__ == "__main__":
    unittest.main()
