//! `fleetcare run`: the service. For now: the store writer, the MQTT source
//! (embedded broker unless `[mqtt] url` is set) and the Modbus pollers.
//!
//! Shutdown on SIGTERM or SIGINT: sources stop reading, the writer stores
//! what is queued, the MQTT source acknowledges it, the store is
//! compacted. What was acknowledged is stored; what was not is delivered
//! again by the broker on the next start.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use crate::config::Config;
use crate::live::broker::EmbeddedBroker;
use crate::live::mqtt::{self, Connection, SourceConfig};
use crate::live::{LiveMetrics, WriterConfig, spawn_writer};
use crate::store::Store;

pub(super) fn run(config: &Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fleetcare")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    let mut store = Store::open(&config.data_dir, config.pipeline())
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    store.set_compact_bytes(config.store.compact_log_bytes);
    let metrics = Arc::new(LiveMetrics::default());
    let (handle, writer) = spawn_writer(store, WriterConfig::default(), metrics.clone(), None)
        .context("cannot start the store writer thread")?;
    let (stop_tx, stop_rx) = watch::channel(false);

    let (connection, mqtt_shown) = match &config.mqtt.url {
        Some(url) => (
            Connection::external(&config.mqtt, url).context("fix [mqtt] in the configuration")?,
            "external".to_owned(),
        ),
        None => {
            let broker = EmbeddedBroker::start(&config.mqtt)?;
            let login = broker
                .internal_login()
                .map(|l| (l.username.clone(), l.password.clone()));
            (
                Connection::plain(broker.connect_addr(), login),
                broker.addr().to_string(),
            )
        }
    };
    let source = tokio::spawn(mqtt::run(
        SourceConfig::new(&config.mqtt, connection),
        handle.clone(),
        stop_rx.clone(),
    ));
    let pollers = start_modbus(config, &handle, &stop_rx).await?;
    drop(handle);

    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "fleetcare ready: http=none mqtt={mqtt_shown}")?;
        out.flush()?;
    }
    tracing::info!(mqtt = %mqtt_shown, data = %config.data_dir.display(), "fleetcare running");

    let mut source = source;
    let source_result = tokio::select! {
        r = wait_for_stop_signal() => {
            r?;
            tracing::info!("stopping: storing and acknowledging what arrived");
            let _ = stop_tx.send(true);
            source.await
        }
        // Only ends early when the writer stopped (a storage error).
        r = &mut source => r,
    };
    let _ = stop_tx.send(true);
    for p in pollers {
        let _ = p.await;
    }
    let source_failed = match source_result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(format!("the MQTT source panicked: {e}")),
    };
    let store = tokio::task::spawn_blocking(move || writer.join())
        .await
        .context("waiting for the store writer failed")?
        .map_err(|_| anyhow::anyhow!("the store writer panicked; restart to recover the log"))?
        .context("storing failed; restart fleetcare to recover from the log")?;
    store
        .close()
        .context("the final compaction failed; the log keeps the data")?;
    let stored = metrics.stored.load(std::sync::atomic::Ordering::Relaxed);
    tracing::info!(stored, "fleetcare stopped");
    match source_failed {
        Some(e) => anyhow::bail!("{e}"),
        None => Ok(()),
    }
}

/// Starts a poller per configured Modbus device. A device that cannot be
/// polled (unknown vehicle, model without a register map) is reported and
/// skipped; the others run.
async fn start_modbus(
    config: &Config,
    handle: &crate::live::IngestHandle,
    stop: &crate::live::Shutdown,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let devices = &config.modbus.devices;
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    let catalog = crate::catalog::Catalog::load(&config.models_dir)
        .context("fix the truck-model catalogue or point --models at another")?;
    // The registry only matters for devices that do not name their model.
    let registry = if devices.iter().any(|d| d.model.is_none()) {
        let db = crate::db::Db::connect(config)
            .await
            .context("cannot open the fleet registry for the Modbus devices")?;
        let vehicles = crate::registry::vehicles(&db).await?;
        db.close().await;
        vehicles
    } else {
        Vec::new()
    };
    let (targets, errors) =
        crate::live::modbus::resolve_targets(devices, &catalog, |fleet, vehicle| {
            registry
                .iter()
                .find(|v| &v.fleet == fleet && &v.id == vehicle)
                .map(|v| v.model.clone())
        });
    for e in &errors {
        tracing::error!(error = %e, "this Modbus device is not polled");
    }
    Ok(crate::live::modbus::spawn_pollers(
        targets,
        &config.mqtt.topic_prefix,
        handle.clone(),
        stop.clone(),
    ))
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
