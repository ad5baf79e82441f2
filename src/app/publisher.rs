//! The MQTT client that publishes alerts on `{prefix}/{fleet}/alerts`,
//! with its own event loop. A lost broker is retried with back-off for as
//! long as the service runs, never a reason to stop.
//!
//! With the embedded broker it connects to the internal rumqttd directly
//! (its address and login are generated at each start) under an id with
//! a random suffix; no outside client can take that id (the edge refuses
//! ids starting `fleetcare-` and keeps outside ids in a namespace of
//! their own).

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, Outgoing};
use tokio::sync::watch;

use crate::config::Config;
use crate::runtime::Backoff;
use crate::sources::mqtt::{self, Connection};

/// Waits between reconnections of the alert publisher.
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(400), Duration::from_millis(25_600));

/// The alert publisher's client id: fixed with an external broker (its
/// session outlives restarts), random per start with the embedded one.
fn client_id(config: &Config) -> anyhow::Result<String> {
    Ok(match &config.mqtt.url {
        Some(_) => format!("{}-alerts", config.mqtt.client_id),
        None => format!(
            "fleetcare-alerts-{}",
            crate::runtime::secret::random_hex(8)?
        ),
    })
}

/// A client that publishes alerts on the broker. Its loop ends once every
/// handle is dropped and its queue is sent (or 5 s after shutdown began,
/// if the broker is gone).
pub(super) fn alerts_client(
    config: &Config,
    connection: &Connection,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(AsyncClient, tokio::task::JoinHandle<()>)> {
    let mut o = connection.options(&client_id(config)?, config.mqtt.keep_alive, 1 << 20);
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
                    tokio::time::sleep(RECONNECT.delay(failures)).await;
                }
            }
        }
    });
    Ok((client, task))
}
