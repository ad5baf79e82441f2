//! Who may call what, in one place (contract C7): bearer tokens, the four
//! roles, and the [`Scope`] every data access goes through.
//!
//! The router puts [`require`] in front of each resource's routes: it turns
//! `Authorization: Bearer …` into a [`Caller`] (401 without a valid token),
//! refuses a role the resource is not for (403, decided by
//! [`Role::may_use`]) and hands the handler a [`Scope`]. Handlers never look
//! at roles: they ask the scope which fleets are visible and check each
//! resource's fleet with [`Scope::check_fleet`], which answers 404 for a
//! fleet the caller cannot see — so an operator cannot even learn that
//! another fleet's truck or ticket exists. What may be done to a resource
//! the caller sees ([`Action`], decided by [`Role::may`]) is asked of the
//! scope after the resource was found ([`Scope::check_may`]): 404 before
//! 403 there, so every id outside the caller's fleets answers 404 whatever
//! the method.

use std::fmt;
use std::str::FromStr;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use chrono::{SecondsFormat, Utc};
use fleetcare_ingest::ids::FleetId;
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::api::ApiError;
use super::api::ApiState;
use crate::db::{Db, DbError};

/// What a token lets its holder do (C7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, every fleet.
    Admin,
    /// After-sales technical support: every fleet, tickets and reports.
    Support,
    /// Parts planner: the reports, every fleet; no tickets, vehicles or alerts.
    Planner,
    /// A fleet operator: only the fleets of its token.
    Operator,
}

impl Role {
    pub const ALL: [Role; 4] = [Self::Admin, Self::Support, Self::Planner, Self::Operator];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Support => "support",
            Self::Planner => "planner",
            Self::Operator => "operator",
        }
    }

    /// Whether a role sees every fleet (else only its token's).
    pub const fn all_fleets(self) -> bool {
        !matches!(self, Self::Operator)
    }

    /// The access policy: which role may use which resource. The only
    /// place roles are compared with endpoints.
    pub const fn may_use(self, resource: Resource) -> bool {
        use Resource as R;
        match self {
            Self::Admin | Self::Support => true,
            Self::Planner => matches!(resource, R::Reports | R::PartsReport),
            // Parts demand sums every fleet's vehicles against depot stock
            // the manufacturer owns; it has no per-fleet rows to filter.
            Self::Operator => !matches!(resource, R::PartsReport),
        }
    }
}

impl Role {
    /// The access policy for actions on a resource the role may use and
    /// the caller sees (C14): with [`Role::may_use`], the whole policy.
    pub const fn may(self, action: Action) -> bool {
        match action {
            // The after-sales process is the manufacturer's: operators
            // report problems (complaints, manual reports) and follow
            // them, support runs the repair.
            Action::MoveTicket => matches!(self, Self::Admin | Self::Support),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of the four.
#[derive(Debug, Clone, Error)]
#[error("role \"{0}\" is not admin, support, planner or operator")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The groups of endpoints the policy distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Vehicles,
    Tickets,
    /// `due`, `recurring`, `trends`: rows (or inputs) per fleet.
    Reports,
    /// `parts`: fleet-wide demand against stock.
    PartsReport,
    Alerts,
    DeadLetters,
}

/// What a caller may do to a resource beyond reading it, where roles that
/// may use the resource differ ([`Role::may`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `POST /tickets/{id}/transitions`, the web UI's move forms.
    MoveTicket,
}

impl Action {
    /// What the action is, for refusals: "the operator role may not …".
    pub const fn describe(self) -> &'static str {
        match self {
            Self::MoveTicket => "move tickets; support and admin do",
        }
    }
}

/// The holder of a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    /// The token's fleets; only an operator's limit what it sees.
    pub fleets: Vec<FleetId>,
    /// Who the ticket history names for this caller's changes: the role
    /// and the first 8 hex digits of the token's hash (enough to tell
    /// tokens apart, useless for guessing one).
    pub actor: String,
}

/// What one request may see: every data access of a handler goes through
/// it. Obtained only from [`authorize`] (the API gets it from [`require`]
/// as an extractor).
#[derive(Debug, Clone)]
pub struct Scope {
    caller: Caller,
}

impl Scope {
    /// The fleets visible to the caller; `None`: all of them.
    pub fn fleets_visible(&self) -> Option<&[FleetId]> {
        (!self.caller.role.all_fleets()).then_some(self.caller.fleets.as_slice())
    }

