//! The one path every message takes, live or replayed: topic → decoding →
//! per-vehicle state (J1939 transport sessions, fault episodes, meters) →
//! records for the store. Sans-IO: a message and its receive time in,
//! records out; what cannot be used becomes a dead letter with its reason.

pub mod episodes;
pub mod meter_track;

use std::collections::HashMap;
use std::sync::Arc;

use crate::candump;
use crate::frame::FrameId;
use crate::ids::{FleetId, VehicleId};
use crate::j1939::{
    Address, DecoderConfig, DiagnosticMessage, DmKind, Dtc, Fmi, J1939Decoder, J1939Event, Lamps,
    Meter, Spn,
};
use crate::telemetry;
use crate::timestamp::Timestamp;
use crate::topic::{self, Channel};
use episodes::{Applied, EpisodeChange, FaultSource, FaultTracker, Snapshot};
use meter_track::{MeterLimits, MeterTrack, MeterVerdict};

/// One MQTT message as received.
#[derive(Clone, Copy)]
pub struct Message<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub received: Timestamp,
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("topic", &self.topic)
            .field("payload_len", &self.payload.len())
            .field("received", &self.received)
            .finish()
    }
}

/// Settings of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub topic_prefix: String,
    /// Larger payloads are dead letters.
    pub max_payload: usize,
    pub decoder: DecoderConfig,
    pub meters: MeterLimits,
    /// candump interfaces per vehicle; more are dead letters.
    pub max_interfaces: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            topic_prefix: "fleet".to_owned(),
            max_payload: 256 * 1024,
            decoder: DecoderConfig::default(),
            meters: MeterLimits::default(),
            max_interfaces: 8,
        }
    }
}

/// A truck, as named by its topic.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct VehicleKey {
    pub fleet: FleetId,
    pub vehicle: VehicleId,
}

/// Why input was refused; the label is what dead letters are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeadLetterReason {
    Topic,
    PayloadTooLarge,
    NotUtf8,
    Candump,
    Telemetry,
    J1939,
    Transport,
    TooManyInterfaces,
    Meter,
}

impl DeadLetterReason {
    pub const ALL: [Self; 9] = [
        Self::Topic,
        Self::PayloadTooLarge,
        Self::NotUtf8,
        Self::Candump,
        Self::Telemetry,
        Self::J1939,
        Self::Transport,
        Self::TooManyInterfaces,
        Self::Meter,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Topic => "topic",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NotUtf8 => "not_utf8",
            Self::Candump => "candump",
            Self::Telemetry => "telemetry",
            Self::J1939 => "j1939",
            Self::Transport => "transport",
            Self::TooManyInterfaces => "too_many_interfaces",
            Self::Meter => "meter",
        }
    }
}

/// Rejected input, kept with enough to understand it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub received: Timestamp,
    pub topic: String,
    /// The start of the offending payload or line.
    pub excerpt: String,
    pub reason: DeadLetterReason,
    /// One sentence: what was wrong (with the line number in a multi-line payload).
    pub detail: String,
}

const EXCERPT_LEN: usize = 200;

fn excerpt(bytes: &[u8]) -> String {
    let cut = bytes
        .get(..bytes.len().min(EXCERPT_LEN))
        .unwrap_or_default();
    String::from_utf8_lossy(cut).into_owned()
}

/// What the store keeps.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    FaultStarted {
        vehicle: Arc<VehicleKey>,
        ts: Timestamp,
        source: FaultSource,
        ecu: Address,
        dtc: Dtc,
        lamps: Lamps,
    },
    FaultEnded {
        vehicle: Arc<VehicleKey>,
        ts: Timestamp,
        source: FaultSource,
        spn: Spn,
        fmi: Fmi,
        started: Timestamp,
    },
    LampsChanged {
        vehicle: Arc<VehicleKey>,
        ts: Timestamp,
        source: FaultSource,
        lamps: Lamps,
    },
    Meter {
        vehicle: Arc<VehicleKey>,
        ts: Timestamp,
        meter: Meter,
        /// As sent by the vehicle.
        raw: f64,
        /// Continuous over ECU swaps: raw plus the offset of the last reset.
        value: f64,
    },
    MeterReset {
        vehicle: Arc<VehicleKey>,
        ts: Timestamp,
        meter: Meter,
        previous: f64,
        raw: f64,
        offset: f64,
    },
    DeadLetter(DeadLetter),
}

/// Counts a user would graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineStats {
    pub messages: u64,
    pub can_frames: u64,
    pub standard_frames: u64,
    pub stale_snapshots: u64,
    pub dead_letters: HashMap<DeadLetterReason, u64>,
}

#[derive(Debug)]
struct VehicleState {
    key: Arc<VehicleKey>,
    networks: Vec<(Box<str>, J1939Decoder)>,
    faults: FaultTracker,
    meters: [Option<MeterTrack>; 3],
}

