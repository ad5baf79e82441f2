//! The warranty of a ticket (C10): decided when it opens, from the
//! catalogue's terms for the vehicle's model, the commissioning date in
//! the registry and the vehicle's last meters; applied to each part used
//! when it closes.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};

use super::MeterSource;
use super::types::{Outcome, PartUsed, TicketKind};
use crate::catalog::{Catalog, Cover, WarrantyFacts, WarrantyStatus};
use crate::db::Db;

/// What deciding a ticket's warranty reads.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lookup<'a> {
    pub(super) db: &'a Db,
    pub(super) catalog: Option<&'a Arc<Catalog>>,
    pub(super) meters: Option<&'a Arc<dyn MeterSource>>,
}

impl Lookup<'_> {
    /// The cover of a ticket opened at `at` for `vehicle`: unknown without
    /// a vehicle, a registry entry or terms for its model. Meters that
    /// cannot be read leave the meter limits unknown (never an error: a
    /// ticket opens whatever the warranty).
    pub(super) async fn cover(
        &self,
        fleet: Option<&FleetId>,
        vehicle: Option<&VehicleId>,
        at: DateTime<Utc>,
    ) -> Cover {
        let (Some(catalog), Some(fleet), Some(vehicle)) = (self.catalog, fleet, vehicle) else {
            return Cover::unknown();
        };
        let registered = match crate::registry::vehicle(self.db, vehicle).await {
            Ok(Some(v)) if &v.fleet == fleet => v,
            Ok(_) => return Cover::unknown(),
            Err(e) => {
                tracing::warn!(error = %e, vehicle = %vehicle, "cannot read the registry; the ticket's warranty is unknown");
                return Cover::unknown();
            }
        };
        let Some(terms) = catalog
            .model(&registered.model)
            .and_then(|m| m.warranty.as_ref())
        else {
            return Cover::unknown();
        };
        let readings = match self.meters {
            Some(source) => {
                let (source, fleet, vehicle) = (source.clone(), fleet.clone(), vehicle.clone());
                tokio::task::spawn_blocking(move || source.readings(&fleet, &vehicle))
                    .await
                    .unwrap_or_default()
            }
            None => super::MeterReadings::default(),
        };
        terms.cover(&WarrantyFacts {
            commissioned_on: Some(registered.commissioned_on),
            on: at.date_naive(),
            engine_hours: readings.engine_hours,
            km: readings.odometer_km,
        })
    }
}

/// What closing a ticket claims: each part covered or not, and whether
/// the labour is.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Claim {
    pub(super) parts: Vec<PartUsed>,
    pub(super) labour: bool,
}

/// Decides the claim of a closing ticket (docs/decisions.md, "Warranty
/// claims"):
///
/// - nothing is claimed for maintenance (a service the customer pays), an
///   outcome of no fault found or misuse, or when support said no
///   (`warranty: false` at closing);
/// - a recall is the maker's: every part and the labour;
/// - otherwise a part is covered when its status (its component's, or the
///   vehicle's) was `in` at intake, or `unknown` and support said yes
///   (`warranty: true`, papers checked by hand); a wear part never is; the
///   labour follows the vehicle's status the same way.
pub(super) fn claim(
    kind: TicketKind,
    outcome: Option<Outcome>,
    said: Option<bool>,
    cover: &Cover,
    parts: &[PartUsed],
    labour_hours: Option<f64>,
) -> Claim {
    let claimable = kind != TicketKind::Maintenance
        && !matches!(outcome, Some(Outcome::NoFaultFound | Outcome::Misuse))
        && said != Some(false);
    let accepts = |status: WarrantyStatus| match status {
        WarrantyStatus::In => true,
        WarrantyStatus::Unknown => said == Some(true),
        WarrantyStatus::Out => false,
    };
    let recall = kind == TicketKind::Recall;
    let parts = parts
        .iter()
        .map(|p| {
            let wear = cover.excluded.iter().any(|x| x == &p.part);
            PartUsed {
                covered: Some(claimable && !wear && (recall || accepts(cover.status_of(&p.part)))),
                ..p.clone()
            }
        })
        .collect();
    let labour = claimable
        && labour_hours.is_some_and(|h| h > 0.0)
        && (recall || accepts(cover.decision.status));
    Claim { parts, labour }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{ComponentCover, WarrantyDecision};

    fn part(id: &str) -> PartUsed {
        PartUsed {
            part: id.to_owned(),
            qty: 1,
            covered: None,
        }
    }

    fn cover(status: WarrantyStatus) -> Cover {
        Cover {
            decision: WarrantyDecision {
                status,
                until: None,
                basis: None,
            },
            excluded: vec!["BRUSH-MAIN-01".into()],
            components: vec![ComponentCover {
                parts: vec!["BAT-12V-180".into()],
                decision: WarrantyDecision {
                    status: WarrantyStatus::Out,
                    until: None,
                    basis: None,
                },
            }],
        }
    }

    fn covered(c: &Claim) -> Vec<bool> {
        c.parts.iter().map(|p| p.covered.unwrap()).collect()
    }

    /// Issue 21 acceptance: an excluded wear part on an in-warranty ticket
    /// is not claimed; the other part and the labour are.
    #[test]
    fn wear_parts_are_not_claimed_on_an_in_warranty_ticket() {
        let parts = [
            part("BRUSH-MAIN-01"),
            part("SENS-SPEED-01"),
            part("BAT-12V-180"),
        ];
        let c = claim(
            TicketKind::Fault,
            Some(Outcome::PartReplaced),
            None,
            &cover(WarrantyStatus::In),
            &parts,
            Some(2.0),
        );
        assert_eq!(covered(&c), [false, true, false]);
        assert!(c.labour);
    }

    #[test]
    fn what_is_never_claimed() {
        let parts = [part("SENS-SPEED-01")];
        let in_ = cover(WarrantyStatus::In);
        for (kind, outcome, said) in [
            (TicketKind::Maintenance, None, None),
            (TicketKind::Fault, Some(Outcome::NoFaultFound), None),
            (TicketKind::Fault, Some(Outcome::Misuse), None),
            (TicketKind::Fault, None, Some(false)),
        ] {
            let c = claim(kind, outcome, said, &in_, &parts, Some(1.0));
            assert_eq!(
                (covered(&c), c.labour),
                (vec![false], false),
                "{kind} {outcome:?} {said:?}"
            );
        }
    }

    #[test]
    fn unknown_needs_a_yes_and_recalls_are_the_makers() {
        let parts = [part("SENS-SPEED-01"), part("BRUSH-MAIN-01")];
        let unknown = cover(WarrantyStatus::Unknown);
        let c = claim(TicketKind::Fault, None, None, &unknown, &parts, Some(1.0));
        assert_eq!((covered(&c), c.labour), (vec![false, false], false));
        let c = claim(
            TicketKind::Fault,
            None,
            Some(true),
            &unknown,
            &parts,
            Some(1.0),
        );
        assert_eq!((covered(&c), c.labour), (vec![true, false], true));
        let out = cover(WarrantyStatus::Out);
        let c = claim(TicketKind::Recall, None, None, &out, &parts, Some(1.0));
        assert_eq!((covered(&c), c.labour), (vec![true, false], true));
        // No labour hours, no labour line.
        let c = claim(TicketKind::Recall, None, None, &out, &parts, None);
        assert!(!c.labour);
    }
}
