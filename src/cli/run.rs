//! `fleetcare run`: the service in one process — the store writer, the MQTT
//! source (embedded broker unless `[mqtt] url` is set), the Modbus pollers,
//! the real-time alert path, the periodic jobs, tickets, the HTTP API and
//! the web UI.
//!
//! Shutdown on SIGTERM or SIGINT, in the order that loses nothing: sources
//! stop reading; the writer stores what is queued and the MQTT source
//! acknowledges it; the store is compacted; the alert tasks finish what the
//! last records raised; the notifier sends what it holds; the API finishes
//! the requests in flight. What was not acknowledged is delivered again by
//! the broker on the next start.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use rumqttc::{AsyncClient, ConnectionError, Event, Outgoing};
use tokio::sync::{mpsc, watch};

use crate::alerts::notify::{NotifyConfig, spawn_notifier};
use crate::alerts::service::{AlertContext, critical_faults, fault_start_sink, periodic_jobs};
use crate::alerts::webhook::{Retry, WebhookTarget};
use crate::api::ApiState;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::Db;
use crate::live::broker::EmbeddedBroker;
use crate::live::mqtt::{self, Connection, SourceConfig};
use crate::live::writer::fan_out;
use crate::live::{LiveMetrics, WriterConfig, spawn_writer};
use crate::store::Store;
use crate::tickets::Tickets;

/// Where the running service can be reached.
#[derive(Debug, Clone)]
pub(super) struct Ready {
    pub(super) http: SocketAddr,
    /// The embedded broker, or `None` with an external one.
    pub(super) mqtt: Option<SocketAddr>,
    /// How to publish to the broker (the embedded one's internal login).
    pub(super) connection: Connection,
}

/// Called once the service accepts connections (`demo` starts its fleet).
pub(super) type OnReady = Box<dyn FnOnce(&Ready) + Send>;

pub(super) fn run(config: &Config) -> anyhow::Result<()> {
    runtime()?.block_on(serve(config.clone(), None))
}

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fleetcare")
        .build()
        .context("cannot start the async runtime")
}

/// The webhooks of `[[webhooks]]`, secrets read from the environment.
fn webhooks(
    config: &Config,
) -> anyhow::Result<HashMap<fleetcare_ingest::ids::FleetId, Vec<WebhookTarget>>> {
    let mut map: HashMap<_, Vec<_>> = HashMap::new();
    for w in &config.webhooks {
        let secret = std::env::var(&w.secret_env).with_context(|| {
            format!(
                "the webhook of fleet {} takes its secret from the environment variable {}, which is not set; set it or remove the webhook",
                w.fleet, w.secret_env
            )
        })?;
        map.entry(w.fleet.clone()).or_default().push(WebhookTarget {
            url: w.url.clone(),
            secret: secret.into_bytes(),
        });
    }
    Ok(map)
}

/// A client that publishes alerts on the broker, with its own event loop.
/// The loop ends once every handle is dropped and its queue is sent (or
/// 5 s after shutdown began, if the broker is gone).
fn alerts_client(
    config: &Config,
    connection: &Connection,
    mut stop: watch::Receiver<bool>,
) -> (AsyncClient, tokio::task::JoinHandle<()>) {
    let mut o = connection.options(
        &format!("{}-alerts", config.mqtt.client_id),
        config.mqtt.keep_alive,
        1 << 20,
    );
    // Publishes not yet acknowledged are sent again after a reconnection.
    o.set_clean_session(false);
    let (client, mut eventloop) = AsyncClient::new(o, 1024);
    mqtt::without_nagle(&mut eventloop);
    let task = tokio::spawn(async move {
        let mut failures = 0u32;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let poll = eventloop.poll();
            let event = match deadline {
                Some(d) => match tokio::time::timeout_at(d, poll).await {
                    Ok(e) => e,
                    Err(_) => return,
                },
                None => tokio::select! {
                    e = poll => e,
                    _ = stop.changed() => {
                        deadline = Some(tokio::time::Instant::now() + Duration::from_secs(5));
                        continue;
                    }
                },
            };
            match event {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(ConnectionError::RequestsDone) => {
                    return;
                }
                Ok(_) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if failures == 1 {
                        tracing::warn!(error = %e, "the MQTT alerts publisher lost the broker; retrying");
                    }
                    tokio::time::sleep(Duration::from_millis(200u64 << failures.min(7))).await;
                }
            }
        }
    });
    (client, task)
}

