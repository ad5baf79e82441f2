//! What can go wrong with a ticket, in words an operator or an API client
//! can act on. The variants keep "the request was refused" (a client's
//! mistake) apart from "the database failed".

use thiserror::Error;

use super::state::TicketState;
use super::types::{TicketId, TicketKind};
use crate::db::DbError;

pub type Result<T, E = TicketError> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum TicketError {
    /// No ticket has this number.
    #[error("there is no ticket {0}; list tickets with fleetcare tickets list")]
    NotFound(TicketId),
    /// A move the state machine (C8) does not allow.
    #[error(
        "a ticket in state {from} cannot move to {to}; {}",
        allowed_text(allowed)
    )]
    Refused {
        from: TicketState,
        to: TicketState,
        allowed: Vec<TicketState>,
    },
    /// Closing without the follow-up score, or with one out of range.
    #[error("closing a ticket needs the customer's satisfaction score from 1 to 5{}", given_text(*given))]
    SatisfactionRequired { given: Option<u8> },
    /// A satisfaction score on a move other than closing.
    #[error("a satisfaction score is given when closing a ticket, not when moving it to {to}")]
    SatisfactionNotClosing { to: TicketState },
    /// Dispatching without naming who does the work and where.
    #[error(
        "dispatching a ticket needs {missing}: name the technician (assignee) and the service outlet"
    )]
    DispatchIncomplete { missing: &'static str },
    /// A value of a transition that cannot be stored.
    #[error("{field} {value:?} is not valid: {reason}")]
    InvalidInput {
        field: &'static str,
        value: String,
        reason: String,
    },
    /// An alert that does not say what the ticket is about.
    #[error("a {kind} alert {problem}")]
    InvalidAlert {
        kind: TicketKind,
        problem: &'static str,
    },
    /// A key that is not of the form its kind uses (C8).
    #[error("a {kind} ticket's key is {expected}, not {key:?}")]
    InvalidKey {
        kind: TicketKind,
        key: String,
        expected: &'static str,
    },
    /// An outlet that is not in the register (once the register has any).
    #[error(
        "outlet {outlet:?} is not a registered outlet; name one by its outlet_id (list them with GET /api/v1/outlets), or import it with fleetcare outlets import"
    )]
    UnknownOutlet { outlet: String },
    /// `create` is for complaints and manual reports only; the others come
    /// from alerts.
    #[error("{0} tickets are opened by alerts; create only complaint or manual tickets")]
    NotCreatable(TicketKind),
    /// Every attempt to add an alert lost a race; the database is under
    /// more concurrent writes than it can settle.
    #[error(
        "the alert for key {key} could not be stored after {attempts} attempts against concurrent writers; try again"
    )]
    Contended { key: String, attempts: u32 },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for TicketError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::Sql(e))
    }
}

impl TicketError {
    /// True when the request was at fault (the API answers 4xx), false
    /// when the database was (5xx).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::Db(_) | Self::Contended { .. })
    }
}

fn allowed_text(allowed: &[TicketState]) -> String {
    match allowed {
        [] => "it is finished and cannot move any more".to_owned(),
        [one] => format!("the only allowed move is to {one}"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(ToString::to_string).collect();
            format!("allowed moves: {} or {last}", init.join(", "))
        }
    }
}

fn given_text(given: Option<u8>) -> String {
    given.map_or_else(String::new, |g| format!(" (got {g})"))
}
