//! `report kpis` (C10): how the service organisation performs, over the
//! tickets closed in a period, for all of them or per outlet, technician
//! or model. Every measure comes from the tickets and their history (the
//! definitions: docs/decisions.md, "KPIs"):
//!
//! - `first_time_fix_share`: of the closed repairs (every kind but
//!   maintenance), the share with no later ticket for the same vehicle and
//!   code (a recurring failure, repeat repair, fault or recall; for a
//!   complaint or manual report, another one for the vehicle) opened
//!   within 30 days after its delivery; where repair verification (C10,
//!   `tickets::verification`) has a verdict, the verdict decides:
//!   `verified` (the code stayed away for the engine hours asked) counts
//!   as fixed, `repeated` (the code came back within 30 days, whether or
//!   not a new ticket was opened for it) as not fixed;
//! - hours to respond (opened → first move out of `open`), to reach on
//!   site (opened → first move to `diagnosing`, or a note saying
//!   `on_site: true`), to deliver (opened → first move to `delivered`):
//!   median and 90th percentile, interpolated between ranks;
//! - `downtime_h`: the hours from opening to delivery of the P1 and P2
//!   tickets, summed;
//! - `sla_met_share`: answered by `respond_by` and delivered by
//!   `resolve_by`;
//! - `satisfaction_mean`, `no_fault_found_share`;
//! - `follow_up_on_time_share`: closed (the follow-up call, with its
//!   score) within 3 days of delivery.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use fleetcare_ingest::ids::VehicleId;
use serde::Serialize;

use super::claims::Period;
use super::output::Row;
use crate::tickets::{
    Outcome, Priority, Ticket, TicketError, TicketEvent, TicketFilter, TicketId, TicketKind,
    TicketState, Tickets, VerificationStatus,
};

/// A repair that comes back within this long after delivery was not
/// fixed the first time (C5's repeat-repair window).
pub const REPEAT_WINDOW: TimeDelta = TimeDelta::days(30);
/// The follow-up call is due within this long after delivery (C10).
pub const FOLLOW_UP_WITHIN: TimeDelta = TimeDelta::days(3);

/// How the rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KpiBy {
    /// One row for every ticket.
    #[default]
    All,
    Outlet,
    Technician,
    Model,
}

impl KpiBy {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Outlet => "outlet",
            Self::Technician => "technician",
            Self::Model => "model",
        }
    }
}

/// What the measures read of one ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiTicket {
    pub id: TicketId,
    pub vehicle: Option<VehicleId>,
    pub model: Option<String>,
    pub kind: TicketKind,
    pub key: String,
    pub priority: Priority,
    pub state: TicketState,
    pub outlet: Option<String>,
    pub technician: Option<String>,
    pub created_at: DateTime<Utc>,
    pub respond_by: DateTime<Utc>,
    pub resolve_by: DateTime<Utc>,
    pub responded_at: Option<DateTime<Utc>>,
    pub on_site_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub outcome: Option<Outcome>,
    pub satisfaction: Option<u8>,
    /// The verdict of repair verification, if any.
    pub verification: Option<VerificationStatus>,
}

impl KpiTicket {
    /// The ticket with the times its history gives.
    pub fn new(t: &Ticket, events: &[TicketEvent]) -> Self {
        let first = |f: &dyn Fn(&TicketEvent) -> bool| events.iter().find(|e| f(e)).map(|e| e.at);
        let moved = |e: &TicketEvent| e.kind == "moved";
        Self {
            id: t.id,
            vehicle: t.vehicle.clone(),
            model: t.model.as_ref().map(|m| m.as_str().to_owned()),
            kind: t.kind,
            key: t.key.clone(),
            priority: t.priority,
            state: t.state,
            outlet: t.outlet.clone(),
            technician: t.assignee.clone(),
            created_at: t.created_at,
            respond_by: t.sla.respond_by,
            resolve_by: t.sla.resolve_by,
            responded_at: first(&|e| moved(e) && e.from == Some(TicketState::Open)),
            on_site_at: first(&|e| {
                (moved(e) && e.to == Some(TicketState::Diagnosing))
                    || e.note
                        .as_deref()
                        .is_some_and(|n| n.contains("on_site: true"))
            }),
            delivered_at: first(&|e| moved(e) && e.to == Some(TicketState::Delivered)),
            closed_at: if t.state == TicketState::Closed {
                t.closed_at
            } else {
                None
            },
            outcome: t.outcome,
            satisfaction: t.satisfaction,
            verification: t.verification.map(|v| v.status),
        }
    }

