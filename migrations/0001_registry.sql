-- The fleet registry, service history and depot stock (contract C4).
--
-- One text for SQLite and PostgreSQL: only types both understand, dates and
-- times as ISO 8601 text in a fixed width (YYYY-MM-DD, and
-- YYYY-MM-DDTHH:MM:SSZ in UTC) so that text order is time order in both.

CREATE TABLE vehicles (
    vehicle_id      TEXT PRIMARY KEY,
    fleet_id        TEXT NOT NULL,
    model_id        TEXT NOT NULL,
    vin             TEXT,
    commissioned_on TEXT NOT NULL,
    depot           TEXT NOT NULL
);

CREATE INDEX vehicles_by_fleet ON vehicles (fleet_id);

-- task: a maintenance task id of the vehicle's model, or repair:SPN:FMI.
-- source: 'import' (services import) or 'ticket' (a closed ticket, C8).
CREATE TABLE services (
    vehicle_id   TEXT NOT NULL REFERENCES vehicles (vehicle_id),
    task         TEXT NOT NULL,
    performed_on TEXT NOT NULL,
    engine_hours DOUBLE PRECISION,
    pto_hours    DOUBLE PRECISION,
    odometer_km  DOUBLE PRECISION,
    source       TEXT NOT NULL CHECK (source IN ('import', 'ticket')),
    PRIMARY KEY (vehicle_id, task, performed_on)
);

CREATE TABLE stock (
    part    TEXT NOT NULL,
    depot   TEXT NOT NULL,
    on_hand BIGINT NOT NULL CHECK (on_hand >= 0),
    PRIMARY KEY (part, depot)
);
