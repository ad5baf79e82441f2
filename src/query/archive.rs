//! What the API and the web UI read from the store (docs/storage.md): a
//! vehicle's latest meters, meter history and recent fault episodes, the
//! active faults of every vehicle, and the dead letters. Blocking polars
//! scans: call them off the async threads.
//!
//! Every read goes through the process's one [`StoreReader`]: `open`
//! refreshes it (reading only the log written since the last read; the
//! checkpoint only after a compaction) and returns a snapshot holding
//! everything stored before the call. Scans see the Parquet history and
//! the log's rows ([`Snapshot::scan`]).

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use polars::prelude::*;
use serde::Serialize;

use super::QueryError;
use crate::store::{Snapshot, StoreReader};

/// How far back a vehicle's archive lists fault episodes.
pub(crate) const EPISODE_DAYS: i64 = 90;
/// At most this many episodes in an archive (the newest).
pub(crate) const MAX_EPISODES: usize = 200;

/// The stored history as of now, from the shared reader.
pub(crate) fn open(reader: &StoreReader) -> Result<Arc<Snapshot>, QueryError> {
    Ok(reader.snapshot()?)
}

/// A store time (µs since the epoch) as RFC 3339 UTC with microseconds.
pub(crate) fn time_text(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// The latest reading of one meter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct MeterReading {
    pub(crate) meter: String,
    pub(crate) value: f64,
    pub(crate) ts: String,
}

/// One fault episode (C5); `ended` is null while it is active.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Episode {
    pub(crate) source: String,
    pub(crate) spn: i64,
    pub(crate) fmi: i64,
    pub(crate) started: String,
    pub(crate) ended: Option<String>,
    pub(crate) red_stop: Option<String>,
}

fn vehicle_rows(lf: LazyFrame, fleet: &FleetId, vehicle: &VehicleId) -> LazyFrame {
    lf.filter(
        col("fleet")
            .eq(lit(fleet.as_str()))
            .and(col("vehicle").eq(lit(vehicle.as_str()))),
    )
}

/// Each meter's latest stored value for the vehicle, by meter name.
pub(crate) fn latest_meters(
    store: &Snapshot,
    fleet: &FleetId,
    vehicle: &VehicleId,
) -> Result<Vec<MeterReading>, QueryError> {
    Ok(store
        .latest_meters(fleet, vehicle)?
        .into_iter()
        .map(|(meter, ts, value)| MeterReading {
            meter,
            value,
            ts: time_text(ts),
        })
        .collect())
}

/// The vehicle's fault episodes that started in the last
/// [`EPISODE_DAYS`] before `now_us`, or are still active; newest first.
pub(crate) fn recent_episodes(
    store: &Snapshot,
    fleet: &FleetId,
    vehicle: &VehicleId,
    now_us: i64,
) -> Result<Vec<Episode>, QueryError> {
    let Some(lf) = store.scan("faults")? else {
        return Ok(Vec::new());
    };
    let from = now_us - EPISODE_DAYS * 86_400_000_000;
    let df = vehicle_rows(lf, fleet, vehicle)
        .select([
            col("ts").cast(DataType::Int64),
            col("event"),
            col("source"),
            col("spn").cast(DataType::Int64),
            col("fmi").cast(DataType::Int64),
            col("red_stop").cast(DataType::String),
            col("started").cast(DataType::Int64),
        ])
        .sort(["ts"], SortMultipleOptions::default())
        .collect()?;
    let ts = df.column("ts").and_then(|c| c.i64())?;
    let event = df.column("event").and_then(|c| c.str())?;
    let source = df.column("source").and_then(|c| c.str())?;
    let spn = df.column("spn").and_then(|c| c.i64())?;
    let fmi = df.column("fmi").and_then(|c| c.i64())?;
    let red_stop = df.column("red_stop").and_then(|c| c.str())?;
    // Starts open an episode of (source, SPN, FMI); the next end closes it.
    let mut open: std::collections::HashMap<(String, i64, i64), usize> = Default::default();
    let mut episodes: Vec<(i64, Episode)> = Vec::new();
    for i in 0..df.height() {
        let (Some(t), Some(ev), Some(src), Some(s), Some(f)) = (
            ts.get(i),
            event.get(i),
            source.get(i),
            spn.get(i),
            fmi.get(i),
        ) else {
            continue;
        };
        let key = (src.to_owned(), s, f);
        match ev {
            "start" => {
                open.insert(key, episodes.len());
                episodes.push((
                    t,
                    Episode {
                        source: src.to_owned(),
                        spn: s,
                        fmi: f,
                        started: time_text(t),
                        ended: None,
                        red_stop: red_stop.get(i).map(str::to_owned),
                    },
                ));
            }
            _ => {
                if let Some(e) = open.remove(&key).and_then(|n| episodes.get_mut(n)) {
                    e.1.ended = Some(time_text(t));
                }
            }
        }
    }
    let mut recent: Vec<Episode> = episodes
        .into_iter()
        .rev()
        .filter(|(t, e)| *t > from || e.ended.is_none())
        .map(|(_, e)| e)
        .collect();
    recent.truncate(MAX_EPISODES);
    Ok(recent)
}

