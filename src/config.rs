//! The one TOML configuration file (contract C9). Every section has
//! defaults, so an empty file (or none) runs fleetcare on the embedded
//! defaults; unknown keys are an error that names the key. Secrets never
//! live here: they are named by environment variable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fleetcare_ingest::ids::{FleetId, VehicleId};
use serde::Deserialize;

use fleetcare_ingest::ids::ModelId;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub models_dir: PathBuf,
    pub mqtt: MqttConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub jobs: JobsConfig,
    pub ingest: IngestConfig,
    pub store: StoreConfig,
    pub detect: DetectConfig,
    /// Ticket deadlines per priority and complaint escalation (C8).
    pub sla: SlaConfig,
    pub modbus: ModbusConfig,
    pub webhooks: Vec<WebhookConfig>,
    pub alerts: AlertsConfig,
    /// The InfluxDB sink; absent: off.
    pub influxdb: Option<InfluxConfig>,
    /// Where alerts for the support team go (C10).
    pub support: SupportConfig,
    /// Service visits: which tasks join a vehicle's visit (C10).
    pub visits: VisitsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./fleetcare-data"),
            models_dir: PathBuf::from("models"),
            mqtt: MqttConfig::default(),
            http: HttpConfig::default(),
            database: DatabaseConfig::default(),
            jobs: JobsConfig::default(),
            ingest: IngestConfig::default(),
            store: StoreConfig::default(),
            detect: DetectConfig::default(),
            sla: SlaConfig::default(),
            modbus: ModbusConfig::default(),
            webhooks: Vec::new(),
            alerts: AlertsConfig::default(),
            influxdb: None,
            support: SupportConfig::default(),
            visits: VisitsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// An external broker, e.g. `mqtts://user@broker.example:8883`; absent:
    /// the embedded broker.
    pub url: Option<String>,
    /// Address of the embedded broker; port 0 picks a free one.
    pub listen: String,
    pub topic_prefix: String,
    /// The client id of fleetcare's subscription to an external broker.
    /// The broker keeps the session (and the messages queued for it)
    /// under this id while fleetcare is down, so it must stay the same
    /// across restarts.
    pub client_id: String,
    /// The environment variable holding the password for the user of `url`.
    pub password_env: String,
    /// PEM file of the certificate authorities to trust for `mqtts://`;
    /// absent: the Mozilla roots.
    pub ca_file: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// Longest wait between reconnection attempts (the back-off doubles up to it).
    #[serde(with = "humantime_serde")]
    pub max_reconnect_delay: Duration,
    /// Largest MQTT packet accepted; absent: `ingest.max_payload_bytes`
    /// plus 64 KiB for the topic and header ([`Config::max_packet_bytes`]).
    /// Payloads above `ingest.max_payload_bytes` but below this are dead
    /// letters; the embedded broker closes the connection of a client
    /// that announces a larger packet, before reading it.
    pub max_packet_bytes: Option<usize>,
    /// Gateway logins of the embedded broker, each for one fleet (C14).
    pub logins: Vec<MqttLogin>,
    /// Whether the embedded broker accepts clients without a login.
    /// Absent: only while it listens on loopback and no logins are
    /// configured. `true` on any other address is logged as a warning at
    /// every start.
    pub allow_anonymous: Option<bool>,
    /// PEM certificate chain for TLS on the embedded broker's listener
    /// (with `tls_key_file`); absent: plain TCP.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// When gateways' QoS 1 messages to the embedded broker are acknowledged.
    pub embedded_ack: EmbeddedAck,
    /// Memory the embedded broker may hold per subscription filter for the
    /// alerts it delivers (its log segments: size × count).
    pub broker_memory_bytes: usize,
    /// Clients connected to the embedded broker at once; more are turned away.
    pub max_connections: usize,
    /// QoS 1 messages a client of the embedded broker may have unacknowledged;
    /// beyond it fleetcare stops reading from that client until it acknowledges.
    pub max_inflight: usize,
}

/// When the embedded broker acknowledges a gateway's QoS 1 message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddedAck {
    /// Once the message is in fleetcare's write-ahead log (synced): a
    /// message the gateway was told arrived survives a crash.
    #[default]
    AfterStore,
    /// As soon as it arrives; the writer's bounded queue still holds the
    /// gateways back when storage falls behind. A crash loses what was
    /// acknowledged and not yet synced.
    OnReceipt,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            url: None,
            listen: "0.0.0.0:1883".to_owned(),
            topic_prefix: "fleet".to_owned(),
            client_id: "fleetcare-ingest".to_owned(),
            password_env: "FLEETCARE_MQTT_PASSWORD".to_owned(),
            ca_file: None,
            keep_alive: Duration::from_secs(30),
            max_reconnect_delay: Duration::from_secs(30),
            max_packet_bytes: None,
            logins: Vec::new(),
            allow_anonymous: None,
            tls_cert_file: None,
            tls_key_file: None,
            embedded_ack: EmbeddedAck::default(),
            broker_memory_bytes: 64 << 20,
            max_connections: 10_000,
            max_inflight: 1_000,
        }
    }
}

/// Room for the topic and the packet's header beside the largest payload.
pub const MQTT_HEADER_ROOM: usize = 64 * 1024;

/// A gateway login of the embedded broker (C9, C14): it belongs to one
/// fleet, or to one vehicle of it, and may publish only that fleet's (or
/// vehicle's) `can` and `telemetry` topics and read that fleet's alerts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttLogin {
    /// Letters, digits, '_', '.', '-' (it names the login in logs).
    pub username: String,
    /// The environment variable that holds the password.
    pub password_env: String,
    pub fleet: FleetId,
    /// Absent: any vehicle of the fleet.
    #[serde(default)]
    pub vehicle: Option<VehicleId>,
}

