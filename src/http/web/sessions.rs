//! Web UI sessions kept on the server (issue 20, finding 6): the cookie
//! holds a random session id (32 bytes from the OS); the `web_sessions`
//! table keeps its SHA-256, the hash of the API token it was signed in
//! with, and its times. Signing out deletes the row, so the old cookie
//! stops working at once; every request checks the token too, so a token
//! revoked or expired ends its sessions; a session unused for
//! `http.session_idle` or older than `http.session_lifetime` ends.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use crate::config::HttpConfig;
use crate::db::{Db, DbError};
use crate::http::api::Caller;
use crate::http::tokens;

/// `last_seen_at` is written at most this often per session (not on every
/// page): an idle timeout may end a session this much early.
const SEEN_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Hex digits of a session id (32 random bytes).
const ID_LEN: usize = 64;

fn hash(id: &str) -> String {
    crate::runtime::secret::hex(&Sha256::digest(id.as_bytes()))
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_time(column: &'static str, text: &str) -> Result<DateTime<Utc>, DbError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| DbError::Corrupt {
            table: "web_sessions",
            column,
            value: text.to_owned(),
            reason: e.to_string(),
        })
}

/// A session could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the operating system gave no random bytes for the session: {0}")]
    Random(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Starts a session for the API token `token` (already checked valid):
/// the new session id, for the cookie. Sessions that have ended are
/// deleted on the way.
pub async fn start(db: &Db, token: &str, limits: &HttpConfig) -> Result<String, SessionError> {
    let id = crate::runtime::secret::random_hex(32).map_err(|e| SessionError::Random(e.0))?;
    let now = Utc::now();
    let expires = now + limits.session_lifetime;
    sqlx::query(
        "INSERT INTO web_sessions (session_sha256, token_sha256, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $3, $4)",
    )
    .bind(hash(&id))
    .bind(tokens::token_hash(token))
    .bind(time_text(now))
    .bind(time_text(expires))
    .execute(db.pool())
    .await
    .map_err(DbError::from)?;
    sweep(db, now, limits).await?;
    Ok(id)
}

/// Deletes the sessions that have ended by `now` (lifetime or idle time).
async fn sweep(db: &Db, now: DateTime<Utc>, limits: &HttpConfig) -> Result<(), DbError> {
    sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
        .bind(time_text(now))
        .bind(time_text(now - limits.session_idle))
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The caller of the session `id`, or `None` when there is no such
/// session, it has ended, or its token is no longer valid (then the
/// session is deleted).
pub async fn resume(db: &Db, id: &str, limits: &HttpConfig) -> Result<Option<Caller>, DbError> {
    if id.len() != ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let session = hash(id);
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT token_sha256, last_seen_at, expires_at FROM web_sessions WHERE session_sha256 = $1",
    )
    .bind(&session)
    .fetch_optional(db.pool())
    .await?;
    let Some((token, last_seen, expires)) = row else {
        return Ok(None);
    };
    let now = Utc::now();
    let last_seen = parse_time("last_seen_at", &last_seen)?;
    if now >= parse_time("expires_at", &expires)? || now >= last_seen + limits.session_idle {
        tracing::debug!("A web UI session ended by time.");
        delete(db, &session).await?;
        return Ok(None);
    }
    let caller = match tokens::check_hash(db, &token).await? {
        Ok(caller) => caller,
        Err(refusal) => {
            tracing::info!(%refusal, "A web UI session ended with its token.");
            delete(db, &session).await?;
            return Ok(None);
        }
    };
    if now - last_seen >= SEEN_EVERY {
        sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE session_sha256 = $2")
            .bind(time_text(now))
            .bind(&session)
            .execute(db.pool())
            .await?;
    }
    Ok(Some(caller))
}

/// Ends the session `id` (signing out).
pub async fn end(db: &Db, id: &str) -> Result<(), DbError> {
    delete(db, &hash(id)).await
}

async fn delete(db: &Db, session_hash: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM web_sessions WHERE session_sha256 = $1")
        .bind(session_hash)
        .execute(db.pool())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::http::api::{Role, create_token, revoke_token};

    async fn sessions_end_at_sign_out_idle_lifetime_and_with_their_token(db: Db) {
        let limits = HttpConfig::default();
        let token = create_token(&db, Role::Support, &[]).await.unwrap();
        let a = start(&db, &token, &limits).await.unwrap();
        let b = start(&db, &token, &limits).await.unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), ID_LEN);
        assert_eq!(
            resume(&db, &a, &limits).await.unwrap().unwrap().role,
            Role::Support
        );
        // The table keeps hashes only.
        let stored: Vec<(String, String)> =
            sqlx::query_as("SELECT session_sha256, token_sha256 FROM web_sessions")
                .fetch_all(db.pool())
                .await
                .unwrap();
        assert_eq!(stored.len(), 2);
        assert!(
            stored
                .iter()
                .all(|(s, t)| *s != a && *s != b && *t != token)
        );

        // Signing out ends that session only.
        end(&db, &a).await.unwrap();
        assert!(resume(&db, &a, &limits).await.unwrap().is_none());
        assert!(resume(&db, &b, &limits).await.unwrap().is_some());
        for bad in ["", "zz", &"0".repeat(ID_LEN), &token] {
            assert!(resume(&db, bad, &limits).await.unwrap().is_none(), "{bad}");
        }

        // Idle: a session last seen longer ago than session_idle ends.
        let idle = HttpConfig {
            session_idle: Duration::from_secs(3600),
            ..HttpConfig::default()
        };
        let old = time_text(Utc::now() - chrono::TimeDelta::hours(2));
        sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE session_sha256 = $2")
            .bind(&old)
            .bind(hash(&b))
            .execute(db.pool())
            .await
            .unwrap();
        assert!(resume(&db, &b, &idle).await.unwrap().is_none());
        assert!(resume(&db, &b, &limits).await.unwrap().is_none(), "deleted");

        // Lifetime: ended at expires_at however busy.
        let c = start(&db, &token, &limits).await.unwrap();
        sqlx::query("UPDATE web_sessions SET expires_at = $1 WHERE session_sha256 = $2")
            .bind(time_text(Utc::now() - chrono::TimeDelta::seconds(1)))
            .bind(hash(&c))
            .execute(db.pool())
            .await
            .unwrap();
        assert!(resume(&db, &c, &limits).await.unwrap().is_none());

        // A revoked token ends its sessions.
        let d = start(&db, &token, &limits).await.unwrap();
        assert!(resume(&db, &d, &limits).await.unwrap().is_some());
        revoke_token(&db, &token).await.unwrap();
        assert!(resume(&db, &d, &limits).await.unwrap().is_none());
        let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM web_sessions")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn sessions_on_sqlite() {
        crate::db::testing::on_sqlite(sessions_end_at_sign_out_idle_lifetime_and_with_their_token);
    }

    #[test]
    fn sessions_on_postgres() {
        crate::db::testing::on_postgres(
            sessions_end_at_sign_out_idle_lifetime_and_with_their_token,
        );
    }
}