/// A rejected message or line (store table `dead_letters`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DeadLetter {
    pub(crate) received: String,
    /// `received` in µs since the epoch, for the next page's position.
    #[serde(skip)]
    pub(crate) received_us: i64,
    pub(crate) topic: String,
    /// The fleet segment of the topic; null when the topic has none.
    pub(crate) fleet: Option<FleetId>,
    pub(crate) reason: String,
    pub(crate) detail: String,
    pub(crate) excerpt: String,
}

/// The fleet a topic `{prefix}/{fleet}/…` names, if it names a valid one.
pub(crate) fn topic_fleet(prefix: &str, topic: &str) -> Option<FleetId> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let (fleet, _) = rest.split_once('/')?;
    FleetId::new(fleet).ok()
}

/// The dead-letter table; with `fleets`, only rows whose topic is under
/// one of them.
fn visible_dead_letter_rows(
    store: &Snapshot,
    prefix: &str,
    fleets: Option<&[FleetId]>,
) -> Result<Option<LazyFrame>, QueryError> {
    let Some(mut lf) = store.scan("dead_letters")? else {
        return Ok(None);
    };
    if let Some(fleets) = fleets {
        let mut visible = lit(false);
        for f in fleets {
            visible = visible.or(col("topic")
                .str()
                .starts_with(lit(format!("{prefix}/{}/", f.as_str()))));
        }
        lf = lf.filter(visible);
    }
    Ok(Some(lf))
}

/// Dead letters of one reason, over the whole history.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReasonCount {
    pub(crate) reason: String,
    pub(crate) count: u64,
    /// When the newest arrived (RFC 3339).
    pub(crate) last: String,
}

/// How many dead letters each reason has (most first); with `fleets`,
/// only those whose topic is under one of them. Topics that name no valid
/// fleet count only without `fleets`, as in [`dead_letters`].
pub(crate) fn dead_letter_reasons(
    store: &Snapshot,
    prefix: &str,
    fleets: Option<&[FleetId]>,
) -> Result<Vec<ReasonCount>, QueryError> {
    let Some(lf) = visible_dead_letter_rows(store, prefix, fleets)? else {
        return Ok(Vec::new());
    };
    let df = lf
        .group_by([col("reason")])
        .agg([
            len().cast(DataType::UInt64).alias("count"),
            col("received").cast(DataType::Int64).max().alias("last"),
        ])
        .sort(
            ["count", "reason"],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )
        .collect()?;
    let reason = df.column("reason").and_then(|c| c.str())?;
    let count = df.column("count").and_then(|c| c.u64())?;
    let last = df.column("last").and_then(|c| c.i64())?;
    Ok((0..df.height())
        .filter_map(|i| {
            Some(ReasonCount {
                reason: reason.get(i)?.to_owned(),
                count: count.get(i)?,
                last: time_text(last.get(i)?),
            })
        })
        .collect())
}

/// Fault episodes still active per vehicle, `(fleet, vehicle) → count`:
/// those whose latest event is a start (what a vehicle's archive lists
/// with `ended` null).
pub(crate) fn active_faults(
    store: &Snapshot,
) -> Result<std::collections::HashMap<(String, String), u32>, QueryError> {
    let Some(lf) = store.scan("faults")? else {
        return Ok(Default::default());
    };
    let key = [
        col("fleet"),
        col("vehicle"),
        col("source"),
        col("spn"),
        col("fmi"),
    ];
    let df = lf
        .group_by(key)
        .agg([col("event")
            .sort_by([col("ts")], SortMultipleOptions::default())
            .last()
            .alias("last")])
        .filter(col("last").eq(lit("start")))
        .group_by([col("fleet"), col("vehicle")])
        .agg([len().cast(DataType::UInt32).alias("active")])
        .collect()?;
    let fleet = df.column("fleet").and_then(|c| c.str())?;
    let vehicle = df.column("vehicle").and_then(|c| c.str())?;
    let active = df.column("active").and_then(|c| c.u32())?;
    Ok((0..df.height())
        .filter_map(|i| {
            Some((
                (fleet.get(i)?.to_owned(), vehicle.get(i)?.to_owned()),
                active.get(i)?,
            ))
        })
        .collect())
}

/// At most this many points per meter in a history.
pub(crate) const MAX_METER_POINTS: usize = 300;

