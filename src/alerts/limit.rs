//! Per-vehicle rate limit: a flapping fault must not spam an operator.
//!
//! At most `max` alerts per vehicle in a window that starts with the
//! vehicle's first alert; the rest are held and sent as one digest when the
//! window ends. Alerts about no single vehicle (a batch defect) pass.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};

use super::{Alert, AlertKind, new_id};

#[derive(Debug)]
struct Bucket {
    started: DateTime<Utc>,
    sent: usize,
    held: Vec<Alert>,
}

/// The limiter's state; time comes from the caller.
#[derive(Debug)]
pub struct RateLimit {
    max: usize,
    window: chrono::Duration,
    buckets: HashMap<(FleetId, VehicleId), Bucket>,
}

impl RateLimit {
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max: max.max(1),
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX),
            buckets: HashMap::new(),
        }
    }

    /// `Some(alert)` to send now, `None` when it is held for the digest.
    pub fn offer(&mut self, alert: Alert, now: DateTime<Utc>) -> Option<Alert> {
        let (Some(fleet), Some(vehicle)) = (alert.fleet.clone(), alert.vehicle.clone()) else {
            return Some(alert);
        };
        let window = self.window;
        let bucket = self
            .buckets
            .entry((fleet, vehicle))
            .or_insert_with(|| Bucket {
                started: now,
                sent: 0,
                held: Vec::new(),
            });
        if now - bucket.started >= window && bucket.held.is_empty() {
            // A fresh window (one with held alerts ends in `flush`).
            bucket.started = now;
            bucket.sent = 0;
        }
        if bucket.sent < self.max {
            bucket.sent += 1;
            Some(alert)
        } else {
            bucket.held.push(alert);
            None
        }
    }

    /// The digests of windows that ended by `now`.
    pub fn flush(&mut self, now: DateTime<Utc>) -> Vec<Alert> {
        let window = self.window;
        let mut digests = Vec::new();
        self.buckets.retain(|(fleet, vehicle), b| {
            if now - b.started < window {
                return true;
            }
            if !b.held.is_empty() {
                let held = std::mem::take(&mut b.held);
                let model = held.first().and_then(|a| a.model.clone());
                digests.push(Alert {
                    id: new_id(),
                    at: now,
                    kind: AlertKind::Digest,
                    fleet: Some(fleet.clone()),
                    vehicle: Some(vehicle.clone()),
                    model,
                    ticket: None,
                    priority: held.iter().filter_map(|a| a.priority).min(),
                    title: format!("{vehicle}: {} more alerts", held.len()),
                    title_en: format!("{vehicle}: {} more alerts", held.len()),
                    details: held
                        .iter()
                        .map(|a| a.title.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                    held,
                });
            }
            false
        });
        digests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(vehicle: Option<&str>, n: u32, at: DateTime<Utc>) -> Alert {
        Alert {
            id: format!("a{n}"),
            at,
            kind: AlertKind::CriticalFault,
            fleet: Some(FleetId::new("acme").unwrap()),
            vehicle: vehicle.map(|v| VehicleId::new(v).unwrap()),
            model: None,
            ticket: None,
            priority: None,
            title: format!("alert {n}"),
            title_en: format!("alert {n}"),
            details: String::new(),
            held: Vec::new(),
        }
    }

    #[test]
    fn the_excess_goes_into_one_digest_when_the_window_ends() {
        let t0 = DateTime::from_timestamp(1_772_323_200, 0).unwrap();
        let s = |n| t0 + chrono::Duration::seconds(n);
        let mut l = RateLimit::new(3, Duration::from_secs(600));
        let sent: Vec<bool> = (0..5)
            .map(|i| {
                l.offer(alert(Some("TRK-1"), i, s(i64::from(i))), s(i64::from(i)))
                    .is_some()
            })
            .collect();
        assert_eq!(sent, [true, true, true, false, false]);
        // Another vehicle and a vehicle-less alert are not limited.
        assert!(l.offer(alert(Some("TRK-2"), 9, s(5)), s(5)).is_some());
        assert!(l.offer(alert(None, 10, s(5)), s(5)).is_some());
        assert!(l.flush(s(599)).is_empty(), "the window is still open");
        let digests = l.flush(s(600));
        assert_eq!(digests.len(), 1);
        let d = &digests[0];
        assert_eq!(d.kind, AlertKind::Digest);
        assert_eq!(d.title, "TRK-1: 2 more alerts");
        assert_eq!(d.details, "alert 3; alert 4");
        assert_eq!(d.held.len(), 2);
        // A new window: sending again.
        assert!(l.offer(alert(Some("TRK-1"), 11, s(601)), s(601)).is_some());
        assert!(l.flush(s(700)).is_empty());
    }
}
