//! Ticket rows in the database: reading them back into checked types,
//! numbering, the history, and write transactions that behave the same on
//! SQLite and PostgreSQL.

use chrono::{DateTime, SecondsFormat, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Executor, Row, Transaction};

use super::error::{Result, TicketError};
use super::state::TicketState;
use super::types::{
    Complainant, PartUsed, Sla, Ticket, TicketEvent, TicketFilter, TicketId, TicketKind, Zone,
};
use super::verification::{RepeatOf, Verification};
use crate::catalog::{Cover, ModelId, WarrantyBasis, WarrantyDecision, WarrantyStatus};
use crate::db::{Backend, Db, DbError};

/// The actor of changes fleetcare makes itself (alerts, SLA checks).
pub(super) const SYSTEM_ACTOR: &str = "fleetcare";

/// How a time is stored: RFC 3339 UTC with microseconds, one width, so
/// that text order is time order (the SLA check compares text).
pub(super) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A write transaction. SQLite takes its write lock at `BEGIN IMMEDIATE`,
/// where a busy database is waited for (the busy timeout); a deferred
/// transaction that reads first and writes later would instead fail at
/// once with "database is locked" when another writer got in between.
/// PostgreSQL locks rows as they are written.
pub(super) async fn begin_write(db: &Db) -> Result<Transaction<'static, Any>> {
    Ok(match db.backend() {
        Backend::Sqlite => db.pool().begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => db.pool().begin().await?,
    })
}

/// The next ticket number. The counter row stays locked until the
/// transaction ends, and a rollback gives the number back.
pub(super) async fn next_id(conn: &mut AnyConnection) -> Result<TicketId> {
    let (id,): (i64,) = sqlx::query_as(
        "UPDATE ticket_numbers SET last_id = last_id + 1 WHERE name = 'tickets' RETURNING last_id",
    )
    .fetch_one(conn)
    .await?;
    Ok(TicketId(id))
}

/// Locks one ticket's row for the rest of the transaction (the portable
/// form of `SELECT … FOR UPDATE`, which SQLite lacks): false if there is
/// no such ticket.
pub(super) async fn lock(conn: &mut AnyConnection, id: TicketId) -> Result<bool> {
    let done = sqlx::query("UPDATE tickets SET occurrences = occurrences WHERE ticket_id = $1")
        .bind(id.0)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Appends one line to a ticket's history. The ticket's row is written
/// (and so locked) earlier in the same transaction, so numbering by
/// `MAX(seq) + 1` cannot race.
#[allow(clippy::too_many_arguments)]
pub(super) async fn add_event(
    conn: &mut AnyConnection,
    id: TicketId,
    at: DateTime<Utc>,
    actor: &str,
    kind: &str,
    from: Option<TicketState>,
    to: Option<TicketState>,
    note: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO ticket_events (ticket_id, seq, at, actor, kind, from_state, to_state, note) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7 \
         FROM ticket_events WHERE ticket_id = $8",
    )
    .bind(id.0)
    .bind(time_text(at))
    .bind(actor)
    .bind(kind)
    .bind(from.map(TicketState::as_str))
    .bind(to.map(TicketState::as_str))
    .bind(note)
    .bind(id.0)
    .execute(conn)
    .await?;
    Ok(())
}

const COLUMNS: &str = "ticket_id, fleet_id, vehicle_id, model_id, kind, ticket_key, state, \
    priority, title, details, created_at, updated_at, occurrences, respond_by, resolve_by, \
    breached_at, escalated_at, finished_at, assignee, outlet, outcome, satisfaction, \
    labour_hours, parts_used, warranty, warranty_status, warranty_until, warranty_basis, \
    labour_covered, campaign_id, on_site_by, on_site_at, zone, follow_up_by, \
    follow_up_alerted_at, complainant_name, complainant_phone, complainant_email, channel, \
    delivered_at, verification, verified_at, repeat_of, repeat_technician, repeat_outlet";