/// The API and web UI listener, its limits and the web UI's sessions
/// (C14; docs/decisions.md, "HTTP limits" and "Roles, tokens and sessions").
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: String,
    /// A connection that has not sent a whole request head (request line
    /// and headers) this long after it opened, or after its previous
    /// response, is closed.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A request not answered within this is answered 503 (its body upload
    /// included).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Requests served at once; one more is answered 503 at once.
    pub max_requests_in_flight: usize,
    /// A web UI session unused this long ends.
    #[serde(with = "humantime_serde")]
    pub session_idle: Duration,
    /// A web UI session ends this long after sign-in, however busy.
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            header_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_requests_in_flight: 256,
            session_idle: Duration::from_secs(12 * 3600),
            session_lifetime: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl HttpConfig {
    fn validate(&self) -> Result<(), String> {
        if self.header_timeout.is_zero()
            || self.request_timeout.is_zero()
            || self.session_idle.is_zero()
            || self.session_lifetime.is_zero()
        {
            return Err("http timeouts and session times must be longer than zero".into());
        }
        if self.max_requests_in_flight == 0 {
            return Err("http.max_requests_in_flight must be at least 1".into());
        }
        if self.session_idle > self.session_lifetime {
            return Err(
                "http.session_idle is longer than http.session_lifetime; a session ends at the lifetime anyway".into(),
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// e.g. `postgres://fleetcare@db/fleetcare`; absent: SQLite under data_dir.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(300),
        }
    }
}

/// Limits of the ingest pipeline and the store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Larger MQTT payloads are dead letters.
    pub max_payload_bytes: usize,
    /// Engine and PTO hours per hour of wall time above which a reading is refused.
    pub max_hours_per_hour: f64,
    /// Kilometres per hour above which an odometer reading is refused.
    pub max_km_per_hour: f64,
    /// At most one stored reading per meter per this time.
    #[serde(with = "humantime_serde")]
    pub meter_store_every: Duration,
    /// The most DTCs one fault list (telemetry `dtcs`, a DM1 or DM2) may
    /// hold; a longer one is a `too_many_dtcs` dead letter, refused whole.
    pub max_dtcs_per_message: usize,
    /// Dead-letter records one message makes at most; one more stands for
    /// the rest (all are counted in `/metrics`).
    pub max_dead_letters_per_message: usize,
    /// Vehicles whose J1939 decoders (transport sessions in flight) are
    /// kept in memory; beyond it the least recently seen lose them.
    pub max_vehicles: usize,
    /// Vehicles whose state (episodes, meters, last seen) is kept; once
    /// this many are known, messages of further vehicles are
    /// `too_many_vehicles` dead letters. Bounds the memory of a login that
    /// invents vehicle names; well above any one node's fleet.
    pub max_tracked_vehicles: usize,
    /// A vehicle's decoders are dropped after this long without a message.
    #[serde(with = "humantime_serde")]
    pub vehicle_idle: Duration,
    /// Event times before this (RFC 3339) are `implausible_time` dead letters.
    pub min_event_time: String,
    /// Event times more than this after a message was received are
    /// `implausible_time` dead letters.
    #[serde(with = "humantime_serde")]
    pub max_future: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_payload_bytes: 256 * 1024,
            max_hours_per_hour: 1.0,
            max_km_per_hour: 150.0,
            meter_store_every: Duration::from_secs(600),
            max_dtcs_per_message: fleetcare_ingest::j1939::dm::MAX_DTCS,
            max_dead_letters_per_message: 100,
            max_vehicles: 200_000,
            max_tracked_vehicles: 1_000_000,
            vehicle_idle: Duration::from_secs(600),
            min_event_time: "2000-01-01T00:00:00Z".to_owned(),
            max_future: Duration::from_secs(24 * HOUR),
        }
    }
}

impl IngestConfig {
    /// `min_event_time` as a time.
    fn min_event_time(&self) -> Result<fleetcare_ingest::Timestamp, String> {
        chrono::DateTime::parse_from_rfc3339(&self.min_event_time)
            .map(|t| fleetcare_ingest::Timestamp::from_datetime(&t))
            .map_err(|_| {
                format!(
                    "ingest.min_event_time {:?} is not an RFC 3339 time such as \"2000-01-01T00:00:00Z\"",
                    self.min_event_time
                )
            })
    }

    fn validate(&self) -> Result<(), String> {
        if self.max_hours_per_hour <= 0.0 || self.max_km_per_hour <= 0.0 {
            return Err("ingest meter rates must be positive".into());
        }
        if self.max_dtcs_per_message == 0 {
            return Err("ingest.max_dtcs_per_message must be at least 1".into());
        }
        if self.max_vehicles == 0 {
            return Err("ingest.max_vehicles must be at least 1".into());
        }
        if self.max_tracked_vehicles == 0 {
            return Err("ingest.max_tracked_vehicles must be at least 1".into());
        }
        if self.vehicle_idle < Duration::from_secs(10) {
            return Err(
                "ingest.vehicle_idle must be at least 10s: J1939 transfers take seconds".into(),
            );
        }
        self.min_event_time()?;
        if self.max_future.is_zero() {
            return Err("ingest.max_future must be longer than zero".into());
        }
        Ok(())
    }
}

/// The store under `data_dir`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Compact the write-ahead log into Parquet once it holds this many bytes.
    pub compact_log_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            compact_log_bytes: 64 << 20,
        }
    }
}