const fn meter_index(m: Meter) -> usize {
    match m {
        Meter::EngineHours => 0,
        Meter::PtoHours => 1,
        Meter::OdometerKm => 2,
    }
}

/// The durable part of one vehicle's state, for checkpoints.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VehicleCheckpoint {
    pub vehicle: VehicleKey,
    faults: FaultTracker,
    meters: [Option<MeterTrack>; 3],
}

/// The pipeline's state at a point of the message sequence. Transport
/// sessions in flight are not part of it: they last at most seconds, and a
/// transfer cut by a checkpoint ends as a transport dead letter.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PipelineCheckpoint {
    pub vehicles: Vec<VehicleCheckpoint>,
}

/// The ingest pipeline: all per-vehicle state of the fleet.
#[derive(Debug)]
pub struct Pipeline {
    config: PipelineConfig,
    /// Every vehicle's state, found through `index` once per message (a
    /// lookup per frame and event cost more than decoding them).
    vehicles: Vec<VehicleState>,
    /// `fleet/vehicle` → position in `vehicles`.
    index: HashMap<Box<str>, usize>,
    stats: PipelineStats,
    events: Vec<J1939Event>,
    changes: Vec<EpisodeChange>,
    dtcs: Vec<(Dtc, Address)>,
}

/// Context for dead letters of one message.
struct Origin<'a> {
    topic: &'a str,
    received: Timestamp,
}

impl Pipeline {
    pub fn new(config: PipelineConfig) -> Self {
        Self {
            config,
            vehicles: Vec::new(),
            index: HashMap::new(),
            stats: PipelineStats::default(),
            events: Vec::new(),
            changes: Vec::new(),
            dtcs: Vec::new(),
        }
    }

    /// A pipeline that continues from `checkpoint`.
    pub fn restore(config: PipelineConfig, checkpoint: PipelineCheckpoint) -> Self {
        let mut p = Self::new(config);
        for v in checkpoint.vehicles {
            let key = format!("{}/{}", v.vehicle.fleet, v.vehicle.vehicle);
            let state = VehicleState {
                key: Arc::new(v.vehicle),
                networks: Vec::new(),
                faults: v.faults,
                meters: v.meters,
            };
            // A checkpoint names each vehicle once; were one named twice,
            // the later entry wins, as it did when states were keyed by name.
            match p
                .index
                .get(key.as_str())
                .and_then(|&i| p.vehicles.get_mut(i))
            {
                Some(slot) => *slot = state,
                None => {
                    p.index.insert(key.into(), p.vehicles.len());
                    p.vehicles.push(state);
                }
            }
        }
        p
    }

    /// The state to continue from after a restart.
    pub fn checkpoint(&self) -> PipelineCheckpoint {
        let mut vehicles: Vec<VehicleCheckpoint> = self
            .vehicles
            .iter()
            .map(|v| VehicleCheckpoint {
                vehicle: (*v.key).clone(),
                faults: v.faults.clone(),
                meters: v.meters.clone(),
            })
            .collect();
        vehicles.sort_by(|a, b| a.vehicle.cmp(&b.vehicle));
        PipelineCheckpoint { vehicles }
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// Starts the counters afresh (after they were saved elsewhere).
    pub fn reset_stats(&mut self) {
        self.stats = PipelineStats::default();
    }

    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }

    /// Vehicles seen so far.
    pub fn vehicle_count(&self) -> usize {
        self.vehicles.len()
    }

    /// Handles one message, pushing the records it yields into `out`;
    /// returns the vehicle it came from when its topic names one.
    pub fn handle(&mut self, msg: Message<'_>, out: &mut Vec<Record>) -> Option<Arc<VehicleKey>> {
        self.stats.messages += 1;
        let origin = Origin {
            topic: msg.topic,
            received: msg.received,
        };
        let topic = match topic::parse(&self.config.topic_prefix, msg.topic) {
            Ok(t) => t,
            Err(e) => {
                let detail = format!("topic {e}");
                self.dead(out, &origin, msg.payload, DeadLetterReason::Topic, detail);
                return None;
            }
        };
        let v = match self.index.get(topic.vehicle_key) {
            Some(&v) => v,
            None => {
                let key = Arc::new(VehicleKey {
                    fleet: topic.fleet_id(),
                    vehicle: topic.vehicle_id(),
                });
                let state = VehicleState {
                    key,
                    networks: Vec::new(),
                    faults: FaultTracker::default(),
                    meters: [None, None, None],
                };
                let v = self.vehicles.len();
                self.index.insert(topic.vehicle_key.into(), v);
                self.vehicles.push(state);
                v
            }
        };
        let key = self.vehicles.get(v).map(|state| state.key.clone())?;
        if msg.payload.len() > self.config.max_payload {
            let detail = format!(
                "payload of {} bytes exceeds {}",
                msg.payload.len(),
                self.config.max_payload
            );
            let reason = DeadLetterReason::PayloadTooLarge;
            self.dead(out, &origin, msg.payload, reason, detail);
            return Some(key);
        }
        let Ok(text) = std::str::from_utf8(msg.payload) else {
            let detail = "payload is not UTF-8 text".to_owned();
            self.dead(out, &origin, msg.payload, DeadLetterReason::NotUtf8, detail);
            return Some(key);
        };
        match topic.channel {
            Channel::Can => self.handle_can(v, &origin, text, out),
            Channel::Telemetry => self.handle_telemetry(v, &origin, text, out),
        }
        Some(key)
    }