/// One ticket, if it exists.
pub(super) async fn load<'e, E>(e: E, id: TicketId) -> Result<Option<Ticket>>
where
    E: Executor<'e, Database = Any>,
{
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tickets WHERE ticket_id = $1"
    )))
    .bind(id.0)
    .fetch_optional(e)
    .await?;
    row.as_ref().map(ticket_from_row).transpose()
}

/// The warranty cover a ticket was opened with (unknown for one opened
/// before warranties were decided).
pub(super) async fn cover<'e, E>(e: E, id: TicketId) -> Result<Cover>
where
    E: Executor<'e, Database = Any>,
{
    let text: Option<(Option<String>,)> =
        sqlx::query_as("SELECT warranty_cover FROM tickets WHERE ticket_id = $1")
            .bind(id.0)
            .fetch_optional(e)
            .await?;
    match text.and_then(|(t,)| t) {
        None => Ok(Cover::unknown()),
        Some(t) => {
            serde_json::from_str(&t).map_err(|e| corrupt("tickets", "warranty_cover", &t, e))
        }
    }
}

/// One ticket that this transaction has just written.
pub(super) async fn load_required<'e, E>(e: E, id: TicketId) -> Result<Ticket>
where
    E: Executor<'e, Database = Any>,
{
    load(e, id).await?.ok_or(TicketError::NotFound(id))
}

/// A ticket's history, oldest first.
pub(super) async fn events<'e, E>(e: E, id: TicketId) -> Result<Vec<TicketEvent>>
where
    E: Executor<'e, Database = Any>,
{
    let rows = sqlx::query(
        "SELECT at, actor, kind, from_state, to_state, note FROM ticket_events \
         WHERE ticket_id = $1 ORDER BY seq",
    )
    .bind(id.0)
    .fetch_all(e)
    .await?;
    rows.iter()
        .map(|row| {
            let state = |column: &'static str| -> Result<Option<TicketState>> {
                let text: Option<String> = row.try_get(column)?;
                text.map(|t| {
                    t.parse()
                        .map_err(|e| corrupt("ticket_events", column, &t, e))
                })
                .transpose()
            };
            Ok(TicketEvent {
                at: parse_time("ticket_events", "at", &row.try_get::<String, _>("at")?)?,
                actor: row.try_get("actor")?,
                kind: row.try_get("kind")?,
                from: state("from_state")?,
                to: state("to_state")?,
                note: row.try_get("note")?,
            })
        })
        .collect()
}

/// The history of every closed ticket, per ticket, oldest first (the
/// KPI report reads the times of its moves).
pub(super) async fn events_of_closed(
    db: &Db,
) -> Result<std::collections::HashMap<TicketId, Vec<TicketEvent>>> {
    let rows = sqlx::query(
        "SELECT e.ticket_id, e.at, e.actor, e.kind, e.from_state, e.to_state, e.note \
         FROM ticket_events e JOIN tickets t ON t.ticket_id = e.ticket_id \
         WHERE t.state = 'closed' ORDER BY e.ticket_id, e.seq",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out: std::collections::HashMap<TicketId, Vec<TicketEvent>> = Default::default();
    for row in &rows {
        let state = |column: &'static str| -> Result<Option<TicketState>> {
            let text: Option<String> = row.try_get(column)?;
            text.map(|t| {
                t.parse()
                    .map_err(|e| corrupt("ticket_events", column, &t, e))
            })
            .transpose()
        };
        let id = TicketId(row.try_get("ticket_id")?);
        out.entry(id).or_default().push(TicketEvent {
            at: parse_time("ticket_events", "at", &row.try_get::<String, _>("at")?)?,
            actor: row.try_get("actor")?,
            kind: row.try_get("kind")?,
            from: state("from_state")?,
            to: state("to_state")?,
            note: row.try_get("note")?,
        });
    }
    Ok(out)
}

