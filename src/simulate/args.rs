//! The options of `fleetcare simulate` (contract C6).

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;

use super::SimulateOptions;

/// `fleetcare simulate --trucks N --days D [--seed S] (--out FILE.jsonl | --mqtt URL)`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("destination").required(true).multiple(true).args(["out", "mqtt"])))]
pub struct SimulateArgs {
    /// Trucks in the simulated fleet.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub trucks: u32,
    /// Days to simulate.
    #[arg(long, value_name = "D", value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub days: u32,
    /// The same seed and options write byte-identical files.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// First simulated day, a local date of the fleets (UTC+8).
    #[arg(long, value_name = "DATE", default_value = "2026-01-05")]
    pub start: NaiveDate,
    /// How often a running truck's gateway uploads (30s to 1h).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5m",
        value_parser = humantime::parse_duration
    )]
    pub upload_every: Duration,
    /// The recording to write (JSON Lines, one MQTT message a line);
    /// vehicles.csv, services.csv and truth.json are written beside it.
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: Option<PathBuf>,
    /// Publish the fleet's messages to this broker (QoS 1), e.g.
    /// mqtt://127.0.0.1:1883; the password of a user in the URL comes
    /// from the `password_env` setting of `[mqtt]`.
    #[arg(long, value_name = "URL")]
    pub mqtt: Option<String>,
    /// With --mqtt: how much faster than real time to publish (1: real
    /// time, 3600: an hour a second); 0 publishes as fast as the broker
    /// takes it.
    #[arg(long, value_name = "FACTOR", default_value_t = 0.0, requires = "mqtt")]
    pub speed: f64,
}

impl SimulateArgs {
    /// The options, with topics under `topic_prefix`.
    pub fn options(&self, topic_prefix: &str, out: PathBuf) -> SimulateOptions {
        SimulateOptions {
            trucks: self.trucks,
            days: self.days,
            seed: self.seed,
            start: self.start,
            upload_every: self.upload_every,
            out,
            topic_prefix: topic_prefix.to_owned(),
        }
    }
}
