-- Vehicles that sent data without being in the fleet registry, each with
-- the time support was alerted about it (issue 20): the alert goes out once
-- per (fleet, vehicle), across restarts and across processes sharing one
-- database. Times are fixed-width RFC 3339 UTC text with microseconds.

CREATE TABLE unknown_vehicle_alerts (
    fleet_id   TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,
    alerted_at TEXT NOT NULL,
    PRIMARY KEY (fleet_id, vehicle_id)
);
