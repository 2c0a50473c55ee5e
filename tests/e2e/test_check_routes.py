# SPDX-License-Identifier: Apache-2.0
"""`mqlite --check` looks past the syntax at what the routes will need: it
opens every file a webhook route names (tls.ca_file, tls.cert, tls.key) and
reports a missing file, a folder or an empty file as FILE: JSON.PATH:
REASON (exit 1), and it loads libcurl for a webhook: with libcurl.so.4
hidden (a private mount namespace binds /dev/null over it) the report
names the library, the reason and the Debian package to install; with
everything in place the same rules check OK."""

import json
import os
import shutil
import subprocess
import unittest

from mqlite_harness import E2ETestCase, daemon_path, mqlite_only

LIBCURL = "/usr/lib/x86_64-linux-gnu/libcurl.so.4"


@mqlite_only("mqlite --check")
class CheckRoutesCase(E2ETestCase):
    auto_start = False

    def rules(self, webhook):
        path = os.path.join(self.workdir, "rules.json")
        with open(path, "w") as f:
            json.dump({"rules": [{"name": "h", "topic": "a/#",
                                  "webhook": webhook}]}, f)
        return path

    def check(self, path, wrap=()):
        r = subprocess.run(list(wrap) + [daemon_path(), "--check", "-r",
                                         path], capture_output=True,
                           timeout=60, cwd=self.workdir)
        return r.returncode, (r.stdout + r.stderr).decode()

    def test_route_files_are_opened(self):
        good = os.path.join(self.workdir, "ca.pem")
        with open(good, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\n")
        empty = os.path.join(self.workdir, "empty.pem")
        open(empty, "w").close()
        os.mkdir(os.path.join(self.workdir, "certs"))
        path = self.rules({"url": "https://x.example/h",
                           "tls": {"ca_file": "missing.pem",
                                   "cert": "certs", "key": "empty.pem"}})
        rc, out = self.check(path)
        self.assertEqual(rc, 1, out)
        self.assertIn("%s: rules[0].webhook.tls.ca_file: cannot open %s: "
                      "No such file or directory" %
                      (path, os.path.join(self.workdir, "missing.pem")), out)
        self.assertIn("%s: rules[0].webhook.tls.cert: %s is a folder" %
                      (path, os.path.join(self.workdir, "certs")), out)
        self.assertIn("%s: rules[0].webhook.tls.key: %s is empty" %
                      (path, empty), out)
        path = self.rules({"url": "https://x.example/h",
                           "tls": {"ca_file": "ca.pem"}})
        rc, out = self.check(path)
        self.assertEqual(rc, 0, out)
        self.assertIn("1 rules OK", out)

    def test_missing_libcurl_names_the_package(self):
        unshare = shutil.which("unshare")
        if unshare is None or not os.path.exists(LIBCURL):
            self.skipTest("needs unshare(1) and %s" % LIBCURL)
        # As root a mount namespace is enough; otherwise a user
        # namespace (-r) gives the right to mount inside it.
        ns = [unshare, "-m"] if os.geteuid() == 0 else [unshare, "-r", "-m"]
        probe = subprocess.run(ns + ["true"], capture_output=True,
                               timeout=30)
        if probe.returncode != 0:
            self.skipTest("no permission for a mount namespace: %s" %
                          probe.stderr.decode().strip())
        path = self.rules({"url": "http://127.0.0.1:1/h"})
        rc, out = self.check(path, wrap=ns + [
            "sh", "-c",
            'mount --bind /dev/null %s && exec "$@"' % LIBCURL, "sh"])
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"%s: rules\[0\]\.webhook: libcurl\.so\.4 "
                         r"cannot be loaded \(.*libcurl\.so\.4: .*\): "
                         r"webhooks cannot be sent; install the Debian "
                         r"package libcurl4" % path)
        rc, out = self.check(path)
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main()