    /// Whether something of `fleet` is visible; `None` is something across
    /// fleets (a batch defect, a topic without a fleet), visible only to
    /// the roles that see every fleet.
    pub fn sees(&self, fleet: Option<&FleetId>) -> bool {
        match (self.fleets_visible(), fleet) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(visible), Some(f)) => visible.contains(f),
        }
    }

    /// 404 for a resource of a fleet the caller cannot see: the same answer
    /// as for one that does not exist.
    pub fn check_fleet(&self, fleet: Option<&FleetId>, what: &str) -> Result<(), ApiError> {
        if self.sees(fleet) {
            Ok(())
        } else {
            Err(ApiError::NotFound(what.to_owned()))
        }
    }

    /// Whether the caller's role may do `action` ([`Role::may`]); for
    /// which forms and links to show.
    pub fn may(&self, action: Action) -> bool {
        self.caller.role.may(action)
    }

    /// 403 unless the caller's role may do `action`. Ask it after the
    /// resource was found visible (404 first).
    pub fn check_may(&self, action: Action) -> Result<(), ApiError> {
        if self.may(action) {
            Ok(())
        } else {
            tracing::debug!(role = %self.caller.role, ?action, "Refused a role an action.");
            Err(ApiError::NotAllowed {
                role: self.caller.role,
                action,
            })
        }
    }

    /// The rows of `rows` the caller may see.
    pub fn filter<T>(&self, rows: Vec<T>, fleet_of: impl Fn(&T) -> Option<&FleetId>) -> Vec<T> {
        if self.fleets_visible().is_none() {
            return rows;
        }
        rows.into_iter()
            .filter(|r| self.sees(fleet_of(r)))
            .collect()
    }

    /// The caller's role, for what the API reports about itself (never for
    /// access decisions: those are [`Role::may_use`] and the fleet checks).
    pub fn role(&self) -> Role {
        self.caller.role
    }

    /// The name the ticket history records for the caller's changes.
    pub fn actor(&self) -> &str {
        &self.caller.actor
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Present on every route behind `require`; a route without it has
        // no scope and so no data.
        parts
            .extensions
            .get::<Scope>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}

/// The middleware in front of a resource's routes: authenticate, apply the
/// role policy, attach the [`Scope`].
pub async fn require(
    State((state, resource)): State<(ApiState, Resource)>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = bearer(request.headers()).ok_or(ApiError::Unauthorized)?;
    let caller = authenticate(&state.db, token)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let scope = authorize(caller, resource)?;
    request.extensions_mut().insert(scope);
    Ok(next.run(request).await)
}

