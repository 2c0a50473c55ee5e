# SPDX-License-Identifier: Apache-2.0
"""Peer-chosen strings cannot forge log lines: a client id and a
subscription filter carrying CR, LF and ESC are logged with those bytes
written as \\xNN, so every line of the log still starts with a timestamp
and no terminal escape reaches it."""

import re
import unittest

from exhaust_util import ExhaustCase
from mqlite_harness import mqlite_only

EVIL = "x\r\n2026-01-01T00:00:00.000Z error: FORGED\x1b[2J"
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \w+: |=== e2e)")


@mqlite_only("log format")
class TestLogEscaping(ExhaustCase):

    def test_control_characters_escaped(self):
        br = self.start()
        c = self.client(connect=False)
        c.connect("id" + EVIL, expect_rc=None)
        c.close()
        s = self.client(client_id="sub")
        # '#' not last: refused, and the filter is logged.
        self.assertEqual(s.subscribe([("a/#/" + EVIL, 0)]), [0x80])
        self.assert_serving()
        text = br.log_text()
        self.assertNotIn("\x1b", text)
        self.assertIn("\\x0d\\x0a2026-01-01T00:00:00.000Z error: FORGED"
                      "\\x1b[2J", text)
        # Both the client id (connect line) and the filter were logged.
        self.assertGreaterEqual(text.count("FORGED"), 2)
        for line in text.splitlines():
            self.assertRegex(line, LINE)
            self.assertNotIn("FORGED", line[:40])


if __name__ == "__main__":
    unittest.main()
