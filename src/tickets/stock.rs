//! Tickets and the parts ledger (C11, issue 22): closing a ticket issues
//! the parts it used from its vehicle's depot, in the close's transaction;
//! tickets waiting in `awaiting_parts` are found for the alert to support.

use chrono::{DateTime, Utc};

use super::Tickets;
use super::error::Result;
use super::state::TicketState;
use super::store;
use super::types::{PartUsed, Ticket, TicketId};
use crate::catalog::PartId;
use crate::registry;

/// Books an `issue` movement per part `parts` lists at the depot of the
/// ticket's vehicle, inside the close's transaction, so the close and the
/// stock it takes commit together. A depot left below zero is said in the
/// history and logged, not refused: the parts were fitted. Returns what
/// the history should say (nothing when no part was used).
pub(super) async fn issue_parts(
    conn: &mut sqlx::AnyConnection,
    ticket: &Ticket,
    parts: &[PartUsed],
    actor: &str,
    at: DateTime<Utc>,
) -> Result<Option<String>> {
    let used: Vec<(PartId, u32)> = parts
        .iter()
        .filter_map(|p| Some((PartId::new(p.part.as_str()).ok()?, p.qty)))
        .collect();
    if used.is_empty() {
        return Ok(None);
    }
    let Some(vehicle) = &ticket.vehicle else {
        return Ok(Some(
            "no parts issued: the ticket names no vehicle".to_owned(),
        ));
    };
    let Some(registered) = registry::vehicle_in(&mut *conn, vehicle).await? else {
        return Ok(Some(format!(
            "no parts issued: vehicle {vehicle} is not in the registry"
        )));
    };
    let depot = registered.depot;
    let short =
        crate::parts::issue_for_ticket_in(conn, ticket.id.0, &depot, &used, actor, at).await?;
    let list: Vec<String> = used.iter().map(|(p, q)| format!("{p} × {q}")).collect();
    let mut said = format!("parts issued from depot {depot}: {}", list.join(", "));
    for s in &short {
        tracing::warn!(
            ticket = %ticket.id,
            part = %s.part,
            depot = %s.depot,
            on_hand = s.on_hand,
            "A closed ticket's parts left a depot's stock below zero; count the shelf or book the missing receipt."
        );
        said.push_str(&format!(
            "; stock of {} at {} is now {}: count it or book the receipt",
            s.part, s.depot, s.on_hand
        ));
    }
    Ok(Some(said))
}

