//! The MQTT source: a QoS 1 subscription to the C1 topics that hands each
//! message to the writer and acknowledges it only once it is stored.
//! This one is for an external broker; the embedded broker's edge
//! ([`super::edge`]) hands gateways' messages to the writer itself.
//!
//! Three parts, so that nothing waits on itself:
//! - the poll loop (this task) drives rumqttc's event loop and forwards
//!   publishes to the writer, waiting when the writer's queue is full (the
//!   broker then waits too: TCP back-pressure);
//! - the writer calls each message's `on_stored`, which only pushes the
//!   packet id onto an unbounded channel — the writer never blocks on MQTT;
//! - the ack task turns those into PUBACKs through the client's request
//!   channel, which the poll loop drains.
//!
//! Calling the client from the poll loop itself could deadlock once the
//! request channel is full, because only the poll loop empties it.
//!
//! The session is persistent (`clean_session = false`, a fixed client id):
//! while fleetcare is down the broker keeps what arrives, and anything
//! delivered but not acknowledged is delivered again. Redeliveries are
//! recognised by the store's digests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fleetcare_ingest::Timestamp;
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS,
    SubscribeFilter, SubscribeReasonCode, TlsConfiguration, Transport,
};
use tokio::sync::mpsc;

use crate::config::{Config, MqttConfig};
use crate::runtime::{Backoff, Shutdown};
use crate::store::{Incoming, IngestHandle};

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error(
        "[mqtt] url = {url:?}: {reason}; write it like mqtt://host:1883 or mqtts://user@host:8883"
    )]
    BadUrl { url: String, reason: &'static str },
    #[error("[mqtt] url names the user {user:?}, but the environment variable {env} is not set")]
    MissingPassword { user: String, env: String },
    #[error("TLS for the MQTT broker: {0}")]
    Tls(#[from] crate::runtime::tls::TlsError),
    #[error("the store writer stopped; the MQTT source stops with it")]
    WriterStopped,
}

/// A broker address from `[mqtt] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
}

impl BrokerUrl {
    /// Parses `mqtt://[user@]host[:port]` (also `tcp://`; `mqtts://` and
    /// `ssl://` for TLS). A password in the URL is refused: secrets come
    /// from the environment.
    pub fn parse(url: &str) -> Result<Self, MqttError> {
        let bad = |reason| MqttError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let (scheme, rest) = url.split_once("://").ok_or(bad("it has no scheme"))?;
        let tls = match scheme {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            _ => return Err(bad("the scheme must be mqtt or mqtts")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') {
            return Err(bad("it has a path or query, which MQTT does not use"));
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, _)) if u.contains(':') => {
                return Err(bad(
                    "it holds a password; put it in the environment variable named by [mqtt] password_env",
                ));
            }
            Some(("", _)) => return Err(bad("the user name is empty")),
            Some((u, h)) => (Some(u.to_owned()), h),
            None => (None, rest),
        };
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or(bad("an IPv6 host lacks its ']'"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
                None if after.is_empty() => default_port,
                None => return Err(bad("unexpected text after the IPv6 host")),
            };
            (h.to_owned(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_owned(),
                    p.parse().map_err(|_| bad("the port is not a number"))?,
                ),
                None => (hostport.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        Ok(Self {
            tls,
            host,
            port,
            user,
        })
    }
}

/// How to reach the broker and who to be there.
#[derive(Debug, Clone)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    /// `None`: plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub credentials: Option<(String, String)>,
}

impl Connection {
    /// The external broker of `[mqtt] url`, its password from the environment.
    pub fn external(config: &MqttConfig, url: &str) -> Result<Self, MqttError> {
        let u = BrokerUrl::parse(url)?;
        let credentials = match &u.user {
            Some(user) => {
                let password = std::env::var(&config.password_env).map_err(|_| {
                    MqttError::MissingPassword {
                        user: user.clone(),
                        env: config.password_env.clone(),
                    }
                })?;
                Some((user.clone(), password))
            }
            None => None,
        };
        let tls = if u.tls {
            Some(crate::runtime::tls::client_config(
                config.ca_file.as_deref(),
            )?)
        } else {
            None
        };
        Ok(Self {
            host: u.host,
            port: u.port,
            tls,
            credentials,
        })
    }

    /// Plain TCP to `addr`, e.g. the embedded broker.
    pub fn plain(addr: std::net::SocketAddr, credentials: Option<(String, String)>) -> Self {
        Self {
            host: addr.ip().to_string(),
            port: addr.port(),
            tls: None,
            credentials,
        }
    }

    /// rumqttc options for a client called `client_id`.
    pub fn options(&self, client_id: &str, keep_alive: Duration, max_packet: usize) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, self.host.clone(), self.port);
        o.set_keep_alive(keep_alive.max(Duration::from_secs(5)));
        // Room for the fixed header and topic beside the largest payload.
        o.set_max_packet_size(max_packet + 64 * 1024, max_packet + 64 * 1024);
        if let Some((u, p)) = &self.credentials {
            o.set_credentials(u.clone(), p.clone());
        }
        if let Some(tls) = &self.tls {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                tls.clone(),
            )));
        }
        o
    }
}

