//! Repair verification (C10, issue 21 item 10): after a repair ticket
//! (`fault`, `recurring` or `repeat_repair`, key `SPN:FMI`) reaches
//! `delivered`, the periodic jobs watch its code on the vehicle:
//!
//! - back within `detect.repeat_repair_days` after delivery: the repair did
//!   not hold (`repeated`); the repeat-repair ticket links to this one and
//!   names its technician and outlet;
//! - absent while the engine ran `detect.verify_after_engine_hours` (72 by
//!   default) after delivery: the repair is `verified`;
//! - back later, before those hours were run: `returned` (not verified,
//!   not a repeat repair either).
//!
//! The verdict is written once (a `repeated` one may still replace
//! `verified` when the code comes back inside the window) and is an event
//! in the ticket's history. [`decide`] is the arithmetic, without IO; the
//! store's part (when the code came back, engine hours at delivery) is
//! `report::verification`.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::j1939::{Fmi, Spn};
use serde::Serialize;
use sqlx::Row;

use super::store::{self, time_text};
use super::{Result, TicketId, TicketKind, Tickets};
use crate::db::Db;

/// How long after delivery a repair is watched at most: a vehicle that
/// has not run the engine hours by then (laid up, sold, no data) keeps
/// `watching` without a verdict, and the jobs stop reading its history.
pub const WATCH_DAYS: i64 = 180;

/// The kinds whose repair is watched: those keyed by a fault code on one
/// vehicle.
pub const WATCHED_KINDS: [TicketKind; 3] = [
    TicketKind::Fault,
    TicketKind::Recurring,
    TicketKind::RepeatRepair,
];

/// The verdict on a delivered repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    /// Delivered; the code is watched.
    Watching,
    /// The code stayed away for the engine hours asked.
    Verified,
    /// The code came back within the repeat-repair window.
    Repeated,
    /// The code came back after the window, before the engine hours ran.
    Returned,
}

impl VerificationStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Watching => "watching",
            Self::Verified => "verified",
            Self::Repeated => "repeated",
            Self::Returned => "returned",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Watching,
            Self::Verified,
            Self::Repeated,
            Self::Returned,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for VerificationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A ticket's verification as the API shows it (`null` on tickets that
/// are not watched: other kinds, or not delivered yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub status: VerificationStatus,
    /// When the verdict was reached; null while watching.
    pub at: Option<DateTime<Utc>>,
}

impl Verification {
    /// From the ticket's columns: `None` for a ticket not watched.
    pub(super) fn from_columns(
        kind: TicketKind,
        delivered: bool,
        status: Option<&str>,
        at: Option<DateTime<Utc>>,
    ) -> std::result::Result<Option<Self>, String> {
        match status {
            Some(s) => {
                let status = VerificationStatus::parse(s)
                    .ok_or_else(|| "not verified, repeated or returned".to_owned())?;
                Ok(Some(Self { status, at }))
            }
            None if delivered && WATCHED_KINDS.contains(&kind) => Ok(Some(Self {
                status: VerificationStatus::Watching,
                at: None,
            })),
            None => Ok(None),
        }
    }
}

/// The earlier ticket a repeat repair brings back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepeatOf {
    pub ticket: TicketId,
    /// Its technician (assignee) when it was delivered.
    pub technician: Option<String>,
    pub outlet: Option<String>,
}

impl RepeatOf {
    /// The sentence the repeat ticket's details end with.
    pub fn sentence(&self) -> String {
        format!(
            "Repeat of ticket #{} (technician {}, outlet {}).",
            self.ticket,
            self.technician.as_deref().unwrap_or("not named"),
            self.outlet.as_deref().unwrap_or("not named"),
        )
    }
}

/// A delivered repair with no verdict yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub id: TicketId,
    pub fleet: FleetId,
    pub vehicle: VehicleId,
    pub spn: Spn,
    pub fmi: Fmi,
    pub delivered_at: DateTime<Utc>,
}

