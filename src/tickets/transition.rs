//! Moving a ticket through the repair process (C8): the checks a move must
//! pass, what it records, and the service record a closed maintenance or
//! fault ticket leaves in the registry.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use super::error::{Result, TicketError};
use super::state::TicketState;
use super::store;
use super::types::{Outcome, PartUsed, Ticket, TicketId, TicketKind};
use crate::catalog::{PartId, TaskId};
use crate::db::Db;
use crate::registry::{self, ServiceRecord, ServiceSource, ServiceTask};

/// A requested move, as `POST /tickets/{id}/transitions` takes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    pub to: TicketState,
    #[serde(default)]
    pub note: Option<String>,
    /// The technician; needed to dispatch, may change later.
    #[serde(default)]
    pub assignee: Option<String>,
    /// The service outlet (own workshop or partner); needed to dispatch.
    #[serde(default)]
    pub outlet: Option<String>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// The customer's follow-up score, 1–5: needed to close, refused otherwise.
    #[serde(default)]
    pub satisfaction: Option<u8>,
    /// Labour hours of the repair so far (a total: it replaces an earlier figure).
    #[serde(default)]
    pub labour_hours: Option<f64>,
    /// Parts used (part id, quantity), added to those recorded before.
    /// JSON: `[["FLT-OIL-01", 2]]` or `[{"part": "FLT-OIL-01", "qty": 2}]`.
    #[serde(default, deserialize_with = "parts_used")]
    pub parts_used: Vec<(String, u32)>,
    #[serde(default)]
    pub warranty: Option<bool>,
}

impl Transition {
    /// A move with nothing else said.
    pub fn to(to: TicketState) -> Self {
        Self {
            to,
            note: None,
            assignee: None,
            outlet: None,
            outcome: None,
            satisfaction: None,
            labour_hours: None,
            parts_used: Vec::new(),
            warranty: None,
        }
    }
}

fn parts_used<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<(String, u32)>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Named {
        part: String,
        qty: u32,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Part {
        Pair(String, u32),
        Named(Named),
    }
    Ok(Vec::<Part>::deserialize(d)?
        .into_iter()
        .map(|p| match p {
            Part::Pair(part, qty) => (part, qty),
            Part::Named(Named { part, qty }) => (part, qty),
        })
        .collect())
}

/// Longest assignee, outlet and note accepted.
const MAX_NAME: usize = 200;
const MAX_NOTE: usize = 10_000;
/// More labour than this on one ticket is a typo.
const MAX_LABOUR_HOURS: f64 = 10_000.0;

