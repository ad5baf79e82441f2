-- Repair verification (issue 21 item 10, contract C10): after a repair
-- ticket is delivered, fleetcare watches its code on the vehicle.
--
-- One text for SQLite and PostgreSQL (see 0001_registry.sql).

-- The verdict on a delivered repair: 'verified' (the code stayed away for
-- detect.verify_after_engine_hours engine hours), 'repeated' (it came back
-- within detect.repeat_repair_days: a repeat repair), 'returned' (back
-- later, before the engine hours were run). Null: not decided (watching
-- once delivered). verified_at: when the verdict was reached.
ALTER TABLE tickets ADD COLUMN verification TEXT;
ALTER TABLE tickets ADD COLUMN verified_at TEXT;
-- On a repeat_repair ticket: the earlier ticket whose repair did not hold,
-- with its technician and outlet as they were at delivery.
ALTER TABLE tickets ADD COLUMN repeat_of BIGINT;
ALTER TABLE tickets ADD COLUMN repeat_technician TEXT;
ALTER TABLE tickets ADD COLUMN repeat_outlet TEXT;
CREATE INDEX tickets_by_delivery ON tickets (vehicle_id, ticket_key, delivered_at);

-- Fleets and their language (issue 21 item 9, C10: `fleets import`):
-- the API, the CLI and alerts give ticket titles in it. A fleet not listed
-- speaks English.
CREATE TABLE fleets (
    fleet_id TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    language TEXT NOT NULL CHECK (language IN ('en', 'zh-CN'))
);
