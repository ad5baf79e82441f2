//! Ticket history and backlog to InfluxDB.
//!
//! Ticket events are read from the database (`ticket_events`) with a cursor
//! saved beside the spool, not taken from a hook in the ticket code: the
//! cursor also sees changes made by another process (`fleetcare tickets
//! move`, a second service on PostgreSQL), and history written while the
//! sink was off or InfluxDB down is exported when it comes back.
//!
//! The cursor is per ticket: an event's `seq` numbers its ticket's history
//! without gaps, and a ticket's events are written under its row lock, so
//! "ticket 42 is exported up to seq 5" is exact whatever the commit order
//! across tickets (event times are not: a fault ticket's `opened` carries
//! the truck's time, which can be hours old). Tickets that are closed or
//! cancelled never change again; once every ticket below a number is
//! finished and exported the cursor keeps only that number.
//!
//! Each round's lines are appended to the spool and synced *before* the
//! cursor is saved: a crash in between exports those events again (at
//! least once, never lost). InfluxDB overwrites a point with the same
//! series and time, so the copy changes nothing there.
//!
//! The backlog (`ticket_backlog`) is a gauge written every round at wall
//! time through the ordinary in-memory path: a missed sample is replaced
//! by the next one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Row};

use super::influx::InfluxSink;
use super::line::LineBuf;
use super::schema::{self, field, tag};
use crate::db::Db;
use crate::runtime::Shutdown;
use crate::tickets::{Priority, TicketState};

/// Tickets read per query.
const CHUNK: usize = 200;

/// How far the export of ticket history got; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Every ticket numbered below this is finished and fully exported.
    pub done_below: i64,
    /// The last exported `seq` of tickets from `done_below` on.
    pub exported: BTreeMap<i64, i64>,
}

impl Default for Cursor {
    fn default() -> Self {
        Self {
            done_below: 1,
            exported: BTreeMap::new(),
        }
    }
}

impl Cursor {
    /// The cursor saved at `path`; a missing file is the start.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Saves atomically: a crash leaves the old cursor or the new one.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn exported(&self, ticket: i64) -> i64 {
        if ticket < self.done_below {
            i64::MAX
        } else {
            self.exported.get(&ticket).copied().unwrap_or(0)
        }
    }

    /// Moves `done_below` past tickets that are finished and exported.
    /// `latest` is (ticket, last seq, finished) for tickets from
    /// `done_below` on, in ticket order.
    fn advance(&mut self, latest: &[(i64, i64, bool)]) {
        for &(ticket, last, finished) in latest {
            if ticket != self.done_below || !finished || self.exported(ticket) < last {
                break;
            }
            self.exported.remove(&ticket);
            self.done_below += 1;
        }
    }
}

/// One row of `ticket_events` with its ticket's tags.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub ticket: i64,
    pub seq: i64,
    pub at: String,
    pub event: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub fleet: Option<String>,
    pub vehicle: Option<String>,
    pub model: Option<String>,
    pub kind: String,
    pub priority: String,
    pub created_at: String,
}

