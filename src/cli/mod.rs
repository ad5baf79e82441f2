//! The `fleetcare` command line (design contract C6).

mod decode;

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
        Command::Decode { file } => {
            // Validated even though decode uses none of it, so a broken file is noticed early.
            cli.global.config()?;
            decode::run(file.as_deref())
        }
    }
}
