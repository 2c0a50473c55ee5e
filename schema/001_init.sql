-- SPDX-License-Identifier: Apache-2.0
-- mqlite schema version 1: the default telemetry table, the outbox and the
-- broker state that must survive a restart. Applied once, in one
-- transaction, by src/store/schema.c, which then sets PRAGMA user_version = 1.
-- A new database gets auto_vacuum=INCREMENTAL and an instance_id before this.

-- Every accepted publish (the default rule). payload has no declared type:
-- TEXT when the payload is valid UTF-8 without NUL, else BLOB, byte-exact.
CREATE TABLE IF NOT EXISTS messages (
  id          INTEGER PRIMARY KEY,
  received_ms INTEGER NOT NULL,   -- Unix time in milliseconds when the gateway accepted the publish
  topic       TEXT    NOT NULL,
  client_id   TEXT,
  qos         INTEGER NOT NULL,
  retain      INTEGER NOT NULL,
  payload                          -- TEXT when the payload is valid UTF-8, else BLOB
);
-- Time-range queries use this index. There is deliberately no index on
-- topic: it halves the ingest rate. Add one if you query by topic a lot:
--   CREATE INDEX messages_topic ON messages (topic, received_ms);
CREATE INDEX IF NOT EXISTS messages_received_ms ON messages (received_ms);

-- Pending webhook and bridge deliveries (src/store/outbox.c). Written only
-- by the store thread, in the transaction of the publish that produced the
-- row; read by the delivery thread through its own connection. AUTOINCREMENT:
-- ids are never reused, they are part of the Idempotency-Key and the
-- delivery cursor (per route, rows are sent in id order).
CREATE TABLE IF NOT EXISTS outbox (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  route       TEXT    NOT NULL,   -- "<rule name>/<action kind>"
  url         TEXT    NOT NULL,   -- rendered url (no secrets)
  headers     TEXT,               -- rendered headers as a JSON object
  body,                           -- rendered body, TEXT or BLOB
  bytes       INTEGER NOT NULL DEFAULT 0,  -- url + headers + body, for outbox.max_bytes
  created_ms  INTEGER NOT NULL,
  attempts    INTEGER NOT NULL DEFAULT 0,  -- failed attempts so far
  next_ms     INTEGER NOT NULL DEFAULT 0,  -- not before this time (backoff)
  last_error  TEXT
);
-- Claims walk a route in id order; the cap walks the table in id order.
CREATE INDEX IF NOT EXISTS outbox_route ON outbox (route, id);

-- Deliveries that failed for good (4xx, 3xx, max_attempts, max_age, a bad
-- header), kept for inspection and manual replay.
CREATE TABLE IF NOT EXISTS outbox_dead (
  id          INTEGER PRIMARY KEY,  -- the outbox id it had
  route       TEXT    NOT NULL,
  url         TEXT    NOT NULL,
  headers     TEXT,
  body,
  created_ms  INTEGER NOT NULL,
  attempts    INTEGER NOT NULL DEFAULT 0,  -- requests sent, the last included
  dead_ms     INTEGER NOT NULL,     -- when it was dead-lettered
  status      INTEGER,              -- last HTTP status, NULL if none
  last_error  TEXT,                 -- why, e.g. "HTTP 400", "max_attempts 5 reached"
  response    TEXT                  -- first <= 512 bytes of the last response body
);
CREATE INDEX IF NOT EXISTS outbox_dead_dead_ms ON outbox_dead (dead_ms);

-- Publishes a rule could not store (bad value, missing column, ...).
CREATE TABLE IF NOT EXISTS rejected (
  id          INTEGER PRIMARY KEY,
  received_ms INTEGER NOT NULL,
  rejected_ms INTEGER NOT NULL,
  rule        TEXT,
  topic       TEXT    NOT NULL,
  client_id   TEXT,
  qos         INTEGER,
  reason      TEXT    NOT NULL,
  payload
);
CREATE INDEX IF NOT EXISTS rejected_received_ms ON rejected (received_ms);

-- Retained messages, one per topic; payload is byte-exact.
CREATE TABLE IF NOT EXISTS retained (
  topic       TEXT    PRIMARY KEY,
  payload     BLOB,
  qos         INTEGER NOT NULL,
  received_ms INTEGER NOT NULL,
  client_id   TEXT
);

-- Persistent sessions (clean session 0 / session expiry > 0).
CREATE TABLE IF NOT EXISTS sessions (
  client_id       TEXT    PRIMARY KEY,
  username        TEXT,
  protocol        INTEGER NOT NULL DEFAULT 4,  -- 4 = 3.1.1, 5 = 5.0
  expiry_s        INTEGER NOT NULL DEFAULT 0,  -- session expiry interval
  connected_ms    INTEGER,
  disconnected_ms INTEGER,                     -- NULL while connected
  next_packet_id  INTEGER NOT NULL DEFAULT 1,
  subs            TEXT                         -- JSON [{"filter","qos","opts"}]
);

-- Messages queued for or in flight to a persistent session.
CREATE TABLE IF NOT EXISTS session_msgs (
  id          INTEGER PRIMARY KEY,
  client_id   TEXT    NOT NULL,
  packet_id   INTEGER,            -- assigned once sent
  state       INTEGER NOT NULL DEFAULT 0,  -- 0 queued, 1 awaiting PUBACK/PUBREC, 2 awaiting PUBCOMP
  topic       TEXT    NOT NULL,
  qos         INTEGER NOT NULL,
  retain      INTEGER NOT NULL DEFAULT 0,
  received_ms INTEGER NOT NULL,
  payload     BLOB,
  props       BLOB                -- MQTT 5 properties as encoded, NULL if none
);
CREATE INDEX IF NOT EXISTS session_msgs_client ON session_msgs (client_id, id);

-- Inbound QoS 2 packet ids between PUBREC and PUBREL.
CREATE TABLE IF NOT EXISTS qos2_inflight (
  client_id   TEXT    NOT NULL,
  packet_id   INTEGER NOT NULL,
  PRIMARY KEY (client_id, packet_id)
);

-- Key/value facts about this database: instance_id, ...
CREATE TABLE IF NOT EXISTS mqlite_meta (
  key         TEXT    PRIMARY KEY,
  value
);