    fn group(&self, by: KpiBy) -> String {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        match by {
            KpiBy::All => "all".to_owned(),
            KpiBy::Outlet => or_dash(&self.outlet),
            KpiBy::Technician => or_dash(&self.technician),
            KpiBy::Model => or_dash(&self.model),
        }
    }

    /// Whether `later` brings this repair back: the same vehicle, the
    /// same code (or both customer reports), opened within the window
    /// after delivery.
    fn repeated_by(&self, later: &Self) -> bool {
        let Some(done) = self.delivered_at.or(self.closed_at) else {
            return false;
        };
        let customer = |k: TicketKind| matches!(k, TicketKind::Complaint | TicketKind::Manual);
        let same_problem = if customer(self.kind) {
            customer(later.kind)
        } else {
            later.kind != TicketKind::Maintenance && !customer(later.kind) && later.key == self.key
        };
        later.id != self.id
            && later.vehicle.is_some()
            && later.vehicle == self.vehicle
            && same_problem
            && later.created_at > done
            && later.created_at <= done + REPEAT_WINDOW
    }
}

/// One row of `report kpis` (C10 measures). Shares are 0 to 1; a measure
/// with nothing to measure is null.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiRow {
    /// `all`, `outlet`, `technician` or `model`.
    pub by: &'static str,
    /// The outlet, technician or model (`-` when the tickets name none);
    /// `all` for the row over every ticket.
    pub group: String,
    pub tickets_closed: u64,
    pub first_time_fix_share: Option<f64>,
    pub respond_h_median: Option<f64>,
    pub respond_h_p90: Option<f64>,
    pub on_site_h_median: Option<f64>,
    pub on_site_h_p90: Option<f64>,
    pub deliver_h_median: Option<f64>,
    pub deliver_h_p90: Option<f64>,
    pub downtime_h: f64,
    pub sla_met_share: Option<f64>,
    pub satisfaction_mean: Option<f64>,
    pub no_fault_found_share: Option<f64>,
    pub follow_up_on_time_share: Option<f64>,
}

impl Row for KpiRow {
    const FIELDS: &'static [&'static str] = &[
        "by",
        "group",
        "tickets_closed",
        "first_time_fix_share",
        "respond_h_median",
        "respond_h_p90",
        "on_site_h_median",
        "on_site_h_p90",
        "deliver_h_median",
        "deliver_h_p90",
        "downtime_h",
        "sla_met_share",
        "satisfaction_mean",
        "no_fault_found_share",
        "follow_up_on_time_share",
    ];
}

/// The `p` quantile (0 to 1) of `values`, interpolated between the two
/// nearest ranks (the median of an even count is the mean of the middle
/// two); `None` for no values.
pub fn quantile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = p.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    let (a, b) = (*values.get(low)?, *values.get(high)?);
    Some(a + (b - a) * (rank - low as f64))
}