/// The [`Scope`] of `caller` on `resource`, or 403 when its role may not
/// use it ([`Role::may_use`]). The API's middleware and the web UI's pages
/// both come through here, so they share one policy.
pub fn authorize(caller: Caller, resource: Resource) -> Result<Scope, ApiError> {
    if !caller.role.may_use(resource) {
        tracing::debug!(role = %caller.role, ?resource, "Refused a role its resource.");
        return Err(ApiError::Forbidden(caller.role));
    }
    Ok(Scope { caller })
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Marks fleetcare's tokens, so that secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "fct_";

/// Token creation that cannot go on.
#[derive(Debug, Error)]
pub enum TokenError {
    #[error("an operator token needs at least one fleet; add --fleet ID")]
    OperatorWithoutFleet,
    #[error(
        "only operator tokens are limited to fleets; the {0} role sees every fleet, so leave out --fleet"
    )]
    FleetsForAllFleetRole(Role),
    #[error("the operating system gave no random bytes for the token: {0}")]
    Random(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The stored form of a token: hex SHA-256.
///
/// A plain hash, not a password hash (argon2, bcrypt): the token is 32
/// random bytes, so guessing one from its hash is a 2^256 search however
/// fast the hash is, and a fast, unsalted hash lets every request find its
/// token by an indexed lookup instead of trying each stored one.
fn token_hash(token: &str) -> String {
    crate::runtime::secret::hex(&Sha256::digest(token.as_bytes()))
}

/// Creates a token for `role` (and, for an operator, its fleets), stores
/// its hash, and returns the token: the only time it exists in clear.
pub async fn create_token(db: &Db, role: Role, fleets: &[FleetId]) -> Result<String, TokenError> {
    if role == Role::Operator && fleets.is_empty() {
        return Err(TokenError::OperatorWithoutFleet);
    }
    if role.all_fleets() && !fleets.is_empty() {
        return Err(TokenError::FleetsForAllFleetRole(role));
    }
    let secret = crate::runtime::secret::random_hex(32).map_err(|e| TokenError::Random(e.0))?;
    let token = format!("{TOKEN_PREFIX}{secret}");
    let hash = token_hash(&token);
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut tx = db.pool().begin().await.map_err(DbError::from)?;
    sqlx::query("INSERT INTO api_tokens (token_sha256, role, created_at) VALUES ($1, $2, $3)")
        .bind(&hash)
        .bind(role.as_str())
        .bind(&now)
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
    tracing::info!(%role, fleets = fleets.len(), "Created an API token.");
    Ok(token)
}

/// The caller a token belongs to; `None` for a token that is not ours.
pub async fn authenticate(db: &Db, token: &str) -> Result<Option<Caller>, DbError> {
    let hash = token_hash(token);
    let row: Option<(String,)> =
        sqlx::query_as("SELECT role FROM api_tokens WHERE token_sha256 = $1")
            .bind(&hash)
            .fetch_optional(db.pool())
            .await?;
    let Some((role,)) = row else {
        return Ok(None);
    };
    let role = role.parse::<Role>().map_err(|e| DbError::Corrupt {
        table: "api_tokens",
        column: "role",
        value: e.0.clone(),
        reason: e.to_string(),
    })?;
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT fleet_id FROM api_token_fleets WHERE token_sha256 = $1 ORDER BY fleet_id",
    )
    .bind(&hash)
    .fetch_all(db.pool())
    .await?;
    let fleets = rows
        .into_iter()
        .map(|(f,)| {
            FleetId::new(&f).map_err(|e| DbError::Corrupt {
                table: "api_token_fleets",
                column: "fleet_id",
                value: f.clone(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let actor = format!("{role}:{}", hash.get(..8).unwrap_or_default());
    Ok(Some(Caller {
        role,
        fleets,
        actor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(role: Role, fleets: &[&str]) -> Scope {
        Scope {
            caller: Caller {
                role,
                fleets: fleets.iter().map(|f| FleetId::new(f).unwrap()).collect(),
                actor: format!("{role}:test"),
            },
        }
    }

    #[test]
    fn operators_see_their_fleets_and_nothing_across_fleets() {
        let a = FleetId::new("a").unwrap();
        let b = FleetId::new("b").unwrap();
        let op = scope(Role::Operator, &["a"]);
        assert!(op.sees(Some(&a)));
        assert!(!op.sees(Some(&b)));
        assert!(!op.sees(None));
        assert!(matches!(
            op.check_fleet(Some(&b), "vehicle"),
            Err(ApiError::NotFound(_))
        ));
        let support = scope(Role::Support, &[]);
        assert!(support.sees(Some(&b)) && support.sees(None));
        assert_eq!(support.fleets_visible(), None);
        // A planner token's fleets do not narrow what it sees.
        assert_eq!(scope(Role::Planner, &["a"]).fleets_visible(), None);
    }

    #[test]
    fn the_policy_table() {
        use Resource as R;
        let all = [
            R::Vehicles,
            R::Tickets,
            R::Reports,
            R::PartsReport,
            R::Alerts,
            R::DeadLetters,
        ];
        for r in all {
            assert!(Role::Admin.may_use(r) && Role::Support.may_use(r));
            assert_eq!(
                Role::Planner.may_use(r),
                matches!(r, R::Reports | R::PartsReport)
            );
            assert_eq!(Role::Operator.may_use(r), r != R::PartsReport);
        }
        // Issue 20, finding 5: operators ran the repair process.
        let movers: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| r.may(Action::MoveTicket))
            .collect();
        assert_eq!(movers, [Role::Admin, Role::Support]);
        let op = scope(Role::Operator, &["a"]);
        assert!(matches!(
            op.check_may(Action::MoveTicket),
            Err(ApiError::NotAllowed { .. })
        ));
        assert!(
            scope(Role::Support, &[])
                .check_may(Action::MoveTicket)
                .is_ok()
        );
    }

    #[test]
    fn bearer_headers() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "Bearer  fct_x ".parse().unwrap());
        assert_eq!(bearer(&h), Some("fct_x"));
        h.insert("authorization", "bearer fct_y".parse().unwrap());
        assert_eq!(bearer(&h), Some("fct_y"));
        h.insert("authorization", "Basic dXNlcg==".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "Bearer ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

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
}
