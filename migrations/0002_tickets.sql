-- Repair tickets and their history (contracts C7 and C8).
--
-- One text for SQLite and PostgreSQL (see 0001_registry.sql). Times are
-- fixed-width RFC 3339 UTC text with microseconds
-- (YYYY-MM-DDTHH:MM:SS.ffffffZ), so text order is time order and the SLA
-- checks compare them as text.

-- Ticket numbers: one row, incremented in the transaction that inserts a
-- ticket. A transaction that rolls back (a duplicate raced in) gives its
-- number back, so numbers are 1, 2, 3… without gaps in both databases.
CREATE TABLE ticket_numbers (
    name    TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL
);
INSERT INTO ticket_numbers (name, last_id) VALUES ('tickets', 0);

CREATE TABLE tickets (
    ticket_id    BIGINT PRIMARY KEY,
    -- Null only for a batch defect across fleets.
    fleet_id     TEXT,
    vehicle_id   TEXT,
    model_id     TEXT,
    kind         TEXT NOT NULL CHECK (kind IN ('fault', 'maintenance', 'recurring',
                     'repeat_repair', 'batch_defect', 'complaint', 'manual')),
    -- SPN:FMI, a task id, or the ticket number (complaints, manual reports).
    ticket_key   TEXT NOT NULL,
    -- What de-duplication is per: the vehicle id, or the model id of a
    -- batch defect. Never null, so the unique index below always applies.
    dedupe_on    TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('open', 'dispatched', 'diagnosing',
                     'awaiting_parts', 'in_repair', 'quality_check', 'delivered',
                     'closed', 'cancelled')),
    priority     TEXT NOT NULL CHECK (priority IN ('P1', 'P2', 'P3', 'P4')),
    title        TEXT NOT NULL,
    details      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    occurrences  BIGINT NOT NULL CHECK (occurrences >= 1),
    respond_by   TEXT NOT NULL,
    resolve_by   TEXT NOT NULL,
    -- When the ticket left `open`, reached `delivered`, and was closed or
    -- cancelled: the SLA check measures against these.
    responded_at TEXT,
    delivered_at TEXT,
    finished_at  TEXT,
    -- When an SLA breach was recorded (and alerted): at most once.
    breached_at  TEXT,
    -- When an unanswered complaint was escalated: at most once.
    escalated_at TEXT,
    assignee     TEXT,
    outlet       TEXT,
    outcome      TEXT CHECK (outcome IN ('repaired', 'part_replaced', 'no_fault_found', 'misuse')),
    satisfaction BIGINT CHECK (satisfaction BETWEEN 1 AND 5),
    labour_hours DOUBLE PRECISION,
    -- JSON array of {"part": id, "qty": n}.
    parts_used   TEXT NOT NULL,
    -- 1 under warranty, 0 not, null not said.
    warranty     BIGINT CHECK (warranty IN (0, 1))
);

-- C8: at most one ticket neither closed nor cancelled per (vehicle, kind,
-- key), per (model, key) for batch defects. Concurrent alerts for one key
-- race on this index; the loser adds an occurrence instead.
CREATE UNIQUE INDEX tickets_one_active ON tickets (dedupe_on, kind, ticket_key)
    WHERE state NOT IN ('closed', 'cancelled');
CREATE INDEX tickets_by_fleet ON tickets (fleet_id, ticket_id);
CREATE INDEX tickets_by_vehicle ON tickets (vehicle_id, ticket_id);
CREATE INDEX tickets_by_state ON tickets (state, ticket_id);

-- The history: every change with time, actor and note.
CREATE TABLE ticket_events (
    ticket_id  BIGINT NOT NULL REFERENCES tickets (ticket_id),
    seq        BIGINT NOT NULL,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    -- opened, occurrence, moved, breach, escalated, note
    kind       TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    note       TEXT,
    PRIMARY KEY (ticket_id, seq)
);