/// Thresholds of contract C5, and the windows the reports measure over
/// (docs/reports.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    pub recurring_min_episodes: u32,
    pub recurring_window_days: u32,
    pub repeat_repair_days: u32,
    /// A delivered repair is verified once the vehicle's engine ran this
    /// many hours without its code coming back (C10).
    pub verify_after_engine_hours: f64,
    pub batch_min_vehicles: u32,
    pub batch_min_share: f64,
    pub batch_window_days: u32,
    /// Usage per day (maintenance forecasts) is the meter's rise over this
    /// many days; whole weeks, so weekly rest days weigh the same whatever
    /// the as-of weekday.
    pub usage_window_days: u32,
    /// Weeks the trends report covers, the as-of week included.
    pub trend_weeks: u32,
    /// Weeks the parts forecast covers.
    pub parts_weeks: u32,
    /// Corrective parts demand comes from each model's failure rate over
    /// this many days.
    pub failure_rate_days: u32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            recurring_min_episodes: 3,
            recurring_window_days: 30,
            repeat_repair_days: 30,
            verify_after_engine_hours: 72.0,
            batch_min_vehicles: 3,
            batch_min_share: 0.2,
            batch_window_days: 30,
            usage_window_days: 28,
            trend_weeks: 12,
            parts_weeks: 12,
            failure_rate_days: 90,
        }
    }
}

/// `[sla]`: how long a ticket may stay `open` (respond) and take to reach
/// `delivered` (resolve), per priority; and when an unanswered complaint
/// is escalated. Defaults from C8.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    #[serde(with = "humantime_serde")]
    pub p1_respond: Duration,
    #[serde(with = "humantime_serde")]
    pub p1_resolve: Duration,
    #[serde(with = "humantime_serde")]
    pub p2_respond: Duration,
    #[serde(with = "humantime_serde")]
    pub p2_resolve: Duration,
    #[serde(with = "humantime_serde")]
    pub p3_respond: Duration,
    #[serde(with = "humantime_serde")]
    pub p3_resolve: Duration,
    #[serde(with = "humantime_serde")]
    pub p4_respond: Duration,
    #[serde(with = "humantime_serde")]
    pub p4_resolve: Duration,
    /// A complaint still `open` this long after it came in is escalated
    /// (its priority raised one step), once.
    #[serde(with = "humantime_serde")]
    pub complaint_escalate_after: Duration,
    /// The service calendar's time zone (an IANA name such as
    /// `Asia/Shanghai`): service hours, working days and holidays are its
    /// wall-clock times and dates (C10).
    pub timezone: TimeZone,
    /// The hotline's hours on a working day, `HH:MM-HH:MM`.
    pub service_hours: ServiceHours,
    /// The days of the week service works, e.g. `["mon", "tue"]`.
    pub working_days: Vec<WorkingDay>,
    /// Dates (`YYYY-MM-DD`) service does not work although their weekday does.
    pub holidays: Vec<Holiday>,
    /// Service time within which a customer report (complaint, manual) is
    /// answered: counted in service hours only.
    #[serde(with = "humantime_serde")]
    pub customer_respond: Duration,
    /// Working days after the report by whose end a technician is on site,
    /// for an outlet in a city and in a rural zone.
    pub on_site_days_city: u32,
    pub on_site_days_rural: u32,
    /// The zone assumed until a dispatch names one.
    pub default_zone: Zone,
    /// After `delivered`, the follow-up call (the close with the
    /// customer's score) is due within this time.
    #[serde(with = "humantime_serde")]
    pub follow_up_after: Duration,
}

impl Default for SlaConfig {
    fn default() -> Self {
        let hours = |h| Duration::from_secs(h * HOUR);
        Self {
            p1_respond: hours(1),
            p1_resolve: hours(24),
            p2_respond: hours(4),
            p2_resolve: hours(72),
            p3_respond: hours(24),
            p3_resolve: hours(7 * 24),
            p4_respond: hours(72),
            p4_resolve: hours(30 * 24),
            complaint_escalate_after: hours(4),
            timezone: TimeZone::default(),
            service_hours: ServiceHours::default(),
            working_days: WorkingDay::MON_TO_FRI.to_vec(),
            holidays: Vec::new(),
            customer_respond: hours(1),
            on_site_days_city: 1,
            on_site_days_rural: 2,
            default_zone: Zone::City,
            follow_up_after: hours(3 * 24),
        }
    }
}

const HOUR: u64 = 3600;

/// The longest deadline accepted: longer ones are typos, and this keeps
/// every deadline a representable date.
const MAX_SLA: Duration = Duration::from_secs(10 * 365 * 24 * HOUR);