/// What the store says about one watched code since delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Observed {
    /// The first start of the code after delivery, if any.
    pub back_at: Option<DateTime<Utc>>,
    /// Engine hours run from delivery to `back_at` (or to the latest
    /// reading when the code did not come back); `None` without readings
    /// on both sides.
    pub engine_hours_run: Option<f64>,
}

/// How a repair is verified (`[detect]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerifyRules {
    pub after_engine_hours: f64,
    pub repeat_window: TimeDelta,
}

/// A verdict and when it was reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub status: VerificationStatus,
    pub at: DateTime<Utc>,
}

/// The verdict on a repair delivered at `delivered_at`, given what the
/// store saw; `None` while it is still watched. `now` dates a `verified`
/// verdict (the job notices it then).
pub fn decide(
    delivered_at: DateTime<Utc>,
    seen: Observed,
    rules: VerifyRules,
    now: DateTime<Utc>,
) -> Option<Verdict> {
    let ran_enough = seen
        .engine_hours_run
        .is_some_and(|h| h >= rules.after_engine_hours);
    match seen.back_at {
        Some(back) if back > delivered_at && back <= delivered_at + rules.repeat_window => {
            Some(Verdict {
                status: VerificationStatus::Repeated,
                at: back,
            })
        }
        Some(back) if back > delivered_at => Some(if ran_enough {
            // Verified before it came back (the hours ran before the start).
            Verdict {
                status: VerificationStatus::Verified,
                at: back,
            }
        } else {
            Verdict {
                status: VerificationStatus::Returned,
                at: back,
            }
        }),
        _ if ran_enough => Some(Verdict {
            status: VerificationStatus::Verified,
            at: now,
        }),
        _ => None,
    }
}

fn watched_kinds_sql() -> String {
    WATCHED_KINDS
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_code(key: &str) -> Option<(Spn, Fmi)> {
    let (spn, fmi) = key.split_once(':')?;
    Some((Spn::new(spn.parse().ok()?)?, Fmi::new(fmi.parse().ok()?)?))
}

impl Tickets {
    /// The delivered repairs still watched (no verdict) delivered at or
    /// after `since`, oldest delivery first. Tickets whose key is not a
    /// code are skipped.
    pub async fn watched(&self, since: DateTime<Utc>) -> Result<Vec<Watched>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT ticket_id, fleet_id, vehicle_id, ticket_key, delivered_at FROM tickets \
             WHERE kind IN ({}) AND delivered_at IS NOT NULL AND verification IS NULL \
             AND state <> 'cancelled' AND fleet_id IS NOT NULL AND vehicle_id IS NOT NULL \
             AND delivered_at >= $1 ORDER BY delivered_at, ticket_id",
            watched_kinds_sql()
        )))
        .bind(time_text(since))
        .fetch_all(self.db.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let key: String = row.try_get("ticket_key")?;
            let fleet: String = row.try_get("fleet_id")?;
            let vehicle: String = row.try_get("vehicle_id")?;
            let delivered: String = row.try_get("delivered_at")?;
            let (Some((spn, fmi)), Ok(fleet), Ok(vehicle)) = (
                parse_code(&key),
                FleetId::new(&fleet),
                VehicleId::new(&vehicle),
            ) else {
                continue;
            };
            out.push(Watched {
                id: TicketId(row.try_get("ticket_id")?),
                fleet,
                vehicle,
                spn,
                fmi,
                delivered_at: store::parse_time("tickets", "delivered_at", &delivered)?,
            });
        }
        Ok(out)
    }

    /// Records `verdict` on ticket `id` (and an event `verification` in
    /// its history) unless it has one; a `repeated` verdict also replaces
    /// `verified`. False when nothing changed.
    pub async fn record_verdict(&self, id: TicketId, verdict: Verdict) -> Result<bool> {
        record_verdict(&self.db, id, verdict, None).await
    }

    /// Links repeat-repair ticket `repeat` to the repair it brings back:
    /// the latest watched ticket of the same vehicle and key delivered
    /// before `back_at` and at most `window` before it. The earlier ticket
    /// gets the verdict `repeated`; the repeat ticket names its technician
    /// and outlet (field `repeat_of` and a sentence in its details). `None`
    /// when no such ticket exists or `repeat` is linked already.
    pub async fn link_repeat(
        &self,
        repeat: TicketId,
        back_at: DateTime<Utc>,
        window: TimeDelta,
    ) -> Result<Option<RepeatOf>> {
        let Some(ticket) = store::load(self.db.pool(), repeat).await? else {
            return Ok(None);
        };
        if ticket.repeat_of.is_some() {
            return Ok(None);
        }
        let Some(vehicle) = &ticket.vehicle else {
            return Ok(None);
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT ticket_id, assignee, outlet FROM tickets \
             WHERE vehicle_id = $1 AND ticket_key = $2 AND kind IN ({}) \
             AND delivered_at IS NOT NULL AND delivered_at < $3 AND delivered_at >= $4 \
             AND ticket_id <> $5 AND state <> 'cancelled' \
             ORDER BY delivered_at DESC, ticket_id DESC LIMIT 1",
            watched_kinds_sql()
        )))
        .bind(vehicle.as_str())
        .bind(&ticket.key)
        .bind(time_text(back_at))
        .bind(time_text(back_at - window))
        .bind(repeat.0)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let link = RepeatOf {
            ticket: TicketId(row.try_get("ticket_id")?),
            technician: row.try_get("assignee")?,
            outlet: row.try_get("outlet")?,
        };
        let verdict = Verdict {
            status: VerificationStatus::Repeated,
            at: back_at,
        };
        record_verdict(&self.db, link.ticket, verdict, Some((repeat, &link))).await?;
        tracing::info!(ticket = %repeat, repeat_of = %link.ticket, "repeat repair linked");
        Ok(Some(link))
    }
}