fn micros(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// Appends the event's line; false if its time cannot be read.
///
/// The time is the event's own, in nanoseconds, plus the ticket number
/// modulo 1000: events of two tickets in the same microsecond with the
/// same tags would otherwise be one point in InfluxDB.
pub fn encode_event(e: &EventRow, out: &mut LineBuf) -> bool {
    let (Some(at), Some(created)) = (micros(&e.at), micros(&e.created_at)) else {
        return false;
    };
    let Some(ns) = at
        .checked_mul(1_000)
        .and_then(|ns| ns.checked_add(e.ticket.rem_euclid(1_000)))
    else {
        return false;
    };
    let since_open = (at - created) as f64 / 1e6;
    let moved = e.event == "moved";
    let response = moved && e.from_state.as_deref() == Some(TicketState::Open.as_str());
    let resolution = moved && e.to_state.as_deref() == Some(TicketState::Delivered.as_str());
    out.point(schema::TICKET_EVENT.name)
        .tag(tag::EVENT, &e.event)
        .tag(tag::FLEET, e.fleet.as_deref().unwrap_or(""))
        .tag(tag::KIND, &e.kind)
        .tag(tag::MODEL, e.model.as_deref().unwrap_or(""))
        .tag(tag::PRIORITY, &e.priority)
        .tag(tag::STATE, e.to_state.as_deref().unwrap_or(""))
        .tag(tag::VEHICLE, e.vehicle.as_deref().unwrap_or(""))
        .field(field::AGE_S, since_open)
        .field(field::COUNT, 1.0)
        .field_opt(field::RESOLUTION_S, resolution.then_some(since_open))
        .field_opt(field::RESPONSE_S, response.then_some(since_open))
        .field(field::TICKET, e.ticket as f64)
        .finish(ns)
}

/// Backlog counts: (fleet, priority, state) → (count, overdue).
pub type Backlog = BTreeMap<(Option<String>, String, String), (i64, i64)>;

/// A backlog point for every fleet, priority and active state (zeros
/// included, so a panel's last value falls back to 0).
pub fn encode_backlog(fleets: &[Option<String>], counts: &Backlog, now_ns: i64, out: &mut LineBuf) {
    for fleet in fleets {
        for &p in Priority::ALL {
            for s in TicketState::ALL.iter().filter(|s| !s.is_finished()) {
                let key = (fleet.clone(), p.as_str().to_owned(), s.as_str().to_owned());
                let (count, overdue) = counts.get(&key).copied().unwrap_or_default();
                out.point(schema::TICKET_BACKLOG.name)
                    .tag(tag::FLEET, fleet.as_deref().unwrap_or(""))
                    .tag(tag::PRIORITY, p.as_str())
                    .tag(tag::STATE, s.as_str())
                    .field(field::COUNT, count as f64)
                    .field(field::OVERDUE, overdue as f64)
                    .finish(now_ns);
            }
        }
    }
}

/// (ticket, last seq, finished) of tickets with events from `from` on.
async fn latest(db: &Db, from: i64) -> Result<Vec<(i64, i64, bool)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT e.ticket_id, MAX(e.seq) AS last_seq, t.state \
         FROM ticket_events e JOIN tickets t ON t.ticket_id = e.ticket_id \
         WHERE e.ticket_id >= $1 GROUP BY e.ticket_id, t.state ORDER BY e.ticket_id",
    )
    .bind(from)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let state: String = r.try_get("state")?;
            let finished = state
                .parse::<TicketState>()
                .is_ok_and(TicketState::is_finished);
            Ok((r.try_get("ticket_id")?, r.try_get("last_seq")?, finished))
        })
        .collect()
}