impl Tickets {
    /// The tickets in `awaiting_parts` that moved there (last) before
    /// `moved_by`, each with when it moved there last, by number.
    pub async fn waiting_for_parts(
        &self,
        moved_by: DateTime<Utc>,
    ) -> Result<Vec<(Ticket, DateTime<Utc>)>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT t.ticket_id, MAX(e.at) FROM tickets t \
             JOIN ticket_events e ON e.ticket_id = t.ticket_id \
             WHERE t.state = $1 AND e.to_state = $1 \
             GROUP BY t.ticket_id HAVING MAX(e.at) < $2 ORDER BY t.ticket_id",
        )
        .bind(TicketState::AwaitingParts.as_str())
        .bind(store::time_text(moved_by))
        .fetch_all(self.db.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, since) in rows {
            let Some(ticket) = store::load(self.db.pool(), TicketId(id)).await? else {
                continue;
            };
            let Ok(since) = DateTime::parse_from_rfc3339(&since) else {
                continue;
            };
            out.push((ticket, since.with_timezone(&Utc)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use fleetcare_ingest::ids::{FleetId, VehicleId};

    use super::*;
    use crate::catalog::ModelId;
    use crate::db::Db;
    use crate::db::testing::db_tests;
    use crate::registry::Depot;
    use crate::tickets::{NewAlert, Priority, SlaConfig, TicketKind, Transition};

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    async fn register(db: &Db, v: &str) {
        sqlx::query(
            "INSERT INTO vehicles (vehicle_id, fleet_id, model_id, vin, commissioned_on, depot) \
             VALUES ($1, 'acme', 'compactor-c12', NULL, '2024-01-01', 'north')",
        )
        .bind(v)
        .execute(db.pool())
        .await
        .unwrap();
    }

    async fn fault_ticket(t: &Tickets, v: &str) -> TicketId {
        t.raise(NewAlert {
            kind: TicketKind::Fault,
            fleet: Some(FleetId::new("acme").unwrap()),
            vehicle: Some(VehicleId::new(v).unwrap()),
            model: Some(ModelId::new("compactor-c12").unwrap()),
            key: "110:0".to_owned(),
            priority: Priority::P1,
            title: "coolant too hot".to_owned(),
            details: String::new(),
            at: t0(),
        })
        .await
        .unwrap()
        .ticket()
        .id
    }

    async fn walk(t: &Tickets, id: TicketId, to: &[TicketState], at: DateTime<Utc>) {
        for &to in to {
            let step = Transition {
                assignee: (to == TicketState::Dispatched).then(|| "Wang Lei".to_owned()),
                outlet: (to == TicketState::Dispatched).then(|| "north workshop".to_owned()),
                satisfaction: (to == TicketState::Closed).then_some(5),
                parts_used: if to == TicketState::InRepair {
                    vec![("THERMO-01".to_owned(), 2)]
                } else {
                    Vec::new()
                },
                ..Transition::to(to)
            };
            t.transition(id, step, "support:ab12", at).await.unwrap();
        }
    }

    db_tests!(
        closing_issues_parts_from_the_vehicle_depot,
        waits_for_parts_are_found_once_they_are_long,
    );

    /// Issue 22: a closed ticket's parts are issued from its vehicle's
    /// depot in the close's transaction; a depot left below zero is said.
    async fn closing_issues_parts_from_the_vehicle_depot(db: Db) {
        register(&db, "TRK-1").await;
        let north = Depot::new("north").unwrap();
        let thermo = PartId::new("THERMO-01").unwrap();
        crate::parts::transfer(
            &db,
            &thermo,
            &Depot::new("central").unwrap(),
            &north,
            1,
            "T-1",
            "cli",
            t0(),
        )
        .await
        .unwrap();
        let t = Tickets::new(db.clone(), SlaConfig::default());
        let id = fault_ticket(&t, "TRK-1").await;
        use TicketState::*;
        walk(
            &t,
            id,
            &[Dispatched, Diagnosing, InRepair, QualityCheck, Delivered],
            t0(),
        )
        .await;
        // Nothing is issued before the close.
        assert_eq!(
            crate::parts::on_hand(&db, &thermo, &north).await.unwrap(),
            1
        );
        walk(&t, id, &[Closed], t0() + TimeDelta::hours(5)).await;
        assert_eq!(
            crate::parts::on_hand(&db, &thermo, &north).await.unwrap(),
            -1
        );
        let m = crate::parts::movements_page(&db, &thermo, Some(&north), None, None, 10)
            .await
            .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            (
                m[0].kind,
                m[0].qty,
                m[0].reference.as_str(),
                m[0].actor.as_str()
            ),
            (
                crate::parts::MovementKind::Issue,
                -2,
                format!("ticket:{id}").as_str(),
                "support:ab12"
            )
        );
        assert_eq!(m[0].at, t0() + TimeDelta::hours(5));
        let (_, events) = t.get(id).await.unwrap().unwrap();
        let note = events.last().unwrap().note.clone().unwrap();
        assert!(
            note.ends_with(
                "parts issued from depot north: THERMO-01 × 2; \
                 stock of THERMO-01 at north is now -1: count it or book the receipt"
            ),
            "{note}"
        );
    }

    /// Issue 22: tickets in awaiting_parts longer than 14 days are found;
    /// exactly 14 days is not longer, and a ticket that moved on is not.
    async fn waits_for_parts_are_found_once_they_are_long(db: Db) {
        register(&db, "TRK-1").await;
        register(&db, "TRK-2").await;
        let t = Tickets::new(db.clone(), SlaConfig::default());
        let waiting = fault_ticket(&t, "TRK-1").await;
        let moved_on = fault_ticket(&t, "TRK-2").await;
        use TicketState::*;
        for id in [waiting, moved_on] {
            walk(&t, id, &[Dispatched, Diagnosing, AwaitingParts], t0()).await;
        }
        walk(&t, moved_on, &[InRepair], t0() + TimeDelta::days(3)).await;
        let days = TimeDelta::days(crate::parts::WAIT_ALERT_DAYS);
        assert!(t.waiting_for_parts(t0()).await.unwrap().is_empty());
        let found = t
            .waiting_for_parts(t0() + TimeDelta::seconds(1))
            .await
            .unwrap();
        let ids: Vec<(TicketId, DateTime<Utc>)> =
            found.iter().map(|(t, since)| (t.id, *since)).collect();
        assert_eq!(ids, [(waiting, t0())]);
        // What the alert job asks: moved there before now − 14 days.
        let now = t0() + days;
        assert!(t.waiting_for_parts(now - days).await.unwrap().is_empty());
    }
}
