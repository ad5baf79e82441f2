//! The one path every message takes, live or replayed: topic → decoding →
//! per-vehicle state (J1939 transport sessions, fault episodes, meters) →
//! records for the store. Sans-IO: a message and its receive time in,
//! records out; what cannot be used becomes a dead letter with its reason.
//!
//! What one message can cost is bounded ([`PipelineConfig`]): a fault list
//! longer than `max_dtcs` is refused whole; event times outside a plausible
//! window are refused; at most `max_dead_letters` dead-letter records per
//! message (one more stands for the rest, which are still counted); and the
//! J1939 decoders (transport sessions in flight) of at most `max_vehicles`
//! vehicles are kept, the least recently seen and the idle ones dropped.
//! Fault episodes and meters are never dropped: they are small, the
//! checkpoint keeps them, and dropping them would end or repeat episodes.

pub mod episodes;
pub mod meter_track;

use std::collections::HashMap;
use std::sync::Arc;

use crate::candump;
use crate::frame::FrameId;
use crate::ids::{FleetId, VehicleId};
use crate::j1939::{
    Address, DecoderConfig, DiagnosticMessage, DmKind, Dtc, Fmi, J1939Decoder, J1939Event, Lamps,
    Meter, SignalName, Spn,
};
use crate::telemetry;
use crate::timestamp::{Duration, Timestamp};
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
    /// The most DTCs one fault list may hold (a telemetry `dtcs` list, a
    /// DM1 or DM2); a longer one is refused whole, as a `too_many_dtcs`
    /// dead letter: a list is the complete set of active faults, so keeping
    /// part of it would end episodes that did not end.
    pub max_dtcs: usize,
    /// Dead-letter records one message makes at most; one more stands for
    /// the rest, which are counted (in [`PipelineStats`] and by
    /// [`DeadLetter::counts`]) but not kept one by one.
    pub max_dead_letters: usize,
    /// Vehicles whose J1939 decoders (transport sessions in flight) are
    /// kept; beyond it, the least recently seen vehicles' decoders are
    /// dropped. Their episodes and meters stay.
    pub max_vehicles: usize,
    /// Vehicles the pipeline keeps any state of (episodes, meters): once
    /// that many are known, messages of further vehicles are
    /// `too_many_vehicles` dead letters. The states are small and never
    /// dropped (that would end or repeat episodes), so this is what bounds
    /// the memory a login that invents vehicle names can take.
    pub max_tracked_vehicles: usize,
    /// A vehicle's decoders are dropped after this long without a message
    /// (receive time).
    pub vehicle_idle: Duration,
    /// Event times before this are implausible: dead letters.
    pub min_event_time: Timestamp,
    /// Event times more than this after the message was received are
    /// implausible: dead letters.
    pub max_future: Duration,
}

/// 2000-01-01T00:00:00Z: no truck sends data from before it, and clocks
/// that were never set read 1970 (or 1985, J1939's date origin).
pub const DEFAULT_MIN_EVENT_TIME: Timestamp = Timestamp::from_micros(946_684_800_000_000);

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            topic_prefix: "fleet".to_owned(),
            max_payload: 256 * 1024,
            decoder: DecoderConfig::default(),
            meters: MeterLimits::default(),
            max_interfaces: 8,
            max_dtcs: crate::j1939::dm::MAX_DTCS,
            max_dead_letters: 100,
            max_vehicles: 200_000,
            max_tracked_vehicles: 1_000_000,
            vehicle_idle: Duration::from_millis(10 * 60 * 1000),
            min_event_time: DEFAULT_MIN_EVENT_TIME,
            max_future: Duration::from_millis(24 * 3600 * 1000),
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
    /// A fault list longer than [`PipelineConfig::max_dtcs`].
    TooManyDtcs,
    /// An event time outside the plausible window.
    ImplausibleTime,
    /// A new vehicle when [`PipelineConfig::max_tracked_vehicles`] are known.
    TooManyVehicles,
}

