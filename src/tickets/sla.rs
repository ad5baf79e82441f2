//! Service commitments (C8): deadlines per priority, the breach check and
//! the escalation of unanswered complaints.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::Row;

use super::error::Result;
use super::store::{self, SYSTEM_ACTOR};
use super::types::{Priority, Ticket, TicketId};
pub use crate::config::SlaConfig;
use crate::db::Db;

// The deadlines of tickets: the configuration is plain data (config.rs),
// what it means for a ticket of a priority is the tickets' business.
impl SlaConfig {
    /// (respond, resolve) for `priority`.
    pub fn times(&self, priority: Priority) -> (Duration, Duration) {
        match priority {
            Priority::P1 => (self.p1_respond, self.p1_resolve),
            Priority::P2 => (self.p2_respond, self.p2_resolve),
            Priority::P3 => (self.p3_respond, self.p3_resolve),
            Priority::P4 => (self.p4_respond, self.p4_resolve),
        }
    }

    /// The deadlines of a ticket of `priority` opened at `at`.
    pub fn deadlines(
        &self,
        priority: Priority,
        at: DateTime<Utc>,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        let (respond, resolve) = self.times(priority);
        (after(at, respond), after(at, resolve))
    }
}

/// `at + d`, saturating: the configuration bounds `d`, so this only
/// matters for a configuration built in code without `validate`.
pub(super) fn after(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn before(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| at.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Records each breach and each escalation once and returns the tickets
/// concerned. Both are conditional updates on a column that is set only
/// here (`breached_at`, `escalated_at`), so a second check — in this
/// process or another — finds nothing left to report.
pub(super) async fn check(
    db: &Db,
    sla: &SlaConfig,
    now: DateTime<Utc>,
) -> Result<Vec<(Ticket, SlaFinding)>> {
    let now_text = store::time_text(now);
    let cutoff = store::time_text(before(now, sla.complaint_escalate_after));
    let mut tx = store::begin_write(db).await?;
    let mut touched: Vec<TicketId> = Vec::new();
    let mut breached_now: Vec<TicketId> = Vec::new();

    let escalated = sqlx::query(
        "UPDATE tickets SET escalated_at = $1, updated_at = $2, \
         priority = CASE priority WHEN 'P4' THEN 'P3' WHEN 'P3' THEN 'P2' ELSE 'P1' END \
         WHERE kind = 'complaint' AND state = 'open' AND escalated_at IS NULL \
         AND created_at <= $3 \
         RETURNING ticket_id, priority",
    )
    .bind(&now_text)
    .bind(&now_text)
    .bind(&cutoff)
    .fetch_all(&mut *tx)
    .await?;
    for row in escalated {
        let id = TicketId(row.try_get("ticket_id")?);
        let priority: String = row.try_get("priority")?;
        let note = format!(
            "not answered within {}; priority raised to {priority}",
            humantime::format_duration(sla.complaint_escalate_after)
        );
        store::add_event(
            &mut tx,
            id,
            now,
            SYSTEM_ACTOR,
            "escalated",
            None,
            None,
            Some(&note),
        )
        .await?;
        touched.push(id);
    }
    let escalated_ids = touched.clone();

    // A deadline is missed when its milestone came after it, or has not
    // come (or the ticket was cancelled first) and the deadline is past.
    let breached = sqlx::query(
        "UPDATE tickets SET breached_at = $1, updated_at = $2 \
         WHERE breached_at IS NULL AND (\
           COALESCE(responded_at, finished_at, $3) > respond_by \
           OR COALESCE(delivered_at, finished_at, $4) > resolve_by \
           OR COALESCE(on_site_at, finished_at, $5) > on_site_by) \
         RETURNING ticket_id, respond_by, resolve_by, responded_at, delivered_at, finished_at, \
           on_site_by, on_site_at",
    )
    .bind(&now_text)
    .bind(&now_text)
    .bind(&now_text)
    .bind(&now_text)
    .bind(&now_text)
    .fetch_all(&mut *tx)
    .await?;
    for row in breached {
        let id = TicketId(row.try_get("ticket_id")?);
        let respond_by: String = row.try_get("respond_by")?;
        let resolve_by: String = row.try_get("resolve_by")?;
        let finished: Option<String> = row.try_get("finished_at")?;
        let responded: Option<String> = row.try_get("responded_at")?;
        let delivered: Option<String> = row.try_get("delivered_at")?;
        let on_site_by: Option<String> = row.try_get("on_site_by")?;
        let on_site: Option<String> = row.try_get("on_site_at")?;
        let end = |milestone: Option<String>| {
            milestone
                .or_else(|| finished.clone())
                .unwrap_or_else(|| now_text.clone())
        };
        // Text order is time order (fixed width).
        let note = if end(responded) > respond_by {
            format!("not answered by {respond_by}")
        } else if let Some(by) = on_site_by.filter(|by| &end(on_site.clone()) > by) {
            format!("no technician on site by {by}")
        } else if end(delivered) > resolve_by {
            format!("not resolved by {resolve_by}")
        } else {
            "deadline missed".to_owned()
        };
        store::add_event(
            &mut tx,
            id,
            now,
            SYSTEM_ACTOR,
            "breach",
            None,
            None,
            Some(&note),
        )
        .await?;
        breached_now.push(id);
        if !touched.contains(&id) {
            touched.push(id);
        }
    }

    touched.sort_unstable();
    let mut tickets = Vec::with_capacity(touched.len());
    for id in touched {
        let ticket = store::load_required(&mut *tx, id).await?;
        let breached = breached_now.contains(&id);
        let finding = match (breached, escalated_ids.contains(&id)) {
            (true, true) => SlaFinding::BreachedAndEscalated,
            (true, false) => SlaFinding::Breached,
            _ => SlaFinding::Escalated,
        };
        tickets.push((ticket, finding));
    }
    tx.commit().await?;
    Ok(tickets)
}

/// What [`super::Tickets::check_slas_found`] found about a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaFinding {
    /// A deadline was missed.
    Breached,
    /// An unanswered complaint was escalated.
    Escalated,
    BreachedAndEscalated,
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3600;

    #[test]
    fn defaults_are_c8s() {
        let sla = SlaConfig::default();
        let h = |h: u64| Duration::from_secs(h * HOUR);
        assert_eq!(sla.times(Priority::P1), (h(1), h(24)));
        assert_eq!(sla.times(Priority::P2), (h(4), h(72)));
        assert_eq!(sla.times(Priority::P3), (h(24), h(168)));
        assert_eq!(sla.times(Priority::P4), (h(72), h(720)));
        assert_eq!(sla.complaint_escalate_after, h(4));
        assert_eq!(sla.validate(), Ok(()));
    }

    #[test]
    fn nonsense_is_refused() {
        let sla = SlaConfig {
            p2_respond: Duration::from_secs(100 * HOUR),
            ..SlaConfig::default()
        };
        let e = sla.validate().unwrap_err();
        assert!(
            e.contains("sla.p2_respond is longer than sla.p2_resolve"),
            "{e}"
        );
        let sla = SlaConfig {
            complaint_escalate_after: Duration::ZERO,
            ..SlaConfig::default()
        };
        assert!(sla.validate().is_err());
    }

    #[test]
    fn deadlines_count_from_opening() {
        let at = DateTime::parse_from_rfc3339("2025-03-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let (respond, resolve) = SlaConfig::default().deadlines(Priority::P1, at);
        assert_eq!(respond.to_rfc3339(), "2025-03-01T11:00:00+00:00");
        assert_eq!(resolve.to_rfc3339(), "2025-03-02T10:00:00+00:00");
    }
}