/// The `WHERE` of `filter` (empty: every ticket) and the text values its
/// placeholders `$1…` take; `None` when it lets nothing through (an empty
/// list of visible fleets).
fn filter_clause(filter: &TicketFilter) -> Option<(String, Vec<String>)> {
    let mut clauses: Vec<String> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    let mut add = |clause: &str, value: &str| {
        values.push(value.to_owned());
        clauses.push(format!("{clause} ${}", values.len()));
    };
    if let Some(state) = filter.state {
        add("state =", state.as_str());
    }
    if let Some(kind) = filter.kind {
        add("kind =", kind.as_str());
    }
    if let Some(fleet) = &filter.fleet {
        add("fleet_id =", fleet.as_str());
    }
    if let Some(vehicle) = &filter.vehicle {
        add("vehicle_id =", vehicle.as_str());
    }
    if let Some(visible) = &filter.fleets_visible {
        if visible.is_empty() {
            return None;
        }
        let first = values.len() + 1;
        values.extend(visible.iter().map(|f| f.as_str().to_owned()));
        let marks: Vec<String> = (first..=values.len()).map(|n| format!("${n}")).collect();
        clauses.push(format!("fleet_id IN ({})", marks.join(", ")));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    Some((sql, values))
}

/// The tickets `filter` lets through, newest first; with `before`, only
/// those numbered below it (the next page of a list); at most `limit`.
pub(super) async fn list(
    db: &Db,
    filter: &TicketFilter,
    before: Option<TicketId>,
    limit: Option<usize>,
) -> Result<Vec<Ticket>> {
    let Some((mut clause, values)) = filter_clause(filter) else {
        return Ok(Vec::new());
    };
    // Built from fixed fragments and numbered placeholders only; every
    // value is bound: the text values first, then the numbers.
    let mut numbers: Vec<i64> = Vec::new();
    if let Some(before) = before {
        numbers.push(before.0);
        let mark = format!("ticket_id < ${}", values.len() + numbers.len());
        clause = if clause.is_empty() {
            format!(" WHERE {mark}")
        } else {
            format!("{clause} AND {mark}")
        };
    }
    let mut sql = format!("SELECT {COLUMNS} FROM tickets{clause} ORDER BY ticket_id DESC");
    if let Some(limit) = limit {
        numbers.push(i64::try_from(limit).unwrap_or(i64::MAX));
        sql.push_str(&format!(" LIMIT ${}", values.len() + numbers.len()));
    }
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for v in values {
        query = query.bind(v);
    }
    for n in numbers {
        query = query.bind(n);
    }
    let rows = query.fetch_all(db.pool()).await?;
    rows.iter().map(ticket_from_row).collect()
}

/// How many tickets `filter` lets through in each state.
pub(super) async fn count_by_state(
    db: &Db,
    filter: &TicketFilter,
) -> Result<Vec<(TicketState, u64)>> {
    let Some((clause, values)) = filter_clause(filter) else {
        return Ok(Vec::new());
    };
    let sql = format!("SELECT state, COUNT(*) FROM tickets{clause} GROUP BY state");
    let mut query = sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql));
    for v in values {
        query = query.bind(v);
    }
    query
        .fetch_all(db.pool())
        .await?
        .into_iter()
        .map(|(state, n)| {
            let s = state
                .parse::<TicketState>()
                .map_err(|e| corrupt("tickets", "state", &state, e))?;
            Ok((s, u64::try_from(n).unwrap_or_default()))
        })
        .collect()
}