impl SlaConfig {
    /// (priority name, respond, resolve) for P1 to P4.
    fn per_priority(&self) -> [(&'static str, Duration, Duration); 4] {
        [
            ("p1", self.p1_respond, self.p1_resolve),
            ("p2", self.p2_respond, self.p2_resolve),
            ("p3", self.p3_respond, self.p3_resolve),
            ("p4", self.p4_respond, self.p4_resolve),
        ]
    }

    /// Every time longer than zero, at most ten years, and no respond time
    /// longer than its resolve time.
    pub fn validate(&self) -> Result<(), String> {
        for (name, respond, resolve) in self.per_priority() {
            if respond.is_zero() || resolve.is_zero() || resolve > MAX_SLA {
                return Err(format!(
                    "sla.{name}_respond and sla.{name}_resolve must be longer than zero and at most 10 years"
                ));
            }
            if respond > resolve {
                return Err(format!(
                    "sla.{name}_respond is longer than sla.{name}_resolve; a ticket must be answered before it can be resolved"
                ));
            }
        }
        if self.complaint_escalate_after.is_zero() || self.complaint_escalate_after > MAX_SLA {
            return Err(
                "sla.complaint_escalate_after must be longer than zero and at most 10 years".into(),
            );
        }
        if self.working_days.is_empty() {
            return Err(
                "sla.working_days is empty; name the days service works, e.g. [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]"
                    .into(),
            );
        }
        if self.customer_respond.is_zero() || self.customer_respond > MAX_SLA {
            return Err(
                "sla.customer_respond must be longer than zero and at most 10 years".into(),
            );
        }
        if !(1..=60).contains(&self.on_site_days_city)
            || !(1..=60).contains(&self.on_site_days_rural)
        {
            return Err("sla.on_site_days_city and sla.on_site_days_rural must be 1 to 60".into());
        }
        if self.follow_up_after.is_zero() || self.follow_up_after > MAX_SLA {
            return Err("sla.follow_up_after must be longer than zero and at most 10 years".into());
        }
        Ok(())
    }

    /// Working days to reach a customer on site from an outlet in `zone`.
    pub fn on_site_days(&self, zone: Zone) -> u32 {
        match zone {
            Zone::City => self.on_site_days_city,
            Zone::Rural => self.on_site_days_rural,
        }
    }
}

/// An IANA time zone, checked when the file is read (`UTC` by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZone(pub chrono_tz::Tz);

impl Default for TimeZone {
    fn default() -> Self {
        Self(chrono_tz::Tz::UTC)
    }
}

impl TryFrom<String> for TimeZone {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse::<chrono_tz::Tz>().map(Self).map_err(|_| {
            format!("{s:?} is not an IANA time zone name; use e.g. \"Asia/Shanghai\" or \"Europe/Berlin\"")
        })
    }
}

impl From<TimeZone> for String {
    fn from(tz: TimeZone) -> Self {
        tz.0.name().to_owned()
    }
}

/// Opening and closing time of the hotline, `HH:MM-HH:MM` (local time;
/// `24:00` closes at midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceHours {
    /// Minutes after midnight.
    pub open_minute: u32,
    /// Minutes after midnight, after `open_minute`; at most 24 × 60.
    pub close_minute: u32,
}

impl Default for ServiceHours {
    fn default() -> Self {
        Self {
            open_minute: 8 * 60,
            close_minute: 18 * 60,
        }
    }
}

impl TryFrom<String> for ServiceHours {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || {
            format!(
                "service hours {s:?} are not HH:MM-HH:MM with the opening first, e.g. \"08:00-18:00\""
            )
        };
        let minute = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
            (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
        };
        let (open, close) = s.split_once('-').ok_or_else(bad)?;
        let (open_minute, close_minute) = (
            minute(open).ok_or_else(bad)?,
            minute(close).ok_or_else(bad)?,
        );
        if open_minute >= close_minute {
            return Err(bad());
        }
        Ok(Self {
            open_minute,
            close_minute,
        })
    }
}

impl From<ServiceHours> for String {
    fn from(h: ServiceHours) -> Self {
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        format!("{}-{}", hm(h.open_minute), hm(h.close_minute))
    }
}

/// A day of the week service works: `mon` … `sun`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkingDay(pub chrono::Weekday);

impl WorkingDay {
    pub const MON_TO_FRI: [Self; 5] = [
        Self(chrono::Weekday::Mon),
        Self(chrono::Weekday::Tue),
        Self(chrono::Weekday::Wed),
        Self(chrono::Weekday::Thu),
        Self(chrono::Weekday::Fri),
    ];
}

impl TryFrom<String> for WorkingDay {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse::<chrono::Weekday>().map(Self).map_err(|_| {
            format!("{s:?} is not a day of the week; use mon, tue, wed, thu, fri, sat or sun")
        })
    }
}

impl From<WorkingDay> for String {
    fn from(d: WorkingDay) -> Self {
        d.0.to_string().to_lowercase()
    }
}

/// A date service does not work, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Holiday(pub chrono::NaiveDate);

impl TryFrom<String> for Holiday {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
            .map(Self)
            .map_err(|_| format!("holiday {s:?} is not a date YYYY-MM-DD"))
    }
}

impl From<Holiday> for String {
    fn from(d: Holiday) -> Self {
        d.0.format("%Y-%m-%d").to_string()
    }
}

/// Where a service outlet is (C10): the on-site commitment depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    City,
    Rural,
}

impl Zone {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::City => "city",
            Self::Rural => "rural",
        }
    }

    /// `city` or `rural`; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "city" => Some(Self::City),
            "rural" => Some(Self::Rural),
            _ => None,
        }
    }
}

impl std::str::FromStr for Zone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "city" => Ok(Self::City),
            "rural" => Ok(Self::Rural),
            _ => Err(format!("zone {s:?} is not known; use city or rural")),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModbusConfig {
    pub devices: Vec<ModbusDevice>,
}

/// One body controller polled over Modbus TCP (`[[modbus.devices]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModbusDevice {
    /// `host:port` of the controller or of the Modbus TCP gateway before it.
    pub address: String,
    /// Unit id (slave id) to address. Absent: the `unit` of the model's
    /// register map, so one catalogue entry serves every truck of a model
    /// and only a gateway with several controllers behind it needs this.
    #[serde(default)]
    pub unit: Option<u8>,
    pub fleet: FleetId,
    pub vehicle: VehicleId,
    /// The truck model whose register map to read. Absent: the vehicle's
    /// model in the fleet registry; set it for a vehicle not imported yet.
    #[serde(default, deserialize_with = "optional_model_id")]
    pub model: Option<ModelId>,
    #[serde(with = "humantime_serde", default = "default_poll")]
    pub interval: Duration,
    /// How long one connection attempt or one read may take before the
    /// device counts as not answering (and the connection is dropped).
    #[serde(with = "humantime_serde", default = "default_modbus_timeout")]
    pub timeout: Duration,
}

