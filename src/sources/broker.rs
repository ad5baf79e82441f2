//! The embedded MQTT broker (rumqttd), used when no external broker is
//! configured.
//!
//! rumqttd binds its port on a thread of its own and only logs a failure,
//! so the address is bound here first: a taken port is reported to the
//! user, and port 0 becomes a concrete free port that can be printed.
//!
//! What it cannot give: rumqttd acknowledges a publisher as soon as it holds
//! a message in memory, so a message a gateway sent in the moment before
//! fleetcare dies is lost with the process. fleetcare itself acknowledges
//! only stored messages, so with an external broker (which keeps queued
//! messages on disk) nothing is lost; see docs/decisions.md.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use rumqttd::{Broker, ConnectionSettings, RouterConfig, ServerSettings};

use crate::config::{EmbeddedAck, MqttConfig};

/// Login secrets, with the broker's error.
fn random_hex(n: usize) -> Result<String, BrokerError> {
    crate::runtime::secret::random_hex(n).map_err(|e| BrokerError::Random(e.0))
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "cannot listen for MQTT on {addr}: {source}; stop whatever uses that port, or set [mqtt] listen to another address (port 0 picks a free one)"
    )]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("[mqtt] listen = {0:?} is not an address like 0.0.0.0:1883")]
    BadAddress(String),
    #[error(
        "the embedded broker login {username:?} takes its password from the environment variable {env}, which is not set"
    )]
    MissingPassword { username: String, env: String },
    #[error("the embedded MQTT broker did not start listening on {0} within 10 s")]
    NotListening(SocketAddr),
    #[error("cannot start the embedded MQTT broker's thread: {0}")]
    Thread(std::io::Error),
    #[error(
        "the operating system gave no random bytes for the broker login or the ingest's group: {0}"
    )]
    Random(String),
    #[error("the embedded MQTT broker refused fleetcare's in-process link: {0}")]
    Link(String),
}

/// A login fleetcare's own TCP clients (the alerts publisher) use with the
/// embedded broker when gateways must log in: generated per start, never written anywhere.
#[derive(Debug, Clone)]
pub struct InternalLogin {
    pub username: String,
    pub password: String,
}

/// The running embedded broker. It lives until the process ends (rumqttd
/// has no shutdown); fleetcare stops reading from it first.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    login: Option<InternalLogin>,
    ingest: Option<super::links::IngestLinks>,
}