/// Tickets neither closed nor cancelled per vehicle, among those
/// `filter` lets through (its state is ignored).
pub(super) async fn open_per_vehicle(
    db: &Db,
    filter: &TicketFilter,
) -> Result<Vec<(FleetId, VehicleId, u64)>> {
    let filter = TicketFilter {
        state: None,
        ..filter.clone()
    };
    let Some((clause, values)) = filter_clause(&filter) else {
        return Ok(Vec::new());
    };
    let open =
        "state NOT IN ('closed', 'cancelled') AND fleet_id IS NOT NULL AND vehicle_id IS NOT NULL";
    let clause = if clause.is_empty() {
        format!(" WHERE {open}")
    } else {
        format!("{clause} AND {open}")
    };
    let sql = format!(
        "SELECT fleet_id, vehicle_id, COUNT(*) FROM tickets{clause} GROUP BY fleet_id, vehicle_id"
    );
    let mut query = sqlx::query_as::<_, (String, String, i64)>(AssertSqlSafe(sql));
    for v in values {
        query = query.bind(v);
    }
    query
        .fetch_all(db.pool())
        .await?
        .into_iter()
        .map(|(fleet, vehicle, n)| {
            Ok((
                FleetId::new(&fleet).map_err(|e| corrupt("tickets", "fleet_id", &fleet, e))?,
                VehicleId::new(&vehicle)
                    .map_err(|e| corrupt("tickets", "vehicle_id", &vehicle, e))?,
                u64::try_from(n).unwrap_or_default(),
            ))
        })
        .collect()
}

