# SPDX-License-Identifier: Apache-2.0
"""A database that heals itself. Each test damages the real database file
the way power cuts, bad cards and people do, starts the real daemon on it
and checks that the gateway runs and stores new publishes, that the damaged
file was moved aside (never deleted) with what sqlite3 can still read of it,
and that the broker's own tables (retained, sessions, outbox...) came
through. Plus a schema newer than this mqlite, a folder mqlite cannot write,
database.on_corrupt "refuse", damage under a running gateway and the
shutdown_timeout bound on SIGTERM."""

import glob
import os
import shutil
import sqlite3
import subprocess
import time
import unittest

from mqlite_harness import (HOST, PUBACK, Broker, E2ETestCase, publish_pkt,
                            wait_until)
from test_webhook import WebhookCase, seq_of
from tmpfs_util import TmpfsMixin

ROWS = 3000


def sqlite_cli(path, sql, timeout=60):
    r = subprocess.run(["sqlite3", "-batch", "-noheader", path, sql],
                       capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace").strip(), \
        r.stderr.decode("utf-8", "replace").strip()


def page_size(path):
    with open(path, "rb") as f:
        h = f.read(100)
    ps = int.from_bytes(h[16:18], "big")
    return 65536 if ps == 1 else ps


class HealCase(E2ETestCase):
    needs_db = True
    auto_start = False

    def fill(self, br, rows=ROWS):
        """Telemetry rows, a retained message and a persistent session."""
        c = self.client(br, client_id="filler")
        c.publish("keep/retained", b"still-here", qos=1, retain=True)
        payload = b"x" * 200
        for i in range(rows):
            c.publish("fill/%d" % (i % 10), payload, qos=1 if i % 100 == 0
                      else 0)
        c.publish("fill/end", b"end", qos=1)
        c.disconnect()
        br.wait_count(rows + 1, timeout=60)
        s = self.client(br, client_id="keeper", clean=False)
        s.subscribe([("keep/#", 1)])
        s.disconnect()
        br.wait_count(1, "topic='fill/end'")

    def quarantined(self, br):
        return sorted(p for p in glob.glob(br.db_path + ".corrupt-*")
                      if not p.endswith(("-wal", "-shm", "-journal")))

    def assert_healed(self, br, want_salvage=True):
        """Running, storing, the old file aside, the broker's rows back."""
        self.assertTrue(br.running())
        self.assert_serving(br)
        old = self.quarantined(br)
        self.assertEqual(len(old), 1, "quarantined files: %r" % old)
        log = br.log_text()
        self.assertIn("DATABASE DAMAGED", log)
        self.assertIn("sqlite3 %s .recover" % old[0], log)
        if want_salvage:
            self.assertEqual(br.query(
                "select payload from retained where topic='keep/retained'"),
                "still-here")
            self.assertEqual(br.scalar(
                "select count(*) from sessions where client_id='keeper'"), 1)
            # A retained message a fresh subscriber gets: the broker
            # loaded what was salvaged.
            c = self.client(br, client_id="reader")
            c.subscribe([("keep/retained", 0)])
            p = c.recv_publish(timeout=5)
            self.assertEqual(p.payload, b"still-here")
        return old[0]

    def start_expect_exit(self, br, timeout=30):
        br.start(wait=False)
        p = br.proc
        try:
            rc = p.wait(timeout=timeout)
        finally:
            br.proc = None
        return rc


class TestDamagedAtStart(HealCase):

    def test_not_sqlite_at_all(self):
        br = self.start_broker()
        self.fill(br, rows=100)
        self.assertEqual(br.stop(), 0)
        junk = b"this is a spreadsheet, not a database\n" * 2000
        with open(br.db_path, "wb") as f:
            f.write(junk)
        br.start()
        old = self.assert_healed(br, want_salvage=False)
        with open(old, "rb") as f:
            self.assertEqual(f.read(), junk)

    def test_truncated(self):
        br = self.start_broker()
        self.fill(br)
        self.assertEqual(br.stop(), 0)
        size = os.path.getsize(br.db_path)
        with open(br.db_path, "r+b") as f:
            f.truncate(size // 2)
        br.start()
        old = self.assert_healed(br)
        self.assertEqual(os.path.getsize(old), size // 2)
        self.assertIn("truncated", br.log_text())

    def test_random_pages_after_power_cut(self):
        br = self.start_broker()
        self.fill(br)
        br.kill()
        # Checkpoint what the WAL holds so the damage hits real pages.
        rc, _, err = sqlite_cli(br.db_path, "pragma wal_checkpoint(truncate)")
        self.assertEqual(rc, 0, err)
        ps = page_size(br.db_path)
        pages = os.path.getsize(br.db_path) // ps
        self.assertGreater(pages, 40)
        with open(br.db_path, "r+b") as f:
            for pg in (pages // 2, pages // 2 + 1):
                f.seek(pg * ps)
                f.write(os.urandom(ps))
        br.start()
        old = self.assert_healed(br)
        self.assertIn("quick_check", br.log_text())
        # What the old file still holds is readable with the shell. (.dump:
        # Debian 12's sqlite3 has no sqlite_dbpage, which .recover needs.)
        rc, out, err = sqlite_cli(old, ".dump")
        self.assertGreater(out.count("INSERT INTO messages"), ROWS * 0.8)
        self.assertIn("fill/end", out)

    def test_random_pages_in_broker_tables(self):
        """Damage in the tables the broker loads is found without any
        quick_check (a clean stop before)."""
        br = self.start_broker()
        self.fill(br, rows=100)
        self.assertEqual(br.stop(), 0)
        root = int(br.query("select rootpage from sqlite_schema "
                            "where name='sessions'"))
        ps = page_size(br.db_path)
        with open(br.db_path, "r+b") as f:
            f.seek((root - 1) * ps)
            f.write(os.urandom(ps))
        br.start()
        self.assert_healed(br, want_salvage=False)
        log = br.log_text()
        self.assertIn("could not save every row of: sessions", log)
        self.assertEqual(br.query(
            "select payload from retained where topic='keep/retained'"),
            "still-here")

    def test_zero_length_file(self):
        br = self.start_broker()
        self.assertEqual(br.stop(), 0)
        for p in glob.glob(br.db_path + "*"):
            os.unlink(p)
        open(br.db_path, "wb").close()
        br.start()
        self.assert_serving(br)
        self.assertEqual(self.quarantined(br), [])

    def test_wal_from_another_database(self):
        br = self.start_broker()
        self.fill(br, rows=500)
        self.assertEqual(br.stop(), 0)
        before = br.count()
        other = os.path.join(self.workdir, "other.db")
        con = sqlite3.connect(other)
        con.execute("pragma journal_mode=wal")
        con.execute("pragma wal_autocheckpoint=0")
        con.execute("create table foreign_stuff (a, b)")
        con.executemany("insert into foreign_stuff values (?, ?)",
                        [(i, "y" * 300) for i in range(2000)])
        con.commit()
        shutil.copy(other + "-wal", br.db_path + "-wal")
        con.close()
        br.start()
        self.assert_serving(br)
        # The stranger is set aside, the file itself was fine: kept, with
        # every row, and the broker's tables as they were.
        self.assertEqual(self.quarantined(br), [])
        aside = glob.glob(br.db_path + "-wal.foreign-*")
        self.assertEqual(len(aside), 1)
        self.assertIn("belongs to another database", br.log_text())
        self.assertEqual(br.count(), before + 1)
        self.assertEqual(br.query(
            "select payload from retained where topic='keep/retained'"),
            "still-here")

    def test_refuse(self):
        br = self.start_broker(database={"on_corrupt": "refuse"})
        self.assertEqual(br.stop(), 0)
        with open(br.db_path, "wb") as f:
            f.write(b"not a database" * 1000)
        rc = self.start_expect_exit(br)
        self.assertEqual(rc, 1)
        self.assertIn('database.on_corrupt is "refuse"', br.log_text())
        self.assertEqual(self.quarantined(br), [])
        with open(br.db_path, "rb") as f:
            self.assertEqual(f.read(14), b"not a database")


class TestHealthyNeverMoved(HealCase):

    def test_downgrade_refused(self):
        br = self.start_broker()
        self.fill(br, rows=10)
        self.assertEqual(br.stop(), 0)
        br.query("pragma user_version = 999")
        rc = self.start_expect_exit(br)
        self.assertEqual(rc, 1)
        self.assertIn("newer than this mqlite", br.log_text())
        self.assertEqual(self.quarantined(br), [])
        self.assertEqual(br.scalar("pragma user_version"), 999)
        self.assertGreaterEqual(br.count(), 11)

    def test_user_tables_and_unclean_stop(self):
        br = self.start_broker()
        self.fill(br, rows=200)
        br.kill()
        br.query("create table my_notes (a); create index my_idx on "
                 "messages (client_id); insert into my_notes values (1)")
        br.start()
        self.assert_serving(br)
        self.assertEqual(self.quarantined(br), [])
        self.assertIn("not closed cleanly", br.log_text())
        self.assertEqual(br.scalar("select count(*) from my_notes"), 1)
        self.assertGreaterEqual(br.count(), 201)
        # A clean stop: the next start runs no check.
        self.assertEqual(br.stop(), 0)
        self.assertFalse(os.path.exists(br.db_path + ".running"))
        br.start()
        self.assert_serving(br)
        self.assertEqual(br.log_text().count("not closed cleanly"), 1)

    def test_unwritable_folder(self):
        folder = os.path.join(self.workdir, "ro")
        os.mkdir(folder)
        br = Broker(self.workdir, database={"path": os.path.join(
            folder, "t.db")})
        self.brokers.append(br)
        br.db_path = os.path.join(folder, "t.db")
        br.start()
        self.fill(br, rows=10)
        self.assertEqual(br.stop(), 0)
        os.chmod(folder, 0o555)
        os.chmod(br.db_path, 0o666)
        if os.geteuid() == 0:
            # root writes anywhere: run the daemon as nobody.
            os.chmod(self.workdir, 0o755)
            os.chmod(br.conf_path, 0o644)
            br.command_prefix = ["setpriv", "--reuid=65534",
                                 "--regid=65534", "--clear-groups"]
            orig = br.command
            br.command = lambda: br.command_prefix + orig()
        try:
            rc = self.start_expect_exit(br)
        finally:
            os.chmod(folder, 0o755)
        self.assertEqual(rc, 1)
        self.assertIn("cannot use folder %s" % folder, br.log_text())
        self.assertEqual(self.quarantined(br), [])
        self.assertGreaterEqual(br.count(), 11)


class TestDamageAtRunTime(HealCase):

    def test_pages_overwritten_under_running_gateway(self):
        br = self.start_broker()
        self.fill(br)
        rc, _, err = sqlite_cli(br.db_path, "pragma wal_checkpoint(truncate)")
        self.assertEqual(rc, 0, err)
        ps = page_size(br.db_path)
        pages = os.path.getsize(br.db_path) // ps
        with open(br.db_path, "r+b") as f:
            for pg in range(1, pages):
                f.seek(pg * ps)
                f.write(os.urandom(ps))
        # Another connection commits, so the gateway's page cache goes.
        rc, _, err = sqlite_cli(br.db_path, "pragma application_id = 7")
        self.assertEqual(rc, 0, err)
        c = self.client(br, client_id="after")
        for i in range(5):
            c.publish("after/damage", b"kept-%d" % i, qos=1, timeout=30)
        self.assertTrue(br.running())
        old = self.quarantined(br)
        self.assertEqual(len(old), 1, "quarantined files: %r" % old)
        log = br.log_text()
        self.assertIn("at run time", log)
        self.assertIn("now writing to a fresh", log)
        self.assertEqual(br.count("topic='after/damage'"), 5)
        self.assert_serving(br)
        self.assertEqual(br.stop(), 0)
        br.start()
        self.assertEqual(br.count("topic='after/damage'"), 5)
        self.assert_serving(br)


def damage_all_pages(db):
    """Checkpoints, overwrites every page but the first with random bytes,
    then commits from another connection so the gateway's cache goes."""
    rc, _, err = sqlite_cli(db, "pragma wal_checkpoint(truncate)")
    assert rc == 0, err
    ps = page_size(db)
    pages = os.path.getsize(db) // ps
    with open(db, "r+b") as f:
        for pg in range(1, pages):
            f.seek(pg * ps)
            f.write(os.urandom(ps))
    rc, _, err = sqlite_cli(db, "pragma application_id = 7")
    assert rc == 0, err


class TestDamageAtRunTimeWebhook(WebhookCase):

    def test_forwarding_goes_on_from_the_fresh_file(self):
        recv = self.receiver()
        br = self.daemon([self.hook(
            "r", "t/+", "http://%s:%d/hook" % (HOST, recv.port))])
        c = self.client(client_id="wh")
        self.publish_many(c, [("t/x", b'{"seq": %d}' % i) for i in range(3)])
        recv.wait_requests(3)
        self.wait_drained()
        damage_all_pages(br.db_path)
        self.publish_many(c, [("t/x", b'{"seq": %d}' % i)
                              for i in range(3, 6)], timeout=30)
        recv.wait_requests(6, timeout=30)
        self.assertEqual(sorted({seq_of(r) for r in recv.requests()}),
                         list(range(6)))
        log = br.log_text()
        self.assertIn("at run time", log)
        self.assertIn("reading the outbox from it", log)
        self.wait_drained()


class TestShutdownBound(HealCase):

    def test_sigterm_with_stuck_store(self):
        br = Broker(self.workdir)
        self.brokers.append(br)
        br.update_config(shutdown_timeout="3s")
        br.start()
        self.assert_serving(br)
        # Another process holds the write lock: every commit fails (busy).
        con = sqlite3.connect(br.db_path, isolation_level=None, timeout=30)
        con.execute("begin immediate")
        try:
            c = self.client(br, client_id="stuck")
            c.send(publish_pkt("stuck/t", b"never", qos=1, pid=1))
            with self.assertRaises(Exception):
                c.expect(PUBACK, timeout=1.5)
            t0 = time.monotonic()
            rc = br.stop(timeout=30)
            took = time.monotonic() - t0
        finally:
            con.execute("rollback")
            con.close()
        self.assertEqual(rc, 0)
        self.assertLess(took, 10, "SIGTERM took %.1f s" % took)
        log = br.log_text()
        self.assertIn("items not committed", log)
        self.assertEqual(br.count("topic='stuck/t'"), 0)


class TestDiskFullAtStart(TmpfsMixin, HealCase):
    """The damaged file is moved aside, but the disk has no room for a
    fresh one: the daemon waits and retries instead of exiting."""
    tmpfs_size = "2m"

    def test_retries_until_there_is_room(self):
        db = os.path.join(self.mnt, "t.db")
        br = Broker(self.workdir, database={"path": db})
        br.db_path = db
        self.brokers.append(br)
        with open(db, "wb") as f:
            f.write(b"no database here " * 4000)
        filler = self.fill_tmpfs()
        br.start(wait=False)
        self.assertTrue(wait_until(lambda: "retrying in" in br.log_text(),
                                   timeout=20), br.log_text())
        time.sleep(1)
        self.assertTrue(br.running(), "exited: %s" % br.log_text())
        os.unlink(filler)
        br.wait_ready(tries=600)
        self.assert_serving(br)
        self.assertEqual(len(self.quarantined(br)), 1)


if __name__ == "__main__":
    unittest.main()
