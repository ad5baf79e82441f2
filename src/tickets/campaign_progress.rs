//! Recall progress for support (C10): each time more of a campaign's
//! recall tickets are finished (closed or cancelled), support hears the
//! campaign's progress once. A conditional upsert of the count last
//! alerted decides, so a second check — in this process or another —
//! finds nothing new.

use chrono::{DateTime, Utc};

use super::Tickets;
use super::campaign::Campaign;
use super::error::Result;
use super::store;

impl Tickets {
    /// The campaigns whose finished recall tickets grew since support was
    /// last told, with their progress; recorded as told.
    pub async fn check_campaign_progress(&self, now: DateTime<Utc>) -> Result<Vec<Campaign>> {
        let counts: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT campaign_id, COUNT(*) FROM tickets \
             WHERE campaign_id IS NOT NULL AND state IN ('closed', 'cancelled') \
             GROUP BY campaign_id ORDER BY campaign_id",
        )
        .fetch_all(self.db().pool())
        .await?;
        let at = store::time_text(now);
        let mut moved = Vec::new();
        for (campaign, finished) in counts {
            let told = sqlx::query(
                "INSERT INTO campaign_progress_alerts (campaign_id, finished, alerted_at) \
                 VALUES ($1, $2, $3) \
                 ON CONFLICT (campaign_id) DO UPDATE SET finished = excluded.finished, \
                 alerted_at = excluded.alerted_at \
                 WHERE campaign_progress_alerts.finished < excluded.finished",
            )
            .bind(campaign)
            .bind(finished)
            .bind(&at)
            .execute(self.db().pool())
            .await?;
            if told.rows_affected() == 1
                && let Some(c) = self.campaign(campaign).await?
            {
                moved.push(c);
            }
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use fleetcare_ingest::j1939::{Fmi, Spn};

    use super::*;
    use crate::catalog::ModelId;
    use crate::db::Db;
    use crate::db::testing::db_tests;
    use crate::tickets::{NewCampaign, SlaConfig, TicketState, Transition};

    db_tests!(recall_progress_is_told_once_per_step);

    /// Issue 21: recall progress reaches support, each step once.
    async fn recall_progress_is_told_once_per_step(db: Db) {
        for v in ["TRK-001", "TRK-002"] {
            sqlx::query(
                "INSERT INTO vehicles (vehicle_id, fleet_id, model_id, vin, commissioned_on, depot) \
                 VALUES ($1, 'acme', 'compactor-c12', NULL, '2025-01-01', 'north')",
            )
            .bind(v)
            .execute(db.pool())
            .await
            .unwrap();
        }
        let t = Tickets::new(db, SlaConfig::default());
        let now = Utc::now();
        let c = t
            .open_campaign(
                NewCampaign {
                    model: ModelId::new("compactor-c12").unwrap(),
                    spn: Spn::new(110).unwrap(),
                    fmi: Fmi::new(0).unwrap(),
                    title: "Coolant sensor harness".to_owned(),
                    commissioned_from: None,
                    commissioned_to: None,
                },
                "support",
                now,
            )
            .await
            .unwrap();
        assert_eq!(c.vehicles, 2);
        assert!(t.check_campaign_progress(now).await.unwrap().is_empty());
        let mut m = Transition::to(TicketState::Cancelled);
        m.note = Some("vehicle sold".to_owned());
        t.transition(c.tickets[0].ticket, m, "support", now)
            .await
            .unwrap();
        let told = t.check_campaign_progress(now).await.unwrap();
        assert_eq!(told.len(), 1);
        assert_eq!((told[0].id, told[0].cancelled, told[0].open), (c.id, 1, 1));
        // Once: nothing new, nothing told.
        assert!(t.check_campaign_progress(now).await.unwrap().is_empty());
    }
}