/// Binds the HTTP listener; a taken port is an error that says what to do.
async fn bind_http(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!(
            "cannot listen for HTTP on {listen}; stop whatever uses that port, or set [http] listen to another address (port 0 picks a free one)"
        )
    })
}

pub(super) async fn serve(config: Config, on_ready: Option<OnReady>) -> anyhow::Result<()> {
    let mut store = Store::open(&config.data_dir, config.pipeline())
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    store.set_compact_bytes(config.store.compact_log_bytes);
    let db = Db::connect(&config)
        .await
        .context("cannot open the database")?;
    let catalog = Arc::new(
        Catalog::load(&config.models_dir)
            .context("fix the truck-model catalogue or point --models at another")?,
    );
    let webhooks = webhooks(&config)?;
    let metrics = Arc::new(LiveMetrics::default());
    let tickets = Tickets::new(db.clone(), config.sla.clone()).with_meters(Arc::new(
        crate::tickets::StoreMeters {
            data_dir: config.data_dir.clone(),
            pipeline: config.pipeline(),
        },
    ));
    let (faults_tx, faults_rx) = mpsc::unbounded_channel();
    // Vehicle → model for alerts and the InfluxDB sink; the jobs refresh it.
    let models = match crate::registry::vehicles(&db).await {
        Ok(v) => crate::alerts::critical::model_map(&v),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the fleet registry yet; models are filled in by the jobs");
            Default::default()
        }
    };
    let models = Arc::new(RwLock::new(models));
    let mut record_sinks = vec![fault_start_sink(faults_tx)];
    let influx = match &config.influxdb {
        Some(c) => {
            let (service, sink) = crate::sink::InfluxService::start(
                c,
                &config.data_dir,
                &db,
                models.clone(),
                metrics.clone(),
            )
            .context("fix [influxdb] in the configuration")?;
            record_sinks.push(sink);
            Some(service)
        }
        None => None,
    };
    let (handle, writer) = spawn_writer(
        store,
        WriterConfig::default(),
        metrics.clone(),
        Some(fan_out(record_sinks)),
    )
    .context("cannot start the store writer thread")?;
    let (stop_tx, stop_rx) = watch::channel(false);

    let (connection, broker_addr, link) = match &config.mqtt.url {
        Some(url) => (
            Connection::external(&config.mqtt, url).context("fix [mqtt] in the configuration")?,
            None,
            None,
        ),
        None => {
            let mut broker = EmbeddedBroker::start(&config.mqtt)?;
            let login = broker
                .internal_login()
                .map(|l| (l.username.clone(), l.password.clone()));
            (
                Connection::plain(broker.connect_addr(), login),
                Some(broker.addr()),
                broker.take_ingest_links(),
            )
        }
    };
    let source = mqtt::spawn_source(
        SourceConfig::new(&config.mqtt, connection.clone()),
        link,
        handle.clone(),
        stop_rx.clone(),
    );
    let (pollers, devices) = start_modbus(&config, &catalog, &db, &handle, &stop_rx).await?;
    drop(handle);

    let (alerts_mqtt, alerts_mqtt_task) = alerts_client(&config, &connection, stop_rx.clone());
    let (notifier, notifier_task) = spawn_notifier(
        db.clone(),
        Some(alerts_mqtt),
        NotifyConfig {
            topic_prefix: config.mqtt.topic_prefix.clone(),
            webhooks,
            retry: Retry {
                attempts: config.alerts.webhook_attempts,
                first_delay: Duration::from_secs(1),
                max_delay: config.alerts.webhook_max_delay,
            },
            max_per_vehicle: config.alerts.max_per_vehicle,
            window: config.alerts.window,
        },
        metrics.clone(),
    );
    let shared_config = Arc::new(config.clone());
    let alerts = AlertContext {
        db: db.clone(),
        tickets: tickets.clone(),
        catalog: catalog.clone(),
        config: shared_config.clone(),
        notifier,
        metrics: metrics.clone(),
        models,
    };
    let realtime = tokio::spawn(critical_faults(alerts.clone(), faults_rx));
    let jobs = tokio::spawn(periodic_jobs(alerts.clone(), stop_rx.clone()));
    drop(alerts);

    let listener = bind_http(&config.http.listen).await?;
    let http_addr = listener
        .local_addr()
        .context("the HTTP listener has no address")?;
    let state = ApiState::new(db.clone(), tickets, config.clone(), metrics.clone())
        .context("fix the truck-model catalogue")?;
    let sources = crate::web::IngestSources {
        broker: match (broker_addr, &config.mqtt.url) {
            (Some(addr), _) => crate::web::Broker::Embedded(addr),
            (None, url) => crate::web::Broker::external(url.as_deref().unwrap_or_default()),
        },
        devices,
    };
    let api = {
        let mut stop = stop_rx.clone();
        let web = crate::web::WebState::new(state, sources);
        tokio::spawn(crate::web::serve(listener, web, async move {
            let _ = stop.changed().await;
        }))
    };

    {
        let mqtt_shown = broker_addr.map_or_else(|| "external".to_owned(), |a| a.to_string());
        let mut out = std::io::stdout().lock();
        writeln!(out, "fleetcare ready: http={http_addr} mqtt={mqtt_shown}")?;
        out.flush()?;
    }
    tracing::info!(http = %http_addr, data = %config.data_dir.display(), "fleetcare running");
    if let Some(hook) = on_ready {
        hook(&Ready {
            http: http_addr,
            mqtt: broker_addr,
            connection,
        });
    }

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
    // The writer is gone, so is its record sink: the real-time path ends
    // once it has handled the last records; then the notifier drains.
    let _ = realtime.await;
    let _ = jobs.await;
    if let Some(influx) = influx {
        influx.finish().await;
    }
    let _ = notifier_task.await;
    let _ = alerts_mqtt_task.await;
    match api.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "the HTTP API and web UI failed"),
        Err(e) => tracing::error!(error = %e, "the HTTP API and web UI panicked"),
    }
    db.close().await;
    let stored = metrics.stored.load(std::sync::atomic::Ordering::Relaxed);
    tracing::info!(stored, "fleetcare stopped");
    match source_failed {
        Some(e) => anyhow::bail!("{e}"),
        None => Ok(()),
    }
}

