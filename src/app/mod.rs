//! The service in one process, as `fleetcare run` and `fleetcare demo`
//! start it: the store writer, the MQTT source (the embedded broker's
//! edge unless `[mqtt] url` is set), the Modbus pollers, the real-time alert path, the
//! periodic jobs, tickets, the HTTP API and the web UI.
//!
//! [`Service::start`] brings them up in the order data flows (the store
//! before the sources that feed it, the HTTP listener last) and
//! [`Service::run_until`] stops them in the order that loses nothing:
//! sources stop reading; the writer stores what is queued and the MQTT
//! source acknowledges it; the store is compacted; the alert tasks finish
//! what the last records raised; the notifier sends what it holds; the API
//! finishes the requests in flight. What was not acknowledged is delivered
//! again by the broker on the next start.
//!
//! The composition root: errors carry anyhow context here, as at the
//! binary's edge, because they only ever end the process with a message.

mod modbus;
mod publisher;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use fleetcare_ingest::ids::FleetId;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::alerts::notify::{NotifyConfig, spawn_notifier};
use crate::alerts::service::{AlertContext, critical_faults, fault_start_sink, periodic_jobs};
use crate::alerts::webhook::{Retry, WebhookTarget};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::Db;
use crate::http::api::ApiState;
use crate::runtime::{Backoff, LiveMetrics};
use crate::sink::InfluxService;
use crate::sources::broker::InternalBroker;
use crate::sources::edge::Edge;
use crate::sources::mqtt::{self, Connection, MqttError, SourceConfig};
use crate::store::writer::fan_out;
use crate::store::{Store, StoreError, StoreReader, WriterConfig, spawn_writer};
use crate::tickets::Tickets;

/// Where the running service can be reached.
#[derive(Debug, Clone)]
pub struct Ready {
    pub http: SocketAddr,
    /// The embedded broker, or `None` with an external one.
    pub mqtt: Option<SocketAddr>,
    /// How fleetcare's own publishers (the demo's fleet) publish data:
    /// the embedded broker with fleetcare's service login, or the
    /// external broker.
    pub connection: Connection,
}

impl Ready {
    /// The line `fleetcare run` prints once it accepts connections (C6).
    pub fn line(&self) -> String {
        let mqtt = self
            .mqtt
            .map_or_else(|| "external".to_owned(), |a| a.to_string());
        format!("fleetcare ready: http={} mqtt={mqtt}", self.http)
    }
}

/// The running service: every task its shutdown must wait for.
#[derive(Debug)]
pub struct Service {
    ready: Ready,
    stop: watch::Sender<bool>,
    source: JoinHandle<Result<(), MqttError>>,
    pollers: Vec<JoinHandle<()>>,
    writer: std::thread::JoinHandle<Result<Store, StoreError>>,
    realtime: JoinHandle<()>,
    jobs: JoinHandle<()>,
    influx: Option<InfluxService>,
    notifier: JoinHandle<()>,
    alerts_mqtt: JoinHandle<()>,
    http: JoinHandle<std::io::Result<()>>,
    db: Db,
    metrics: Arc<LiveMetrics>,
}