impl DeadLetterReason {
    pub const ALL: [Self; 12] = [
        Self::Topic,
        Self::PayloadTooLarge,
        Self::NotUtf8,
        Self::Candump,
        Self::Telemetry,
        Self::J1939,
        Self::Transport,
        Self::TooManyInterfaces,
        Self::Meter,
        Self::TooManyDtcs,
        Self::ImplausibleTime,
        Self::TooManyVehicles,
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
            Self::TooManyDtcs => "too_many_dtcs",
            Self::ImplausibleTime => "implausible_time",
            Self::TooManyVehicles => "too_many_vehicles",
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
    /// The further dead letters of the same message this record stands for,
    /// by reason: empty but on the last record of a message that made more
    /// than [`PipelineConfig::max_dead_letters`].
    pub more: Vec<(DeadLetterReason, u64)>,
    /// The vehicle the topic names; `None` when the topic is not a C1
    /// data topic (a `topic` dead letter).
    pub vehicle: Option<Arc<VehicleKey>>,
}

impl DeadLetter {
    /// The rejected messages and lines this record counts, by reason: itself
    /// and those it stands for.
    pub fn counts(&self) -> impl Iterator<Item = (DeadLetterReason, u64)> + '_ {
        std::iter::once((self.reason, 1)).chain(self.more.iter().copied())
    }
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
    /// One reading of a condition signal (C12): a J1939 parameter, a
    /// telemetry `signals` entry or a Modbus register. The store keeps
    /// windows of them (count, mean, spread, min, max), never the samples.
    Signal {
        vehicle: Arc<VehicleKey>,
        ts: Timestamp,
        signal: SignalName,
        value: f64,
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
    /// One J1939 decoder per candump interface, the heavy and short-lived
    /// part (transport sessions last seconds): dropped when the vehicle is
    /// among the least recently seen beyond `max_vehicles`, or idle.
    networks: Vec<(Box<str>, J1939Decoder)>,
    faults: FaultTracker,
    meters: [Option<MeterTrack>; 3],
    /// The pipeline's message count when it last sent one (LRU order).
    seen_tick: u64,
    /// The receive time of its last message (idleness).
    seen_at: Timestamp,
}

impl VehicleState {
    fn new(key: Arc<VehicleKey>) -> Self {
        Self {
            key,
            networks: Vec::new(),
            faults: FaultTracker::default(),
            meters: [None, None, None],
            seen_tick: 0,
            seen_at: Timestamp::default(),
        }
    }

    /// Nothing to continue from: a fresh state behaves the same.
    fn is_blank(&self) -> bool {
        self.faults.is_empty() && self.meters.iter().all(Option::is_none)
    }
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

/// The dead letters of the message being handled.
#[derive(Debug, Default)]
struct LetterTally {
    /// Records pushed so far.
    kept: usize,
    /// The first letter beyond the limit: it becomes the record that
    /// stands for the rest.
    summary: Option<DeadLetter>,
    /// The letters after it, by reason (`DeadLetterReason::ALL` order).
    more: [u64; DeadLetterReason::ALL.len()],
}

/// The ingest pipeline: all per-vehicle state of the fleet.
#[derive(Debug)]
pub struct Pipeline {
    config: PipelineConfig,
    /// Every vehicle's state, found through `index` once per message (a
    /// lookup per frame and event cost more than decoding them). A vehicle
    /// gets a state only once it has something to keep (a decoder, a fault
    /// list, a meter reading): a topic whose messages are all dead letters
    /// leaves nothing behind.
    vehicles: Vec<VehicleState>,
    /// `fleet/vehicle` → position in `vehicles`.
    index: HashMap<Box<str>, usize>,
    /// Positions of the vehicles that hold decoders.
    decoding: Vec<usize>,
    /// Messages handled: the clock of `VehicleState::seen_tick`.
    tick: u64,
    /// Receive time of the last sweep for idle decoders.
    swept_at: Option<Timestamp>,
    stats: PipelineStats,
    letters: LetterTally,
    events: Vec<J1939Event>,
    changes: Vec<EpisodeChange>,
    dtcs: Vec<(Dtc, Address)>,
}

/// Context for dead letters of one message.
struct Origin<'a> {
    topic: &'a str,
    received: Timestamp,
    /// The vehicle its topic names, once parsed.
    vehicle: Option<&'a Arc<VehicleKey>>,
    /// The latest plausible event time: `received` plus `max_future`.
    latest: Timestamp,
}

/// The vehicle a message is for, whose state is made when first needed.
struct Target<'a> {
    /// `fleet/vehicle`, the key of `Pipeline::index`.
    name: &'a str,
    key: &'a Arc<VehicleKey>,
    /// Its position in `Pipeline::vehicles`, once it has one.
    slot: Option<usize>,
}

