-- SPDX-License-Identifier: Apache-2.0
-- mqlite schema version 4: the progress of rollups. Applied once, in one
-- transaction, by src/store/schema.c, which then sets PRAGMA user_version = 4.
-- (Versions 2 and 3 are other migrations; a file number only has to grow.)
--
-- Before this migration the rollup code created the table itself the first
-- time a rule had a rollup, with this very definition, so an existing
-- database may have it already, rows included: IF NOT EXISTS keeps those.

-- Per rollup table: the end (Unix ms, exclusive) of the last window whose
-- rows were committed, in the same transaction as those rows. A rollup
-- resumes from here after a restart. source is the raw table it reads.
CREATE TABLE IF NOT EXISTS mqlite_rollup_state (
  rollup      TEXT    PRIMARY KEY COLLATE NOCASE,
  source      TEXT    NOT NULL,
  last_end_ms INTEGER NOT NULL
);
