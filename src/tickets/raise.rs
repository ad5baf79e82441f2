//! Opening tickets: from alerts, de-duplicated per key (C8), and by hand
//! for complaints and manual reports.

use chrono::{DateTime, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use sqlx::AnyConnection;

use super::calendar::ServiceCalendar;
use super::error::{Result, TicketError};
use super::sla::SlaConfig;
use super::state::TicketState;
use super::store::{self, SYSTEM_ACTOR};
use super::types::{
    Channel, Complainant, CustomerReport, NewAlert, Priority, Raised, Ticket, TicketId, TicketKind,
    VisitReason, Zone,
};
use super::visit;
use super::warranty::Lookup;
use crate::catalog::{Cover, ModelId, TaskId};
use crate::db::Db;
use crate::registry::{REPAIR_PREFIX, ServiceTask};

/// Attempts before `raise` gives up. One lost race leaves the winner's
/// ticket committed and visible, so the second attempt normally adds the
/// occurrence; more are needed only if that ticket is closed in between.
const MAX_ATTEMPTS: u32 = 8;

/// Longest title and details accepted from a person (complaints).
const MAX_TITLE: usize = 200;
const MAX_DETAILS: usize = 10_000;

/// Priority of a complaint or manual report until someone changes it (or
/// an unanswered complaint is escalated).
const CREATED_PRIORITY: Priority = Priority::P3;

/// The alert's ticket: one more occurrence of the active ticket for its
/// key, or a new one.
///
/// Concurrent alerts for one key race to insert; the partial unique index
/// lets one win, the others roll back (returning their ticket number) and
/// try again, now finding the winner's ticket to count on.
///
/// The warranty of a new ticket is looked up (registry, meters) outside
/// the write transaction, only once an attempt found no active ticket to
/// count on: an occurrence never pays for it, and the database is never
/// locked while the store is read.
pub(super) async fn raise(
    db: &Db,
    sla: &SlaConfig,
    alert: NewAlert,
    warranty: Lookup<'_>,
    campaign: Option<i64>,
) -> Result<Raised> {
    raise_with_tasks(db, sla, alert, warranty, campaign, &[]).await
}

/// [`raise`], adding `tasks` to the ticket's service visit in the same
/// transaction (maintenance tickets).
pub(super) async fn raise_with_tasks(
    db: &Db,
    sla: &SlaConfig,
    alert: NewAlert,
    warranty: Lookup<'_>,
    campaign: Option<i64>,
    tasks: &[(TaskId, VisitReason)],
) -> Result<Raised> {
    let (dedupe_on, key) = checked_subject(&alert)?;
    let mut cover: Option<Cover> = None;
    for _ in 0..MAX_ATTEMPTS {
        let mut tx = store::begin_write(db).await?;
        if let Some(id) = add_occurrence(&mut tx, &alert, &dedupe_on, &key).await? {
            store::add_event(
                &mut tx,
                id,
                alert.at,
                SYSTEM_ACTOR,
                "occurrence",
                None,
                None,
                Some(&alert.title),
            )
            .await?;
            visit::add_tasks(&mut tx, id, tasks, alert.at, true).await?;
            let ticket = store::load_required(&mut *tx, id).await?;
            tx.commit().await?;
            return Ok(Raised::Occurrence(ticket));
        }
        if cover.is_none() {
            tx.rollback().await?;
            cover = Some(
                warranty
                    .cover(alert.fleet.as_ref(), alert.vehicle.as_ref(), alert.at)
                    .await,
            );
            continue;
        }
        let Some(cover) = cover.as_ref() else {
            continue;
        };
        let id = store::next_id(&mut tx).await?;
        let (respond_by, resolve_by) = sla.deadlines(alert.priority, alert.at);
        let row = Insert {
            id,
            fleet: alert.fleet.as_ref(),
            vehicle: alert.vehicle.as_ref(),
            model: alert.model.as_ref(),
            kind: alert.kind,
            key: &key,
            dedupe_on: &dedupe_on,
            priority: alert.priority,
            title: &alert.title,
            details: &alert.details,
            at: alert.at,
            respond_by,
            resolve_by,
            on_site_by: None,
            zone: None,
            complainant: None,
            channel: None,
            cover,
            campaign,
        };
        match insert(&mut tx, &row).await {
            Ok(()) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tx.rollback().await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        store::add_event(
            &mut tx,
            id,
            alert.at,
            SYSTEM_ACTOR,
            "opened",
            None,
            Some(TicketState::Open),
            Some(&alert.title),
        )
        .await?;
        visit::add_tasks(&mut tx, id, tasks, alert.at, false).await?;
        let ticket = store::load_required(&mut *tx, id).await?;
        tx.commit().await?;
        return Ok(Raised::Opened(ticket));
    }
    Err(TicketError::Contended {
        key,
        attempts: MAX_ATTEMPTS,
    })
}

/// A complaint or manual report: never de-duplicated (its key is its own
/// number), priority P3. Its deadlines are the service calendar's (C10):
/// answered within `sla.customer_respond` of service time, on site by the
/// end of the 1st (city) or 2nd (rural) working day after it is taken.
pub(super) async fn create(
    db: &Db,
    sla: &SlaConfig,
    calendar: &ServiceCalendar,
    report: CustomerReport,
    actor: &str,
    at: DateTime<Utc>,
    warranty: Lookup<'_>,
) -> Result<Ticket> {
    let kind = report.kind;
    if !matches!(kind, TicketKind::Complaint | TicketKind::Manual) {
        return Err(TicketError::NotCreatable(kind));
    }
    let title = report.title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE {
        return Err(TicketError::InvalidInput {
            field: "title",
            value: title.to_owned(),
            reason: format!("give a title of 1 to {MAX_TITLE} characters"),
        });
    }
    let details = &report.details;
    if details.chars().count() > MAX_DETAILS {
        return Err(TicketError::InvalidInput {
            field: "details",
            value: details.chars().take(40).collect::<String>() + "…",
            reason: format!("details are at most {MAX_DETAILS} characters"),
        });
    }
    let complainant = report
        .complainant
        .as_ref()
        .map(checked_complainant)
        .transpose()?;
    let zone = report.zone.unwrap_or(sla.default_zone);
    let (_, resolve_by) = sla.deadlines(CREATED_PRIORITY, at);
    let respond_by = calendar.add_service_time(at, sla.customer_respond);
    let on_site_by = calendar.end_of_service_days(at, sla.on_site_days(zone));
    let cover = warranty
        .cover(Some(&report.fleet), report.vehicle.as_ref(), at)
        .await;
    let mut tx = store::begin_write(db).await?;
    let id = store::next_id(&mut tx).await?;
    let key = id.to_string();
    let dedupe_on = report
        .vehicle
        .as_ref()
        .map_or_else(|| report.fleet.as_str(), VehicleId::as_str);
    let row = Insert {
        id,
        fleet: Some(&report.fleet),
        vehicle: report.vehicle.as_ref(),
        model: report.model.as_ref(),
        kind,
        key: &key,
        dedupe_on,
        priority: CREATED_PRIORITY,
        title,
        details,
        at,
        respond_by,
        resolve_by: resolve_by.max(on_site_by),
        on_site_by: Some(on_site_by),
        zone: Some(zone),
        complainant: complainant.as_ref(),
        channel: report.channel,
        cover: &cover,
        campaign: None,
    };
    insert(&mut tx, &row).await?;
    let note = report.channel.map(|c| match &complainant {
        Some(p) => format!("by {c} from {}", p.name),
        None => format!("by {c}"),
    });
    store::add_event(
        &mut tx,
        id,
        at,
        actor,
        "opened",
        None,
        Some(TicketState::Open),
        note.as_deref(),
    )
    .await?;
    let ticket = store::load_required(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(ticket)
}

/// Longest complainant name, phone number and e-mail address accepted.
const MAX_CONTACT: usize = 200;

/// The complainant trimmed, with a name and plausible contacts.
fn checked_complainant(c: &Complainant) -> Result<Complainant> {
    let field = |field: &'static str, v: &str| -> Result<()> {
        if v.chars().count() > MAX_CONTACT {
            return Err(TicketError::InvalidInput {
                field,
                value: v.chars().take(40).collect(),
                reason: format!("at most {MAX_CONTACT} characters"),
            });
        }
        Ok(())
    };
    let name = c.name.trim().to_owned();
    if name.is_empty() {
        return Err(TicketError::InvalidInput {
            field: "complainant.name",
            value: name,
            reason: "say who complained".to_owned(),
        });
    }
    field("complainant.name", &name)?;
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let phone = given(&c.phone);
    let email = given(&c.email);
    if let Some(p) = &phone {
        field("complainant.phone", p)?;
        if !p
            .chars()
            .all(|ch| ch.is_ascii_digit() || " +-()./".contains(ch))
        {
            return Err(TicketError::InvalidInput {
                field: "complainant.phone",
                value: p.clone(),
                reason: "a phone number has digits, spaces and + - ( ) . / only".to_owned(),
            });
        }
    }
    if let Some(e) = &email {
        field("complainant.email", e)?;
        if !e.contains('@') || e.contains(char::is_whitespace) {
            return Err(TicketError::InvalidInput {
                field: "complainant.email",
                value: e.clone(),
                reason: "an e-mail address such as name@example.com".to_owned(),
            });
        }
    }
    Ok(Complainant { name, phone, email })
}

/// What de-duplication is per (the vehicle, or the model of a batch
/// defect) and the key in its one spelling (`0110:00` is `110:0`).
fn checked_subject(alert: &NewAlert) -> Result<(String, String)> {
    let kind = alert.kind;
    let dedupe_on = if kind == TicketKind::BatchDefect {
        let model = alert.model.as_ref().ok_or(TicketError::InvalidAlert {
            kind,
            problem: "must name the model (batch defects are per model)",
        })?;
        model.as_str().to_owned()
    } else {
        if alert.fleet.is_none() {
            return Err(TicketError::InvalidAlert {
                kind,
                problem: "must name the fleet (only batch defects span fleets)",
            });
        }
        let vehicle = alert.vehicle.as_ref().ok_or(TicketError::InvalidAlert {
            kind,
            problem: "must name the vehicle (only batch defects are per model)",
        })?;
        vehicle.as_str().to_owned()
    };
    Ok((dedupe_on, canonical_key(kind, &alert.key)?))
}

/// `key` in its one spelling for `kind`: `SPN:FMI` for fault kinds, a
/// task id for maintenance.
pub(super) fn canonical_key(kind: TicketKind, key: &str) -> Result<String> {
    let invalid = |expected| TicketError::InvalidKey {
        kind,
        key: key.to_owned(),
        expected,
    };
    match kind {
        TicketKind::Maintenance => TaskId::new(key)
            .map(|t| t.as_str().to_owned())
            .map_err(|_| invalid("the id of the maintenance task, e.g. engine-oil")),
        TicketKind::Condition => fleetcare_ingest::j1939::SignalName::new(key)
            .map(|n| n.as_str().to_owned())
            .ok_or_else(|| invalid("a signal name, e.g. hydraulic_oil_temp_c")),
        TicketKind::Complaint | TicketKind::Manual => {
            if key.trim().is_empty() || key.chars().count() > 64 {
                Err(invalid("1 to 64 characters"))
            } else {
                Ok(key.to_owned())
            }
        }
        TicketKind::Fault
        | TicketKind::Recurring
        | TicketKind::RepeatRepair
        | TicketKind::BatchDefect
        | TicketKind::Recall => match ServiceTask::parse(&format!("{REPAIR_PREFIX}{key}")) {
            Ok(ServiceTask::Repair { spn, fmi }) => Ok(format!("{spn}:{fmi}")),
            _ => Err(invalid("SPN:FMI, e.g. 110:0")),
        },
    }
}

/// The active ticket for the key counts the alert: one more occurrence,
/// the more urgent of the two priorities, the later update time.
async fn add_occurrence(
    conn: &mut AnyConnection,
    alert: &NewAlert,
    dedupe_on: &str,
    key: &str,
) -> Result<Option<TicketId>> {
    let at = store::time_text(alert.at);
    let priority = alert.priority.as_str();
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE tickets SET occurrences = occurrences + 1, \
         updated_at = CASE WHEN $1 > updated_at THEN $2 ELSE updated_at END, \
         priority = CASE WHEN $3 < priority THEN $4 ELSE priority END \
         WHERE dedupe_on = $5 AND kind = $6 AND ticket_key = $7 \
         AND state NOT IN ('closed', 'cancelled') \
         RETURNING ticket_id",
    )
    .bind(&at)
    .bind(&at)
    .bind(priority)
    .bind(priority)
    .bind(dedupe_on)
    .bind(alert.kind.as_str())
    .bind(key)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(id,)| TicketId(id)))
}