/// Writes a verdict, and with `repeat` the link on the repeat ticket, in
/// one transaction.
async fn record_verdict(
    db: &Db,
    id: TicketId,
    verdict: Verdict,
    repeat: Option<(TicketId, &RepeatOf)>,
) -> Result<bool> {
    let mut tx = db.pool().begin().await?;
    let replaceable = if verdict.status == VerificationStatus::Repeated {
        "(verification IS NULL OR verification = 'verified')"
    } else {
        "verification IS NULL"
    };
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE tickets SET verification = $1, verified_at = $2 \
         WHERE ticket_id = $3 AND {replaceable}"
    )))
    .bind(verdict.status.as_str())
    .bind(time_text(verdict.at))
    .bind(id.0)
    .execute(&mut *tx)
    .await?;
    let changed = done.rows_affected() == 1;
    if changed {
        let note = match repeat {
            Some((r, _)) => format!("repeated: the code came back; repeat repair ticket #{r}"),
            None => format!("{}", verdict.status),
        };
        store::add_event(
            &mut tx,
            id,
            verdict.at,
            "fleetcare",
            "verification",
            None,
            None,
            Some(&note),
        )
        .await?;
    }
    if let Some((r, link)) = repeat {
        let linked = sqlx::query(
            "UPDATE tickets SET repeat_of = $1, repeat_technician = $2, repeat_outlet = $3, \
             details = details || ' ' || $4 WHERE ticket_id = $5 AND repeat_of IS NULL",
        )
        .bind(link.ticket.0)
        .bind(link.technician.as_deref())
        .bind(link.outlet.as_deref())
        .bind(link.sentence())
        .bind(r.0)
        .execute(&mut *tx)
        .await?;
        if linked.rows_affected() == 1 {
            store::add_event(
                &mut tx,
                r,
                verdict.at,
                "fleetcare",
                "note",
                None,
                None,
                Some(&link.sentence()),
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rules() -> VerifyRules {
        VerifyRules {
            after_engine_hours: 72.0,
            repeat_window: TimeDelta::days(30),
        }
    }

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap()
    }

    #[test]
    fn a_code_away_for_72_engine_hours_is_verified() {
        let seen = |h| Observed {
            back_at: None,
            engine_hours_run: Some(h),
        };
        assert_eq!(decide(t(1), seen(71.9), rules(), t(20)), None);
        assert_eq!(
            decide(t(1), seen(72.0), rules(), t(20)),
            Some(Verdict {
                status: VerificationStatus::Verified,
                at: t(20)
            })
        );
        // No meters: never verified by guess.
        let none = Observed::default();
        assert_eq!(decide(t(1), none, rules(), t(28)), None);
    }

    #[test]
    fn a_code_back_within_the_window_is_a_repeat_whatever_the_hours() {
        for hours in [None, Some(10.0), Some(500.0)] {
            let seen = Observed {
                back_at: Some(t(25)),
                engine_hours_run: hours,
            };
            assert_eq!(
                decide(t(1), seen, rules(), t(26)).map(|v| (v.status, v.at)),
                Some((VerificationStatus::Repeated, t(25)))
            );
        }
    }

    #[test]
    fn a_code_back_after_the_window_is_returned_or_verified_by_the_hours() {
        let later = t(1) + TimeDelta::days(31);
        let seen = |h| Observed {
            back_at: Some(later),
            engine_hours_run: Some(h),
        };
        assert_eq!(
            decide(t(1), seen(40.0), rules(), later).map(|v| v.status),
            Some(VerificationStatus::Returned)
        );
        assert_eq!(
            decide(t(1), seen(80.0), rules(), later).map(|v| v.status),
            Some(VerificationStatus::Verified)
        );
        // Exactly 30 days is still inside the window.
        let edge = Observed {
            back_at: Some(t(1) + TimeDelta::days(30)),
            engine_hours_run: Some(1.0),
        };
        assert_eq!(
            decide(t(1), edge, rules(), later).map(|v| v.status),
            Some(VerificationStatus::Repeated)
        );
    }

    #[test]
    fn statuses_read_back_from_columns() {
        let watching = Verification::from_columns(TicketKind::Fault, true, None, None).unwrap();
        assert_eq!(
            watching.map(|v| v.status),
            Some(VerificationStatus::Watching)
        );
        assert_eq!(
            Verification::from_columns(TicketKind::Maintenance, true, None, None).unwrap(),
            None
        );
        assert_eq!(
            Verification::from_columns(TicketKind::Fault, false, None, None).unwrap(),
            None
        );
        let v = Verification::from_columns(TicketKind::Fault, true, Some("verified"), Some(t(3)))
            .unwrap();
        assert_eq!(
            v,
            Some(Verification {
                status: VerificationStatus::Verified,
                at: Some(t(3))
            })
        );
        assert!(Verification::from_columns(TicketKind::Fault, true, Some("x"), None).is_err());
        assert_eq!(parse_code("524:3"), Spn::new(524).zip(Fmi::new(3)));
        assert_eq!(parse_code("OIL-500H"), None);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// A verdict never precedes delivery, and `repeated` only
            /// ever comes from a start inside the window.
            #[test]
            fn verdicts_follow_delivery(back_min in proptest::option::of(-10_000i64..100_000),
                                        hours in proptest::option::of(0.0f64..500.0)) {
                let delivered = t(1);
                let seen = Observed {
                    back_at: back_min.map(|m| delivered + TimeDelta::minutes(m)),
                    engine_hours_run: hours,
                };
                let now = delivered + TimeDelta::days(90);
                if let Some(v) = decide(delivered, seen, rules(), now) {
                    prop_assert!(v.at > delivered);
                    if v.status == VerificationStatus::Repeated {
                        let back = seen.back_at.unwrap();
                        prop_assert!(back <= delivered + TimeDelta::days(30));
                    }
                    if v.status == VerificationStatus::Verified {
                        prop_assert!(hours.unwrap() >= 72.0);
                    }
                }
            }
        }
    }
}
