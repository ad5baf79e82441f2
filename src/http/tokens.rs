//! API bearer tokens (C7, C14): created by `fleetcare tokens create`,
//! stored only as their SHA-256, checked on every API call and web UI
//! request, listed and revoked by `fleetcare tokens list|revoke`.
//!
//! A token has a role, an operator's fleets, and an expiry: 90 days unless
//! created with another (`--expires`), or none (`--expires never`; also
//! every token made before expiry existed, so that upgrading loses no
//! access). An expired or revoked token is refused (401) from the next
//! request on, and its web UI sessions end with it.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use fleetcare_ingest::ids::FleetId;
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::auth::{Caller, Role};
use crate::db::{Db, DbError};

/// Marks fleetcare's tokens, so that secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "fct_";

/// How long a token lives unless created with another expiry.
pub const DEFAULT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// Hex digits of a token's hash that name it (`tokens list`, `revoke`, the
/// ticket history's actor): enough to tell tokens apart, useless for
/// guessing one.
pub const ID_DIGITS: usize = 8;

/// Token creation, listing or revocation that cannot go on.
#[derive(Debug, Error)]
pub enum TokenError {
    #[error("an operator token needs at least one fleet; add --fleet ID")]
    OperatorWithoutFleet,
    #[error(
        "only operator tokens are limited to fleets; the {0} role sees every fleet, so leave out --fleet"
    )]
    FleetsForAllFleetRole(Role),
    #[error("the token would expire at {0}, which is not in the future; give a later expiry")]
    ExpiresInThePast(String),
    #[error("the operating system gave no random bytes for the token: {0}")]
    Random(String),
    #[error("no token has the id {0:?}; `fleetcare tokens list` shows the ids")]
    NoSuchToken(String),
    #[error(
        "{0:?} is not a token id: give the id `fleetcare tokens list` shows ({ID_DIGITS} or more hex digits) or the token itself"
    )]
    BadId(String),
    #[error("the id {id:?} fits {count} tokens; give the longer id `fleetcare tokens list` shows")]
    Ambiguous { id: String, count: usize },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Why a token presented to the API or the web UI is refused (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not one of ours (never created, or mistyped).
    Unknown,
    /// Past its expiry.
    Expired,
    /// Revoked with `fleetcare tokens revoke`.
    Revoked,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unknown => "not a token of this service",
            Self::Expired => "this token has expired",
            Self::Revoked => "this token was revoked",
        })
    }
}

/// The stored form of a token: hex SHA-256.
///
/// A plain hash, not a password hash (argon2, bcrypt): the token is 32
/// random bytes, so guessing one from its hash is a 2^256 search however
/// fast the hash is, and a fast, unsalted hash lets every request find its
/// token by an indexed lookup instead of trying each stored one.
pub(crate) fn token_hash(token: &str) -> String {
    crate::runtime::secret::hex(&Sha256::digest(token.as_bytes()))
}

/// How times are stored in `api_tokens`: RFC 3339 UTC to the second, one
/// width, so that text order is time order.
fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_time(column: &'static str, text: &str) -> Result<DateTime<Utc>, DbError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| DbError::Corrupt {
            table: "api_tokens",
            column,
            value: text.to_owned(),
            reason: e.to_string(),
        })
}

/// Creates a token for `role` (and, for an operator, its fleets) that
/// expires after [`DEFAULT_LIFETIME`], stores its hash, and returns the
/// token: the only time it exists in clear.
pub async fn create_token(db: &Db, role: Role, fleets: &[FleetId]) -> Result<String, TokenError> {
    let expires = Utc::now() + DEFAULT_LIFETIME;
    create_token_until(db, role, fleets, Some(expires)).await
}

