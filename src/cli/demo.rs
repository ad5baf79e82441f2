//! `fleetcare demo`: `fleetcare run` on the embedded defaults, with a
//! simulated fleet publishing to it live.
//!
//! The fleet's last `--days` up to today are simulated (so reports and
//! forecasts are about now), its vehicles and service history imported,
//! an admin token created, and the service started with the embedded
//! broker on a free port; it prints the web UI's address and the token.
//! The fleet's messages are then published through
//! the broker at `--speed` (event time per wall time), so tickets and
//! alerts appear as the history arrives.

use std::io::Write;

use anyhow::Context;
use chrono::{Duration as Days, Utc};

use super::run::{print_ready, wait_for_stop_signal};
use crate::app::Service;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::Db;
use crate::simulate::publish::{PublishOptions, publish_recordings};
use crate::simulate::{SERVICES_FILE, SimulateOptions, VEHICLES_FILE};

/// Options of `fleetcare demo`.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct DemoArgs {
    /// Trucks in the simulated fleet.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=5000))]
    trucks: u32,
    /// Days of history up to today.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=365))]
    days: u32,
    /// Event time per wall time while publishing (20000: a day in about 4 s).
    #[arg(long, default_value_t = 20_000.0)]
    speed: f64,
}

pub(super) fn run(mut config: Config, args: &DemoArgs) -> anyhow::Result<()> {
    // The demo must start on any machine: free ports unless configured.
    if config.mqtt.url.is_none()
        && config.mqtt.listen == crate::config::MqttConfig::default().listen
    {
        config.mqtt.listen = "127.0.0.1:0".to_owned();
    }
    if config.http.listen == crate::config::HttpConfig::default().listen
        && std::net::TcpListener::bind(&config.http.listen).is_err()
    {
        config.http.listen = "127.0.0.1:0".to_owned();
    }
    // Findings show up within the demo's first minutes.
    config.jobs.interval = config.jobs.interval.min(std::time::Duration::from_secs(30));
    let catalog = Catalog::load(&config.models_dir)
        .context("fix the truck-model catalogue or point --models at another")?;
    let dir = config.data_dir.join("demo");
    // The data directory (its parent) for its owner only, like the store's.
    crate::runtime::owner_only::create_dir_all(&dir)
        .with_context(|| format!("cannot create {}; check --data", dir.display()))?;
    let recording = dir.join("recording.jsonl");
    let start = (Utc::now() - Days::days(i64::from(args.days))).date_naive();
    let options = SimulateOptions {
        trucks: args.trucks,
        days: args.days,
        seed: 1,
        start,
        upload_every: std::time::Duration::from_secs(300),
        out: recording.clone(),
        topic_prefix: config.mqtt.topic_prefix.clone(),
    };
    eprintln!(
        "simulating {} trucks over the last {} days…",
        args.trucks, args.days
    );
    let summary =
        crate::simulate::run(&options, &catalog).context("the simulation did not complete")?;
    eprintln!("{summary}");

    let runtime = super::run::runtime()?;
    let token = runtime.block_on(async {
        let db = Db::connect(&config).await?;
        let done = async {
            crate::registry::import_vehicles(&db, &catalog, &dir.join(VEHICLES_FILE)).await?;
            crate::registry::import_services(&db, &catalog, &dir.join(SERVICES_FILE), Utc::now())
                .await?;
            let token =
                crate::http::api::create_token(&db, crate::http::api::Role::Admin, &[]).await?;
            anyhow::Ok(token)
        }
        .await;
        db.close().await;
        done
    })?;

    let speed = args.speed;
    runtime.block_on(async move {
        let service = Service::start(config).await?;
        print_ready(&service)?;
        let ready = service.ready();
        let mut out = std::io::stdout().lock();
        let broker = ready.mqtt.map_or_else(
            || "the configured broker".to_owned(),
            |a| format!("mqtt://{a}"),
        );
        writeln!(
            out,
            "fleetcare demo: web UI at http://{http}/ui/ (sign in with the admin token below)\nfleetcare demo: API at http://{http}/api/v1 (try /api/v1/tickets), trucks publish to {broker}\nadmin token: {token}",
            http = ready.http
        )?;
        out.flush()?;
        drop(out);
        let connection = ready.connection.clone();
        tokio::spawn(async move {
            let options = PublishOptions {
                client_id: "demo-fleet".to_owned(),
                speed,
                inflight: 1000,
            };
            match publish_recordings(&[recording], &connection, &options).await {
                Ok(s) => {
                    let _ = writeln!(
                        std::io::stdout().lock(),
                        "fleetcare demo: the simulated fleet sent {} messages in {:.0} s; fleetcare keeps running (Ctrl-C stops it)",
                        s.messages,
                        s.seconds
                    );
                }
                Err(e) => tracing::error!(error = %e, "the simulated fleet stopped publishing"),
            }
        });
        service.run_until(wait_for_stop_signal()).await
    })
}