/// Every event of `tickets`, in ticket and seq order.
async fn events(db: &Db, tickets: &[i64]) -> Result<Vec<EventRow>, sqlx::Error> {
    let placeholders: Vec<String> = (1..=tickets.len()).map(|i| format!("${i}")).collect();
    // Fixed text and numbered placeholders; every value is bound.
    let sql = format!(
        "SELECT e.ticket_id, e.seq, e.at, e.kind AS event, e.from_state, e.to_state, \
         t.fleet_id, t.vehicle_id, t.model_id, t.kind, t.priority, t.created_at \
         FROM ticket_events e JOIN tickets t ON t.ticket_id = e.ticket_id \
         WHERE e.ticket_id IN ({}) ORDER BY e.ticket_id, e.seq",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for t in tickets {
        query = query.bind(*t);
    }
    let rows = query.fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(EventRow {
                ticket: r.try_get("ticket_id")?,
                seq: r.try_get("seq")?,
                at: r.try_get("at")?,
                event: r.try_get("event")?,
                from_state: r.try_get("from_state")?,
                to_state: r.try_get("to_state")?,
                fleet: r.try_get("fleet_id")?,
                vehicle: r.try_get("vehicle_id")?,
                model: r.try_get("model_id")?,
                kind: r.try_get("kind")?,
                priority: r.try_get("priority")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

async fn backlog(
    db: &Db,
    now: DateTime<Utc>,
) -> Result<(Vec<Option<String>>, Backlog), sqlx::Error> {
    let fleets = sqlx::query("SELECT DISTINCT fleet_id FROM tickets ORDER BY fleet_id")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| r.try_get("fleet_id"))
        .collect::<Result<Vec<Option<String>>, _>>()?;
    let now = now.to_rfc3339_opts(SecondsFormat::Micros, true);
    let rows = sqlx::query(
        "SELECT fleet_id, priority, state, COUNT(*) AS n, \
         SUM(CASE WHEN (state = 'open' AND respond_by < $1) \
                    OR (state <> 'delivered' AND resolve_by < $2) THEN 1 ELSE 0 END) AS overdue \
         FROM tickets WHERE state NOT IN ('closed', 'cancelled') \
         GROUP BY fleet_id, priority, state",
    )
    .bind(&now)
    .bind(&now)
    .fetch_all(db.pool())
    .await?;
    let mut counts = Backlog::new();
    for r in &rows {
        counts.insert(
            (
                r.try_get("fleet_id")?,
                r.try_get("priority")?,
                r.try_get("state")?,
            ),
            (r.try_get("n")?, r.try_get("overdue")?),
        );
    }
    Ok((fleets, counts))
}

/// What went wrong in one round.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading tickets: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Exports ticket history and the backlog every `interval` until
/// shutdown.
#[derive(Debug)]
pub struct TicketExport {
    pub db: Db,
    pub sink: InfluxSink,
    /// The cursor file.
    pub cursor: PathBuf,
    pub interval: Duration,
    pub batch_lines: usize,
}

impl TicketExport {
    /// Runs a round every interval until `stop` turns true, then a last
    /// one (so changes made during shutdown are exported now).
    pub async fn run(self, mut stop: Shutdown) {
        let mut cursor = match Cursor::load(&self.cursor) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, file = %self.cursor.display(), "cannot read the ticket export cursor; ticket events are not exported until it is fixed or removed");
                return;
            }
        };
        let mut every = tokio::time::interval(self.interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            let last = tokio::select! {
                _ = every.tick() => false,
                _ = stop.changed() => true,
            };
            let result = self.round(&mut cursor).await;
            if last {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "the last ticket export failed; it is done at the next start");
                }
                return;
            }
            match result {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "exporting tickets to InfluxDB failed; trying again every interval");
                }
                Err(e) => tracing::debug!(error = %e, "exporting tickets failed again"),
            }
        }
    }

    /// One round: new events to the spool (then the cursor), the backlog
    /// to the sink.
    pub async fn round(&self, cursor: &mut Cursor) -> Result<(), ExportError> {
        let latest = latest(&self.db, cursor.done_below).await?;
        let changed: Vec<i64> = latest
            .iter()
            .filter(|(t, last, _)| *last > cursor.exported(*t))
            .map(|(t, _, _)| *t)
            .collect();
        for tickets in changed.chunks(CHUNK) {
            let rows = events(&self.db, tickets).await?;
            tracing::debug!(
                tickets = tickets.len(),
                rows = rows.len(),
                "exporting ticket events"
            );
            let mut out = LineBuf::new();
            let mut pieces = Vec::new();
            for row in rows.iter().filter(|r| r.seq > cursor.exported(r.ticket)) {
                if !encode_event(row, &mut out) {
                    tracing::warn!(ticket = row.ticket, seq = row.seq, at = %row.at, "a ticket event with an unreadable time is not exported");
                }
                if out.lines() >= self.batch_lines {
                    pieces.push(out.take());
                }
            }
            if !out.is_empty() {
                pieces.push(out.take());
            }
            let sink = self.sink.clone();
            let spooled = tokio::task::spawn_blocking(move || {
                pieces
                    .iter()
                    .try_for_each(|(body, lines)| sink.spool_now(body, *lines))
            })
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            spooled.map_err(|source| ExportError::Io {
                path: PathBuf::from("(InfluxDB spool)"),
                source,
            })?;
            for row in &rows {
                let e = cursor.exported.entry(row.ticket).or_default();
                *e = (*e).max(row.seq);
            }
            cursor.advance(&latest);
            self.save(cursor).await?;
        }
        if changed.is_empty() {
            let before = cursor.done_below;
            cursor.advance(&latest);
            if cursor.done_below != before {
                self.save(cursor).await?;
            }
        }
        let now = Utc::now();
        let (fleets, counts) = backlog(&self.db, now).await?;
        let mut out = LineBuf::new();
        encode_backlog(&fleets, &counts, now.timestamp_micros() * 1_000, &mut out);
        let (body, lines) = out.take();
        let sink = self.sink.clone();
        // Usually a channel send; a spool write when the queue is full.
        let _ = tokio::task::spawn_blocking(move || sink.submit_lines(body, lines)).await;
        Ok(())
    }

    async fn save(&self, cursor: &Cursor) -> Result<(), ExportError> {
        let (c, path) = (cursor.clone(), self.cursor.clone());
        tokio::task::spawn_blocking(move || c.save(&path))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
            .map_err(|source| ExportError::Io {
                path: self.cursor.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        ticket: i64,
        seq: i64,
        event: &str,
        from: Option<&str>,
        to: Option<&str>,
        at: &str,
    ) -> EventRow {
        EventRow {
            ticket,
            seq,
            at: at.to_owned(),
            event: event.to_owned(),
            from_state: from.map(str::to_owned),
            to_state: to.map(str::to_owned),
            fleet: Some("acme".into()),
            vehicle: Some("TRK-001".into()),
            model: None,
            kind: "fault".into(),
            priority: "P1".into(),
            created_at: "2026-03-01T00:00:00.000000Z".into(),
        }
    }

    #[test]
    fn events_as_lines() {
        let mut out = LineBuf::new();
        assert!(encode_event(
            &row(
                42,
                1,
                "opened",
                None,
                Some("open"),
                "2026-03-01T00:00:00.000000Z"
            ),
            &mut out
        ));
        assert!(encode_event(
            &row(
                42,
                2,
                "moved",
                Some("open"),
                Some("dispatched"),
                "2026-03-01T00:30:00.000000Z"
            ),
            &mut out
        ));
        assert!(encode_event(
            &row(
                42,
                3,
                "moved",
                Some("quality_check"),
                Some("delivered"),
                "2026-03-01T06:00:00.000000Z"
            ),
            &mut out
        ));
        assert!(encode_event(
            &row(1042, 4, "breach", None, None, "2026-03-02T00:00:00.000000Z"),
            &mut out
        ));
        assert!(!encode_event(
            &row(42, 5, "note", None, None, "yesterday"),
            &mut out
        ));
        let text = std::str::from_utf8(out.as_bytes()).unwrap();
        assert_eq!(
            text,
            "\
ticket_event,event=opened,fleet=acme,kind=fault,priority=P1,state=open,vehicle=TRK-001 age_s=0,count=1,ticket=42 1772323200000000042
ticket_event,event=moved,fleet=acme,kind=fault,priority=P1,state=dispatched,vehicle=TRK-001 age_s=1800,count=1,response_s=1800,ticket=42 1772325000000000042
ticket_event,event=moved,fleet=acme,kind=fault,priority=P1,state=delivered,vehicle=TRK-001 age_s=21600,count=1,resolution_s=21600,ticket=42 1772344800000000042
ticket_event,event=breach,fleet=acme,kind=fault,priority=P1,vehicle=TRK-001 age_s=86400,count=1,ticket=1042 1772409600000000042
"
        );
    }

    #[test]
    fn backlog_points_include_zeros() {
        let mut counts = Backlog::new();
        counts.insert((Some("acme".into()), "P1".into(), "open".into()), (2, 1));
        let mut out = LineBuf::new();
        encode_backlog(&[Some("acme".into()), None], &counts, 7, &mut out);
        assert_eq!(out.lines(), 2 * 4 * 7);
        let text = std::str::from_utf8(out.as_bytes()).unwrap();
        assert!(
            text.starts_with(
                "ticket_backlog,fleet=acme,priority=P1,state=open count=2,overdue=1 7\n"
            )
        );
        assert!(text.contains("ticket_backlog,priority=P4,state=delivered count=0,overdue=0 7\n"));
    }

    #[test]
    fn the_cursor_keeps_only_what_can_still_change() {
        let mut c = Cursor::default();
        assert_eq!(c.exported(1), 0);
        c.exported.extend([(1, 3), (2, 2), (3, 1), (5, 1)]);
        // 1 finished and exported; 2 finished but seq 3 not exported yet;
        // so the cursor stops at 2.
        c.advance(&[(1, 3, true), (2, 3, true), (3, 1, false), (5, 1, true)]);
        assert_eq!(c.done_below, 2);
        assert_eq!(c.exported(1), i64::MAX);
        c.exported.insert(2, 3);
        c.advance(&[(2, 3, true), (3, 1, true), (5, 1, true)]);
        // Ticket 4 is not there (not committed yet): stop before it.
        assert_eq!(c.done_below, 4);
        assert_eq!(c.exported, BTreeMap::from([(5, 1)]));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickets.cursor");
        assert_eq!(Cursor::load(&path).unwrap(), Cursor::default());
        c.save(&path).unwrap();
        assert_eq!(Cursor::load(&path).unwrap(), c);
    }
}