fn hours(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 3_600_000.0
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

fn share(hits: usize, of: usize) -> Option<f64> {
    (of > 0).then(|| round(hits as f64 / of as f64, 4))
}

/// The KPI rows of the tickets closed in `period`; `all` holds every
/// ticket (the later ones decide first-time fixes). One row per group, in
/// group order; with [`KpiBy::All`] one row, also when nothing was closed.
pub fn kpis(all: &[KpiTicket], period: Period, by: KpiBy) -> Vec<KpiRow> {
    let closed: Vec<&KpiTicket> = all
        .iter()
        .filter(|t| {
            t.state == TicketState::Closed && t.closed_at.is_some_and(|c| period.contains(c))
        })
        .collect();
    let mut groups: BTreeMap<String, Vec<&KpiTicket>> = BTreeMap::new();
    if by == KpiBy::All {
        groups.insert("all".to_owned(), Vec::new());
    }
    for t in closed {
        groups.entry(t.group(by)).or_default().push(t);
    }
    // Later tickets per vehicle, for first-time fixes.
    let mut per_vehicle: HashMap<&VehicleId, Vec<&KpiTicket>> = HashMap::new();
    for t in all {
        if let Some(v) = &t.vehicle {
            per_vehicle.entry(v).or_default().push(t);
        }
    }
    groups
        .into_iter()
        .map(|(group, tickets)| row(by, group, &tickets, &per_vehicle))
        .collect()
}

fn row(
    by: KpiBy,
    group: String,
    tickets: &[&KpiTicket],
    per_vehicle: &HashMap<&VehicleId, Vec<&KpiTicket>>,
) -> KpiRow {
    let n = tickets.len();
    let repairs: Vec<&&KpiTicket> = tickets
        .iter()
        .filter(|t| t.kind != TicketKind::Maintenance && t.vehicle.is_some())
        .collect();
    let fixed = repairs
        .iter()
        .filter(|t| match t.verification {
            Some(VerificationStatus::Verified) => true,
            Some(VerificationStatus::Repeated) => false,
            _ => {
                let later = t.vehicle.as_ref().and_then(|v| per_vehicle.get(v));
                !later.is_some_and(|l| l.iter().any(|o| t.repeated_by(o)))
            }
        })
        .count();
    let span = |to: fn(&KpiTicket) -> Option<DateTime<Utc>>| -> Vec<f64> {
        tickets
            .iter()
            .filter_map(|t| to(t).map(|at| hours(t.created_at, at)))
            .collect()
    };
    let stats = |mut v: Vec<f64>| {
        (
            quantile(&mut v, 0.5).map(|x| round(x, 2)),
            quantile(&mut v, 0.9).map(|x| round(x, 2)),
        )
    };
    let (respond_h_median, respond_h_p90) = stats(span(|t| t.responded_at));
    let (on_site_h_median, on_site_h_p90) = stats(span(|t| t.on_site_at));
    let (deliver_h_median, deliver_h_p90) = stats(span(|t| t.delivered_at));
    let downtime: f64 = tickets
        .iter()
        .filter(|t| matches!(t.priority, Priority::P1 | Priority::P2))
        .filter_map(|t| t.delivered_at.map(|d| hours(t.created_at, d)))
        .sum();
    let met = tickets
        .iter()
        .filter(|t| {
            t.responded_at.is_some_and(|r| r <= t.respond_by)
                && t.delivered_at.is_some_and(|d| d <= t.resolve_by)
        })
        .count();
    let scores: Vec<f64> = tickets
        .iter()
        .filter_map(|t| t.satisfaction.map(f64::from))
        .collect();
    let nff = tickets
        .iter()
        .filter(|t| t.outcome == Some(Outcome::NoFaultFound))
        .count();
    let delivered: Vec<&&KpiTicket> = tickets
        .iter()
        .filter(|t| t.delivered_at.is_some())
        .collect();
    let on_time = delivered
        .iter()
        .filter(|t| match (t.delivered_at, t.closed_at) {
            (Some(d), Some(c)) => c - d <= FOLLOW_UP_WITHIN,
            _ => false,
        })
        .count();
    KpiRow {
        by: by.as_str(),
        group,
        tickets_closed: n as u64,
        first_time_fix_share: share(fixed, repairs.len()),
        respond_h_median,
        respond_h_p90,
        on_site_h_median,
        on_site_h_p90,
        deliver_h_median,
        deliver_h_p90,
        downtime_h: round(downtime, 2),
        sla_met_share: share(met, n),
        satisfaction_mean: (!scores.is_empty())
            .then(|| round(scores.iter().sum::<f64>() / scores.len() as f64, 2)),
        no_fault_found_share: share(nff, n),
        follow_up_on_time_share: share(on_time, delivered.len()),
    }
}

/// The KPI rows over the tickets of `fleets_visible` (`None`: every
/// fleet), read from the database.
pub async fn load_kpis(
    tickets: &Tickets,
    period: Period,
    by: KpiBy,
    fleets_visible: Option<Vec<fleetcare_ingest::ids::FleetId>>,
) -> Result<Vec<KpiRow>, TicketError> {
    let filter = TicketFilter {
        fleets_visible,
        ..TicketFilter::default()
    };
    let all = tickets.list(&filter).await?;
    let mut events = tickets.events_of_closed().await?;
    let inputs: Vec<KpiTicket> = all
        .iter()
        .map(|t| KpiTicket::new(t, events.remove(&t.id).as_deref().unwrap_or_default()))
        .collect();
    Ok(kpis(&inputs, period, by))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&mut v, 0.5), Some(2.5));
        assert!((quantile(&mut v, 0.9).unwrap() - 3.7).abs() < 1e-9);
        assert_eq!(quantile(&mut [7.0], 0.9), Some(7.0));
        assert_eq!(quantile(&mut [], 0.5), None);
    }

    /// The hand-computed fixture of issue 21 (tests/data/kpi_fixture.csv,
    /// shared with the API and browser tests): hours after this time.
    pub(crate) const BASE: &str = "2026-03-02T00:00:00Z";

    fn fixture() -> Vec<KpiTicket> {
        let base = DateTime::parse_from_rfc3339(BASE)
            .unwrap()
            .with_timezone(&Utc);
        let at = |h: &str| -> Option<DateTime<Utc>> {
            let h: f64 = h.parse().ok()?;
            Some(base + TimeDelta::milliseconds((h * 3_600_000.0) as i64))
        };
        let sla = crate::tickets::SlaConfig::default();
        include_str!("../../tests/data/kpi_fixture.csv")
            .lines()
            .skip(1)
            .enumerate()
            .map(|(i, line)| {
                let f: Vec<&str> = line.split(',').collect();
                let priority: Priority = f[4].parse().unwrap();
                let created = at(f[7]).unwrap();
                let (respond_by, resolve_by) = sla.deadlines(priority, created);
                let cancelled = f[12] == "cancelled";
                KpiTicket {
                    id: TicketId(i as i64 + 1),
                    vehicle: Some(VehicleId::new(f[0]).unwrap()),
                    model: Some(f[1].to_owned()),
                    kind: f[2].parse().unwrap(),
                    key: f[3].to_owned(),
                    priority,
                    state: if cancelled {
                        TicketState::Cancelled
                    } else {
                        TicketState::Closed
                    },
                    outlet: Some(f[5].to_owned()),
                    technician: Some(f[6].to_owned()),
                    created_at: created,
                    respond_by,
                    resolve_by,
                    responded_at: at(f[8]),
                    on_site_at: at(f[9]),
                    delivered_at: at(f[10]),
                    closed_at: if cancelled { None } else { at(f[11]) },
                    outcome: if cancelled {
                        None
                    } else {
                        Some(f[12].parse().unwrap())
                    },
                    satisfaction: f[13].parse().ok(),
                    verification: None,
                }
            })
            .collect()
    }

    /// A verdict of repair verification decides first-time fix where
    /// there is one: the fixture's 15 of 19 become 19 of 19 when every
    /// repair was verified, none when every code came back.
    #[test]
    fn verification_verdicts_decide_first_time_fix() {
        let share = |status| {
            let all: Vec<KpiTicket> = fixture()
                .into_iter()
                .map(|t| KpiTicket {
                    verification: Some(status),
                    ..t
                })
                .collect();
            kpis(&all, march(), KpiBy::All)[0].first_time_fix_share
        };
        assert_eq!(share(VerificationStatus::Verified), Some(1.0));
        assert_eq!(share(VerificationStatus::Repeated), Some(0.0));
        // Watching or returned: the later-ticket rule, as without verdicts.
        assert_eq!(share(VerificationStatus::Watching), Some(0.7895));
        assert_eq!(share(VerificationStatus::Returned), Some(0.7895));
    }

    pub(crate) fn march() -> Period {
        Period {
            from: Some("2026-03-01".parse().unwrap()),
            to: Some("2026-03-31".parse().unwrap()),
        }
    }

    /// Issue 21 acceptance: the figures of the fixture, computed by hand
    /// (docs/decisions.md, "KPIs", shows the working).
    #[test]
    fn the_fixture_gives_the_hand_computed_figures() {
        let all = fixture();
        assert_eq!(all.len(), 23);
        let rows = kpis(&all, march(), KpiBy::All);
        assert_eq!(
            rows,
            [KpiRow {
                by: "all",
                group: "all".into(),
                tickets_closed: 21,
                first_time_fix_share: Some(0.7895),
                respond_h_median: Some(2.0),
                respond_h_p90: Some(10.0),
                on_site_h_median: Some(6.0),
                on_site_h_p90: Some(30.0),
                deliver_h_median: Some(30.0),
                deliver_h_p90: Some(50.0),
                downtime_h: 370.0,
                sla_met_share: Some(0.9048),
                satisfaction_mean: Some(3.86),
                no_fault_found_share: Some(0.0952),
                follow_up_on_time_share: Some(0.9048),
            }]
        );
        let by_outlet = kpis(&all, march(), KpiBy::Outlet);
        let pick = |g: &str| by_outlet.iter().find(|r| r.group == g).unwrap().clone();
        let (n, s) = (pick("OUT-N"), pick("OUT-S"));
        assert_eq!((n.tickets_closed, s.tickets_closed), (10, 11));
        assert_eq!(
            (n.satisfaction_mean, s.satisfaction_mean),
            (Some(4.0), Some(3.73))
        );
        assert_eq!(
            (n.first_time_fix_share, s.first_time_fix_share),
            (Some(0.7778), Some(0.8))
        );
        // Nothing closed: one row of nothing.
        let empty = kpis(
            &all,
            Period {
                from: Some("2027-01-01".parse().unwrap()),
                to: None,
            },
            KpiBy::All,
        );
        assert_eq!(empty.len(), 1);
        assert_eq!(
            (empty[0].tickets_closed, empty[0].satisfaction_mean),
            (0, None)
        );
    }
}
