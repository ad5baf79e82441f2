//! The follow-up clock (C10): after `delivered`, the follow-up call — the
//! close with the customer's satisfaction score — is due within
//! `sla.follow_up_after`. An overdue follow-up is alerted to support once:
//! the conditional update of `follow_up_alerted_at` decides, so a second
//! check, in this process or another, finds nothing left to report.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::error::Result;
use super::store::{self, SYSTEM_ACTOR};
use super::types::{Ticket, TicketFilter, TicketId};
use crate::db::Db;

/// Records each delivered ticket whose follow-up is overdue at `now` and
/// was not alerted, and returns them.
pub(super) async fn check(db: &Db, now: DateTime<Utc>) -> Result<Vec<Ticket>> {
    let now_text = store::time_text(now);
    let mut tx = store::begin_write(db).await?;
    let rows = sqlx::query(
        "UPDATE tickets SET follow_up_alerted_at = $1 \
         WHERE state = 'delivered' AND follow_up_alerted_at IS NULL AND follow_up_by < $2 \
         RETURNING ticket_id, follow_up_by",
    )
    .bind(&now_text)
    .bind(&now_text)
    .fetch_all(&mut *tx)
    .await?;
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let id = TicketId(row.try_get("ticket_id")?);
        let by: String = row.try_get("follow_up_by")?;
        store::add_event(
            &mut tx,
            id,
            now,
            SYSTEM_ACTOR,
            "follow_up_overdue",
            None,
            None,
            Some(&format!(
                "the follow-up call was due by {by}; support alerted"
            )),
        )
        .await?;
        ids.push(id);
    }
    ids.sort_unstable();
    let mut tickets = Vec::with_capacity(ids.len());
    for id in ids {
        tickets.push(store::load_required(&mut *tx, id).await?);
    }
    tx.commit().await?;
    Ok(tickets)
}

/// Delivered tickets `filter` lets through (its state ignored) whose
/// follow-up was due before `now`, the longest overdue first; at most 500.
pub(super) async fn overdue(
    db: &Db,
    filter: &TicketFilter,
    now: DateTime<Utc>,
) -> Result<Vec<Ticket>> {
    let filter = TicketFilter {
        state: Some(super::TicketState::Delivered),
        ..filter.clone()
    };
    let list = store::list(db, &filter, None, None).await?;
    let mut due: Vec<Ticket> = list
        .into_iter()
        .filter(|t| t.sla.follow_up_by.is_some_and(|by| by < now))
        .collect();
    due.sort_by_key(|t| (t.sla.follow_up_by, t.id));
    due.truncate(MAX_LISTED);
    Ok(due)
}

/// The most overdue follow-ups listed at once (the board's section).
const MAX_LISTED: usize = 500;
