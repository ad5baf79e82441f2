//! The support channel (C10): the support team's MQTT topic
//! (`[support] alerts_topic`, default `{prefix}/_support/alerts`) and its
//! webhooks (`[[support.webhooks]]`, signed like a fleet's).
//!
//! What reaches it ([`super::AlertKind::to_support`]): escalated
//! complaints, SLA breaches and batch defects — besides the customer's own
//! channel, and even when they name no fleet (a batch defect across
//! fleets) — and the alerts for support alone: vehicles missing from the
//! registry, overdue follow-up calls and recall campaigns' progress.
//! Alerts go to support when they
//! are raised, never held back by the per-vehicle limit of the customer's
//! channel.

use std::sync::Arc;

use rumqttc::{AsyncClient, QoS};

use super::Alert;
use super::webhook::{Retry, WebhookTarget};
use crate::config::Config;
use crate::runtime::LiveMetrics;

/// Where support's alerts go.
#[derive(Debug, Clone)]
pub struct SupportChannel {
    pub topic: String,
    pub webhooks: Vec<WebhookTarget>,
}

impl SupportChannel {
    /// The topic alone: `{prefix}/_support/alerts`, no webhooks.
    pub fn topic_only(prefix: &str) -> Self {
        Self {
            topic: format!("{prefix}/_support/alerts"),
            webhooks: Vec::new(),
        }
    }

    /// `[support]` of `config`, with the webhook secrets read from the
    /// environment; an unset variable is an error naming it.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let mut webhooks = Vec::new();
        for w in &config.support.webhooks {
            let secret = std::env::var(&w.secret_env).map_err(|_| {
                format!(
                    "the support webhook {} takes its secret from the environment variable {}, which is not set; set it or remove the webhook",
                    w.url, w.secret_env
                )
            })?;
            webhooks.push(WebhookTarget {
                url: w.url.clone(),
                secret: secret.into_bytes(),
            });
        }
        Ok(Self {
            topic: config.support.topic(&config.mqtt.topic_prefix),
            webhooks,
        })
    }
}

/// Publishes `body` (the alert as JSON) on the support topic (QoS 1) and
/// starts a delivery to each support webhook.
pub(super) fn send(
    channel: &SupportChannel,
    mqtt: Option<&AsyncClient>,
    http: Option<&reqwest::Client>,
    retry: Retry,
    metrics: &Arc<LiveMetrics>,
    alert: &Alert,
    body: &[u8],
) {
    if let Some(client) = mqtt
        && client
            .try_publish(
                channel.topic.clone(),
                QoS::AtLeastOnce,
                false,
                body.to_vec(),
            )
            .is_err()
    {
        tracing::warn!(alert = %alert.id, "the MQTT alerts queue is full; support alert not published");
    }
    if let Some(http) = http {
        super::notify::spawn_webhooks(http, &channel.webhooks, body, retry, &alert.id, metrics);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use chrono::Utc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;
    use crate::alerts::notify::{NotifyConfig, spawn_notifier_with_support};
    use crate::alerts::{AlertKind, new_id};
    use crate::catalog::ModelId;
    use crate::runtime::Backoff;

    /// A webhook receiver on loopback: answers 200 and hands on each body.
    async fn receiver() -> (String, mpsc::UnboundedReceiver<serde_json::Value>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/support", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then Content-Length bytes of body.
                let body = loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if rest.len() >= len {
                            break Some(rest[..len].to_owned());
                        }
                    }
                };
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                if let Some(body) = body
                    && let Ok(v) = serde_json::from_str(&body)
                {
                    let _ = tx.send(v);
                }
            }
        });
        (url, rx)
    }

    fn alert(kind: AlertKind, fleet: Option<&str>) -> Alert {
        Alert {
            id: new_id(),
            at: Utc::now(),
            kind,
            fleet: fleet.map(|f| fleetcare_ingest::ids::FleetId::new(f).unwrap()),
            vehicle: None,
            model: Some(ModelId::new("compactor-c12").unwrap()),
            ticket: None,
            priority: None,
            title: kind.as_str().to_owned(),
            title_en: kind.as_str().to_owned(),
            details: String::new(),
            held: Vec::new(),
        }
    }

    /// Issue 21: a batch defect across fleets had no fleet and reached no
    /// one. Now support's webhook gets it; a complaint (the fleet's
    /// business) does not go there.
    async fn a_batch_defect_across_fleets_reaches_support(db: crate::db::Db) {
        let (url, mut bodies) = receiver().await;
        let support = SupportChannel {
            topic: "fleet/_support/alerts".to_owned(),
            webhooks: vec![WebhookTarget {
                url,
                secret: b"s".to_vec(),
            }],
        };
        let (notifier, task) = spawn_notifier_with_support(
            db,
            None,
            NotifyConfig {
                topic_prefix: "fleet".into(),
                webhooks: HashMap::new(),
                retry: Retry {
                    attempts: 3,
                    backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(10)),
                },
                max_per_vehicle: 3,
                window: Duration::from_secs(600),
            },
            support,
            Arc::new(LiveMetrics::default()),
        );
        notifier.send(alert(AlertKind::Complaint, Some("acme")));
        notifier.send(alert(AlertKind::BatchDefect, None));
        let got = tokio::time::timeout(Duration::from_secs(10), bodies.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got["kind"], "batch_defect");
        assert_eq!(got["fleet"], serde_json::Value::Null);
        drop(notifier);
        task.await.unwrap();
        assert!(
            bodies.try_recv().is_err(),
            "the complaint did not go to support"
        );
    }

    #[test]
    fn a_batch_defect_across_fleets_reaches_support_on_sqlite() {
        crate::db::testing::on_sqlite_in(
            crate::db::testing::multi_thread_runtime(),
            a_batch_defect_across_fleets_reaches_support,
        );
    }

    #[test]
    fn what_reaches_support() {
        let to_support: Vec<&str> = [
            AlertKind::CriticalFault,
            AlertKind::Maintenance,
            AlertKind::BatchDefect,
            AlertKind::Complaint,
            AlertKind::SlaBreach,
            AlertKind::ComplaintEscalated,
            AlertKind::UnknownVehicle,
            AlertKind::FollowUpOverdue,
            AlertKind::RecallProgress,
        ]
        .into_iter()
        .filter(|k| k.to_support())
        .map(AlertKind::as_str)
        .collect();
        assert_eq!(
            to_support,
            [
                "batch_defect",
                "sla_breach",
                "complaint_escalated",
                "unknown_vehicle",
                "follow_up_overdue",
                "recall_progress"
            ]
        );
    }
}
