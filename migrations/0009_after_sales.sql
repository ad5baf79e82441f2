-- After-sales operations, part A (issue 21, contract C10): the service
-- calendar's deadlines, the follow-up clock, complaints with their
-- complainant and channel, and service visits that list their tasks.
-- One text for SQLite and PostgreSQL; times are fixed-width RFC 3339 UTC
-- text with microseconds, so text order is time order.

-- A customer report (complaint, manual) must be reached on site by
-- on_site_by (end of 1 working day in a city zone, 2 in a rural one);
-- on_site_at is when a technician was there (a transition with
-- `on_site: true`, or the move to diagnosing). zone: city or rural.
ALTER TABLE tickets ADD COLUMN on_site_by TEXT;
ALTER TABLE tickets ADD COLUMN on_site_at TEXT;
ALTER TABLE tickets ADD COLUMN zone TEXT CHECK (zone IN ('city', 'rural'));

-- After delivered, the follow-up call (the close) is due by follow_up_by;
-- follow_up_alerted_at: when support was alerted that it is overdue (once).
ALTER TABLE tickets ADD COLUMN follow_up_by TEXT;
ALTER TABLE tickets ADD COLUMN follow_up_alerted_at TEXT;

-- Complaints: who complained, how to reach them, and how the complaint came in.
ALTER TABLE tickets ADD COLUMN complainant_name TEXT;
ALTER TABLE tickets ADD COLUMN complainant_phone TEXT;
ALTER TABLE tickets ADD COLUMN complainant_email TEXT;
ALTER TABLE tickets ADD COLUMN channel TEXT CHECK (channel IN ('phone', 'email', 'visit', 'web'));

CREATE INDEX tickets_by_follow_up ON tickets (state, follow_up_by);

-- The tasks of a service visit (a maintenance ticket, key `service`): one
-- row per task, added when it falls due or into the pull-in window while
-- the visit is open. done: set at closing, 1 for the tasks performed (a
-- service record each), 0 for those left for a later visit.
CREATE TABLE visit_tasks (
    ticket_id BIGINT NOT NULL REFERENCES tickets (ticket_id),
    task      TEXT NOT NULL,
    -- overdue, due_soon or pull_in (joined through the pull-in window)
    status    TEXT NOT NULL CHECK (status IN ('overdue', 'due_soon', 'pull_in')),
    added_at  TEXT NOT NULL,
    done      BIGINT CHECK (done IN (0, 1)),
    PRIMARY KEY (ticket_id, task)
);

-- Recall progress alerted to support (C10): per campaign, how many of its
-- recall tickets were finished (closed or cancelled) when support was last
-- told, so each step of progress is alerted once. No foreign key: the
-- campaigns table comes with a later migration.
CREATE TABLE campaign_progress_alerts (
    campaign_id BIGINT PRIMARY KEY,
    finished    BIGINT NOT NULL,
    alerted_at  TEXT NOT NULL
);