/// `n` with thousands separated by commas, as a person reads a count.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A span of time in the largest whole unit: `1 day`, `36 h`, `90 s`.
fn span(d: Duration) -> String {
    const S: i64 = 1_000_000;
    let us = d.as_micros();
    match us {
        _ if us % (86_400 * S) == 0 && us / (86_400 * S) == 1 => "1 day".to_owned(),
        _ if us % (86_400 * S) == 0 => format!("{} days", us / (86_400 * S)),
        _ if us % (3_600 * S) == 0 => format!("{} h", us / (3_600 * S)),
        _ => format!("{} s", us / S),
    }
}

impl Pipeline {
    pub fn new(config: PipelineConfig) -> Self {
        Self {
            config,
            vehicles: Vec::new(),
            index: HashMap::new(),
            decoding: Vec::new(),
            tick: 0,
            swept_at: None,
            stats: PipelineStats::default(),
            letters: LetterTally::default(),
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
                faults: v.faults,
                meters: v.meters,
                ..VehicleState::new(Arc::new(v.vehicle))
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
            .filter(|v| !v.is_blank())
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

    /// Vehicles with state (fault episodes, meters or decoders).
    pub fn vehicle_count(&self) -> usize {
        self.vehicles.len()
    }

    /// Vehicles whose J1939 decoders are held: at most `max_vehicles`.
    pub fn decoder_count(&self) -> usize {
        self.decoding.len()
    }

    /// Handles one message, pushing the records it yields into `out`;
    /// returns the vehicle it came from when its topic names one.
    pub fn handle(&mut self, msg: Message<'_>, out: &mut Vec<Record>) -> Option<Arc<VehicleKey>> {
        // `close_letters` leaves the tally fresh for the next message.
        let vehicle = self.handle_message(msg, out);
        self.close_letters(out);
        vehicle
    }

    fn handle_message(
        &mut self,
        msg: Message<'_>,
        out: &mut Vec<Record>,
    ) -> Option<Arc<VehicleKey>> {
        self.stats.messages += 1;
        self.tick += 1;
        self.sweep_idle(msg.received);
        let topic = match topic::parse(&self.config.topic_prefix, msg.topic) {
            Ok(t) => t,
            Err(e) => {
                let origin = Origin {
                    topic: msg.topic,
                    received: msg.received,
                    vehicle: None,
                    latest: msg.received,
                };
                let detail = || format!("topic {e}");
                self.dead(out, &origin, msg.payload, DeadLetterReason::Topic, detail);
                return None;
            }
        };
        let slot = self.index.get(topic.vehicle_key).copied();
        if slot.is_none() && self.vehicles.len() >= self.config.max_tracked_vehicles {
            let origin = Origin {
                topic: msg.topic,
                received: msg.received,
                vehicle: None,
                latest: msg.received,
            };
            let max = self.config.max_tracked_vehicles;
            let detail = || {
                format!(
                    "{max} vehicles are known ([ingest] max_tracked_vehicles): a further vehicle's messages are refused"
                )
            };
            self.dead(
                out,
                &origin,
                msg.payload,
                DeadLetterReason::TooManyVehicles,
                detail,
            );
            return None;
        }
        let key = match slot.and_then(|v| self.vehicles.get_mut(v)) {
            Some(state) => {
                state.seen_tick = self.tick;
                state.seen_at = msg.received;
                state.key.clone()
            }
            None => Arc::new(VehicleKey {
                fleet: topic.fleet_id(),
                vehicle: topic.vehicle_id(),
            }),
        };
        let origin = Origin {
            topic: msg.topic,
            received: msg.received,
            vehicle: Some(&key),
            latest: msg.received.saturating_add(self.config.max_future),
        };
        let mut target = Target {
            name: topic.vehicle_key,
            key: &key,
            slot,
        };
        if msg.payload.len() > self.config.max_payload {
            let max = self.config.max_payload;
            let detail = || format!("payload of {} bytes exceeds {max}", msg.payload.len());
            let reason = DeadLetterReason::PayloadTooLarge;
            self.dead(out, &origin, msg.payload, reason, detail);
            return Some(key);
        }
        let Ok(text) = std::str::from_utf8(msg.payload) else {
            let detail = || "payload is not UTF-8 text".to_owned();
            self.dead(out, &origin, msg.payload, DeadLetterReason::NotUtf8, detail);
            return Some(key);
        };
        match topic.channel {
            Channel::Can => self.handle_can(&mut target, &origin, text, out),
            Channel::Telemetry => self.handle_telemetry(&mut target, &origin, text, out),
        }
        Some(key)
    }

    /// The vehicle's state, made now if it has none yet.
    #[inline]
    fn state_of(&mut self, target: &mut Target<'_>, received: Timestamp) -> usize {
        match target.slot {
            Some(v) => v,
            None => self.new_state(target, received),
        }
    }

    #[cold]
    fn new_state(&mut self, target: &mut Target<'_>, received: Timestamp) -> usize {
        let v = self.vehicles.len();
        self.vehicles.push(VehicleState {
            seen_tick: self.tick,
            seen_at: received,
            ..VehicleState::new(target.key.clone())
        });
        self.index.insert(target.name.into(), v);
        target.slot = Some(v);
        v
    }

    /// Drops the decoders of vehicles without a message for
    /// `vehicle_idle`; looks at most four times per idle period (and when
    /// the receive time went backwards).
    fn sweep_idle(&mut self, now: Timestamp) {
        let idle = self.config.vehicle_idle.as_micros().max(0);
        let every = (idle / 4).max(1_000_000);
        if let Some(last) = self.swept_at
            && now.as_micros() >= last.as_micros()
            && now.as_micros() - last.as_micros() < every
        {
            return;
        }
        self.swept_at = Some(now);
        let cutoff = now.as_micros().saturating_sub(idle);
        let vehicles = &mut self.vehicles;
        self.decoding.retain(|&v| match vehicles.get_mut(v) {
            Some(state) if state.seen_at.as_micros() < cutoff => {
                state.networks = Vec::new();
                false
            }
            Some(state) => !state.networks.is_empty(),
            None => false,
        });
    }

    /// Keeps at most `max_vehicles` vehicles' decoders: when there are more,
    /// the least recently seen are dropped, down to 7/8 of the limit so
    /// that the selection runs once per eighth of it, not per vehicle.
    /// The newest (the one being handled) always keeps its decoders.
    fn limit_decoders(&mut self) {
        let max = self.config.max_vehicles.max(1);
        if self.decoding.len() <= max {
            return;
        }
        let keep = (max - max / 8).max(1);
        let drop = self.decoding.len() - keep;
        let vehicles = &mut self.vehicles;
        let tick = |v: &usize| vehicles.get(*v).map_or(0, |s| s.seen_tick);
        if drop < self.decoding.len() {
            self.decoding.select_nth_unstable_by_key(drop, tick);
        }
        for v in self.decoding.drain(..drop) {
            if let Some(state) = vehicles.get_mut(v) {
                state.networks = Vec::new();
            }
        }
    }

    /// Writes the record that stands for the message's dead letters beyond
    /// the limit, if it made that many.
    fn close_letters(&mut self, out: &mut Vec<Record>) {
        let kept = std::mem::take(&mut self.letters.kept);
        let Some(mut summary) = self.letters.summary.take() else {
            return;
        };
        let more: Vec<(DeadLetterReason, u64)> = DeadLetterReason::ALL
            .into_iter()
            .zip(std::mem::take(&mut self.letters.more))
            .filter(|&(_, n)| n > 0)
            .collect();
        let total: u64 = more.iter().map(|&(_, n)| n).sum();
        if total > 0 {
            let by_reason: Vec<String> = more
                .iter()
                .map(|&(r, n)| format!("{} {}", grouped(n), r.as_str()))
                .collect();
            summary.detail = format!(
                "{}; and {} more dead letters of this message, counted but not kept one by one ({}): the first {} are kept",
                summary.detail,
                grouped(total),
                by_reason.join(", "),
                grouped(kept as u64 + 1),
            );
        }
        summary.more = more;
        out.push(Record::DeadLetter(summary));
    }

    /// A dead letter of the message being handled: counted always, kept as
    /// a record while the message has made fewer than `max_dead_letters`
    /// (`detail` is only written for those).
    fn dead(
        &mut self,
        out: &mut Vec<Record>,
        origin: &Origin<'_>,
        bytes: &[u8],
        reason: DeadLetterReason,
        detail: impl FnOnce() -> String,
    ) {
        *self.stats.dead_letters.entry(reason).or_default() += 1;
        let tally = &mut self.letters;
        let letter = || DeadLetter {
            received: origin.received,
            topic: origin.topic.chars().take(256).collect(),
            excerpt: excerpt(bytes),
            reason,
            detail: detail(),
            more: Vec::new(),
            vehicle: origin.vehicle.cloned(),
        };
        if tally.kept < self.config.max_dead_letters {
            tally.kept += 1;
            out.push(Record::DeadLetter(letter()));
        } else if tally.summary.is_none() {
            tally.summary = Some(letter());
        } else if let Some(n) = tally.more.get_mut(reason as usize) {
            *n += 1;
        }
    }

    /// Whether `ts` can be an event time of the message of `origin`
    /// (checked for every frame: kept cheap).
    #[inline]
    fn plausible(&self, ts: Timestamp, origin: &Origin<'_>) -> bool {
        ts >= self.config.min_event_time && ts <= origin.latest
    }

    /// Why `ts` cannot be an event time of a message received at
    /// `received`, if it cannot.
    #[cold]
    fn implausible(&self, ts: Timestamp, received: Timestamp) -> Option<String> {
        if ts < self.config.min_event_time {
            Some(format!(
                "event time {ts} is before {}, the earliest plausible",
                self.config.min_event_time
            ))
        } else if ts > received.saturating_add(self.config.max_future) {
            Some(format!(
                "event time {ts} is more than {} after the message was received ({received})",
                span(self.config.max_future)
            ))
        } else {
            None
        }
    }

    fn handle_can(
        &mut self,
        target: &mut Target<'_>,
        origin: &Origin<'_>,
        text: &str,
        out: &mut Vec<Record>,
    ) {
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let record = match candump::parse_line(line) {
                Ok(Some(r)) => r,
                // candump writes DROPCOUNT lines; other text that is not a
                // frame would otherwise vanish without a trace.
                Ok(None) if line.trim().is_empty() || line.starts_with("DROPCOUNT") => continue,
                Ok(None) => {
                    let detail = || format!("line {n}: not a candump -L line (no '(timestamp)')");
                    let reason = DeadLetterReason::Candump;
                    self.dead(out, origin, line.as_bytes(), reason, detail);
                    continue;
                }
                Err(e) => {
                    let detail = || format!("line {n}: {e}");
                    let reason = DeadLetterReason::Candump;
                    self.dead(out, origin, line.as_bytes(), reason, detail);
                    continue;
                }
            };
            self.stats.can_frames += 1;
            if let FrameId::Standard(_) = record.frame.id {
                self.stats.standard_frames += 1;
                continue;
            }
            if !self.plausible(record.frame.ts, origin) {
                let why = self.implausible(record.frame.ts, origin.received);
                let detail = || format!("line {n}: {}", why.unwrap_or_default());
                let reason = DeadLetterReason::ImplausibleTime;
                self.dead(out, origin, line.as_bytes(), reason, detail);
                continue;
            }
            let v = self.state_of(target, origin.received);
            let Some(vehicle) = self.vehicles.get_mut(v) else {
                return;
            };
            let mut first_decoder = false;
            let network = match vehicle
                .networks
                .iter()
                .position(|(i, _)| **i == *record.interface)
            {
                Some(i) => i,
                None if vehicle.networks.len() < self.config.max_interfaces => {
                    first_decoder = vehicle.networks.is_empty();
                    let decoder = J1939Decoder::new(&self.config.decoder);
                    vehicle.networks.push((record.interface.into(), decoder));
                    vehicle.networks.len() - 1
                }
                None => {
                    let max = self.config.max_interfaces;
                    let detail = || format!("line {n}: more than {max} interfaces");
                    let reason = DeadLetterReason::TooManyInterfaces;
                    self.dead(out, origin, line.as_bytes(), reason, detail);
                    continue;
                }
            };
            let mut events = std::mem::take(&mut self.events);
            if let Some((_, decoder)) = vehicle.networks.get_mut(network) {
                decoder.handle(&record.frame, &mut events);
            }
            if first_decoder {
                // The vehicle being handled is the newest: it keeps its decoders.
                self.decoding.push(v);
                self.limit_decoders();
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
            } => {
                let max = self.config.max_dtcs;
                if message.dtcs.len() > max {
                    let detail = || {
                        format!(
                            "line {n}: {:?} from SA {source} lists {} DTCs, more than the {max} a fault list may hold",
                            message.kind,
                            message.dtcs.len(),
                        )
                    };
                    let reason = DeadLetterReason::TooManyDtcs;
                    self.dead(out, origin, line.as_bytes(), reason, detail);
                    return;
                }
                self.apply_dm(v, ts, source, &message, out);
            }
            J1939Event::Meter {
                ts, meter, value, ..
            } => self.apply_meter(v, origin, line, ts, meter, value, out),
            J1939Event::Signal {
                ts, signal, value, ..
            } => {
                if let Some(vehicle) = self.vehicles.get(v) {
                    out.push(Record::Signal {
                        vehicle: vehicle.key.clone(),
                        ts,
                        signal: signal.into(),
                        value,
                    });
                }
            }
            J1939Event::TransportFailed(f) => {
                let detail = || {
                    format!(
                        "line {n}: transport from SA {} to {}: {}",
                        f.source, f.destination, f.reason
                    )
                };
                let reason = DeadLetterReason::Transport;
                self.dead(out, origin, line.as_bytes(), reason, detail);
            }
            J1939Event::Invalid {
                source, pgn, error, ..
            } => {
                let detail = || format!("line {n}: PGN {pgn} from SA {source}: {error}");
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
                let detail = || format!("{anomaly} at {ts}");
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
        target: &mut Target<'_>,
        origin: &Origin<'_>,
        text: &str,
        out: &mut Vec<Record>,
    ) {
        let bytes = text.as_bytes();
        let t = match telemetry::parse(bytes) {
            Ok(t) => t,
            Err(e) => {
                let detail = || e.to_string();
                return self.dead(out, origin, bytes, DeadLetterReason::Telemetry, detail);
            }
        };
        if !self.plausible(t.ts, origin) {
            let why = self.implausible(t.ts, origin.received);
            let reason = DeadLetterReason::ImplausibleTime;
            return self.dead(out, origin, bytes, reason, || why.unwrap_or_default());
        }
        if let Some(list) = t.dtcs.as_ref().filter(|l| l.len() > self.config.max_dtcs) {
            let detail = format!(
                "`dtcs` lists {} DTCs, more than the {} a fault list may hold; the whole message is refused",
                list.len(),
                self.config.max_dtcs
            );
            return self.dead(out, origin, bytes, DeadLetterReason::TooManyDtcs, || detail);
        }
        for (signal, value) in &t.signals {
            out.push(Record::Signal {
                vehicle: target.key.clone(),
                ts: t.ts,
                signal: signal.clone(),
                value: *value,
            });
        }
        let readings = [
            (Meter::EngineHours, t.engine_hours),
            (Meter::PtoHours, t.pto_hours),
            (Meter::OdometerKm, t.odometer_km),
        ];
        if t.dtcs.is_none() && readings.iter().all(|(_, value)| value.is_none()) {
            return;
        }
        let v = self.state_of(target, origin.received);
        for (meter, value) in readings {
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
