-- SPDX-License-Identifier: Apache-2.0
-- mqlite schema version 5: MQTT 5.0 properties of bridged messages. Applied
-- once, in one transaction, by src/store/schema.c, which then sets
-- PRAGMA user_version = 5.
--
-- An outbox row of an mqtt action that speaks MQTT 5.0 upstream keeps the
-- forwardable properties of the message it carries (Payload Format
-- Indicator, Message Expiry Interval as published, Content Type, Response
-- Topic, Correlation Data, User Properties) as one encoded property block,
-- and the wall-clock ms its Message Expiry Interval ends. Both are NULL for
-- every other row (webhooks, 3.1.1 routes, messages without properties).
-- The bridge sends the remaining interval and drops a row once it passed.
ALTER TABLE outbox ADD COLUMN props BLOB;
ALTER TABLE outbox ADD COLUMN expire_ms INTEGER;
