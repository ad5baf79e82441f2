//! Who may call what, in one place (contract C7, C14): the four roles, the
//! bearer token of a request ([`super::tokens`] stores and checks them),
//! and the [`Scope`] every data access goes through.
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
use fleetcare_ingest::ids::FleetId;
use serde::Serialize;
use thiserror::Error;

use super::api::ApiError;
use super::api::ApiState;
use super::tokens::{self, Refusal};

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
            Self::Planner => matches!(resource, R::Reports | R::PartsReport | R::Stock),
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
            // A recall spans fleets: the maker's after-sales runs it.
            Action::RunCampaigns => matches!(self, Self::Admin | Self::Support),
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
    /// `parts` and `parts/reorder`: fleet-wide demand against stock.
    PartsReport,
    /// The parts ledger: stock per depot, movements (C11). Operators see
    /// the depots of their fleets' vehicles only.
    Stock,
    Alerts,
    DeadLetters,
}

/// What a caller may do to a resource beyond reading it, where roles that
/// may use the resource differ ([`Role::may`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `POST /tickets/{id}/transitions`, the web UI's move forms.
    MoveTicket,
    /// `POST /campaigns`, `GET /campaigns…` and the web UI's campaign pages.
    RunCampaigns,
}

impl Action {
    /// What the action is, for refusals: "the operator role may not …".
    pub const fn describe(self) -> &'static str {
        match self {
            Self::MoveTicket => "move tickets; support and admin do",
            Self::RunCampaigns => "run recall campaigns; support and admin do",
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
    let caller = match tokens::check(&state.db, token).await? {
        Ok(caller) => caller,
        Err(Refusal::Unknown) => return Err(ApiError::Unauthorized),
        Err(ended) => return Err(ApiError::TokenEnded(ended)),
    };
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
            R::Stock,
            R::Alerts,
            R::DeadLetters,
        ];
        for r in all {
            assert!(Role::Admin.may_use(r) && Role::Support.may_use(r));
            assert_eq!(
                Role::Planner.may_use(r),
                matches!(r, R::Reports | R::PartsReport | R::Stock)
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
}
