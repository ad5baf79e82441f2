//! The simulated fleet: which trucks exist, whose they are, where they are
//! based, what model each is, how old and how worn, and what gateway each
//! carries.
//!
//! Three sanitation companies with different working weeks share the
//! trucks 5:3:2 (fewer companies below three trucks); one truck in a fleet
//! of ten or more is left out of the registry, as a truck whose gateway was
//! fitted before anyone imported it.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use rand::RngExt;

use super::SimulateError;
use super::duty::{Calendar, Meters, Slot, expected_engine_hours_per_day};
use super::rng::Purpose;
use crate::catalog::{ModelId, TruckKind, TruckModel};

/// A fleet's working week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Week {
    /// Street cleaning every day of the year; each truck rests one weekday.
    Rota,
    /// Monday to Friday, and a reduced Saturday.
    MonToSat,
    /// Monday to Friday; now and then a Saturday morning.
    MonToFri,
}

struct FleetSpec {
    id: &'static str,
    /// Of the vehicle ids.
    prefix: &'static str,
    depots: &'static [&'static str],
    week: Week,
    share: u32,
}

const FLEETS: [FleetSpec; 3] = [
    FleetSpec {
        id: "szhw",
        prefix: "SZHW",
        depots: &["sz-futian", "sz-nanshan", "sz-baoan", "sz-longgang"],
        week: Week::Rota,
        share: 5,
    },
    FleetSpec {
        id: "gzcc",
        prefix: "GZCC",
        depots: &["gz-tianhe", "gz-haizhu", "gz-baiyun"],
        week: Week::MonToSat,
        share: 3,
    },
    FleetSpec {
        id: "hzgreen",
        prefix: "HZG",
        depots: &["hz-xihu", "hz-binjiang"],
        week: Week::MonToFri,
        share: 2,
    },
];

/// Which PGNs carry a CAN truck's odometer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Odometer {
    /// 65248, SPN 245 (0.125 km).
    Standard,
    /// 65217, SPN 917 (5 m).
    HighResolution,
    Both,
}

/// What the truck's telematics box sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gateway {
    /// Raw `candump -L` lines on `…/can`.
    Can(Odometer),
    /// Decoded JSON on `…/telemetry`.
    Telemetry,
}

/// Changes to a truck's duty forced by a planted scenario.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Overrides {
    /// Days in the workshop: the truck does not run.
    pub(crate) off_days: Vec<u32>,
    /// The engine is stopped at this upload (a red stop lamp).
    pub(crate) cut: Option<Slot>,
}

/// One simulated truck.
#[derive(Debug, Clone)]
pub(crate) struct Truck {
    pub(crate) index: usize,
    pub(crate) id: VehicleId,
    pub(crate) fleet: FleetId,
    pub(crate) depot: &'static str,
    /// Index into the simulation's model list.
    pub(crate) model: usize,
    pub(crate) model_id: ModelId,
    pub(crate) kind: TruckKind,
    pub(crate) vin: String,
    pub(crate) commissioned: NaiveDate,
    /// In `vehicles.csv`.
    pub(crate) registered: bool,
    pub(crate) gateway: Gateway,
    pub(crate) week: Week,
    /// The weekday off in a [`Week::Rota`] fleet.
    pub(crate) rest_day: Weekday,
    /// Typical share of engine time with the PTO engaged.
    pub(crate) pto_share: f64,
    /// Typical km per engine hour.
    pub(crate) km_per_h: f64,
    /// Usage per calendar day before the simulation.
    pub(crate) rate_before: Meters,
    /// The meters at the start of the first simulated day.
    pub(crate) start_meters: Meters,
    pub(crate) overrides: Overrides,
}

impl Truck {
    /// The meters on `date` before the simulation: linear from zero at
    /// commissioning.
    pub(crate) fn meters_before(&self, date: NaiveDate, start: NaiveDate) -> Meters {
        let age = (start - self.commissioned).num_days().max(1) as f64;
        let used = (date - self.commissioned).num_days().clamp(0, age as i64) as f64;
        self.start_meters.scaled(used / age)
    }
}

/// Body share of engine time and km per engine hour, by body type.
fn duty_profile(kind: TruckKind) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    match kind {
        TruckKind::Sweeper => (0.62..0.78, 7.0..11.0),
        TruckKind::Washer => (0.50..0.65, 10.0..15.0),
        TruckKind::Compactor => (0.35..0.50, 12.0..18.0),
        TruckKind::Other => (0.10..0.20, 20.0..28.0),
    }
}

