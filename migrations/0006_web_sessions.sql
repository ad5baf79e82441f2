-- Web UI sessions (issue 20, finding 6): the browser's cookie holds a
-- random session id; the database keeps only its SHA-256 and the token it
-- was signed in with (by hash), so that signing out ends the session at
-- once and a revoked or expired token ends its sessions.
--
-- Times are RFC 3339 UTC to the second (YYYY-MM-DDTHH:MM:SSZ). A session
-- ends at expires_at (sign-in + http.session_lifetime) or when unused for
-- http.session_idle after last_seen_at.

CREATE TABLE web_sessions (
    session_sha256 TEXT PRIMARY KEY,
    token_sha256   TEXT NOT NULL REFERENCES api_tokens (token_sha256),
    created_at     TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL,
    expires_at     TEXT NOT NULL
);

CREATE INDEX web_sessions_by_token ON web_sessions (token_sha256);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