/// The pollers' tasks and each polled device's live status (for the web
/// UI's health page).
type Pollers = (
    Vec<tokio::task::JoinHandle<()>>,
    Vec<Arc<crate::live::modbus::DeviceStatus>>,
);

/// Starts a poller per configured Modbus device. A device that cannot be
/// polled (unknown vehicle, model without a register map) is reported and
/// skipped; the others run.
async fn start_modbus(
    config: &Config,
    catalog: &Catalog,
    db: &Db,
    handle: &crate::live::IngestHandle,
    stop: &crate::live::Shutdown,
) -> anyhow::Result<Pollers> {
    let devices = &config.modbus.devices;
    if devices.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    // The registry only matters for devices that do not name their model.
    let registry = if devices.iter().any(|d| d.model.is_none()) {
        crate::registry::vehicles(db)
            .await
            .context("cannot read the fleet registry for the Modbus devices")?
    } else {
        Vec::new()
    };
    let (targets, errors) =
        crate::live::modbus::resolve_targets(devices, catalog, |fleet, vehicle| {
            registry
                .iter()
                .find(|v| &v.fleet == fleet && &v.id == vehicle)
                .map(|v| v.model.clone())
        });
    for e in &errors {
        tracing::error!(error = %e, "this Modbus device is not polled");
    }
    let statuses = targets.iter().map(|t| t.status().clone()).collect();
    let tasks = crate::live::modbus::spawn_pollers(
        targets,
        &config.mqtt.topic_prefix,
        handle.clone(),
        stop.clone(),
    );
    Ok((tasks, statuses))
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