/// Relative share of the fleet by body type.
const fn kind_weight(kind: TruckKind) -> u32 {
    match kind {
        TruckKind::Sweeper | TruckKind::Compactor => 3,
        TruckKind::Washer => 2,
        TruckKind::Other => 1,
    }
}

/// Trucks per fleet: the fleets' shares, rounded by largest remainder.
fn fleet_sizes(trucks: u32) -> Vec<u32> {
    let specs = FLEETS.get(..trucks.min(3) as usize).unwrap_or(&FLEETS);
    let total: u32 = specs.iter().map(|f| f.share).sum();
    let mut sizes: Vec<u32> = specs.iter().map(|f| trucks * f.share / total).collect();
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(specs.get(i).map_or(0, |f| trucks * f.share % total)));
    let mut left = trucks - sizes.iter().sum::<u32>();
    for i in order.into_iter().cycle() {
        if left == 0 {
            break;
        }
        if let Some(s) = sizes.get_mut(i) {
            *s += 1;
            left -= 1;
        }
    }
    sizes
}

/// Builds `trucks` trucks of the given models.
pub(crate) fn build(
    cal: &Calendar,
    trucks: u32,
    models: &[&TruckModel],
) -> Result<Vec<Truck>, SimulateError> {
    if models.is_empty() {
        return Err(SimulateError::NoModels);
    }
    let kinds_present = |k: TruckKind| models.iter().filter(|m| m.kind == k).count() as u32;
    // Each model gets its body type's weight, shared among the models of that type.
    let weights: Vec<f64> = models
        .iter()
        .map(|m| f64::from(kind_weight(m.kind)) / f64::from(kinds_present(m.kind).max(1)))
        .collect();
    let total_weight: f64 = weights.iter().sum();
    let mut out = Vec::with_capacity(trucks as usize);
    for (spec, size) in FLEETS.iter().zip(fleet_sizes(trucks)) {
        let fleet = FleetId::new(spec.id).map_err(|e| SimulateError::Internal(e.to_string()))?;
        for seq in 1..=size {
            let index = out.len();
            let mut rng = cal.seeds.rng(Purpose::Truck, index as u64, 0);
            let id = VehicleId::new(&format!("{}-{seq:04}", spec.prefix))
                .map_err(|e| SimulateError::Internal(e.to_string()))?;
            let mut pick = rng.random_range(0.0..total_weight);
            let mut model = models.len() - 1;
            for (i, w) in weights.iter().enumerate() {
                if pick < *w {
                    model = i;
                    break;
                }
                pick -= w;
            }
            let m = models.get(model).ok_or(SimulateError::NoModels)?;
            let depot = spec
                .depots
                .get(rng.random_range(0..spec.depots.len()))
                .copied()
                .unwrap_or("depot");
            let gateway = if rng.random_bool(0.15) {
                Gateway::Telemetry
            } else {
                Gateway::Can(match rng.random_range(0..10) {
                    0..6 => Odometer::Standard,
                    6..8 => Odometer::HighResolution,
                    _ => Odometer::Both,
                })
            };
            let (pto, speed) = duty_profile(m.kind);
            let pto_share = rng.random_range(pto);
            let km_per_h = rng.random_range(speed);
            let age_days = rng.random_range(30..2900u64);
            let commissioned = cal
                .start
                .checked_sub_days(Days::new(age_days))
                .unwrap_or(cal.start);
            let engine_per_day =
                expected_engine_hours_per_day(m.kind, spec.week) * rng.random_range(0.85..1.15);
            let rate_before = Meters {
                engine_h: engine_per_day,
                pto_h: engine_per_day * pto_share,
                km: engine_per_day * km_per_h,
            };
            let rest_day = Weekday::try_from(rng.random_range(0..7u8)).unwrap_or(Weekday::Mon);
            let vin = vin(&mut rng, commissioned.year(), index);
            out.push(Truck {
                index,
                id,
                fleet: fleet.clone(),
                depot,
                model,
                model_id: m.id.clone(),
                kind: m.kind,
                vin,
                commissioned,
                registered: true,
                gateway,
                week: spec.week,
                rest_day,
                pto_share,
                km_per_h,
                rate_before,
                start_meters: rate_before.scaled(age_days as f64),
                overrides: Overrides::default(),
            });
        }
    }
    if out.len() >= 10
        && let Some(last) = out.last_mut()
    {
        last.registered = false;
    }
    Ok(out)
}

