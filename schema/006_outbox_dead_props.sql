-- SPDX-License-Identifier: Apache-2.0
-- mqlite schema version 6: dead letters keep the MQTT 5.0 properties of
-- bridged messages. Applied once, in one transaction, by src/store/schema.c,
-- which then sets PRAGMA user_version = 6.
--
-- An outbox row that goes to outbox_dead takes its props (the encoded
-- property block of a message bound for an MQTT 5.0 upstream, see 005) and
-- its expire_ms (the Unix ms its Message Expiry Interval ends) along, so a
-- dead letter moved back to the outbox goes out with the properties it had.
-- Both are NULL for webhooks, 3.1.1 routes, messages without properties and
-- every row dead-lettered before this version.
ALTER TABLE outbox_dead ADD COLUMN props BLOB;
ALTER TABLE outbox_dead ADD COLUMN expire_ms INTEGER;