impl Service {
    /// Opens the store and the database and starts every task; returns
    /// once the HTTP listener and the broker accept connections.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
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
        // One reader for the API, the web UI, the jobs and ticket meters.
        let reader = Arc::new(StoreReader::new(&config.data_dir, config.pipeline()));
        let tickets = Tickets::new(db.clone(), config.sla.clone())
            .with_meters(Arc::new(crate::tickets::StoreMeters {
                store: reader.clone(),
            }))
            .with_catalog(catalog.clone());
        let (faults_tx, faults_rx) = mpsc::unbounded_channel();
        // Vehicle → model for alerts and the InfluxDB sink; the jobs refresh it.
        let models = match crate::registry::vehicles(&db).await {
            Ok(v) => crate::registry::model_map(&v),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the fleet registry yet; models are filled in by the jobs");
                Default::default()
            }
        };
        let models = Arc::new(RwLock::new(models));
        let mut record_sinks = vec![fault_start_sink(faults_tx)];
        let influx = match &config.influxdb {
            Some(c) => {
                let (service, sink) =
                    InfluxService::start(c, &config.data_dir, &db, models.clone(), metrics.clone())
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
        let (stop, stop_rx) = watch::channel(false);

        // Gateways' data, and where alerts are published.
        let (connection, alerts_connection, broker_addr, source) = match &config.mqtt.url {
            Some(url) => {
                let connection = Connection::external(&config.mqtt, url)
                    .context("fix [mqtt] in the configuration")?;
                let source = mqtt::spawn_source(
                    SourceConfig::new(&config, connection.clone()),
                    handle.clone(),
                    stop_rx.clone(),
                );
                (connection.clone(), connection, None, source)
            }
            None => {
                let internal = InternalBroker::start(&config.mqtt)?;
                let edge = Edge::bind(&config, &internal, metrics.clone()).await?;
                let addr = edge.addr();
                let connection = edge.service_connection();
                let source = edge.spawn(handle.clone(), stop_rx.clone());
                (connection, internal.connection(), Some(addr), source)
            }
        };
        let (pollers, devices) = modbus::start(&config, &catalog, &db, &handle, &stop_rx).await?;
        drop(handle);

        let (alerts_mqtt, alerts_mqtt_task) =
            publisher::alerts_client(&config, &alerts_connection, stop_rx.clone())?;
        let (notifier, notifier_task) = spawn_notifier(
            db.clone(),
            Some(alerts_mqtt),
            NotifyConfig {
                topic_prefix: config.mqtt.topic_prefix.clone(),
                webhooks,
                retry: Retry {
                    attempts: config.alerts.webhook_attempts,
                    backoff: Backoff::new(Duration::from_secs(1), config.alerts.webhook_max_delay),
                },
                max_per_vehicle: config.alerts.max_per_vehicle,
                window: config.alerts.window,
            },
            metrics.clone(),
        );
        let alerts = AlertContext {
            db: db.clone(),
            tickets: tickets.clone(),
            catalog: catalog.clone(),
            config: Arc::new(config.clone()),
            notifier,
            metrics: metrics.clone(),
            models,
            store: reader.clone(),
        };
        let realtime = tokio::spawn(critical_faults(alerts.clone(), faults_rx));
        let jobs = tokio::spawn(periodic_jobs(alerts, stop_rx.clone()));

        let listener = bind_http(&config.http.listen).await?;
        let http_addr = listener
            .local_addr()
            .context("the HTTP listener has no address")?;
        let state = ApiState::new(db.clone(), tickets, config.clone(), metrics.clone())
            .context("fix the truck-model catalogue")?
            .with_store(reader);
        let sources = crate::http::IngestSources {
            broker: match (broker_addr, &config.mqtt.url) {
                (Some(addr), _) => crate::http::Broker::Embedded(addr),
                (None, url) => crate::http::Broker::external(url.as_deref().unwrap_or_default()),
            },
            devices,
        };
        let http = {
            let mut stop = stop_rx.clone();
            let web = crate::http::WebState::new(state, sources);
            tokio::spawn(crate::http::serve(listener, web, async move {
                let _ = stop.changed().await;
            }))
        };
        tracing::info!(http = %http_addr, data = %config.data_dir.display(), "fleetcare running");
        Ok(Self {
            ready: Ready {
                http: http_addr,
                mqtt: broker_addr,
                connection,
            },
            stop,
            source,
            pollers,
            writer,
            realtime,
            jobs,
            influx,
            notifier: notifier_task,
            alerts_mqtt: alerts_mqtt_task,
            http,
            db,
            metrics,
        })
    }

    /// Where the service can be reached.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// Runs until `stop` completes (a signal), then shuts down. Ends
    /// earlier, with an error, if the MQTT source stops on its own (the
    /// writer failed to store).
    pub async fn run_until(
        mut self,
        stop: impl Future<Output = anyhow::Result<()>>,
    ) -> anyhow::Result<()> {
        let source_result = tokio::select! {
            r = stop => {
                r?;
                tracing::info!("stopping: storing and acknowledging what arrived");
                let _ = self.stop.send(true);
                (&mut self.source).await
            }
            r = &mut self.source => r,
        };
        let source_failed = match source_result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("the MQTT source panicked: {e}")),
        };
        self.shutdown().await?;
        match source_failed {
            Some(e) => anyhow::bail!("{e}"),
            None => Ok(()),
        }
    }

    /// Stops every task in the order that loses nothing (see the module
    /// documentation). The MQTT source has ended or been told to stop.
    async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        for p in self.pollers {
            let _ = p.await;
        }
        let writer = self.writer;
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
        let _ = self.realtime.await;
        let _ = self.jobs.await;
        if let Some(influx) = self.influx {
            influx.finish().await;
        }
        let _ = self.notifier.await;
        let _ = self.alerts_mqtt.await;
        match self.http.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the HTTP API and web UI failed"),
            Err(e) => tracing::error!(error = %e, "the HTTP API and web UI panicked"),
        }
        self.db.close().await;
        let stored = self.metrics.stored.get();
        tracing::info!(stored, "fleetcare stopped");
        Ok(())
    }
}

/// The webhooks of `[[webhooks]]`, secrets read from the environment.
fn webhooks(config: &Config) -> anyhow::Result<HashMap<FleetId, Vec<WebhookTarget>>> {
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

/// Binds the HTTP listener; a taken port is an error that says what to do.
async fn bind_http(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!(
            "cannot listen for HTTP on {listen}; stop whatever uses that port, or set [http] listen to another address (port 0 picks a free one)"
        )
    })
}