/// Checks that `t` may be applied to a ticket in state `from`: the move is
/// allowed (C8), a dispatch names assignee and outlet, a close carries a
/// satisfaction score 1–5 and only a close does, and the values fit.
pub fn check(from: TicketState, t: &Transition) -> Result<()> {
    if !from.can_move_to(t.to) {
        return Err(TicketError::Refused {
            from,
            to: t.to,
            allowed: from.allowed_moves().to_vec(),
        });
    }
    if t.to == TicketState::Dispatched {
        match (given(&t.assignee), given(&t.outlet)) {
            (None, None) => {
                return Err(TicketError::DispatchIncomplete {
                    missing: "an assignee and an outlet",
                });
            }
            (None, _) => {
                return Err(TicketError::DispatchIncomplete {
                    missing: "an assignee",
                });
            }
            (_, None) => {
                return Err(TicketError::DispatchIncomplete {
                    missing: "an outlet",
                });
            }
            _ => {}
        }
    }
    match (t.to, t.satisfaction) {
        (TicketState::Closed, Some(1..=5)) => {}
        (TicketState::Closed, given) => return Err(TicketError::SatisfactionRequired { given }),
        (to, Some(_)) => return Err(TicketError::SatisfactionNotClosing { to }),
        (_, None) => {}
    }
    for (field, value, max) in [
        ("assignee", &t.assignee, MAX_NAME),
        ("outlet", &t.outlet, MAX_NAME),
        ("note", &t.note, MAX_NOTE),
    ] {
        if let Some(v) = value
            && v.chars().count() > max
        {
            return Err(invalid(field, v, format!("at most {max} characters")));
        }
    }
    if let Some(h) = t.labour_hours
        && !(h.is_finite() && (0.0..=MAX_LABOUR_HOURS).contains(&h))
    {
        return Err(invalid(
            "labour_hours",
            &h.to_string(),
            format!("hours from 0 to {MAX_LABOUR_HOURS}"),
        ));
    }
    for (part, qty) in &t.parts_used {
        PartId::new(part.as_str()).map_err(|e| invalid("part", part, e.to_string()))?;
        if *qty == 0 {
            return Err(invalid(
                "quantity of part",
                part,
                "a used part has a quantity of at least 1".into(),
            ));
        }
    }
    Ok(())
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn invalid(field: &'static str, value: &str, reason: String) -> TicketError {
    TicketError::InvalidInput {
        field,
        value: value.to_owned(),
        reason,
    }
}

/// Applies `t` to ticket `id` in one transaction: the ticket row, its
/// history, (closing maintenance or a fault) the service record, and
/// (closing) the issue of its parts from the vehicle's depot (C11).
pub(super) async fn apply(
    db: &Db,
    id: TicketId,
    t: Transition,
    actor: &str,
    at: DateTime<Utc>,
    readings: super::MeterReadings,
) -> Result<Ticket> {
    let mut tx = store::begin_write(db).await?;
    if !store::lock(&mut tx, id).await? {
        return Err(TicketError::NotFound(id));
    }
    let ticket = store::load_required(&mut *tx, id).await?;
    let from = ticket.state;
    check(from, &t)?;

    let now = store::time_text(at);
    let mut parts = ticket.parts_used.clone();
    for (part, qty) in &t.parts_used {
        match parts.iter_mut().find(|p| &p.part == part) {
            Some(p) => p.qty = p.qty.saturating_add(*qty),
            None => parts.push(PartUsed {
                part: part.clone(),
                qty: *qty,
                covered: None,
            }),
        }
    }
    // Closing decides the claim (C10) from the cover kept since intake.
    let mut labour_covered = None;
    if t.to == TicketState::Closed {
        let cover = store::cover(&mut *tx, id).await?;
        let claim = super::warranty::claim(
            ticket.kind,
            t.outcome.or(ticket.outcome),
            t.warranty.or(ticket.warranty_claim),
            &cover,
            &parts,
            t.labour_hours.or(ticket.labour_hours),
        );
        parts = claim.parts;
        labour_covered = Some(claim.labour);
    }
    let parts_json = serde_json::to_string(&parts).map_err(|e| TicketError::InvalidInput {
        field: "parts_used",
        value: format!("{parts:?}"),
        reason: e.to_string(),
    })?;
    let assignee = given(&t.assignee).map(str::to_owned);
    let outlet = given(&t.outlet).map(str::to_owned);
    // C10: the outlet is one of the register's, once it has any (before,
    // as in earlier versions, any name).
    if let Some(o) = &outlet {
        let (any, known) = registry::outlets::outlet_known_in(&mut tx, o).await?;
        if any && !known {
            return Err(TicketError::UnknownOutlet { outlet: o.clone() });
        }
    }
    sqlx::query(
        "UPDATE tickets SET state = $1, updated_at = $2, \
         responded_at = COALESCE(responded_at, $3), \
         delivered_at = COALESCE($4, delivered_at), \
         finished_at = $5, \
         assignee = COALESCE($6, assignee), outlet = COALESCE($7, outlet), \
         outcome = COALESCE($8, outcome), satisfaction = COALESCE($9, satisfaction), \
         labour_hours = COALESCE($10, labour_hours), parts_used = $11, \
         warranty = COALESCE($12, warranty), labour_covered = COALESCE($13, labour_covered) \
         WHERE ticket_id = $14",
    )
    .bind(t.to.as_str())
    .bind(&now)
    // Any move out of open answers the ticket (C8: respond = leave open).
    .bind(&now)
    .bind((t.to == TicketState::Delivered).then_some(now.as_str()))
    .bind(t.to.is_finished().then_some(now.as_str()))
    .bind(assignee.as_deref())
    .bind(outlet.as_deref())
    .bind(t.outcome.map(|o| o.as_str()))
    .bind(t.satisfaction.map(i64::from))
    .bind(t.labour_hours)
    .bind(parts_json)
    .bind(t.warranty.map(i64::from))
    .bind(labour_covered.map(i64::from))
    .bind(id.0)
    // sqlx 0.9's Any driver declares a NULL f64 as float4 to PostgreSQL
    // (sqlx issue #4284); an unnamed statement is prepared per call.
    .persistent(false)
    .execute(&mut *tx)
    .await?;

    let mut note: Vec<String> = t
        .note
        .iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    if let Some(a) = &assignee {
        note.push(format!("assignee {a}"));
    }
    if let Some(o) = &outlet {
        note.push(format!("outlet {o}"));
    }
    if t.to == TicketState::Closed
        && let Some(said) = record_service(&mut tx, &ticket, at, readings).await?
    {
        note.push(said);
    }
    if t.to == TicketState::Closed {
        let claimed: Vec<&str> = parts
            .iter()
            .filter(|p| p.covered == Some(true))
            .map(|p| p.part.as_str())
            .collect();
        let labour = labour_covered == Some(true);
        if labour && claimed.is_empty() {
            note.push("warranty: labour claimed".to_owned());
        } else if !claimed.is_empty() {
            note.push(format!(
                "warranty: {}{} claimed",
                claimed.join(", "),
                if labour { " and labour" } else { "" }
            ));
        }
        if let Some(said) = super::stock::issue_parts(&mut tx, &ticket, &parts, actor, at).await? {
            note.push(said);
        }
    }
    let note = (!note.is_empty()).then(|| note.join("; "));
    store::add_event(
        &mut tx,
        id,
        at,
        actor,
        "moved",
        Some(from),
        Some(t.to),
        note.as_deref(),
    )
    .await?;
    let ticket = store::load_required(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(ticket)
}

/// Closing a maintenance ticket records the service (its interval
/// restarts), closing a fault ticket records the repair (it counts for
/// repeat repairs), both at the close time with source `ticket`. Returns
/// what the history should say: the record made, or why there is none (a
/// vehicle missing from the registry cannot have service records; the
/// ticket still closes).
async fn record_service(
    conn: &mut sqlx::AnyConnection,
    ticket: &Ticket,
    at: DateTime<Utc>,
    readings: super::MeterReadings,
) -> Result<Option<String>> {
    let task = match ticket.kind {
        TicketKind::Maintenance => TaskId::new(ticket.key.as_str())
            .ok()
            .map(ServiceTask::Maintenance),
        TicketKind::Fault | TicketKind::Recall => {
            ServiceTask::parse(&format!("{}{}", registry::REPAIR_PREFIX, ticket.key)).ok()
        }
        _ => return Ok(None),
    };
    let (Some(task), Some(vehicle)) = (task, &ticket.vehicle) else {
        return Ok(Some(format!(
            "no service recorded: key {} names no service",
            ticket.key
        )));
    };
    if registry::vehicle_in(&mut *conn, vehicle).await?.is_none() {
        return Ok(Some(format!(
            "no service recorded: vehicle {vehicle} is not in the registry"
        )));
    }
    let record = ServiceRecord {
        vehicle: vehicle.clone(),
        task,
        performed_at: at,
        engine_hours: readings.engine_hours,
        pto_hours: readings.pto_hours,
        odometer_km: readings.odometer_km,
        source: ServiceSource::Ticket,
    };
    registry::record_service_in(conn, &record).await?;
    Ok(Some(format!("service {} recorded", record.task)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use TicketState::*;

    /// What a move needs besides being allowed, so that every allowed
    /// move can pass `check`.
    fn complete(to: TicketState) -> Transition {
        Transition {
            assignee: Some("Wang Lei".into()),
            outlet: Some("north workshop".into()),
            satisfaction: (to == Closed).then_some(4),
            ..Transition::to(to)
        }
    }

    #[test]
    fn every_refused_move_names_the_allowed_ones() {
        let mut refused = 0;
        for from in TicketState::ALL {
            for to in TicketState::ALL {
                let result = check(from, &complete(to));
                if from.can_move_to(to) {
                    assert!(result.is_ok(), "{from} -> {to}: {result:?}");
                    continue;
                }
                refused += 1;
                let e = result.unwrap_err();
                let message = e.to_string();
                let TicketError::Refused {
                    from: f,
                    to: t,
                    allowed,
                } = e
                else {
                    panic!("{from} -> {to}: {message}");
                };
                assert_eq!((f, t), (from, to));
                assert_eq!(allowed, from.allowed_moves());
                assert!(
                    message.starts_with(&format!("a ticket in state {from} cannot move to {to}; ")),
                    "{message}"
                );
                for a in &allowed {
                    assert!(message.contains(a.as_str()), "{message} lacks {a}");
                }
            }
        }
        assert_eq!(refused, 81 - 15);
    }

    #[test]
    fn refusal_messages_read_well() {
        let e = check(Open, &complete(Closed)).unwrap_err().to_string();
        assert_eq!(
            e,
            "a ticket in state open cannot move to closed; allowed moves: dispatched or cancelled"
        );
        let e = check(Diagnosing, &complete(Delivered))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "a ticket in state diagnosing cannot move to delivered; allowed moves: awaiting_parts, in_repair or cancelled"
        );
        let e = check(Delivered, &complete(Open)).unwrap_err().to_string();
        assert_eq!(
            e,
            "a ticket in state delivered cannot move to open; the only allowed move is to closed"
        );
        let e = check(Closed, &complete(Open)).unwrap_err().to_string();
        assert_eq!(
            e,
            "a ticket in state closed cannot move to open; it is finished and cannot move any more"
        );
    }

    #[test]
    fn closing_needs_a_satisfaction_score_from_1_to_5() {
        for (score, ok) in [
            (None, false),
            (Some(0), false),
            (Some(6), false),
            (Some(1), true),
            (Some(3), true),
            (Some(5), true),
        ] {
            let t = Transition {
                satisfaction: score,
                ..Transition::to(Closed)
            };
            let result = check(Delivered, &t);
            assert_eq!(result.is_ok(), ok, "{score:?}: {result:?}");
            if !ok {
                assert!(
                    matches!(result, Err(TicketError::SatisfactionRequired { given }) if given == score)
                );
            }
        }
        let e = check(
            Delivered,
            &Transition {
                satisfaction: Some(6),
                ..Transition::to(Closed)
            },
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "closing a ticket needs the customer's satisfaction score from 1 to 5 (got 6)"
        );
        // A score belongs to the close only.
        let e = check(
            InRepair,
            &Transition {
                satisfaction: Some(3),
                ..Transition::to(QualityCheck)
            },
        )
        .unwrap_err();
        assert!(
            matches!(e, TicketError::SatisfactionNotClosing { to: QualityCheck }),
            "{e}"
        );
    }

    #[test]
    fn dispatching_needs_assignee_and_outlet() {
        let both = complete(Dispatched);
        assert!(check(Open, &both).is_ok());
        let no_assignee = Transition {
            assignee: None,
            ..both.clone()
        };
        let e = check(Open, &no_assignee).unwrap_err().to_string();
        assert_eq!(
            e,
            "dispatching a ticket needs an assignee: name the technician (assignee) and the service outlet"
        );
        let blank_outlet = Transition {
            outlet: Some("  ".into()),
            ..both.clone()
        };
        assert!(matches!(
            check(Open, &blank_outlet),
            Err(TicketError::DispatchIncomplete {
                missing: "an outlet"
            })
        ));
        assert!(matches!(
            check(Open, &Transition::to(Dispatched)),
            Err(TicketError::DispatchIncomplete {
                missing: "an assignee and an outlet"
            })
        ));
    }

    #[test]
    fn values_are_checked() {
        let t = Transition {
            labour_hours: Some(f64::NAN),
            ..Transition::to(InRepair)
        };
        assert!(matches!(
            check(Diagnosing, &t),
            Err(TicketError::InvalidInput {
                field: "labour_hours",
                ..
            })
        ));
        let t = Transition {
            parts_used: vec![("FLT OIL".into(), 1)],
            ..Transition::to(InRepair)
        };
        assert!(matches!(
            check(Diagnosing, &t),
            Err(TicketError::InvalidInput { field: "part", .. })
        ));
        let t = Transition {
            parts_used: vec![("FLT-OIL-01".into(), 0)],
            ..Transition::to(InRepair)
        };
        assert!(check(Diagnosing, &t).is_err());
    }

    #[test]
    fn the_api_body_deserializes_in_both_part_forms() {
        let t: Transition = serde_json::from_str(
            r#"{"to": "closed", "note": "ok", "outcome": "part_replaced", "satisfaction": 5,
                "labour_hours": 2.5, "parts_used": [["FLT-OIL-01", 2], {"part": "GSK-7", "qty": 1}],
                "warranty": true}"#,
        )
        .unwrap();
        assert_eq!(t.to, Closed);
        assert_eq!(t.outcome, Some(Outcome::PartReplaced));
        assert_eq!(
            t.parts_used,
            vec![("FLT-OIL-01".to_owned(), 2), ("GSK-7".to_owned(), 1)]
        );
        assert_eq!(t.warranty, Some(true));
        let t: Transition = serde_json::from_str(r#"{"to": "dispatched"}"#).unwrap();
        assert_eq!(t, Transition::to(Dispatched));
        assert!(serde_json::from_str::<Transition>(r#"{"to": "done"}"#).is_err());
        assert!(serde_json::from_str::<Transition>(r#"{"to": "closed", "score": 3}"#).is_err());
    }
}