/// No Nagle delay: alerts and acknowledgements are small packets that must
/// leave at once (with Nagle and delayed ACKs they wait ~40 ms).
pub fn without_nagle(eventloop: &mut EventLoop) {
    let mut net = eventloop.network_options();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
}

/// Settings of the subscription.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub connection: Connection,
    pub client_id: String,
    pub topic_prefix: String,
    pub keep_alive: Duration,
    pub max_packet_bytes: usize,
    pub max_reconnect_delay: Duration,
}

impl SourceConfig {
    pub fn new(config: &Config, connection: Connection) -> Self {
        let mqtt = &config.mqtt;
        Self {
            connection,
            client_id: mqtt.client_id.clone(),
            topic_prefix: mqtt.topic_prefix.clone(),
            keep_alive: mqtt.keep_alive,
            max_packet_bytes: config.max_packet_bytes(),
            max_reconnect_delay: mqtt.max_reconnect_delay,
        }
    }

    /// `{prefix}/+/+/+`: every per-vehicle channel, so that a message on an
    /// unknown channel (or with a bad id) becomes a dead letter rather than
    /// going unseen; `{prefix}/{fleet}/alerts`, which fleetcare publishes
    /// itself, has one level less and is not matched.
    pub fn filter(&self) -> String {
        format!("{}/+/+/+", self.topic_prefix)
    }
}

