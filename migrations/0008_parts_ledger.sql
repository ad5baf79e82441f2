-- The parts ledger (contract C11, issue 22): stock is the sum of its
-- movements, not a snapshot.
--
-- One text for SQLite and PostgreSQL (see 0001_registry.sql). Times are
-- fixed-width RFC 3339 UTC text with microseconds.

-- Movement numbers: one row, advanced by the transaction that appends
-- movements (a block at a time), so movements are numbered in the order
-- they were committed per writer and a page of them has a stable key.
CREATE TABLE stock_movement_numbers (
    name    TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL
);
INSERT INTO stock_movement_numbers (name, last_id) VALUES ('movements', 0);

-- Append-only. qty is signed: a receipt adds, an issue takes away, an
-- adjust is a count's difference to the stock before it, a transfer is two
-- rows (out of one depot, into another) with one reference.
-- reference: ticket:ID, order:REF, count:FILE, transfer:REF.
CREATE TABLE stock_movements (
    movement_id BIGINT PRIMARY KEY,
    part        TEXT NOT NULL,
    depot       TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('receipt', 'issue', 'adjust', 'transfer')),
    qty         BIGINT NOT NULL,
    at          TEXT NOT NULL,
    reference   TEXT NOT NULL,
    actor       TEXT NOT NULL
);
-- Sums per (part, depot) read this index alone (it covers qty), in its
-- order; a part's movements, newest first, come from the second.
CREATE INDEX stock_movements_by_pair ON stock_movements (part, depot, qty);
CREATE INDEX stock_movements_by_part ON stock_movements (part, movement_id);
CREATE INDEX stock_movements_by_reference ON stock_movements (reference, part, depot);

-- The counts imported before the ledger become its first movements; when
-- they were taken is not known.
INSERT INTO stock_movements (movement_id, part, depot, kind, qty, at, reference, actor)
SELECT ROW_NUMBER() OVER (ORDER BY part, depot), part, depot, 'adjust', on_hand,
       '1970-01-01T00:00:00.000000Z', 'count:before-ledger', 'fleetcare'
FROM stock;
UPDATE stock_movement_numbers SET last_id = (SELECT COUNT(*) FROM stock_movements)
WHERE name = 'movements';
DROP TABLE stock;

-- Orders placed and not yet received count as on_order; the receipt with
-- the order's reference (for the same part and depot) closes the line.
CREATE TABLE stock_orders (
    reference   TEXT NOT NULL,
    part        TEXT NOT NULL,
    depot       TEXT NOT NULL,
    qty         BIGINT NOT NULL CHECK (qty > 0),
    ordered_on  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    received_at TEXT,
    PRIMARY KEY (reference, part, depot)
);
CREATE INDEX stock_orders_open ON stock_orders (part, depot) WHERE received_at IS NULL;

-- Tickets waiting for parts too long, each with the time support was
-- alerted: once per ticket, across restarts and processes.
CREATE TABLE parts_wait_alerts (
    ticket_id  BIGINT PRIMARY KEY,
    alerted_at TEXT NOT NULL
);
