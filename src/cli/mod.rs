//! The `fleetcare` command line (design contract C6).

mod bench;
mod decode;
mod demo;
mod registry;
mod replay;
mod report;
mod run;
mod simulate;
mod tickets;
mod tokens;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::Config;

/// Predictive maintenance for sanitation-truck fleets.
#[derive(Debug, Parser)]
#[command(name = "fleetcare", version, about)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
struct GlobalArgs {
    /// The store directory [default: ./fleetcare-data, or data_dir of --config].
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    /// The truck-model catalogue [default: models, or models_dir of --config].
    #[arg(long, global = true, value_name = "DIR")]
    models: Option<PathBuf>,
    /// The configuration file (TOML); see config.example.toml.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl GlobalArgs {
    /// The configuration, with `--data` and `--models` applied over it.
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path).context("fix the configuration file")?,
            None => Config::default(),
        };
        if let Some(d) = &self.data {
            config.data_dir.clone_from(d);
        }
        if let Some(m) = &self.models {
            config.models_dir.clone_from(m);
        }
        Ok(config)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The fleet registry: import vehicles (CSV), list vehicles not registered.
    Vehicles {
        #[command(subcommand)]
        command: VehiclesCommand,
    },
    /// The service history: import services done (CSV).
    Services {
        #[command(subcommand)]
        command: ServicesCommand,
    },
    /// The parts ledger: counts, receipts, orders (CSV), transfers between depots.
    Stock {
        #[command(subcommand)]
        command: StockCommand,
    },
    /// Service outlets (own workshops, partners): import the register (CSV).
    Outlets {
        #[command(subcommand)]
        command: OutletsCommand,
    },
    /// Fleets and their language (en, zh-CN): import the register (CSV).
    Fleets {
        #[command(subcommand)]
        command: FleetsCommand,
    },
    /// Decode candump -L or telemetry JSON lines into JSON events; stores nothing.
    Decode {
        /// The log to read; `-` or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// Ingest recordings (JSON lines of topic and payload) through the live path.
    Replay {
        /// Recordings, ingested in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the service with a simulated fleet publishing to it live; prints the web UI and API addresses and an admin token.
    Demo(demo::DemoArgs),
    /// Run the service: the MQTT source (embedded broker unless [mqtt] url is set) and Modbus pollers, storing everything.
    Run,
    /// Simulate a fleet whose faults and services are known: a recording and its ground truth.
    Simulate(crate::simulate::SimulateArgs),
    /// Quality benchmarks on simulated fleets with known truth.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Maintenance reports: services due, recurring failures, fault trends, parts demand, condition drifts.
    Report(report::ReportArgs),
    /// Repair tickets: list them, show one with its history, move one through the repair process.
    Tickets {
        #[command(subcommand)]
        command: tickets::TicketsCommand,
    },
    /// API bearer tokens: create one (printed once; only its hash is stored), list them, revoke one.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Create a token for a role (operators: for their fleets) and print it.
    Create(tokens::CreateArgs),
    /// List every token: id (a prefix of its hash), role, fleets, created, expires, revoked, status.
    List(tokens::ListArgs),
    /// Revoke a token: refused from the next request on, its web UI sessions ended.
    Revoke(tokens::RevokeArgs),
}

#[derive(Debug, Subcommand)]
enum VehiclesCommand {
    /// Add or update vehicles: vehicle_id,fleet_id,model_id,vin,commissioned_on,depot.
    Import {
        /// The CSV file, with that header row.
        file: PathBuf,
    },
    /// List vehicles that sent data but are not in the registry.
    Unknown,
}

#[derive(Debug, Subcommand)]
enum ServicesCommand {
    /// Add services done: vehicle_id,task,performed_on,engine_hours,pto_hours,odometer_km.
    Import {
        /// The CSV file, with that header row.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum OutletsCommand {
    /// Add or update outlets: outlet_id,name,kind,zone,depots,phone (kind own|partner, zone city|rural, depots space-separated).
    Import {
        /// The CSV file, with that header row.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum FleetsCommand {
    /// Add or update fleets: fleet_id,name,language (en or zh-CN; empty: en).
    Import {
        /// The CSV file, with that header row.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum StockCommand {
    /// Count parts on hand (part,depot,on_hand): the difference to the ledger is booked as an adjustment.
    Import {
        /// The CSV file, with that header row.
        file: PathBuf,
    },
    /// Book parts received: part,depot,qty,reference,received_on; closes the open order with that reference.
    Receive {
        /// The CSV file, with that header row.
        file: PathBuf,
    },
    /// Record order lines placed: part,depot,qty,reference,ordered_on; counted as on_order until received.
    Order {
        /// The CSV file, with that header row.
        file: PathBuf,
    },
    /// Move parts from one depot to another.
    Transfer(registry::TransferArgs),
}

/// Logs go to stderr; `RUST_LOG` sets the level (default: warn).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // rumqttd logs every client that disconnects as an error; the
        // embedded broker's state is in fleetcare's own logs and metrics.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rumqttd=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run => run::run(&cli.global.config()?),
        Command::Demo(args) => demo::run(cli.global.config()?, &args),
        Command::Replay { files } => replay::run(&cli.global.config()?, &files),
        Command::Vehicles {
            command: VehiclesCommand::Import { file },
        } => registry::import(&cli.global.config()?, registry::ImportFile::Vehicles, &file),
        Command::Vehicles {
            command: VehiclesCommand::Unknown,
        } => registry::unknown(&cli.global.config()?, registry::seen_in_store),
        Command::Services {
            command: ServicesCommand::Import { file },
        } => registry::import(&cli.global.config()?, registry::ImportFile::Services, &file),
        Command::Stock { command } => {
            let config = cli.global.config()?;
            match command {
                StockCommand::Import { file } => {
                    registry::import(&config, registry::ImportFile::Stock, &file)
                }
                StockCommand::Receive { file } => {
                    registry::import(&config, registry::ImportFile::Receipts, &file)
                }
                StockCommand::Order { file } => {
                    registry::import(&config, registry::ImportFile::Orders, &file)
                }
                StockCommand::Transfer(args) => registry::transfer(&config, &args),
            }
        }
        Command::Outlets {
            command: OutletsCommand::Import { file },
        } => registry::import(&cli.global.config()?, registry::ImportFile::Outlets, &file),
        Command::Fleets {
            command: FleetsCommand::Import { file },
        } => registry::import(&cli.global.config()?, registry::ImportFile::Fleets, &file),
        Command::Simulate(args) => simulate::run(&cli.global.config()?, &args),
        Command::Report(args) => report::run(&cli.global.config()?, &args),
        Command::Bench { command } => bench::run(&cli.global.config()?, &command),
        Command::Tickets { command } => tickets::run(&cli.global.config()?, command),
        Command::Tokens {
            command: TokensCommand::Create(args),
        } => tokens::create(&cli.global.config()?, &args),
        Command::Tokens {
            command: TokensCommand::List(args),
        } => tokens::list(&cli.global.config()?, &args),
        Command::Tokens {
            command: TokensCommand::Revoke(args),
        } => tokens::revoke(&cli.global.config()?, &args),
        Command::Decode { file } => {
            // Validated even though decode uses none of it, so a broken file is noticed early.
            cli.global.config()?;
            decode::run(file.as_deref())
        }
    }
}

/// `e` and its causes as one line, `outer: inner: …`, leaving out a cause
/// that an outer message already quotes (many errors name their source in
/// their own text, and the chain would repeat it).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::error_line;

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read models/parts.toml: {source}")]
        struct Read {
            source: std::io::Error,
        }
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = anyhow::Error::new(Read { source: io }).context("fix the catalogue");
        assert_eq!(
            error_line(&e),
            "fix the catalogue: cannot read models/parts.toml: No such file"
        );
        let plain = anyhow::anyhow!("disk full").context("cannot store");
        assert_eq!(error_line(&plain), "cannot store: disk full");
    }
}