/// A new ticket's row.
struct Insert<'a> {
    id: TicketId,
    fleet: Option<&'a FleetId>,
    vehicle: Option<&'a VehicleId>,
    model: Option<&'a ModelId>,
    kind: TicketKind,
    key: &'a str,
    dedupe_on: &'a str,
    priority: Priority,
    title: &'a str,
    details: &'a str,
    at: DateTime<Utc>,
    respond_by: DateTime<Utc>,
    resolve_by: DateTime<Utc>,
    on_site_by: Option<DateTime<Utc>>,
    zone: Option<Zone>,
    complainant: Option<&'a Complainant>,
    channel: Option<Channel>,
    cover: &'a Cover,
    campaign: Option<i64>,
}

/// Inserts an open ticket with its deadlines. The raw sqlx error comes
/// back so that `raise` can tell a lost race (unique violation) apart.
async fn insert(
    conn: &mut AnyConnection,
    row: &Insert<'_>,
) -> std::result::Result<(), sqlx::Error> {
    let at = store::time_text(row.at);
    let decision = row.cover.decision;
    // A Cover is plain data: it always serializes.
    let cover_json = serde_json::to_string(row.cover).unwrap_or_default();
    sqlx::query(
        "INSERT INTO tickets (ticket_id, fleet_id, vehicle_id, model_id, kind, ticket_key, \
         dedupe_on, state, priority, title, details, created_at, updated_at, occurrences, \
         respond_by, resolve_by, parts_used, warranty_status, warranty_until, warranty_basis, \
         warranty_cover, campaign_id, on_site_by, zone, complainant_name, \
         complainant_phone, complainant_email, channel) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $10, $11, $12, 1, $13, $14, '[]', \
         $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)",
    )
    .bind(row.id.0)
    .bind(row.fleet.map(FleetId::as_str))
    .bind(row.vehicle.map(VehicleId::as_str))
    .bind(row.model.map(ModelId::as_str))
    .bind(row.kind.as_str())
    .bind(row.key)
    .bind(row.dedupe_on)
    .bind(row.priority.as_str())
    .bind(row.title)
    .bind(row.details)
    .bind(&at)
    .bind(&at)
    .bind(store::time_text(row.respond_by))
    .bind(store::time_text(row.resolve_by))
    .bind(decision.status.as_str())
    .bind(decision.until.map(|d| d.format("%Y-%m-%d").to_string()))
    .bind(decision.basis.map(|b| b.as_str()))
    .bind(cover_json)
    .bind(row.campaign)
    .bind(row.on_site_by.map(store::time_text))
    .bind(row.zone.map(Zone::as_str))
    .bind(row.complainant.map(|c| c.name.as_str()))
    .bind(row.complainant.and_then(|c| c.phone.as_deref()))
    .bind(row.complainant.and_then(|c| c.email.as_deref()))
    .bind(row.channel.map(Channel::as_str))
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_one_spelling() {
        assert_eq!(
            canonical_key(TicketKind::Fault, "0110:00").unwrap(),
            "110:0"
        );
        assert_eq!(
            canonical_key(TicketKind::BatchDefect, "91:3").unwrap(),
            "91:3"
        );
        assert_eq!(
            canonical_key(TicketKind::Maintenance, "engine-oil").unwrap(),
            "engine-oil"
        );
        // Issue 23: a condition ticket is per signal.
        assert_eq!(
            canonical_key(TicketKind::Condition, "battery_v").unwrap(),
            "battery_v"
        );
        assert!(canonical_key(TicketKind::Condition, "Battery V").is_err());
        let e = canonical_key(TicketKind::Fault, "110")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "a fault ticket's key is SPN:FMI, e.g. 110:0, not \"110\""
        );
        assert!(canonical_key(TicketKind::Recurring, "110:32").is_err());
        assert!(canonical_key(TicketKind::Maintenance, "engine oil").is_err());
    }
}