fn ticket_from_row(row: &AnyRow) -> Result<Ticket> {
    let text = |column: &'static str| -> Result<String> { Ok(row.try_get(column)?) };
    let opt_text = |column: &'static str| -> Result<Option<String>> { Ok(row.try_get(column)?) };
    let time = |column: &'static str| parse_time("tickets", column, &text(column)?);
    let parsed = |column: &'static str| -> Result<String> { text(column) };

    let id = TicketId(row.try_get("ticket_id")?);
    let fleet = opt_text("fleet_id")?
        .map(|f| FleetId::new(&f).map_err(|e| corrupt("tickets", "fleet_id", &f, e)))
        .transpose()?;
    let vehicle = opt_text("vehicle_id")?
        .map(|v| VehicleId::new(&v).map_err(|e| corrupt("tickets", "vehicle_id", &v, e)))
        .transpose()?;
    let model = opt_text("model_id")?
        .map(|m| ModelId::new(m.clone()).map_err(|e| corrupt("tickets", "model_id", &m, e)))
        .transpose()?;
    let kind_text = parsed("kind")?;
    let state_text = parsed("state")?;
    let priority_text = parsed("priority")?;
    let occurrences: i64 = row.try_get("occurrences")?;
    let satisfaction: Option<i64> = row.try_get("satisfaction")?;
    let warranty: Option<i64> = row.try_get("warranty")?;
    let labour_covered: Option<i64> = row.try_get("labour_covered")?;
    let parts_text = parsed("parts_used")?;
    let opt_time = |column: &'static str| -> Result<Option<DateTime<Utc>>> {
        opt_text(column)?
            .map(|t| parse_time("tickets", column, &t))
            .transpose()
    };
    let complainant = opt_text("complainant_name")?
        .map(|name| -> Result<Complainant> {
            Ok(Complainant {
                name,
                phone: opt_text("complainant_phone")?,
                email: opt_text("complainant_email")?,
            })
        })
        .transpose()?;
    let warranty_status = opt_text("warranty_status")?
        .map(|s| {
            WarrantyStatus::parse(&s)
                .ok_or_else(|| corrupt("tickets", "warranty_status", &s, "not in, out or unknown"))
        })
        .transpose()?;
    let warranty_basis = opt_text("warranty_basis")?
        .map(|s| {
            WarrantyBasis::parse(&s).ok_or_else(|| {
                corrupt(
                    "tickets",
                    "warranty_basis",
                    &s,
                    "not months, engine_hours or km",
                )
            })
        })
        .transpose()?;
    let warranty_until = opt_text("warranty_until")?
        .map(|d| {
            chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                .map_err(|e| corrupt("tickets", "warranty_until", &d, e))
        })
        .transpose()?;
    let kind: TicketKind = kind_text
        .parse()
        .map_err(|e| corrupt("tickets", "kind", &kind_text, e))?;
    let verification_text = opt_text("verification")?;
    let verified_at = opt_text("verified_at")?
        .map(|t| parse_time("tickets", "verified_at", &t))
        .transpose()?;
    let verification = Verification::from_columns(
        kind,
        opt_text("delivered_at")?.is_some(),
        verification_text.as_deref(),
        verified_at,
    )
    .map_err(|e| {
        corrupt(
            "tickets",
            "verification",
            verification_text.as_deref().unwrap_or(""),
            e,
        )
    })?;
    let repeat_of: Option<i64> = row.try_get("repeat_of")?;
    let repeat_of = repeat_of
        .map(|t| -> Result<RepeatOf> {
            Ok(RepeatOf {
                ticket: TicketId(t),
                technician: opt_text("repeat_technician")?,
                outlet: opt_text("repeat_outlet")?,
            })
        })
        .transpose()?;
    Ok(Ticket {
        id,
        fleet,
        vehicle,
        model,
        kind,
        key: text("ticket_key")?,
        state: state_text
            .parse()
            .map_err(|e| corrupt("tickets", "state", &state_text, e))?,
        priority: priority_text
            .parse()
            .map_err(|e| corrupt("tickets", "priority", &priority_text, e))?,
        title: text("title")?,
        title_en: text("title")?,
        details: text("details")?,
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        occurrences: u32::try_from(occurrences)
            .map_err(|e| corrupt("tickets", "occurrences", &occurrences.to_string(), e))?,
        sla: Sla {
            respond_by: time("respond_by")?,
            resolve_by: time("resolve_by")?,
            breached: opt_text("breached_at")?.is_some(),
            on_site_by: opt_time("on_site_by")?,
            on_site_at: opt_time("on_site_at")?,
            follow_up_by: opt_time("follow_up_by")?,
            follow_up_overdue: opt_text("follow_up_alerted_at")?.is_some(),
        },
        assignee: opt_text("assignee")?,
        outlet: opt_text("outlet")?,
        closed_at: opt_text("finished_at")?
            .map(|t| parse_time("tickets", "finished_at", &t))
            .transpose()?,
        escalated: opt_text("escalated_at")?.is_some(),
        outcome: opt_text("outcome")?
            .map(|o| o.parse().map_err(|e| corrupt("tickets", "outcome", &o, e)))
            .transpose()?,
        satisfaction: satisfaction
            .map(|s| {
                u8::try_from(s).map_err(|e| corrupt("tickets", "satisfaction", &s.to_string(), e))
            })
            .transpose()?,
        labour_hours: row.try_get("labour_hours")?,
        parts_used: serde_json::from_str::<Vec<PartUsed>>(&parts_text)
            .map_err(|e| corrupt("tickets", "parts_used", &parts_text, e))?,
        warranty: WarrantyDecision {
            status: warranty_status.unwrap_or(WarrantyStatus::Unknown),
            until: warranty_until,
            basis: warranty_basis,
        },
        warranty_claim: warranty.map(|w| w != 0),
        labour_covered: labour_covered.map(|w| w != 0),
        campaign: row.try_get("campaign_id")?,
        complainant,
        channel: opt_text("channel")?
            .map(|c| c.parse().map_err(|e| corrupt("tickets", "channel", &c, e)))
            .transpose()?,
        zone: opt_text("zone")?
            .map(|z| {
                z.parse::<Zone>()
                    .map_err(|e| corrupt("tickets", "zone", &z, e))
            })
            .transpose()?,
        verification,
        repeat_of,
    })
}

pub(super) fn parse_time(
    table: &'static str,
    column: &'static str,
    text: &str,
) -> Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(text)
        .map_err(|e| corrupt(table, column, text, e))?
        .with_timezone(&Utc))
}

pub(super) fn corrupt(
    table: &'static str,
    column: &'static str,
    value: &str,
    reason: impl std::fmt::Display,
) -> TicketError {
    TicketError::Db(DbError::Corrupt {
        table,
        column,
        value: value.to_owned(),
        reason: reason.to_string(),
    })
}