impl EmbeddedBroker {
    /// Where it listens (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address to connect to: the listening one, with an unspecified
    /// IP (0.0.0.0, ::) replaced by loopback.
    pub fn connect_addr(&self) -> SocketAddr {
        let mut a = self.addr;
        if a.ip().is_unspecified() {
            a.set_ip(match a {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        a
    }

    /// The in-process links the MQTT source subscribes through
    /// ([`super::links`]); `None` once taken.
    pub fn take_ingest_links(&mut self) -> Option<super::links::IngestLinks> {
        self.ingest.take()
    }

    /// The login fleetcare's own TCP clients (the alerts publisher) must
    /// use, when logins are required.
    pub fn internal_login(&self) -> Option<&InternalLogin> {
        self.login.as_ref()
    }

    /// Starts the broker on `config.listen` and returns once it accepts
    /// connections.
    pub fn start(config: &MqttConfig) -> Result<Self, BrokerError> {
        let addr = reserve(&config.listen)?;
        let (auth, login) = logins(config)?;
        let connections = ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: config.max_packet_bytes,
            max_inflight_count: 500,
            auth,
            external_auth: None,
            dynamic_filters: true,
        };
        let server = ServerSettings {
            name: "fleetcare-v4".to_owned(),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 0,
            connections,
        };
        let broker_config = rumqttd::Config {
            router: RouterConfig {
                max_connections: 100_000,
                max_outgoing_packet_count: 1_000,
                max_segment_size: 64 << 20,
                max_segment_count: 10,
                ..RouterConfig::default()
            },
            v4: Some(HashMap::from([("fleetcare-v4".to_owned(), server)])),
            ..rumqttd::Config::default()
        };
        let mut broker = Broker::new(broker_config);
        let links = (0..ingest_links(config))
            .map(|i| {
                broker
                    .link(&format!("fleetcare-ingest-{i}"))
                    .map_err(|e| BrokerError::Link(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        std::thread::Builder::new()
            .name("mqtt-broker".to_owned())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "the embedded MQTT broker stopped");
                }
            })
            .map_err(BrokerError::Thread)?;
        let started = Self {
            addr,
            login,
            ingest: Some(super::links::IngestLinks::new(
                links,
                format!("fleetcare-{}", random_hex(8)?),
            )),
        };
        wait_listening(started.connect_addr())?;
        tracing::info!(listen = %addr, "embedded MQTT broker listening");
        Ok(started)
    }
}

/// Links in the ingest's shared subscription when acknowledging after
/// storage. Each link holds at most 100 unacknowledged messages (rumqttd's
/// `MAX_INFLIGHT`), so one link lets at most 100 through per trip through
/// the writer's fsync; 16 let up to 1,600 through. Fewer links cost
/// proportionally more fsyncs; more than 16 were measured no faster
/// (docs/benchmarks.md). The router deals a shared subscription out one
/// message at a time whatever the number of members, so more links add
/// little to its work.
const INGEST_LINKS_AFTER_STORE: usize = 16;

/// Acknowledging on receipt, one link never waits for the writer.
fn ingest_links(config: &MqttConfig) -> usize {
    match config.embedded_ack {
        EmbeddedAck::AfterStore => INGEST_LINKS_AFTER_STORE,
        EmbeddedAck::OnReceipt => 1,
    }
}

/// Binds `listen` to prove it is free (and to resolve port 0), then lets
/// it go for rumqttd to bind.
fn reserve(listen: &str) -> Result<SocketAddr, BrokerError> {
    let addr = listen
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| BrokerError::BadAddress(listen.to_owned()))?;
    let probe = TcpListener::bind(addr).map_err(|source| BrokerError::Bind {
        addr: listen.to_owned(),
        source,
    })?;
    probe.local_addr().map_err(|source| BrokerError::Bind {
        addr: listen.to_owned(),
        source,
    })
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

type AuthMap = Option<HashMap<String, String>>;

fn logins(config: &MqttConfig) -> Result<(AuthMap, Option<InternalLogin>), BrokerError> {
    if config.logins.is_empty() {
        return Ok((None, None));
    }
    let mut auth = HashMap::new();
    for l in &config.logins {
        let password =
            std::env::var(&l.password_env).map_err(|_| BrokerError::MissingPassword {
                username: l.username.clone(),
                env: l.password_env.clone(),
            })?;
        auth.insert(l.username.clone(), password);
    }
    let internal = InternalLogin {
        username: format!("fleetcare-internal-{}", random_hex(8)?),
        password: random_hex(16)?,
    };
    auth.insert(internal.username.clone(), internal.password.clone());
    Ok((Some(auth), Some(internal)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_says_what_to_do() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let config = MqttConfig {
            listen: taken.local_addr().unwrap().to_string(),
            ..MqttConfig::default()
        };
        let e = EmbeddedBroker::start(&config).unwrap_err().to_string();
        assert!(e.contains("stop whatever uses that port"), "{e}");
        assert!(e.contains("port 0 picks a free one"), "{e}");
    }

    #[test]
    fn port_zero_becomes_a_listening_port() {
        let config = MqttConfig {
            listen: "127.0.0.1:0".to_owned(),
            ..MqttConfig::default()
        };
        let b = EmbeddedBroker::start(&config).unwrap();
        assert_ne!(b.addr().port(), 0);
        TcpStream::connect(b.connect_addr()).unwrap();
    }

    #[test]
    fn a_login_without_its_password_is_refused() {
        let config = MqttConfig {
            listen: "127.0.0.1:0".to_owned(),
            logins: vec![crate::config::MqttLogin {
                username: "gw".to_owned(),
                password_env: "FLEETCARE_TEST_SURELY_UNSET_VARIABLE".to_owned(),
            }],
            ..MqttConfig::default()
        };
        let e = EmbeddedBroker::start(&config).unwrap_err().to_string();
        assert!(e.contains("FLEETCARE_TEST_SURELY_UNSET_VARIABLE"), "{e}");
    }
}