/// A 17-character VIN with a valid ISO 3779 check digit (position 9) and
/// the model-year letter of the commissioning year (position 10).
fn vin(rng: &mut rand_chacha::ChaCha8Rng, year: i32, index: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
    const YEARS: &[u8] = b"ABCDEFGHJKLMNPRSTVWXY123456789";
    let mut v: Vec<u8> = b"LSC".to_vec();
    for _ in 0..5 {
        v.push(
            ALPHABET
                .get(rng.random_range(0..ALPHABET.len()))
                .copied()
                .unwrap_or(b'A'),
        );
    }
    v.push(b'0');
    // Model years cycle every 30 years; 2010 was 'A'.
    let y = (year - 2010).rem_euclid(30) as usize;
    v.push(YEARS.get(y).copied().unwrap_or(b'A'));
    v.push(b'S');
    v.extend(format!("{:06}", 100_000 + index % 900_000).bytes());
    let check = vin_check_digit(&v);
    if let Some(c) = v.get_mut(8) {
        *c = check;
    }
    String::from_utf8(v).unwrap_or_default()
}

fn vin_check_digit(vin: &[u8]) -> u8 {
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let value = |c: u8| -> u32 {
        match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'H' => u32::from(c - b'A') + 1,
            b'J'..=b'N' => u32::from(c - b'J') + 1,
            b'P' => 7,
            b'R'..=b'Z' => u32::from(c - b'R') + 9,
            _ => 0,
        }
    };
    let sum: u32 = vin.iter().zip(WEIGHTS).map(|(&c, w)| value(c) * w).sum();
    match sum % 11 {
        10 => b'X',
        r => b'0' + r as u8,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::simulate::rng::Seeds;

    /// A truck for tests of other modules.
    pub(crate) fn truck_for_tests(kind: TruckKind, week: Week) -> Truck {
        let (pto, speed) = duty_profile(kind);
        Truck {
            index: 0,
            id: VehicleId::new("T-1").unwrap(),
            fleet: FleetId::new("f").unwrap(),
            depot: "d",
            model: 0,
            model_id: ModelId::new("m").unwrap(),
            kind,
            vin: String::new(),
            commissioned: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            registered: true,
            gateway: Gateway::Can(Odometer::Standard),
            week,
            rest_day: Weekday::Wed,
            pto_share: pto.start,
            km_per_h: speed.start,
            rate_before: Meters::default(),
            start_meters: Meters {
                engine_h: 3000.0,
                pto_h: 2000.0,
                km: 30000.0,
            },
            overrides: Overrides::default(),
        }
    }

    #[test]
    fn fleet_sizes_add_up() {
        assert_eq!(fleet_sizes(1), vec![1]);
        assert_eq!(fleet_sizes(2), vec![1, 1]);
        assert_eq!(fleet_sizes(20), vec![10, 6, 4]);
        assert_eq!(fleet_sizes(1000), vec![500, 300, 200]);
        assert_eq!(fleet_sizes(7).iter().sum::<u32>(), 7);
    }

    #[test]
    fn vins_have_a_valid_check_digit() {
        // The worked example of the check-digit algorithm (49 CFR 565).
        assert_eq!(vin_check_digit(b"1M8GDM9A_KP042788"), b'X');
        let mut rng = Seeds::new(1).rng(Purpose::Truck, 0, 0);
        let v = vin(&mut rng, 2023, 42);
        assert_eq!(v.len(), 17);
        assert_eq!(v.as_bytes()[8], vin_check_digit(v.as_bytes()));
        assert_eq!(&v[9..10], "P");
        assert!(!v.contains(['I', 'O', 'Q']));
    }

    #[test]
    fn meters_before_the_start_grow_from_commissioning() {
        let t = truck_for_tests(TruckKind::Sweeper, Week::Rota);
        let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert_eq!(t.meters_before(t.commissioned, start), Meters::default());
        assert_eq!(t.meters_before(start, start), t.start_meters);
        let mid = t.meters_before(NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(), start);
        assert!((mid.engine_h - 1500.0).abs() < 3.0, "{mid:?}");
    }
}