    fn dead(
        &mut self,
        out: &mut Vec<Record>,
        origin: &Origin<'_>,
        bytes: &[u8],
        reason: DeadLetterReason,
        detail: String,
    ) {
        *self.stats.dead_letters.entry(reason).or_default() += 1;
        out.push(Record::DeadLetter(DeadLetter {
            received: origin.received,
            topic: origin.topic.chars().take(256).collect(),
            excerpt: excerpt(bytes),
            reason,
            detail,
        }));
    }

    fn handle_can(&mut self, v: usize, origin: &Origin<'_>, text: &str, out: &mut Vec<Record>) {
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let record = match candump::parse_line(line) {
                Ok(Some(r)) => r,
                // candump writes DROPCOUNT lines; other text that is not a
                // frame would otherwise vanish without a trace.
                Ok(None) if line.trim().is_empty() || line.starts_with("DROPCOUNT") => continue,
                Ok(None) => {
                    let detail = format!("line {n}: not a candump -L line (no '(timestamp)')");
                    self.dead(
                        out,
                        origin,
                        line.as_bytes(),
                        DeadLetterReason::Candump,
                        detail,
                    );
                    continue;
                }
                Err(e) => {
                    self.dead(
                        out,
                        origin,
                        line.as_bytes(),
                        DeadLetterReason::Candump,
                        format!("line {n}: {e}"),
                    );
                    continue;
                }
            };
            self.stats.can_frames += 1;
            if let FrameId::Standard(_) = record.frame.id {
                self.stats.standard_frames += 1;
                continue;
            }
            let Some(vehicle) = self.vehicles.get_mut(v) else {
                return;
            };
            let network = match vehicle
                .networks
                .iter()
                .position(|(i, _)| **i == *record.interface)
            {
                Some(i) => i,
                None if vehicle.networks.len() < self.config.max_interfaces => {
                    let decoder = J1939Decoder::new(&self.config.decoder);
                    vehicle.networks.push((record.interface.into(), decoder));
                    vehicle.networks.len() - 1
                }
                None => {
                    let detail = format!(
                        "line {n}: more than {} interfaces",
                        self.config.max_interfaces
                    );
                    self.dead(
                        out,
                        origin,
                        line.as_bytes(),
                        DeadLetterReason::TooManyInterfaces,
                        detail,
                    );
                    continue;
                }
            };
            let mut events = std::mem::take(&mut self.events);
            if let Some((_, decoder)) = vehicle.networks.get_mut(network) {
                decoder.handle(&record.frame, &mut events);
            }
            for e in events.drain(..) {
                self.apply_event(v, origin, line, n, e, out);
            }
            self.events = events;
        }
    }

    fn apply_event(
        &mut self,
        v: usize,
        origin: &Origin<'_>,
        line: &str,
        n: usize,
        e: J1939Event,
        out: &mut Vec<Record>,
    ) {
        match e {
            J1939Event::Diagnostic {
                ts,
                source,
                message,
            } => self.apply_dm(v, ts, source, &message, out),
            J1939Event::Meter {
                ts, meter, value, ..
            } => self.apply_meter(v, origin, line, ts, meter, value, out),
            J1939Event::TransportFailed(f) => {
                let detail = format!(
                    "line {n}: transport from SA {} to {}: {}",
                    f.source, f.destination, f.reason
                );
                self.dead(
                    out,
                    origin,
                    line.as_bytes(),
                    DeadLetterReason::Transport,
                    detail,
                );
            }
            J1939Event::Invalid {
                source, pgn, error, ..
            } => {
                let detail = format!("line {n}: PGN {pgn} from SA {source}: {error}");
                self.dead(
                    out,
                    origin,
                    line.as_bytes(),
                    DeadLetterReason::J1939,
                    detail,
                );
            }
            // The gateway on the truck answers the transport protocol; we only listen.
            J1939Event::Send(_) => {}
        }
    }

    fn apply_dm(
        &mut self,
        v: usize,
        ts: Timestamp,
        source: Address,
        m: &DiagnosticMessage,
        out: &mut Vec<Record>,
    ) {
        // DM2 lists what was active before; episodes come from DM1 alone.
        if m.kind != DmKind::Dm1 {
            return;
        }
        let mut dtcs = std::mem::take(&mut self.dtcs);
        dtcs.clear();
        dtcs.extend(m.dtcs.iter().map(|d| (*d, source)));
        self.apply_snapshot(v, ts, FaultSource::Ecu(source), m.lamps, &dtcs, out);
        self.dtcs = dtcs;
    }

    fn apply_snapshot(
        &mut self,
        v: usize,
        ts: Timestamp,
        source: FaultSource,
        lamps: Lamps,
        dtcs: &[(Dtc, Address)],
        out: &mut Vec<Record>,
    ) {
        let Some(vehicle) = self.vehicles.get_mut(v) else {
            return;
        };
        let mut changes = std::mem::take(&mut self.changes);
        let snapshot = Snapshot {
            ts,
            source,
            lamps,
            dtcs,
        };
        if vehicle.faults.apply(snapshot, &mut changes) == Applied::Stale {
            self.stats.stale_snapshots += 1;
        }
        for c in changes.drain(..) {
            let vehicle = vehicle.key.clone();
            out.push(match c {
                EpisodeChange::Started {
                    ts,
                    source,
                    ecu,
                    dtc,
                    lamps,
                } => Record::FaultStarted {
                    vehicle,
                    ts,
                    source,
                    ecu,
                    dtc,
                    lamps,
                },
                EpisodeChange::Ended {
                    ts,
                    source,
                    spn,
                    fmi,
                    started,
                } => Record::FaultEnded {
                    vehicle,
                    ts,
                    source,
                    spn,
                    fmi,
                    started,
                },
                EpisodeChange::LampsChanged { ts, source, lamps } => Record::LampsChanged {
                    vehicle,
                    ts,
                    source,
                    lamps,
                },
            });
        }
        self.changes = changes;
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_meter(
        &mut self,
        v: usize,
        origin: &Origin<'_>,
        line: &str,
        ts: Timestamp,
        meter: Meter,
        raw: f64,
        out: &mut Vec<Record>,
    ) {
        let Some(vehicle) = self.vehicles.get_mut(v) else {
            return;
        };
        let Some(slot) = vehicle.meters.get_mut(meter_index(meter)) else {
            return;
        };
        let verdict = match slot {
            Some(track) => track.observe(ts, raw, &self.config.meters),
            None => {
                let (track, verdict) = MeterTrack::new(meter, ts, raw);
                *slot = Some(track);
                verdict
            }
        };
        let vehicle = vehicle.key.clone();
        match verdict {
            MeterVerdict::Store { raw, value } => out.push(Record::Meter {
                vehicle,
                ts,
                meter,
                raw,
                value,
            }),
            MeterVerdict::Reset {
                previous,
                raw,
                offset,
            } => {
                out.push(Record::MeterReset {
                    vehicle: vehicle.clone(),
                    ts,
                    meter,
                    previous,
                    raw,
                    offset,
                });
                out.push(Record::Meter {
                    vehicle,
                    ts,
                    meter,
                    raw,
                    value: raw + offset,
                });
            }
            MeterVerdict::Skip => {}
            MeterVerdict::Refuse(anomaly) => {
                let detail = format!("{anomaly} at {ts}");
                self.dead(
                    out,
                    origin,
                    line.as_bytes(),
                    DeadLetterReason::Meter,
                    detail,
                );
            }
        }
    }

    fn handle_telemetry(
        &mut self,
        v: usize,
        origin: &Origin<'_>,
        text: &str,
        out: &mut Vec<Record>,
    ) {
        let t = match telemetry::parse(text.as_bytes()) {
            Ok(t) => t,
            Err(e) => {
                return self.dead(
                    out,
                    origin,
                    text.as_bytes(),
                    DeadLetterReason::Telemetry,
                    e.to_string(),
                );
            }
        };
        for (meter, value) in [
            (Meter::EngineHours, t.engine_hours),
            (Meter::PtoHours, t.pto_hours),
            (Meter::OdometerKm, t.odometer_km),
        ] {
            if let Some(value) = value {
                self.apply_meter(v, origin, text, t.ts, meter, value, out);
            }
        }
        if let Some(list) = &t.dtcs {
            let mut dtcs = std::mem::take(&mut self.dtcs);
            dtcs.clear();
            dtcs.extend(list.iter().map(|d| (d.dtc, d.source)));
            let lamps = t.lamps.unwrap_or_default();
            self.apply_snapshot(v, t.ts, FaultSource::Telemetry, lamps, &dtcs, out);
            self.dtcs = dtcs;
        }
    }
}

#[cfg(test)]
mod tests;