/// [`create_token`] with the expiry `expires_at`; `None`: never.
pub async fn create_token_until(
    db: &Db,
    role: Role,
    fleets: &[FleetId],
    expires_at: Option<DateTime<Utc>>,
) -> Result<String, TokenError> {
    if role == Role::Operator && fleets.is_empty() {
        return Err(TokenError::OperatorWithoutFleet);
    }
    if role.all_fleets() && !fleets.is_empty() {
        return Err(TokenError::FleetsForAllFleetRole(role));
    }
    let now = Utc::now();
    if let Some(t) = expires_at.filter(|t| *t <= now) {
        return Err(TokenError::ExpiresInThePast(time_text(t)));
    }
    let secret = crate::runtime::secret::random_hex(32).map_err(|e| TokenError::Random(e.0))?;
    let token = format!("{TOKEN_PREFIX}{secret}");
    let hash = token_hash(&token);
    let mut tx = db.pool().begin().await.map_err(DbError::from)?;
    sqlx::query(
        "INSERT INTO api_tokens (token_sha256, role, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&hash)
    .bind(role.as_str())
    .bind(time_text(now))
    .bind(expires_at.map(time_text))
    .execute(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let mut unique: Vec<&FleetId> = fleets.iter().collect();
    unique.sort();
    unique.dedup();
    for fleet in unique {
        sqlx::query("INSERT INTO api_token_fleets (token_sha256, fleet_id) VALUES ($1, $2)")
            .bind(&hash)
            .bind(fleet.as_str())
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?;
    }
    tx.commit().await.map_err(DbError::from)?;
    tracing::info!(%role, fleets = fleets.len(), id = &hash[..ID_DIGITS], "Created an API token.");
    Ok(token)
}

/// The caller a token belongs to; `None` for a token that is not ours, has
/// expired or was revoked.
pub async fn authenticate(db: &Db, token: &str) -> Result<Option<Caller>, DbError> {
    Ok(check(db, token).await?.ok())
}

/// The caller a token belongs to, or why it is refused.
pub async fn check(db: &Db, token: &str) -> Result<Result<Caller, Refusal>, DbError> {
    check_hash(db, &token_hash(token)).await
}

/// [`check`] for the token whose hash is `hash` (a web session keeps the
/// hash, not the token).
pub(crate) async fn check_hash(db: &Db, hash: &str) -> Result<Result<Caller, Refusal>, DbError> {
    let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT role, expires_at, revoked_at FROM api_tokens WHERE token_sha256 = $1",
    )
    .bind(hash)
    .fetch_optional(db.pool())
    .await?;
    let Some((role, expires_at, revoked_at)) = row else {
        return Ok(Err(Refusal::Unknown));
    };
    if revoked_at.is_some() {
        return Ok(Err(Refusal::Revoked));
    }
    if let Some(e) = expires_at
        && parse_time("expires_at", &e)? <= Utc::now()
    {
        return Ok(Err(Refusal::Expired));
    }
    let role = role.parse::<Role>().map_err(|e| DbError::Corrupt {
        table: "api_tokens",
        column: "role",
        value: e.0.clone(),
        reason: e.to_string(),
    })?;
    let fleets = fleets_of(db, hash).await?;
    let actor = format!("{role}:{}", hash.get(..ID_DIGITS).unwrap_or_default());
    Ok(Ok(Caller {
        role,
        fleets,
        actor,
    }))
}

async fn fleets_of(db: &Db, hash: &str) -> Result<Vec<FleetId>, DbError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT fleet_id FROM api_token_fleets WHERE token_sha256 = $1 ORDER BY fleet_id",
    )
    .bind(hash)
    .fetch_all(db.pool())
    .await?;
    rows.into_iter()
        .map(|(f,)| {
            FleetId::new(&f).map_err(|e| DbError::Corrupt {
                table: "api_token_fleets",
                column: "fleet_id",
                value: f.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// One token as `fleetcare tokens list` shows it: never the token, nor
/// its whole hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// The shortest prefix of the hash, at least [`ID_DIGITS`] hex digits,
    /// that names this token alone.
    pub id: String,
    pub role: Role,
    /// An operator's fleets, comma-separated; empty for the other roles.
    pub fleets: String,
    pub created_at: String,
    /// Null: never.
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    #[serde(skip)]
    hash: String,
}

impl crate::report::output::Row for TokenInfo {
    const FIELDS: &'static [&'static str] = &[
        "id",
        "role",
        "fleets",
        "created_at",
        "expires_at",
        "revoked_at",
        "status",
    ];
}

/// Every token, oldest first.
pub async fn list_tokens(db: &Db) -> Result<Vec<TokenInfo>, TokenError> {
    type Row = (String, String, String, Option<String>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT token_sha256, role, created_at, expires_at, revoked_at FROM api_tokens \
         ORDER BY created_at, token_sha256",
    )
    .fetch_all(db.pool())
    .await
    .map_err(DbError::from)?;
    let now = Utc::now();
    let mut out = Vec::with_capacity(rows.len());
    for (hash, role, created_at, expires_at, revoked_at) in rows {
        let role = role.parse::<Role>().map_err(|e| DbError::Corrupt {
            table: "api_tokens",
            column: "role",
            value: e.0.clone(),
            reason: e.to_string(),
        })?;
        let expired = match &expires_at {
            Some(e) => parse_time("expires_at", e)? <= now,
            None => false,
        };
        let status = match (&revoked_at, expired) {
            (Some(_), _) => "revoked",
            (None, true) => "expired",
            (None, false) => "active",
        };
        let fleets = fleets_of(db, &hash).await?;
        out.push(TokenInfo {
            id: String::new(),
            role,
            fleets: fleets
                .iter()
                .map(FleetId::as_str)
                .collect::<Vec<_>>()
                .join(","),
            created_at,
            expires_at,
            revoked_at,
            status,
            hash,
        });
    }
    let hashes: Vec<String> = out.iter().map(|t| t.hash.clone()).collect();
    for t in &mut out {
        t.id = short_id(&t.hash, &hashes);
    }
    Ok(out)
}

/// The shortest prefix of `hash`, at least [`ID_DIGITS`] long (growing by
/// four digits), that no other of `all` starts with.
fn short_id(hash: &str, all: &[String]) -> String {
    let mut n = ID_DIGITS;
    while n < hash.len()
        && all
            .iter()
            .any(|other| other != hash && other.starts_with(&hash[..n]))
    {
        n += 4;
    }
    hash[..n.min(hash.len())].to_owned()
}

/// What [`revoke_token`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub token: TokenInfo,
    /// False: it had been revoked before (nothing changed).
    pub now: bool,
}

/// Revokes the token `id` (a prefix of its hash as `tokens list` shows it,
/// or the token itself): refused from the next request on, and its web UI
/// sessions deleted.
pub async fn revoke_token(db: &Db, id: &str) -> Result<Revoked, TokenError> {
    let prefix = if id.starts_with(TOKEN_PREFIX) {
        token_hash(id)
    } else if id.len() >= ID_DIGITS && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        id.to_ascii_lowercase()
    } else {
        return Err(TokenError::BadId(id.to_owned()));
    };
    let mut found: Vec<TokenInfo> = list_tokens(db)
        .await?
        .into_iter()
        .filter(|t| t.hash.starts_with(&prefix))
        .collect();
    let token = match found.len() {
        0 => return Err(TokenError::NoSuchToken(id.to_owned())),
        1 => found.remove(0),
        count => {
            return Err(TokenError::Ambiguous {
                id: id.to_owned(),
                count,
            });
        }
    };
    if token.revoked_at.is_some() {
        return Ok(Revoked { token, now: false });
    }
    let now = time_text(Utc::now());
    let mut tx = db.pool().begin().await.map_err(DbError::from)?;
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE token_sha256 = $2")
        .bind(&now)
        .bind(&token.hash)
        .execute(&mut *tx)
        .await
        .map_err(DbError::from)?;
    // Its web UI sessions would be refused anyway (each request checks
    // the token); deleting them keeps the table to live sessions.
    sqlx::query("DELETE FROM web_sessions WHERE token_sha256 = $1")
        .bind(&token.hash)
        .execute(&mut *tx)
        .await
        .map_err(DbError::from)?;
    tx.commit().await.map_err(DbError::from)?;
    tracing::info!(id = %token.id, role = %token.role, "Revoked an API token.");
    Ok(Revoked {
        token: TokenInfo {
            revoked_at: Some(now),
            status: "revoked",
            ..token
        },
        now: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn tokens_are_found_by_hash_only(db: Db) {
        let a = FleetId::new("a").unwrap();
        assert!(matches!(
            create_token(&db, Role::Operator, &[]).await,
            Err(TokenError::OperatorWithoutFleet)
        ));
        assert!(matches!(
            create_token(&db, Role::Support, std::slice::from_ref(&a)).await,
            Err(TokenError::FleetsForAllFleetRole(Role::Support))
        ));
        let token = create_token(&db, Role::Operator, &[a.clone(), a.clone()])
            .await
            .unwrap();
        assert!(token.starts_with(TOKEN_PREFIX) && token.len() == TOKEN_PREFIX.len() + 64);
        let caller = authenticate(&db, &token).await.unwrap().unwrap();
        assert_eq!(caller.role, Role::Operator);
        assert_eq!(caller.fleets, vec![a]);
        assert_eq!(
            caller.actor,
            format!("operator:{}", &token_hash(&token)[..8])
        );
        let support = create_token(&db, Role::Support, &[]).await.unwrap();
        assert_ne!(support, token);
        let caller = authenticate(&db, &support).await.unwrap().unwrap();
        assert_eq!((caller.role, caller.fleets.len()), (Role::Support, 0));
        assert_eq!(authenticate(&db, "fct_nope").await.unwrap(), None);
        assert_eq!(
            authenticate(&db, &token.to_uppercase()).await.unwrap(),
            None
        );
        let stored: Vec<(String,)> =
            sqlx::query_as("SELECT token_sha256 FROM api_tokens ORDER BY token_sha256")
                .fetch_all(db.pool())
                .await
                .unwrap();
        let mut want = vec![(token_hash(&token),), (token_hash(&support),)];
        want.sort();
        assert_eq!(stored, want);
    }

    #[test]
    fn tokens_on_sqlite() {
        crate::db::testing::on_sqlite(tokens_are_found_by_hash_only);
    }

    #[test]
    fn tokens_on_postgres() {
        crate::db::testing::on_postgres(tokens_are_found_by_hash_only);
    }

    /// Issue 20, finding 6: tokens never expired and could not be revoked.
    async fn tokens_expire_and_are_revoked(db: Db) {
        let a = FleetId::new("a").unwrap();
        let soon = Utc::now() + chrono::Duration::milliseconds(1500);
        let short = create_token_until(&db, Role::Operator, std::slice::from_ref(&a), Some(soon))
            .await
            .unwrap();
        let forever = create_token_until(&db, Role::Admin, &[], None)
            .await
            .unwrap();
        let default = create_token(&db, Role::Support, &[]).await.unwrap();
        assert!(matches!(
            create_token_until(&db, Role::Admin, &[], Some(Utc::now())).await,
            Err(TokenError::ExpiresInThePast(_))
        ));
        assert!(check(&db, &short).await.unwrap().is_ok());
        assert!(check(&db, &forever).await.unwrap().is_ok());
        // A token made before expiry existed (expires_at NULL) never
        // expires: upgrading loses no access.
        let old = "fct_made-by-an-older-version";
        sqlx::query(
            "INSERT INTO api_tokens (token_sha256, role, created_at) VALUES ($1, 'planner', '2025-01-01T00:00:00Z')",
        )
        .bind(token_hash(old))
        .execute(db.pool())
        .await
        .unwrap();
        assert_eq!(check(&db, old).await.unwrap().unwrap().role, Role::Planner);
        let list = list_tokens(&db).await.unwrap();
        let by_role = |r: Role| list.iter().find(|t| t.role == r).unwrap().clone();
        assert_eq!(by_role(Role::Admin).expires_at, None);
        assert_eq!(by_role(Role::Planner).expires_at, None);
        assert_eq!(by_role(Role::Operator).fleets, "a");
        let default_expiry = parse_time(
            "expires_at",
            by_role(Role::Support).expires_at.as_deref().unwrap(),
        )
        .unwrap();
        let lifetime = default_expiry - Utc::now();
        assert!(
            lifetime > chrono::Duration::days(89) && lifetime <= chrono::Duration::days(90),
            "{lifetime}"
        );
        assert!(list.iter().all(|t| t.status == "active" && t.id.len() == 8));
        assert_eq!(list[0].role, Role::Planner, "oldest first");

        // Revoked: by the id the list shows, or by the token itself.
        let r = revoke_token(&db, &by_role(Role::Support).id).await.unwrap();
        assert!(r.now && r.token.status == "revoked");
        assert_eq!(check(&db, &default).await.unwrap(), Err(Refusal::Revoked));
        let again = revoke_token(&db, &default).await.unwrap();
        assert!(!again.now);
        assert!(matches!(
            revoke_token(&db, "00000000").await,
            Err(TokenError::NoSuchToken(_))
        ));
        assert!(matches!(
            revoke_token(&db, "abc").await,
            Err(TokenError::BadId(_))
        ));
        assert!(check(&db, &forever).await.unwrap().is_ok());

        // Expired: refused once its time has passed (wait for that time,
        // with a deadline).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Utc::now() <= soon {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(check(&db, &short).await.unwrap(), Err(Refusal::Expired));
        assert_eq!(authenticate(&db, &short).await.unwrap(), None);
        let list = list_tokens(&db).await.unwrap();
        let statuses: Vec<(&str, Role)> = list.iter().map(|t| (t.status, t.role)).collect();
        assert!(
            statuses.contains(&("expired", Role::Operator)),
            "{statuses:?}"
        );
        assert!(
            statuses.contains(&("revoked", Role::Support)),
            "{statuses:?}"
        );
        assert!(statuses.contains(&("active", Role::Admin)), "{statuses:?}");
    }

    #[test]
    fn expiry_and_revocation_on_sqlite() {
        crate::db::testing::on_sqlite(tokens_expire_and_are_revoked);
    }

    #[test]
    fn expiry_and_revocation_on_postgres() {
        crate::db::testing::on_postgres(tokens_expire_and_are_revoked);
    }

    /// Two tokens whose hashes share their first 8 digits: the list shows
    /// longer ids, and the short one is refused as ambiguous.
    async fn ids_that_fit_two_tokens_are_refused(db: Db) {
        for tail in ["0", "1"] {
            sqlx::query(
                "INSERT INTO api_tokens (token_sha256, role, created_at) VALUES ($1, 'support', '2026-01-01T00:00:00Z')",
            )
            .bind(format!("abcdef01{}", tail.repeat(56)))
            .execute(db.pool())
            .await
            .unwrap();
        }
        let ids: Vec<String> = list_tokens(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, ["abcdef010000", "abcdef011111"]);
        assert!(matches!(
            revoke_token(&db, "abcdef01").await,
            Err(TokenError::Ambiguous { count: 2, .. })
        ));
        let r = revoke_token(&db, "ABCDEF011111").await.unwrap();
        assert_eq!((r.token.id.as_str(), r.now), ("abcdef011111", true));
    }

    #[test]
    fn ambiguous_ids_on_sqlite() {
        crate::db::testing::on_sqlite(ids_that_fit_two_tokens_are_refused);
    }

    #[test]
    fn ids_grow_until_they_name_one_token() {
        let all = vec![
            "abcdef0123".to_owned(),
            "abcdef0199".to_owned(),
            "12345678ff".to_owned(),
        ];
        assert_eq!(short_id(&all[0], &all), "abcdef0123");
        assert_eq!(short_id(&all[2], &all), "12345678");
    }
}