/// Each meter's stored readings for the vehicle since `from_us`, oldest
/// first, as (seconds since the epoch, continuous value), thinned to at
/// most [`MAX_METER_POINTS`] (the newest is always kept).
pub(crate) fn meter_history(
    store: &Snapshot,
    fleet: &FleetId,
    vehicle: &VehicleId,
    from_us: i64,
) -> Result<std::collections::BTreeMap<String, Vec<(i64, f64)>>, QueryError> {
    let mut out: std::collections::BTreeMap<String, Vec<(i64, f64)>> = Default::default();
    let Some(lf) = store.scan("meters")? else {
        return Ok(out);
    };
    let df = vehicle_rows(lf, fleet, vehicle)
        .select([col("meter"), col("ts").cast(DataType::Int64), col("value")])
        .filter(col("ts").gt_eq(lit(from_us)))
        .sort(["ts"], SortMultipleOptions::default())
        .collect()?;
    let meter = df.column("meter").and_then(|c| c.str())?;
    let ts = df.column("ts").and_then(|c| c.i64())?;
    let value = df.column("value").and_then(|c| c.f64())?;
    for i in 0..df.height() {
        if let (Some(m), Some(t), Some(v)) = (meter.get(i), ts.get(i), value.get(i)) {
            out.entry(m.to_owned())
                .or_default()
                .push((t.div_euclid(1_000_000), v));
        }
    }
    for points in out.values_mut() {
        let step = points.len().div_ceil(MAX_METER_POINTS).max(1);
        if step > 1 {
            let last = points.last().copied();
            let mut thinned: Vec<_> = points.iter().copied().step_by(step).collect();
            if let Some(l) = last
                && thinned.last() != Some(&l)
            {
                thinned.push(l);
            }
            *points = thinned;
        }
    }
    Ok(out)
}

/// The newest `limit` dead letters, newest first; with `fleets`, only those
/// whose topic is under one of them (pushed down into the scan, so the
/// limit counts visible rows). With `after` (received µs, n), the page
/// that follows the `n` rows of that instant already returned: rows of one
/// instant are one message's, stored together, in a fixed order (topic,
/// reason, detail, excerpt), so a position among them stays put.
pub(crate) fn dead_letters(
    store: &Snapshot,
    prefix: &str,
    fleets: Option<&[FleetId]>,
    after: Option<(i64, usize)>,
    limit: usize,
) -> Result<Vec<DeadLetter>, QueryError> {
    let Some(lf) = visible_dead_letter_rows(store, prefix, fleets)? else {
        return Ok(Vec::new());
    };
    let mut lf = lf.select([
        col("received").cast(DataType::Int64),
        col("topic"),
        col("reason"),
        col("detail"),
        col("excerpt"),
    ]);
    if let Some((received, _)) = after {
        lf = lf.filter(col("received").lt_eq(lit(received)));
    }
    let skip = after.map_or(0, |(_, n)| n);
    let df = lf
        .sort(
            ["received", "topic", "reason", "detail", "excerpt"],
            SortMultipleOptions::default()
                .with_order_descending_multi([true, false, false, false, false]),
        )
        .slice(
            i64::try_from(skip).unwrap_or(i64::MAX),
            IdxSize::try_from(limit).unwrap_or(IdxSize::MAX),
        )
        .collect()?;
    let received = df.column("received").and_then(|c| c.i64())?;
    let text = |name: &str| {
        df.column(name)
            .and_then(|c| c.str())
            .map_err(QueryError::Scan)
    };
    let (topic, reason, detail, excerpt) = (
        text("topic")?,
        text("reason")?,
        text("detail")?,
        text("excerpt")?,
    );
    Ok((0..df.height())
        .filter_map(|i| {
            let topic = topic.get(i)?.to_owned();
            let received_us = received.get(i)?;
            Some(DeadLetter {
                received: time_text(received_us),
                received_us,
                fleet: topic_fleet(prefix, &topic),
                topic,
                reason: reason.get(i).unwrap_or_default().to_owned(),
                detail: detail.get(i).unwrap_or_default().to_owned(),
                excerpt: excerpt.get(i).unwrap_or_default().to_owned(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_name_their_fleet() {
        let f = |t| topic_fleet("fleet", t).map(|f| f.as_str().to_owned());
        assert_eq!(f("fleet/acme/TRK-1/can").as_deref(), Some("acme"));
        assert_eq!(f("fleet/acme/alerts").as_deref(), Some("acme"));
        assert_eq!(f("fleet/ac me/TRK-1/can"), None);
        assert_eq!(f("other/acme/TRK-1/can"), None);
        assert_eq!(f("fleetx/acme/TRK-1/can"), None);
        assert_eq!(f("fleet/acme"), None);
    }
}
