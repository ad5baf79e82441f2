//! The internal MQTT broker (rumqttd) behind the embedded broker's edge
//! ([`super::edge`]).
//!
//! Outside clients never reach it: it listens on a random loopback port,
//! and every connection must log in with a login generated at each start
//! and never written anywhere. It serves what a broker is good at and
//! nothing else: subscriptions, sessions and QoS delivery of fleetcare's
//! alerts (`{prefix}/{fleet}/alerts`), published by fleetcare's alert
//! publisher and read through the edge. Gateways' data never passes
//! through it (the edge hands it to the store's writer), so its per-filter
//! logs carry alerts only, within `[mqtt] broker_memory_bytes` each.
//!
//! rumqttd binds its port on a thread of its own and only logs a failure,
//! so a free port is found here first and connecting is how readiness is
//! known.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rumqttd::{Broker, ConnectionSettings, RouterConfig, ServerSettings};

use super::mqtt::Connection;
use crate::config::MqttConfig;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot find a free loopback port for the internal MQTT broker: {0}")]
    Port(std::io::Error),
    #[error("the internal MQTT broker did not start listening on {0} within 10 s")]
    NotListening(SocketAddr),
    #[error("cannot start the internal MQTT broker's thread: {0}")]
    Thread(std::io::Error),
    #[error("the operating system gave no random bytes for the internal broker's login: {0}")]
    Random(String),
}

/// Segments of each filter's log: the oldest of `broker_memory_bytes`
/// worth of alerts is dropped a quarter at a time.
const SEGMENTS: usize = 4;

/// The largest packet the internal broker takes: alerts are a few KiB.
const MAX_PACKET: usize = 1 << 20;

/// The login fleetcare's own connections (the edge's links, the alert
/// publisher) use with the internal broker.
#[derive(Clone)]
pub struct InternalLogin {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for InternalLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalLogin")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The running internal broker. It lives until the process ends (rumqttd
/// has no shutdown); nothing outside the process can use it.
#[derive(Debug)]
pub struct InternalBroker {
    addr: SocketAddr,
    login: InternalLogin,
}

impl InternalBroker {
    /// Where it listens: a loopback address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn login(&self) -> &InternalLogin {
        &self.login
    }

    /// How fleetcare's own clients reach it.
    pub fn connection(&self) -> Connection {
        Connection::plain(
            self.addr,
            Some((self.login.username.clone(), self.login.password.clone())),
        )
    }

    /// Starts rumqttd on a free loopback port and returns once it accepts
    /// connections.
    pub fn start(config: &MqttConfig) -> Result<Self, BrokerError> {
        let addr = free_loopback_port()?;
        let login = InternalLogin {
            username: format!("fleetcare-{}", random_hex(8)?),
            password: random_hex(24)?,
        };
        let connections = ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: MAX_PACKET,
            max_inflight_count: 100,
            auth: Some(HashMap::from([(
                login.username.clone(),
                login.password.clone(),
            )])),
            external_auth: None,
            dynamic_filters: true,
        };
        let server = ServerSettings {
            name: "fleetcare-internal".to_owned(),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 0,
            connections,
        };
        let broker_config = rumqttd::Config {
            router: router_config(config),
            v4: Some(HashMap::from([("fleetcare-internal".to_owned(), server)])),
            ..rumqttd::Config::default()
        };
        let mut broker = Broker::new(broker_config);
        std::thread::Builder::new()
            .name("mqtt-broker".to_owned())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "the internal MQTT broker stopped");
                }
            })
            .map_err(BrokerError::Thread)?;
        wait_listening(addr)?;
        tracing::debug!(listen = %addr, "internal MQTT broker listening");
        Ok(Self { addr, login })
    }
}

/// Bounds of rumqttd's router: each filter's log holds at most
/// `broker_memory_bytes` of alerts; every edge client may hold a link.
fn router_config(config: &MqttConfig) -> RouterConfig {
    RouterConfig {
        // The edge's links and fleetcare's own clients.
        max_connections: config.max_connections.saturating_add(16),
        max_outgoing_packet_count: 200,
        max_segment_size: (config.broker_memory_bytes / SEGMENTS).max(1024),
        max_segment_count: SEGMENTS,
        ..RouterConfig::default()
    }
}

fn random_hex(n: usize) -> Result<String, BrokerError> {
    crate::runtime::secret::random_hex(n).map_err(|e| BrokerError::Random(e.0))
}

/// A free port on 127.0.0.1, for rumqttd to bind.
fn free_loopback_port() -> Result<SocketAddr, BrokerError> {
    let probe = TcpListener::bind("127.0.0.1:0").map_err(BrokerError::Port)?;
    probe.local_addr().map_err(BrokerError::Port)
}

/// rumqttd binds asynchronously on its own thread; connecting is the only
/// way to know it is ready.
fn wait_listening(addr: SocketAddr) -> Result<(), BrokerError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(BrokerError::NotListening(addr))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use bytes::BytesMut;
    use rumqttc::mqttbytes::v4::{ConnAck, Connect, ConnectReturnCode, Packet};

    use super::*;

    /// CONNECT as `login` on a fresh connection; the broker's answer
    /// (`None`: it closed the connection without one).
    fn try_connect(addr: SocketAddr, login: Option<(&str, &str)>) -> Option<ConnAck> {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = Connect::new("probe");
        if let Some((u, p)) = login {
            c.set_login(u, p);
        }
        let mut buf = BytesMut::new();
        c.write(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        let mut read = BytesMut::new();
        loop {
            match Packet::read(&mut read, 1024) {
                Ok(Packet::ConnAck(a)) => return Some(a),
                Ok(other) => panic!("{other:?}"),
                Err(_) => {}
            }
            let mut chunk = [0u8; 256];
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => read.extend_from_slice(&chunk[..n]),
            }
        }
    }

    #[test]
    fn only_fleetcare_s_own_login_gets_in_on_loopback() {
        let b = InternalBroker::start(&MqttConfig::default()).unwrap();
        assert!(b.addr().ip().is_loopback());
        assert!(b.login().username.starts_with("fleetcare-"));
        let ok = try_connect(b.addr(), Some((&b.login().username, &b.login().password)));
        assert_eq!(ok.map(|a| a.code), Some(ConnectReturnCode::Success));
        assert!(
            try_connect(b.addr(), None).is_none_or(|a| a.code != ConnectReturnCode::Success),
            "anonymous"
        );
        assert!(
            try_connect(b.addr(), Some((&b.login().username, "guess")))
                .is_none_or(|a| a.code != ConnectReturnCode::Success),
            "a wrong password"
        );
    }

    #[test]
    fn segments_bound_each_filters_memory() {
        let config = MqttConfig {
            broker_memory_bytes: 8 << 20,
            ..MqttConfig::default()
        };
        let r = router_config(&config);
        assert!(r.max_segment_size * r.max_segment_count <= 8 << 20);
        assert_eq!(r.max_segment_count, SEGMENTS);
    }
}
