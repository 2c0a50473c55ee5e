-- MQTT 5.0 message properties of retained messages: the forwardable
-- properties of the PUBLISH (Payload Format Indicator, Message Expiry
-- Interval as published, Content Type, Response Topic, Correlation Data,
-- User Properties) as one encoded property block, NULL when there are none
-- (every 3.1.1 message). The expiry deadline is received_ms plus the
-- interval, so a message whose interval ends while the gateway is stopped
-- is deleted at the next start. session_msgs carries the same column
-- since 001.
ALTER TABLE retained ADD COLUMN props BLOB;