/// Starts the MQTT source as a client of `config`'s broker ([`run`]).
pub fn spawn_source(
    config: SourceConfig,
    handle: IngestHandle,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<Result<(), MqttError>> {
    tokio::spawn(run(config, handle, shutdown))
}

/// Packet ids waiting for their PUBACK, as much of a [`Publish`] as
/// `AsyncClient::ack` reads.
struct PendingAck {
    pkid: u16,
    qos: QoS,
}

/// Waits before reconnection attempts: 100 ms doubling up to `max`.
fn reconnect_backoff(max: Duration) -> Backoff {
    Backoff::new(Duration::from_millis(100), max)
}

/// Runs the subscription until `shutdown`, then acknowledges what the
/// writer has stored (for up to 5 s) and disconnects.
pub async fn run(
    config: SourceConfig,
    handle: IngestHandle,
    mut shutdown: Shutdown,
) -> Result<(), MqttError> {
    let mut options = config.connection.options(
        &config.client_id,
        config.keep_alive,
        config.max_packet_bytes,
    );
    options.set_clean_session(false);
    options.set_manual_acks(true);
    let (client, mut eventloop) = AsyncClient::new(options, 4096);
    without_nagle(&mut eventloop);
    let metrics = handle.metrics().clone();
    let unacked = Arc::new(AtomicUsize::new(0));
    let (ack_tx, ack_rx) = mpsc::unbounded_channel::<PendingAck>();
    let acker = tokio::spawn(ack_loop(client.clone(), ack_rx, unacked.clone()));
    let filter = config.filter();
    let mut failures: u32 = 0;
    let mut result = Ok(());
    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let received = Timestamp::from_datetime(&chrono::Utc::now());
                let on_stored: Option<crate::store::OnStored> = if p.qos == QoS::AtMostOnce {
                    None
                } else {
                    unacked.fetch_add(1, Ordering::Relaxed);
                    let tx = ack_tx.clone();
                    let (pkid, qos) = (p.pkid, p.qos);
                    Some(Box::new(move || {
                        // The ack task only ends at shutdown; a PUBACK lost
                        // then is a redelivery later, found as a duplicate.
                        let _ = tx.send(PendingAck { pkid, qos });
                    }))
                };
                let Publish { topic, payload, .. } = p;
                let message = Incoming {
                    topic,
                    payload: payload.to_vec(),
                    received,
                    on_stored,
                };
                // Waits while the writer's queue is full.
                if handle.send(message).await.is_err() {
                    result = Err(MqttError::WriterStopped);
                    break;
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                failures = 0;
                metrics.mqtt_connected.set(1);
                metrics.mqtt_connections.inc();
                tracing::info!(
                    broker = %config.connection.host,
                    port = config.connection.port,
                    session_present = ack.session_present,
                    "MQTT connected"
                );
                // Subscribing again on a resumed session is harmless and
                // covers a broker that lost its sessions in a restart.
                let sub = SubscribeFilter::new(filter.clone(), QoS::AtLeastOnce);
                if client.try_subscribe_many([sub]).is_err() {
                    tracing::error!("the MQTT request queue is full; cannot subscribe");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(s))) => {
                if s.return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure))
                {
                    tracing::error!(filter = %filter, "the broker refused the subscription; check its access rules");
                } else {
                    metrics.mqtt_subscriptions.inc();
                }
            }
            Ok(_) => {}
            Err(e) => {
                let was_connected = metrics.mqtt_connected.set(0) != 0;
                metrics.mqtt_connection_errors.inc();
                failures = failures.saturating_add(1);
                let delay = reconnect_backoff(config.max_reconnect_delay).delay(failures);
                let refused = matches!(
                    &e,
                    rumqttc::ConnectionError::ConnectionRefused(
                        ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized
                    )
                );
                if was_connected || failures == 1 || refused {
                    tracing::warn!(
                        broker = %config.connection.host,
                        port = config.connection.port,
                        error = %e,
                        retry_in_ms = delay.as_millis() as u64,
                        "MQTT connection lost or refused; reconnecting"
                    );
                }
                tokio::select! {
                    _ = shutdown.changed() => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    drop(handle);
    drop(ack_tx);
    drain_and_disconnect(&client, &mut eventloop, &unacked).await;
    acker.abort();
    metrics.mqtt_connected.set(0);
    result
}

async fn ack_loop(
    client: AsyncClient,
    mut rx: mpsc::UnboundedReceiver<PendingAck>,
    unacked: Arc<AtomicUsize>,
) {
    while let Some(a) = rx.recv().await {
        let mut p = Publish::new("", a.qos, Vec::<u8>::new());
        p.pkid = a.pkid;
        if client.ack(&p).await.is_err() {
            return;
        }
        unacked.fetch_sub(1, Ordering::Relaxed);
    }
}

/// At shutdown: keep the event loop turning until the writer has stored
/// (and the ack task has queued PUBACKs for) everything forwarded, then
/// send DISCONNECT after them. New publishes are left unacknowledged: the
/// broker delivers them again next time.
async fn drain_and_disconnect(
    client: &AsyncClient,
    eventloop: &mut EventLoop,
    unacked: &AtomicUsize,
) {
    let drain = async {
        while unacked.load(Ordering::Relaxed) > 0 {
            let tick = tokio::time::sleep(Duration::from_millis(20));
            tokio::select! {
                r = eventloop.poll() => if r.is_err() { return; },
                () = tick => {}
            }
        }
        if client.try_disconnect().is_err() {
            return;
        }
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        tracing::warn!(
            unacknowledged = unacked.load(Ordering::Relaxed),
            "MQTT shutdown did not finish in 5 s; the broker will deliver the rest again"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = BrokerUrl::parse("mqtts://gw@broker.example:8884").unwrap();
        assert_eq!(
            u,
            BrokerUrl {
                tls: true,
                host: "broker.example".into(),
                port: 8884,
                user: Some("gw".into())
            }
        );
        let u = BrokerUrl::parse("mqtt://127.0.0.1").unwrap();
        assert_eq!((u.tls, u.port, u.user), (false, 1883, None));
        assert_eq!(BrokerUrl::parse("mqtts://h").unwrap().port, 8883);
        let u = BrokerUrl::parse("tcp://[::1]:1999/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 1999));
        for (bad, why) in [
            ("broker:1883", "no scheme"),
            ("http://h", "mqtt or mqtts"),
            ("mqtt://u:secret@h", "password_env"),
            ("mqtt://h:port", "not a number"),
            ("mqtt://h/x", "path"),
            ("mqtt://", "host is empty"),
        ] {
            let e = BrokerUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn reconnect_backs_off_to_the_cap() {
        let max = Duration::from_secs(30);
        let d: Vec<u64> = (1..=12)
            .map(|a| reconnect_backoff(max).delay(a).as_millis() as u64)
            .collect();
        assert_eq!(&d[..5], &[100, 200, 400, 800, 1600]);
        assert_eq!(d[11], 30_000);
        assert_eq!(reconnect_backoff(max).delay(u32::MAX), max);
    }

    #[test]
    fn the_filter_takes_every_vehicle_channel_but_not_alerts() {
        let c = SourceConfig::new(
            &Config::default(),
            Connection::plain("127.0.0.1:1".parse().unwrap(), None),
        );
        assert_eq!(c.filter(), "fleet/+/+/+");
        // Room for the largest payload and its topic.
        assert_eq!(c.max_packet_bytes, 256 * 1024 + 64 * 1024);
    }

    #[test]
    fn a_missing_password_names_the_variable() {
        let config = MqttConfig {
            password_env: "FLEETCARE_TEST_SURELY_UNSET_PW".into(),
            ..MqttConfig::default()
        };
        let e = Connection::external(&config, "mqtt://gw@h")
            .unwrap_err()
            .to_string();
        assert!(e.contains("FLEETCARE_TEST_SURELY_UNSET_PW"), "{e}");
        let c = Connection::external(&config, "mqtts://h").unwrap();
        assert!(c.tls.is_some());
    }
}
