//! The repair process a ticket moves through (C8), as a table of allowed
//! moves: everything not listed is refused.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::types::UnknownName;

/// Where a ticket is in the repair process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    Open,
    Dispatched,
    Diagnosing,
    AwaitingParts,
    InRepair,
    QualityCheck,
    Delivered,
    Closed,
    Cancelled,
}

impl TicketState {
    /// Every state, in process order.
    pub const ALL: [Self; 9] = [
        Self::Open,
        Self::Dispatched,
        Self::Diagnosing,
        Self::AwaitingParts,
        Self::InRepair,
        Self::QualityCheck,
        Self::Delivered,
        Self::Closed,
        Self::Cancelled,
    ];

    /// The states this one may move to (C8): forward one step, from
    /// `diagnosing` straight to `in_repair` (no parts needed), back from
    /// `quality_check` to `in_repair` (inspection failed), and to
    /// `cancelled` from any state before `delivered`. `closed` and
    /// `cancelled` are final.
    pub fn allowed_moves(self) -> &'static [TicketState] {
        use TicketState::*;
        match self {
            Open => &[Dispatched, Cancelled],
            Dispatched => &[Diagnosing, Cancelled],
            Diagnosing => &[AwaitingParts, InRepair, Cancelled],
            AwaitingParts => &[InRepair, Cancelled],
            InRepair => &[QualityCheck, Cancelled],
            QualityCheck => &[Delivered, InRepair, Cancelled],
            Delivered => &[Closed],
            Closed | Cancelled => &[],
        }
    }

    pub fn can_move_to(self, to: TicketState) -> bool {
        self.allowed_moves().contains(&to)
    }

    /// Closed or cancelled: the ticket no longer counts for de-duplication.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Closed | Self::Cancelled)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Dispatched => "dispatched",
            Self::Diagnosing => "diagnosing",
            Self::AwaitingParts => "awaiting_parts",
            Self::InRepair => "in_repair",
            Self::QualityCheck => "quality_check",
            Self::Delivered => "delivered",
            Self::Closed => "closed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for TicketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TicketState {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownName::new("state", s, Self::ALL.map(Self::as_str)))
    }
}

#[cfg(test)]
mod tests {
    use super::TicketState::{self, *};

    /// C8, written out as the pairs it allows; every other of the 81
    /// pairs must be refused.
    const C8_MOVES: &[(TicketState, TicketState)] = &[
        (Open, Dispatched),
        (Dispatched, Diagnosing),
        (Diagnosing, AwaitingParts),
        (AwaitingParts, InRepair),
        (InRepair, QualityCheck),
        (QualityCheck, Delivered),
        (Delivered, Closed),
        // awaiting_parts may be skipped
        (Diagnosing, InRepair),
        // inspection failed
        (QualityCheck, InRepair),
        // any state before delivered may be cancelled
        (Open, Cancelled),
        (Dispatched, Cancelled),
        (Diagnosing, Cancelled),
        (AwaitingParts, Cancelled),
        (InRepair, Cancelled),
        (QualityCheck, Cancelled),
    ];

    #[test]
    fn every_pair_is_allowed_exactly_when_c8_says_so() {
        let mut allowed = 0;
        for from in TicketState::ALL {
            for to in TicketState::ALL {
                let expected = C8_MOVES.contains(&(from, to));
                assert_eq!(from.can_move_to(to), expected, "{from} -> {to}");
                allowed += usize::from(expected);
            }
        }
        assert_eq!(allowed, C8_MOVES.len());
        assert_eq!(allowed, 15);
    }

    #[test]
    fn names_round_trip_in_text_and_json() {
        for state in TicketState::ALL {
            assert_eq!(state.as_str().parse::<TicketState>().unwrap(), state);
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
            assert_eq!(serde_json::from_str::<TicketState>(&json).unwrap(), state);
        }
        let e = "repairing".parse::<TicketState>().unwrap_err().to_string();
        assert!(
            e.contains("\"repairing\"") && e.contains("awaiting_parts"),
            "{e}"
        );
    }

    #[test]
    fn only_closed_and_cancelled_are_finished() {
        let finished: Vec<_> = TicketState::ALL
            .into_iter()
            .filter(|s| s.is_finished())
            .collect();
        assert_eq!(finished, [Closed, Cancelled]);
    }
}
