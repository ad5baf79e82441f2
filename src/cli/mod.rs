//! The `fleetcare` command line (design contract C6).

mod decode;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Predictive maintenance for sanitation-truck fleets.
#[derive(Debug, Parser)]
#[command(name = "fleetcare", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode candump -L or telemetry JSON lines into JSON events; stores nothing.
    Decode {
        /// The log to read; `-` or nothing reads standard input.
        file: Option<PathBuf>,
    },
}

/// Logs go to stderr; `RUST_LOG` sets the level (default: warn).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Decode { file } => decode::run(file.as_deref()),
    }
}