fn default_poll() -> Duration {
    Duration::from_secs(10)
}

fn default_modbus_timeout() -> Duration {
    Duration::from_secs(2)
}

/// `ModelId` checks its alphabet in `new`; the config names a bad id the
/// same way it names any other bad value.
fn optional_model_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ModelId>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|id| ModelId::new(id).map_err(serde::de::Error::custom))
        .transpose()
}

/// Delivering alerts: the per-vehicle rate limit and webhook retries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// At most this many alerts per vehicle per `window`; the rest are
    /// sent as one digest when the window ends.
    pub max_per_vehicle: usize,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Webhook attempts before giving up (network errors, 5xx, 429).
    pub webhook_attempts: u32,
    /// Longest wait between webhook attempts (the back-off doubles from 1 s).
    #[serde(with = "humantime_serde")]
    pub webhook_max_delay: Duration,
    /// Tickets the fault starts of one message may raise (open, or add an
    /// occurrence to); further starts of it raise none and are counted.
    pub max_tickets_per_message: usize,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            max_per_vehicle: 3,
            window: Duration::from_secs(600),
            webhook_attempts: 8,
            webhook_max_delay: Duration::from_secs(60),
            max_tickets_per_message: 8,
        }
    }
}

/// `[support]`: the support team's channel (C10). Escalations, SLA
/// breaches, batch defects, overdue follow-ups and vehicles missing from
/// the registry reach support here, besides the customer's own channel.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupportConfig {
    /// The MQTT topic; absent: `{mqtt.topic_prefix}/_support/alerts`.
    pub alerts_topic: Option<String>,
    /// `[[support.webhooks]]`: signed like the fleets' webhooks.
    pub webhooks: Vec<SupportWebhookConfig>,
}

/// One webhook of the support team.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportWebhookConfig {
    pub url: String,
    /// The environment variable that holds the signing secret.
    pub secret_env: String,
}

impl SupportConfig {
    /// The support channel's MQTT topic.
    pub fn topic(&self, prefix: &str) -> String {
        self.alerts_topic
            .clone()
            .unwrap_or_else(|| format!("{prefix}/_support/alerts"))
    }
}

/// `[visits]`: a vehicle's service visit lists the tasks due soon or
/// overdue, and pulls in a task that falls due within `pull_in_days` (by
/// the vehicle's usage) or within `pull_in_share` of its interval.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VisitsConfig {
    pub pull_in_days: f64,
    pub pull_in_share: f64,
}

