//! Delivering alerts, off the ingest path: the alert log (database), the
//! fleet's MQTT alerts topic (QoS 1) and its webhooks. Each alert passes the
//! per-vehicle rate limit first; webhook deliveries run as tasks of their
//! own, so a slow receiver delays nothing else. Alerts support must hear
//! of ([`super::AlertKind::to_support`]) also go to the support channel
//! (`super::support`) as they come; alerts for support alone
//! ([`super::AlertKind::for_support`]) go to the alert log and the support
//! channel, never to the fleet's topic or webhooks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use fleetcare_ingest::ids::FleetId;
use fleetcare_ingest::topic::alerts_topic;
use rumqttc::{AsyncClient, QoS};
use tokio::sync::mpsc;

use super::Alert;
use super::limit::RateLimit;
use super::support::SupportChannel;
use super::webhook::{self, Retry, WebhookTarget};
use crate::db::Db;
use crate::runtime::LiveMetrics;

/// Where alerts go.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub topic_prefix: String,
    pub webhooks: HashMap<FleetId, Vec<WebhookTarget>>,
    pub retry: Retry,
    pub max_per_vehicle: usize,
    pub window: Duration,
}

/// Sends alerts to the notifier task.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: mpsc::UnboundedSender<Alert>,
}

impl Notifier {
    /// Queues an alert; never waits (the real-time path must not).
    pub fn send(&self, alert: Alert) {
        if self.tx.send(alert).is_err() {
            tracing::warn!("the notifier has stopped; an alert was not sent");
        }
    }
}

/// Starts the notifier. `mqtt`: a client for the alerts topic. It ends
/// once every [`Notifier`] is dropped, after sending what it holds.
/// Support's channel is the topic `{prefix}/_support/alerts` alone.
pub fn spawn_notifier(
    db: Db,
    mqtt: Option<AsyncClient>,
    config: NotifyConfig,
    metrics: Arc<LiveMetrics>,
) -> (Notifier, tokio::task::JoinHandle<()>) {
    let support = SupportChannel::topic_only(&config.topic_prefix);
    spawn_notifier_with_support(db, mqtt, config, support, metrics)
}

/// [`spawn_notifier`] with support's channel as configured (`[support]`).
pub fn spawn_notifier_with_support(
    db: Db,
    mqtt: Option<AsyncClient>,
    config: NotifyConfig,
    support: SupportChannel,
    metrics: Arc<LiveMetrics>,
) -> (Notifier, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Alert>();
    let task = tokio::spawn(async move {
        let http = match crate::runtime::tls::https_client() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the webhook HTTP client; webhooks are off");
                None
            }
        };
        let mut limit = RateLimit::new(config.max_per_vehicle, config.window);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let now = Utc::now();
            let ready = tokio::select! {
                a = rx.recv() => match a {
                    // One per vehicle or ticket by construction: nothing to hold.
                    Some(a) if a.kind.for_support() => vec![a],
                    Some(a) => {
                        // Support hears at once, whatever the customer's limit holds.
                        if a.kind.to_support()
                            && let Ok(body) = serde_json::to_vec(&a)
                        {
                            super::support::send(
                                &support, mqtt.as_ref(), http.as_ref(), config.retry, &metrics, &a, &body,
                            );
                        }
                        limit.offer(a, now).into_iter().collect()
                    }
                    None => break,
                },
                _ = tick.tick() => limit.flush(now),
            };
            for alert in ready {
                deliver(
                    &db,
                    mqtt.as_ref(),
                    http.as_ref(),
                    &config,
                    &support,
                    &metrics,
                    alert,
                )
                .await;
            }
        }
        // Held alerts are not lost at shutdown: they go out as digests.
        let far = Utc::now() + chrono::Duration::days(3650);
        for alert in limit.flush(far) {
            deliver(
                &db,
                mqtt.as_ref(),
                http.as_ref(),
                &config,
                &support,
                &metrics,
                alert,
            )
            .await;
        }
        if let Some(client) = &mqtt {
            // After the queued alerts: lets the publisher's loop finish.
            let _ = client.try_disconnect();
        }
    });
    (Notifier { tx }, task)
}

async fn deliver(
    db: &Db,
    mqtt: Option<&AsyncClient>,
    http: Option<&reqwest::Client>,
    config: &NotifyConfig,
    support: &SupportChannel,
    metrics: &Arc<LiveMetrics>,
    alert: Alert,
) {
    let body = match serde_json::to_vec(&alert) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise an alert");
            return;
        }
    };
    if let Err(e) = log(db, &alert, &body).await {
        tracing::error!(error = %e, alert = %alert.id, "cannot write the alert log");
    }
    metrics.alerts_sent.inc();
    tracing::info!(
        alert = %alert.id,
        kind = alert.kind.as_str(),
        fleet = alert.fleet.as_ref().map(|f| f.as_str()),
        vehicle = alert.vehicle.as_ref().map(|v| v.as_str()),
        title = %alert.title,
        "alert"
    );
    if alert.kind.for_support() {
        super::support::send(support, mqtt, http, config.retry, metrics, &alert, &body);
        return;
    }
    let Some(fleet) = &alert.fleet else {
        // About a model across fleets: in the log and the API, not sent to
        // any one fleet's systems.
        return;
    };
    if let Some(client) = mqtt {
        let topic = alerts_topic(&config.topic_prefix, fleet);
        // Queued on the client; its event loop delivers with QoS 1 and
        // retries across reconnections.
        if client
            .try_publish(topic, QoS::AtLeastOnce, false, body.clone())
            .is_err()
        {
            tracing::warn!(alert = %alert.id, "the MQTT alerts queue is full; alert not published");
        }
    }
    if let (Some(http), Some(targets)) = (http, config.webhooks.get(fleet)) {
        spawn_webhooks(http, targets, &body, config.retry, &alert.id, metrics);
    }
}

/// Starts one delivery task per target: a slow receiver delays nothing else.
pub(super) fn spawn_webhooks(
    http: &reqwest::Client,
    targets: &[WebhookTarget],
    body: &[u8],
    retry: Retry,
    alert_id: &str,
    metrics: &Arc<LiveMetrics>,
) {
    for target in targets {
        let target = target.clone();
        let http = http.clone();
        let body = body.to_vec();
        let id = alert_id.to_owned();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            match webhook::deliver(&http, &target, &body, retry).await {
                Ok(()) => {}
                // The configured URL is wrong: the operator must act.
                Err(e @ webhook::WebhookError::Redirected { .. }) => {
                    metrics.webhook_failures.inc();
                    tracing::error!(alert = %id, error = %e, "Webhook delivery failed.");
                }
                Err(e) => {
                    metrics.webhook_failures.inc();
                    tracing::warn!(alert = %id, error = %e, "Webhook delivery failed.");
                }
            }
        });
    }
}

async fn log(db: &Db, alert: &Alert, body: &[u8]) -> Result<(), sqlx::Error> {
    let kind = alert.kind.as_str();
    sqlx::query(
        "INSERT INTO alerts (alert_id, at, fleet_id, vehicle_id, kind, ticket_id, title, body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&alert.id)
    .bind(
        alert
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    )
    .bind(alert.fleet.as_ref().map(|f| f.as_str().to_owned()))
    .bind(alert.vehicle.as_ref().map(|v| v.as_str().to_owned()))
    .bind(kind)
    .bind(alert.ticket.map(|t| t.0))
    .bind(&alert.title)
    .bind(String::from_utf8_lossy(body).into_owned())
    .execute(db.pool())
    .await
    .map(|_| ())
}
