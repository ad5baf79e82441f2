-- After-sales service, part B (issue 21, contract C10): warranty decided
-- when a ticket opens, the outlets register, recall campaigns.
--
-- One text for SQLite and PostgreSQL (see 0001_registry.sql).

-- Warranty: decided when the ticket opens (status in|out|unknown, the end
-- date of the months limit, the limit decided on) and the whole decision
-- with the model's excluded parts and components as JSON, so that closing
-- decides each part from what was known at intake. Null on tickets opened
-- before this migration: shown as unknown.
ALTER TABLE tickets ADD COLUMN warranty_status TEXT;
ALTER TABLE tickets ADD COLUMN warranty_until TEXT;
ALTER TABLE tickets ADD COLUMN warranty_basis TEXT;
ALTER TABLE tickets ADD COLUMN warranty_cover TEXT;
-- Set at closing: 1 when the labour of the repair is claimed.
ALTER TABLE tickets ADD COLUMN labour_covered BIGINT;
-- A recall ticket's campaign.
ALTER TABLE tickets ADD COLUMN campaign_id BIGINT;

-- The kind's CHECK of 0002 listed the kinds of that day; a recall ticket
-- is a new kind. A column's own CHECK goes with the column, so the kind is
-- moved to a new column without one (the service checks kinds when it
-- writes and reads them), which no later kind needs to rebuild. The
-- partial unique index names the column, so it is made again.
DROP INDEX tickets_one_active;
ALTER TABLE tickets ADD COLUMN kind_any TEXT NOT NULL DEFAULT 'manual';
UPDATE tickets SET kind_any = kind;
ALTER TABLE tickets DROP COLUMN kind;
ALTER TABLE tickets RENAME COLUMN kind_any TO kind;
CREATE UNIQUE INDEX tickets_one_active ON tickets (dedupe_on, kind, ticket_key)
    WHERE state NOT IN ('closed', 'cancelled');
CREATE INDEX tickets_by_campaign ON tickets (campaign_id);

-- Service outlets: own workshops and contracted partners (outlets import).
CREATE TABLE outlets (
    outlet_id TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('own', 'partner')),
    zone      TEXT NOT NULL CHECK (zone IN ('city', 'rural')),
    phone     TEXT
);

-- The depots each outlet serves; an outlet serves one or more.
CREATE TABLE outlet_depots (
    outlet_id TEXT NOT NULL REFERENCES outlets (outlet_id),
    depot     TEXT NOT NULL,
    PRIMARY KEY (outlet_id, depot)
);
CREATE INDEX outlet_depots_by_depot ON outlet_depots (depot);

-- Recall campaigns: one recall ticket per affected registered vehicle.
CREATE TABLE campaigns (
    campaign_id       BIGINT PRIMARY KEY,
    model_id          TEXT NOT NULL,
    spn               BIGINT NOT NULL,
    fmi               BIGINT NOT NULL,
    title             TEXT NOT NULL,
    -- Affected: commissioned on or after / on or before (YYYY-MM-DD).
    commissioned_from TEXT,
    commissioned_to   TEXT,
    created_at        TEXT NOT NULL,
    created_by        TEXT NOT NULL
);
INSERT INTO ticket_numbers (name, last_id) VALUES ('campaigns', 0);