impl Default for VisitsConfig {
    fn default() -> Self {
        Self {
            pull_in_days: 30.0,
            pull_in_share: 0.1,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub fleet: FleetId,
    pub url: String,
    /// The environment variable that holds the signing secret.
    pub secret_env: String,
}

/// The InfluxDB 2 sink (`[influxdb]`): meters, fault episodes, lamps and
/// ticket history as line protocol. `url`, `org` and `bucket` are required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    /// e.g. `http://influxdb:8086` (no path: the client writes to /api/v2/write).
    pub url: String,
    pub org: String,
    pub bucket: String,
    /// The environment variable holding the API token (write access to
    /// the bucket); set it to an empty value for a server without auth.
    #[serde(default = "default_influx_token_env")]
    pub token_env: String,
    /// Lines per write request.
    #[serde(default = "default_batch_lines")]
    pub batch_lines: usize,
    /// A batch that is not full is written after this long.
    #[serde(default = "default_flush_interval", with = "humantime_serde")]
    pub flush_interval: Duration,
    /// A write without an answer by then has failed (and is retried).
    #[serde(default = "default_influx_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Longest wait between retries (the back-off doubles from 1 s).
    #[serde(default = "default_influx_retry", with = "humantime_serde")]
    pub max_retry_delay: Duration,
    /// Where batches wait while InfluxDB is down; absent: `influxdb` under
    /// `data_dir`.
    #[serde(default)]
    pub buffer_dir: Option<PathBuf>,
    /// The spool's size limit; when full, its oldest lines are dropped
    /// (and counted).
    #[serde(default = "default_max_buffer_bytes")]
    pub max_buffer_bytes: u64,
    /// How often ticket history and the ticket backlog are exported.
    #[serde(default = "default_tickets_interval", with = "humantime_serde")]
    pub tickets_interval: Duration,
}

fn default_influx_token_env() -> String {
    "FLEETCARE_INFLUXDB_TOKEN".to_owned()
}
fn default_batch_lines() -> usize {
    5_000
}
fn default_flush_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_influx_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_influx_retry() -> Duration {
    Duration::from_secs(60)
}
fn default_max_buffer_bytes() -> u64 {
    1 << 30
}
fn default_tickets_interval() -> Duration {
    Duration::from_secs(30)
}

impl InfluxConfig {
    fn validate(&self) -> Result<(), String> {
        let url_ok = reqwest::Url::parse(&self.url).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.path() == "/" && u.query().is_none()
        });
        if !url_ok {
            return Err(format!(
                "influxdb.url {:?} must be an http:// or https:// address without a path, e.g. \"http://127.0.0.1:8086\"",
                self.url
            ));
        }
        if self.org.is_empty() || self.bucket.is_empty() {
            return Err("influxdb.org and influxdb.bucket must not be empty".into());
        }
        if !(1..=1_000_000).contains(&self.batch_lines) {
            return Err("influxdb.batch_lines must be between 1 and 1000000".into());
        }
        if self.flush_interval.is_zero()
            || self.timeout.is_zero()
            || self.max_retry_delay.is_zero()
            || self.tickets_interval.is_zero()
        {
            return Err("influxdb durations must be longer than zero".into());
        }
        if self.max_buffer_bytes < 1 << 20 {
            return Err("influxdb.max_buffer_bytes must be at least 1048576 (1 MiB)".into());
        }
        Ok(())
    }

    /// The spool folder.
    pub fn buffer_dir(&self, data_dir: &Path) -> PathBuf {
        self.buffer_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("influxdb"))
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.mqtt.topic_prefix.is_empty() || self.mqtt.topic_prefix.contains(['+', '#']) {
            return Err("mqtt.topic_prefix must be non-empty and contain no MQTT wildcards".into());
        }
        if self.mqtt.client_id.is_empty() || self.mqtt.client_id.len() > 64 {
            return Err("mqtt.client_id must be 1 to 64 characters".into());
        }
        self.validate_mqtt()?;
        if self.jobs.interval.is_zero() {
            return Err("jobs.interval must be longer than zero".into());
        }
        self.http.validate()?;
        let d = &self.detect;
        if d.recurring_min_episodes == 0
            || d.batch_min_vehicles == 0
            || d.usage_window_days == 0
            || d.trend_weeks == 0
            || d.parts_weeks == 0
            || d.failure_rate_days == 0
        {
            return Err("detect thresholds must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&d.batch_min_share) {
            return Err("detect.batch_min_share is a share between 0 and 1, e.g. 0.2".into());
        }
        if !(d.verify_after_engine_hours.is_finite() && d.verify_after_engine_hours > 0.0) {
            return Err(
                "detect.verify_after_engine_hours must be more than zero engine hours, e.g. 72"
                    .into(),
            );
        }
        self.sla.validate()?;
        if self.store.compact_log_bytes == 0 {
            return Err("store.compact_log_bytes must be at least 1".into());
        }
        self.ingest.validate()?;
        if self.alerts.max_tickets_per_message == 0 {
            return Err("alerts.max_tickets_per_message must be at least 1".into());
        }
        if let Some(influx) = &self.influxdb {
            influx.validate()?;
        }
        if let Some(t) = &self.support.alerts_topic
            && (t.is_empty() || t.contains(['+', '#']))
        {
            return Err(
                "support.alerts_topic must be non-empty and contain no MQTT wildcards".into(),
            );
        }
        let v = &self.visits;
        let days_ok = (0.0..=365.0).contains(&v.pull_in_days);
        let share_ok = (0.0..=1.0).contains(&v.pull_in_share);
        if !(days_ok && share_ok) {
            return Err(
                "visits.pull_in_days must be 0 to 365 and visits.pull_in_share a share from 0 to 1"
                    .into(),
            );
        }
        for d in &self.modbus.devices {
            if d.interval.is_zero() || d.timeout.is_zero() {
                return Err(format!(
                    "modbus device {} ({}/{}): interval and timeout must be longer than zero",
                    d.address, d.fleet, d.vehicle
                ));
            }
        }
        Ok(())
    }

    /// The largest MQTT packet accepted: `[mqtt] max_packet_bytes`, or
    /// `ingest.max_payload_bytes` plus room for the topic and header.
    pub fn max_packet_bytes(&self) -> usize {
        self.mqtt.max_packet_bytes.unwrap_or_else(|| {
            self.ingest
                .max_payload_bytes
                .saturating_add(MQTT_HEADER_ROOM)
        })
    }

    /// The embedded broker's settings hold together.
    fn validate_mqtt(&self) -> Result<(), String> {
        let m = &self.mqtt;
        if self.max_packet_bytes() < self.ingest.max_payload_bytes {
            return Err("mqtt.max_packet_bytes must be at least ingest.max_payload_bytes".into());
        }
        if m.broker_memory_bytes < 1 << 20 {
            return Err("mqtt.broker_memory_bytes must be at least 1048576 (1 MiB)".into());
        }
        if m.max_connections == 0 || m.max_inflight == 0 {
            return Err("mqtt.max_connections and mqtt.max_inflight must be at least 1".into());
        }
        if m.tls_cert_file.is_some() != m.tls_key_file.is_some() {
            return Err(
                "mqtt.tls_cert_file and mqtt.tls_key_file go together: set both for TLS, or neither"
                    .into(),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for l in &m.logins {
            if fleetcare_ingest::ids::check(&l.username).is_err() {
                return Err(format!(
                    "mqtt.logins: username {:?} must be 1 to 64 letters, digits, '_', '.' or '-'",
                    l.username
                ));
            }
            if !seen.insert(l.username.as_str()) {
                return Err(format!(
                    "mqtt.logins: username {:?} is there twice",
                    l.username
                ));
            }
        }
        Ok(())
    }

    /// The pipeline settings this configuration asks for.
    pub fn pipeline(&self) -> fleetcare_ingest::pipeline::PipelineConfig {
        use fleetcare_ingest::pipeline::{PipelineConfig, meter_track::MeterLimits};
        let span = |d: Duration| {
            fleetcare_ingest::Duration::from_micros(
                i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            )
        };
        let defaults = PipelineConfig::default();
        let i = &self.ingest;
        PipelineConfig {
            topic_prefix: self.mqtt.topic_prefix.clone(),
            max_payload: i.max_payload_bytes,
            meters: MeterLimits {
                max_hours_per_hour: i.max_hours_per_hour,
                max_km_per_hour: i.max_km_per_hour,
                store_every: span(i.meter_store_every),
                ..MeterLimits::default()
            },
            max_dtcs: i.max_dtcs_per_message,
            max_dead_letters: i.max_dead_letters_per_message,
            max_vehicles: i.max_vehicles,
            max_tracked_vehicles: i.max_tracked_vehicles,
            vehicle_idle: span(i.vehicle_idle),
            // Checked by `validate`; a hand-built Config keeps the default.
            min_event_time: i.min_event_time().unwrap_or(defaults.min_event_time),
            max_future: span(i.max_future),
            ..defaults
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.mqtt.topic_prefix, "fleet");
        // The example spells out the defaults.
        let mqtt = MqttConfig::default();
        assert_eq!(
            (
                c.mqtt.broker_memory_bytes,
                c.mqtt.max_connections,
                c.mqtt.max_inflight
            ),
            (
                mqtt.broker_memory_bytes,
                mqtt.max_connections,
                mqtt.max_inflight
            )
        );
        assert_eq!(c.mqtt.embedded_ack, mqtt.embedded_ack);
        assert_eq!(c.sla, SlaConfig::default());
        assert_eq!(c.http, HttpConfig::default());
        assert_eq!(c.jobs.interval, Duration::from_secs(300));
        let device = &c.modbus.devices[0];
        assert_eq!(device.interval, Duration::from_secs(10));
        assert_eq!(device.timeout, Duration::from_secs(2));
        assert_eq!(device.unit, Some(1));
        assert_eq!(
            device.model.as_ref().map(ModelId::as_str),
            Some("compactor-c12")
        );
        assert_eq!(c.webhooks[0].secret_env, "ACME_WEBHOOK_SECRET");
        let (example, defaults) = (c.pipeline(), Config::default().pipeline());
        assert_eq!(
            (
                example.max_dtcs,
                example.max_dead_letters,
                example.max_vehicles,
                example.max_tracked_vehicles,
                example.vehicle_idle,
                example.min_event_time,
                example.max_future
            ),
            (
                defaults.max_dtcs,
                defaults.max_dead_letters,
                defaults.max_vehicles,
                defaults.max_tracked_vehicles,
                defaults.vehicle_idle,
                defaults.min_event_time,
                defaults.max_future
            )
        );
        assert_eq!(
            c.alerts.max_tickets_per_message,
            AlertsConfig::default().max_tickets_per_message
        );
        let influx = c.influxdb.as_ref().unwrap();
        assert_eq!(influx.batch_lines, default_batch_lines());
        assert_eq!(influx.flush_interval, default_flush_interval());
        assert_eq!(influx.timeout, default_influx_timeout());
        assert_eq!(influx.max_retry_delay, default_influx_retry());
        assert_eq!(influx.max_buffer_bytes, default_max_buffer_bytes());
        assert_eq!(influx.tickets_interval, default_tickets_interval());
        assert_eq!(influx.token_env, default_influx_token_env());
    }

    #[test]
    fn http_limits_must_allow_something() {
        for (text, says) in [
            ("header_timeout = \"0s\"", "longer than zero"),
            ("max_requests_in_flight = 0", "at least 1"),
            (
                "session_idle = \"8days\"\nsession_lifetime = \"7days\"",
                "session_idle is longer",
            ),
        ] {
            let e = Config::parse(Path::new("x.toml"), &format!("[http]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
        let c = Config::parse(Path::new("x.toml"), "[http]\nheader_timeout = \"2s\"\n").unwrap();
        assert_eq!(c.http.header_timeout, Duration::from_secs(2));
    }

    #[test]
    fn empty_is_all_defaults() {
        let c = Config::parse(Path::new("x.toml"), "").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./fleetcare-data"));
        assert!(c.mqtt.url.is_none());
        assert_eq!(c.detect.batch_min_share, 0.2);
    }

    #[test]
    fn modbus_device_defaults() {
        let text = "[[modbus.devices]]\naddress = \"127.0.0.1:502\"\nfleet = \"acme\"\nvehicle = \"TRK-001\"\n";
        let c = Config::parse(Path::new("x.toml"), text).unwrap();
        let device = &c.modbus.devices[0];
        // Unit and model come from the catalogue and the registry.
        assert_eq!((device.unit, device.model.as_ref()), (None, None));
        assert_eq!(device.interval, Duration::from_secs(10));
        assert_eq!(device.timeout, Duration::from_secs(2));

        let e = Config::parse(Path::new("x.toml"), &format!("{text}model = \"a b\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("model id \"a b\""), "{e}");
        let e = Config::parse(Path::new("x.toml"), &format!("{text}timeout = \"0s\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("127.0.0.1:502 (acme/TRK-001)"), "{e}");
    }

    #[test]
    fn influxdb_is_off_unless_configured_and_has_defaults() {
        let c = Config::parse(Path::new("x.toml"), "").unwrap();
        assert!(c.influxdb.is_none());
        let text =
            "[influxdb]\nurl = \"http://127.0.0.1:8086\"\norg = \"acme\"\nbucket = \"fleetcare\"\n";
        let c = Config::parse(Path::new("x.toml"), text).unwrap();
        let i = c.influxdb.as_ref().unwrap();
        assert_eq!(
            (i.batch_lines, i.token_env.as_str()),
            (5_000, "FLEETCARE_INFLUXDB_TOKEN")
        );
        assert_eq!(i.buffer_dir(Path::new("/d")), PathBuf::from("/d/influxdb"));
        for (bad, says) in [
            ("url = \"http://h:8086/influx\"", "without a path"),
            ("batch_lines = 0", "batch_lines"),
            ("flush_interval = \"0s\"", "longer than zero"),
            ("max_buffer_bytes = 10", "1 MiB"),
            ("tokn_env = \"X\"", "unknown field `tokn_env`"),
        ] {
            let text = format!("{text}{bad}\n");
            let text = if bad.starts_with("url") {
                text.replacen("url = \"http://127.0.0.1:8086\"\n", "", 1)
            } else {
                text
            };
            let e = Config::parse(Path::new("x.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let e = Config::parse(
            Path::new("x.toml"),
            "[influxdb]\norg = \"a\"\nbucket = \"b\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("missing field `url`"), "{e}");
    }

    #[test]
    fn embedded_broker_keys() {
        let c = Config::parse(Path::new("x.toml"), "").unwrap();
        assert_eq!(c.max_packet_bytes(), 256 * 1024 + MQTT_HEADER_ROOM);
        assert_eq!(c.mqtt.embedded_ack, EmbeddedAck::AfterStore);
        assert_eq!(c.mqtt.allow_anonymous, None);
        let c = Config::parse(
            Path::new("x.toml"),
            "[ingest]\nmax_payload_bytes = 1000\n[mqtt]\nembedded_ack = \"on_receipt\"\n",
        )
        .unwrap();
        assert_eq!(c.max_packet_bytes(), 1000 + MQTT_HEADER_ROOM);
        assert_eq!(c.mqtt.embedded_ack, EmbeddedAck::OnReceipt);
        let c = Config::parse(Path::new("x.toml"), "[mqtt]\nmax_packet_bytes = 300000\n").unwrap();
        assert_eq!(c.max_packet_bytes(), 300_000);
        let login =
            "[[mqtt.logins]]\nusername = \"gw-a\"\npassword_env = \"GW_A\"\nfleet = \"a\"\n";
        let c = Config::parse(
            Path::new("x.toml"),
            &format!("{login}vehicle = \"TRK-1\"\n"),
        )
        .unwrap();
        let l = &c.mqtt.logins[0];
        assert_eq!(
            (l.fleet.as_str(), l.vehicle.as_ref().map(VehicleId::as_str)),
            ("a", Some("TRK-1"))
        );
        for (bad, says) in [
            (
                "[mqtt]\nmax_packet_bytes = 10\n",
                "at least ingest.max_payload_bytes",
            ),
            ("[mqtt]\nbroker_memory_bytes = 1000\n", "1 MiB"),
            ("[mqtt]\nmax_connections = 0\n", "at least 1"),
            ("[mqtt]\ntls_cert_file = \"c.pem\"\n", "go together"),
            ("[mqtt]\nembedded_ack = \"never\"\n", "unknown variant"),
            (
                "[[mqtt.logins]]\nusername = \"gw\"\npassword_env = \"X\"\n",
                "missing field `fleet`",
            ),
            (
                "[[mqtt.logins]]\nusername = \"gw:a\"\npassword_env = \"X\"\nfleet = \"a\"\n",
                "username \"gw:a\"",
            ),
            (&format!("{login}{login}"), "there twice"),
        ] {
            let e = Config::parse(Path::new("x.toml"), bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn ingest_and_alert_limits_have_defaults_and_are_checked() {
        let c = Config::parse(Path::new("x.toml"), "").unwrap();
        let p = c.pipeline();
        assert_eq!(p.max_dtcs, 445);
        assert_eq!(p.max_dead_letters, 100);
        assert_eq!(p.max_vehicles, 200_000);
        assert_eq!(p.vehicle_idle.as_micros(), 600_000_000);
        assert_eq!(p.min_event_time.to_rfc3339(), "2000-01-01T00:00:00.000000Z");
        assert_eq!(p.max_future.as_micros(), 86_400_000_000);
        assert_eq!(c.alerts.max_tickets_per_message, 8);
        let text = "[ingest]\nmax_dtcs_per_message = 64\nmin_event_time = \"2010-06-01T00:00:00+02:00\"\nmax_future = \"2h\"\n";
        let p = Config::parse(Path::new("x.toml"), text).unwrap().pipeline();
        assert_eq!(p.max_dtcs, 64);
        assert_eq!(p.min_event_time.to_rfc3339(), "2010-05-31T22:00:00.000000Z");
        assert_eq!(p.max_future.as_micros(), 7_200_000_000);
        for (bad, says) in [
            ("[ingest]\nmax_dtcs_per_message = 0", "max_dtcs_per_message"),
            ("[ingest]\nmax_vehicles = 0", "max_vehicles"),
            ("[ingest]\nmax_tracked_vehicles = 0", "max_tracked_vehicles"),
            ("[ingest]\nvehicle_idle = \"1s\"", "vehicle_idle"),
            ("[ingest]\nmin_event_time = \"2000-01-01\"", "RFC 3339"),
            ("[ingest]\nmax_future = \"0s\"", "max_future"),
            (
                "[alerts]\nmax_tickets_per_message = 0",
                "max_tickets_per_message",
            ),
        ] {
            let e = Config::parse(Path::new("x.toml"), bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::parse(Path::new("x.toml"), "[mqtt]\ntopic_prefx = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `topic_prefx`"), "{e}");
        assert!(e.starts_with("x.toml:"), "{e}");
        let e = Config::parse(
            Path::new("x.toml"),
            "[detect]\nverify_after_engine_hours = 0\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("verify_after_engine_hours"), "{e}");
        let e = Config::parse(Path::new("x.toml"), "[detect]\nbatch_min_share = 20\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("between 0 and 1"), "{e}");
    }
}
