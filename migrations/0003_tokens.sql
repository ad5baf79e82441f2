-- API bearer tokens (contract C6 `tokens create`, C7 roles and scoping).
--
-- Only the SHA-256 of a token is kept (hex, 64 characters): a copy of the
-- database does not let anyone call the API. The token itself is printed
-- once by `fleetcare tokens create`.

CREATE TABLE api_tokens (
    token_sha256 TEXT PRIMARY KEY,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'support', 'planner', 'operator')),
    created_at   TEXT NOT NULL
);

-- The fleets a token may see: required for operators (at least one),
-- ignored for the other roles, which see every fleet.
CREATE TABLE api_token_fleets (
    token_sha256 TEXT NOT NULL REFERENCES api_tokens (token_sha256),
    fleet_id     TEXT NOT NULL,
    PRIMARY KEY (token_sha256, fleet_id)
);
