//! The embedded MQTT broker's edge: the listener every outside client
//! (gateway, the fleet's own systems) connects to on `[mqtt] listen`, in
//! front of the internal rumqttd ([`super::broker`]).
//!
//! ```text
//! gateways ──MQTT 3.1.1 (TLS)──▶ edge ──allowed PUBLISH──▶ store writer ──stored──▶ PUBACK
//!                                  │  allowed SUBSCRIBE, PUBACK of alerts
//!                                  └──────loopback link per subscriber──▶ rumqttd ◀── alert publisher
//! ```
//!
//! What a client may do is [`policy`]; each connection's protocol state
//! is [`session`] (sans-IO); this module is the thin tokio shell that
//! reads and writes their packets with rumqttc's codec:
//!
//! - the accept loop, capped at `[mqtt] max_connections`, plain TCP or
//!   TLS (rustls on ring);
//! - one task per connection: CONNECT within 10 s, the client's
//!   keep-alive enforced (1.5 ×), a packet larger than
//!   `max_packet_bytes` refused from its header before its body is read;
//! - allowed publishes go to the store's writer, never to rumqttd; with
//!   `embedded_ack = "after_store"` the writer's `on_stored` callback
//!   releases the PUBACK, so a gateway is told a message arrived only once
//!   it is in the write-ahead log. A client with `[mqtt] max_inflight`
//!   messages unacknowledged is not read until some are; the bytes of all
//!   messages received and not yet stored are bounded too
//!   ([`UNSTORED_BYTES`]);
//! - a client that subscribes (or asks for a stored session) gets a link
//!   of its own to rumqttd, under an id of its login's namespace and
//!   fleetcare's internal login; alerts come back over it.
//!
//! A new connection with the id of a connected client of the same login
//! takes its place (MQTT 3.1.1 §3.1.4), as a broker does.

pub mod policy;
pub mod session;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use fleetcare_ingest::Timestamp;
use rumqttc::mqttbytes::Error as CodecError;
use rumqttc::mqttbytes::v4::{ConnAck, Connect, Packet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use self::policy::{AnonymousAccess, ExposedWithoutLogins, LoginSpec, Policy, Refusal};
use self::session::{Action, Closed, FleetFilters, Refused, Session};
use super::broker::{InternalBroker, InternalLogin};
use super::mqtt::{Connection, MqttError};
use crate::config::{Config, EmbeddedAck};
use crate::runtime::{LiveMetrics, Shutdown};
use crate::store::{Incoming, IngestHandle, OnStored};

/// A client must send CONNECT (and finish its TLS handshake) this soon.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of messages received and not yet stored, all clients together.
/// Without it the writer's queue (16,384 messages) could hold that many
/// maximum-size payloads.
pub const UNSTORED_BYTES: usize = 64 << 20;

/// Distinct single-fleet alerts filters trusted clients may have sent to
/// the internal broker ([`FleetFilters`]).
pub const MAX_FLEET_FILTERS: usize = 4096;

/// Keep-alive of the links to the internal broker, and how often they ping.
const UPSTREAM_KEEP_ALIVE: u16 = 60;
const UPSTREAM_PING: Duration = Duration::from_secs(20);

/// The largest packet the internal broker sends (alerts).
const UPSTREAM_MAX_PACKET: usize = 1 << 20;

/// A write to a client (or the internal broker) that takes longer ends
/// the connection: a client that stops reading does not hold a task.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// At shutdown, how long a connection waits for the writer to store what
/// it handed over, to send the PUBACKs.
const DRAIN: Duration = Duration::from_secs(5);

/// The read buffer grows by at least this much; a connection's buffer
/// larger than [`KEEP_BUFFER`] is given back once empty.
const READ_CHUNK: usize = 8 * 1024;
const KEEP_BUFFER: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
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
    #[error(transparent)]
    Exposed(#[from] ExposedWithoutLogins),
    #[error("TLS on the embedded broker: {0}; fix [mqtt] tls_cert_file and tls_key_file")]
    Tls(#[from] crate::runtime::tls::TlsError),
    #[error("the operating system gave no random bytes for the broker's keys: {0}")]
    Random(String),
}

/// What the writer reports back to a connection: how many of its
/// acknowledged messages were stored since it last looked.
#[derive(Debug, Default)]
struct Stored {
    count: AtomicUsize,
    notify: Notify,
}

/// Ids for the links of clean sessions: `c:{n}`, each back in the pool
/// when its connection ends. rumqttd remembers every client id it ever
/// saw; with these it sees at most as many as were connected at once.
#[derive(Debug, Default)]
struct Slots {
    next: u64,
    free: VecDeque<u64>,
}

/// What every connection shares.
struct Shared {
    policy: Arc<Policy>,
    filters: Arc<FleetFilters>,
    slots: Mutex<Slots>,
    /// Ids of the stored sessions opened on the internal broker, at most
    /// `max_connections` (each stays there while fleetcare runs).
    stored_sessions: Mutex<HashSet<String>>,
    max_stored_sessions: usize,
    upstream: SocketAddr,
    upstream_login: InternalLogin,
    tls: Option<TlsAcceptor>,
    max_packet: usize,
    max_inflight: usize,
    ack_after_store: bool,
    connections: Arc<Semaphore>,
    unstored: Arc<Semaphore>,
    /// Connected clients by their internal id: for session takeover.
    sessions: Mutex<HashMap<String, (u64, Arc<Notify>)>>,
    next_number: AtomicU64,
    metrics: Arc<LiveMetrics>,
    /// Set once a connection found the writer gone.
    writer_gone: watch::Sender<bool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("policy", &self.policy)
            .field("upstream", &self.upstream)
            .field("tls", &self.tls.is_some())
            .field("max_packet", &self.max_packet)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn refused(&self, reason: Refusal) {
        self.metrics.mqtt_refused(reason.as_str()).inc();
    }

    fn take_slot(&self) -> u64 {
        let mut s = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        match s.free.pop_front() {
            Some(n) => n,
            None => {
                s.next += 1;
                s.next
            }
        }
    }

    fn give_slot(&self, slot: u64) {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .free
            .push_back(slot);
    }

    /// Whether a stored session `id` exists already or there is room for it.
    fn admit_stored_session(&self, id: &str) -> bool {
        let mut s = self
            .stored_sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        s.contains(id) || (s.len() < self.max_stored_sessions && s.insert(id.to_owned()))
    }
}

/// The edge, bound and not yet serving.
#[derive(Debug)]
pub struct Edge {
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    service: (String, String),
    tls_cert: Option<std::path::PathBuf>,
}

impl Edge {
    /// Binds `[mqtt] listen` in front of `upstream`, with the logins (their
    /// passwords from the environment), the loopback rule and TLS of
    /// `config`.
    pub async fn bind(
        config: &Config,
        upstream: &InternalBroker,
        metrics: Arc<LiveMetrics>,
    ) -> Result<Self, EdgeError> {
        let m = &config.mqtt;
        let addrs: Vec<SocketAddr> = m
            .listen
            .to_socket_addrs()
            .map_err(|_| EdgeError::BadAddress(m.listen.clone()))?
            .collect();
        let first = *addrs
            .first()
            .ok_or_else(|| EdgeError::BadAddress(m.listen.clone()))?;
        let anonymous = policy::anonymous_access(&addrs, m.allow_anonymous, m.logins.len())?;
        let tls = match (&m.tls_cert_file, &m.tls_key_file) {
            (Some(cert), Some(key)) => Some(TlsAcceptor::from(crate::runtime::tls::server_config(
                cert, key,
            )?)),
            _ => None,
        };
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| EdgeError::Random(e.to_string()))?;
        let mut rules = Policy::new(&m.topic_prefix, anonymous, key);
        for l in &m.logins {
            let password =
                std::env::var(&l.password_env).map_err(|_| EdgeError::MissingPassword {
                    username: l.username.clone(),
                    env: l.password_env.clone(),
                })?;
            rules.add_login(&LoginSpec {
                username: l.username.clone(),
                password,
                fleet: l.fleet.clone(),
                vehicle: l.vehicle.clone(),
            });
        }
        let random = |n| crate::runtime::secret::random_hex(n).map_err(|e| EdgeError::Random(e.0));
        let service = (format!("fleetcare-service-{}", random(8)?), random(24)?);
        rules.add_service_login(&service.0, &service.1);
        let listener = TcpListener::bind(first)
            .await
            .map_err(|source| EdgeError::Bind {
                addr: m.listen.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| EdgeError::Bind {
            addr: m.listen.clone(),
            source,
        })?;
        if m.allow_anonymous == Some(true) {
            tracing::warn!(
                listen = %addr,
                "[mqtt] allow_anonymous = true: any client that reaches this port may publish any fleet's data without logging in."
            );
        }
        for reason in Refusal::ALL {
            metrics.mqtt_refused(reason.as_str());
        }
        let shared = Arc::new(Shared {
            policy: Arc::new(rules),
            filters: Arc::new(FleetFilters::new(MAX_FLEET_FILTERS)),
            slots: Mutex::new(Slots::default()),
            stored_sessions: Mutex::new(HashSet::new()),
            max_stored_sessions: m.max_connections,
            upstream: upstream.addr(),
            upstream_login: upstream.login().clone(),
            tls,
            max_packet: config.max_packet_bytes(),
            max_inflight: m.max_inflight,
            ack_after_store: m.embedded_ack == EmbeddedAck::AfterStore,
            connections: Arc::new(Semaphore::new(m.max_connections)),
            unstored: Arc::new(Semaphore::new(UNSTORED_BYTES)),
            sessions: Mutex::new(HashMap::new()),
            next_number: AtomicU64::new(1),
            metrics,
            writer_gone: watch::Sender::new(false),
        });
        tracing::info!(
            listen = %addr,
            tls = shared.tls.is_some(),
            logins = m.logins.len(),
            anonymous = ?anonymous,
            "embedded MQTT broker listening"
        );
        Ok(Self {
            listener,
            addr,
            shared,
            service,
            tls_cert: m.tls_cert_file.clone(),
        })
    }

    /// Where it listens (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Who may connect without a login.
    pub fn anonymous(&self) -> AnonymousAccess {
        self.shared.policy.anonymous()
    }

    /// How fleetcare's own publishers (the demo's simulated fleet) reach
    /// the edge: its address (loopback for an unspecified one) and the
    /// service login, trusted like an anonymous client on loopback.
    pub fn service_connection(&self) -> Connection {
        let mut a = self.addr;
        if a.ip().is_unspecified() {
            a.set_ip(match a {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let mut c = Connection::plain(a, Some(self.service.clone()));
        if let Some(cert) = &self.tls_cert {
            match crate::runtime::tls::client_config(Some(cert)) {
                Ok(tls) => c.tls = Some(tls),
                Err(e) => {
                    tracing::warn!(error = %e, "fleetcare's own publisher cannot trust the broker's certificate")
                }
            }
        }
        c
    }

    /// Serves until `shutdown`; then stops reading, lets the writer store
    /// what each connection handed over and sends those PUBACKs (for up to
    /// 5 s), and returns. Ends early with an error if the writer stops.
    pub fn spawn(
        self,
        handle: IngestHandle,
        shutdown: Shutdown,
    ) -> tokio::task::JoinHandle<Result<(), MqttError>> {
        tokio::spawn(accept_loop(self, handle, shutdown))
    }
}

async fn accept_loop(
    edge: Edge,
    handle: IngestHandle,
    mut shutdown: Shutdown,
) -> Result<(), MqttError> {
    let Edge {
        listener, shared, ..
    } = edge;
    let mut writer_gone = shared.writer_gone.subscribe();
    let (closing, closing_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut last_full_warning: Option<Instant> = None;
    shared.metrics.mqtt_connected.set(1);
    let result = loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break Ok(()),
            _ = writer_gone.changed() => break Err(MqttError::WriterStopped),
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
                        shared.refused(Refusal::Connections);
                        if last_full_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                            last_full_warning = Some(Instant::now());
                            tracing::warn!(peer = %peer, "[mqtt] max_connections clients are connected; turning new ones away.");
                        }
                        continue;
                    };
                    let number = shared.next_number.fetch_add(1, Ordering::Relaxed);
                    let ctx = Ctx {
                        shared: shared.clone(),
                        peer,
                        number,
                        closing: closing_rx.clone(),
                        handle: handle.clone(),
                    };
                    tasks.spawn(async move {
                        let _permit = permit;
                        connection(tcp, ctx).await;
                    });
                }
                Err(e) => {
                    // Out of file descriptors, most likely: wait a little
                    // rather than spin.
                    tracing::warn!(error = %e, "cannot accept an MQTT connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    };
    drop(listener);
    drop(handle);
    let _ = closing.send(true);
    while tasks.join_next().await.is_some() {}
    shared.metrics.mqtt_connected.set(0);
    result
}

/// What a connection task starts with.
struct Ctx {
    shared: Arc<Shared>,
    peer: SocketAddr,
    number: u64,
    closing: watch::Receiver<bool>,
    handle: IngestHandle,
}

async fn connection(tcp: TcpStream, ctx: Ctx) {
    let _ = tcp.set_nodelay(true);
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let metrics = ctx.shared.metrics.clone();
    metrics.mqtt_clients.inc();
    match ctx.shared.tls.clone() {
        None => serve(tcp, ctx, deadline).await,
        Some(acceptor) => match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => serve(tls, ctx, deadline).await,
            Ok(Err(e)) => {
                ctx.shared.refused(Refusal::Protocol);
                tracing::debug!(peer = %ctx.peer, error = %e, "TLS handshake failed");
            }
            Err(_) => ctx.shared.refused(Refusal::ConnectTimeout),
        },
    }
    metrics.mqtt_clients.dec();
}

/// The link to the internal broker of one client.
struct UpLink {
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
    buf: BytesMut,
}

type Linking = Pin<Box<dyn Future<Output = std::io::Result<(UpLink, ConnAck)>> + Send>>;

/// Opens a link to the internal broker as `client_id` with fleetcare's
/// internal login; returns it with the broker's CONNACK.
async fn link(
    addr: SocketAddr,
    login: InternalLogin,
    client_id: String,
    clean_session: bool,
) -> std::io::Result<(UpLink, ConnAck)> {
    let made = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (mut read, mut write) = tcp.into_split();
        let mut c = Connect::new(client_id);
        c.clean_session = clean_session;
        c.keep_alive = UPSTREAM_KEEP_ALIVE;
        c.set_login(login.username, login.password);
        let mut buf = BytesMut::new();
        Packet::Connect(c)
            .write(&mut buf, usize::MAX)
            .map_err(std::io::Error::other)?;
        write.write_all(&buf).await?;
        buf.clear();
        loop {
            match Packet::read(&mut buf, UPSTREAM_MAX_PACKET) {
                Ok(Packet::ConnAck(ack)) => return Ok((UpLink { read, write, buf }, ack)),
                Ok(other) => {
                    return Err(std::io::Error::other(format!(
                        "the internal broker answered CONNECT with {other:?}"
                    )));
                }
                Err(CodecError::InsufficientBytes(_)) => {}
                Err(e) => return Err(std::io::Error::other(e)),
            }
            if read.read_buf(&mut buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), made)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// Why a connection's task ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Session(Closed),
    /// The client closed the connection or it broke.
    Gone,
    /// Silent beyond 1.5 × its keep-alive, or no CONNECT within 10 s.
    Silent,
    /// A newer connection took its client id.
    TakenOver,
    /// fleetcare is stopping.
    Shutdown,
    /// The store's writer stopped.
    WriterGone,
}

/// Writes `buf` to `w` and empties it; `false` when that failed.
async fn flush<W: AsyncWrite + Unpin>(w: &mut W, buf: &mut BytesMut) -> bool {
    if buf.is_empty() {
        return true;
    }
    let done = tokio::time::timeout(WRITE_TIMEOUT, async {
        w.write_all(buf).await?;
        w.flush().await
    })
    .await;
    buf.clear();
    matches!(done, Ok(Ok(())))
}

/// The state of one connection beside its [`Session`], for the actions.
struct Io {
    shared: Arc<Shared>,
    peer: SocketAddr,
    handle: Option<IngestHandle>,
    stored: Arc<Stored>,
    out: BytesMut,
    up: Option<UpLink>,
    up_out: BytesMut,
    linking: Option<Linking>,
    /// The pooled id of this connection's clean-session link, if it has one.
    slot: Option<u64>,
    end: Option<End>,
}

impl Io {
    /// Carries out what the session asked for, in order.
    async fn apply(&mut self, actions: &mut Vec<Action>) {
        for action in actions.drain(..) {
            match action {
                Action::Reply(p) => {
                    // Encoding a packet read or built here cannot fail.
                    let _ = p.write(&mut self.out, usize::MAX);
                }
                Action::Forward(p) => {
                    let _ = p.write(&mut self.up_out, usize::MAX);
                }
                Action::ConnectUpstream {
                    client_id,
                    clean_session,
                } => {
                    let id = if clean_session {
                        let slot = *self.slot.get_or_insert_with(|| self.shared.take_slot());
                        Some(format!("c:{slot}"))
                    } else if self.shared.admit_stored_session(&client_id) {
                        Some(client_id)
                    } else {
                        self.shared.refused(Refusal::Connections);
                        None
                    };
                    self.linking = Some(match id {
                        Some(id) => Box::pin(link(
                            self.shared.upstream,
                            self.shared.upstream_login.clone(),
                            id,
                            clean_session,
                        )),
                        // Answered like a broker that cannot take it (CONNACK 0x03).
                        None => Box::pin(async {
                            Err(std::io::Error::other(
                                "as many stored sessions as [mqtt] max_connections exist",
                            ))
                        }),
                    });
                }
                Action::Ingest {
                    topic,
                    payload,
                    acknowledge,
                } => self.ingest(topic, &payload, acknowledge).await,
                Action::Refused(r) => self.refused(&r),
                Action::Close(c) => self.end = Some(End::Session(c)),
            }
        }
    }

    /// Counts a refusal and logs the first of the connection.
    fn refused(&self, r: &Refused) {
        self.shared.refused(r.reason);
        if !r.first {
            return;
        }
        let (client, topic, peer) = (&r.client, &r.subject, self.peer);
        let login = if r.login.is_empty() { "-" } else { &r.login };
        let reason = r.reason.as_str();
        match r.reason {
            Refusal::Subscribe => tracing::warn!(
                client, login, topic, %peer,
                "Refused an MQTT subscription outside what the login may read."
            ),
            _ if !r.connected => tracing::warn!(
                client = topic, reason, %peer,
                "Refused an MQTT connection."
            ),
            _ => tracing::warn!(
                client, login, topic, reason, %peer,
                "Refused an MQTT client's packet; closing its connection."
            ),
        }
    }

    /// Hands a message to the writer; its `on_stored` gives back its share
    /// of [`UNSTORED_BYTES`] and, when `acknowledge`, tells this connection.
    async fn ingest(&mut self, topic: String, payload: &[u8], acknowledge: bool) {
        let Some(handle) = &self.handle else {
            return;
        };
        let cost = u32::try_from((payload.len() + topic.len()).clamp(1, UNSTORED_BYTES))
            .unwrap_or(u32::MAX);
        let Ok(permit) = self.shared.unstored.clone().acquire_many_owned(cost).await else {
            return;
        };
        let stored = self.stored.clone();
        let on_stored: OnStored = Box::new(move || {
            drop(permit);
            if acknowledge {
                stored.count.fetch_add(1, Ordering::AcqRel);
                stored.notify.notify_one();
            }
        });
        let message = Incoming {
            topic,
            payload: payload.to_vec(),
            received: Timestamp::from_datetime(&chrono::Utc::now()),
            on_stored: Some(on_stored),
        };
        if handle.send(message).await.is_err() {
            self.shared.writer_gone.send_replace(true);
            self.end = Some(End::WriterGone);
        }
    }

    /// Sends what is queued to the client and the internal broker.
    async fn flush_all<S: AsyncWrite + Unpin>(&mut self, client: &mut S) {
        if !flush(client, &mut self.out).await {
            self.end.get_or_insert(End::Gone);
        }
        if let Some(up) = &mut self.up
            && !flush(&mut up.write, &mut self.up_out).await
        {
            // The session learns of it when the read side fails too.
            self.up_out.clear();
        }
    }
}

/// Reads what the internal broker sent into the link's buffer; `false`
/// at its end. Without a link it never completes.
async fn read_upstream(up: &mut Option<UpLink>) -> bool {
    match up {
        Some(up) => matches!(up.read.read_buf(&mut up.buf).await, Ok(n) if n > 0),
        None => std::future::pending().await,
    }
}

/// The link being made, once it is; never without one.
async fn linked(linking: &mut Option<Linking>) -> std::io::Result<(UpLink, ConnAck)> {
    match linking {
        Some(l) => l.await,
        None => std::future::pending().await,
    }
}

/// One client connection, from its first byte to its end.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut client: S, ctx: Ctx, connect_by: Instant) {
    let Ctx {
        shared,
        peer,
        number,
        mut closing,
        handle,
    } = ctx;
    let mut session = Session::new(
        shared.policy.clone(),
        shared.filters.clone(),
        shared.ack_after_store,
        number,
    );
    let mut io = Io {
        shared: shared.clone(),
        peer,
        handle: Some(handle),
        stored: Arc::new(Stored::default()),
        out: BytesMut::new(),
        up: None,
        up_out: BytesMut::new(),
        linking: None,
        slot: None,
        end: None,
    };
    let takeover = Arc::new(Notify::new());
    let mut registered: Option<String> = None;
    let mut inbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut actions = Vec::new();
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + UPSTREAM_PING, UPSTREAM_PING);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let max_inflight = shared.max_inflight;

    while io.end.is_none() {
        // Every packet already buffered, while the session takes them.
        while io.end.is_none() && session.accepts_input() && session.awaiting_store() < max_inflight
        {
            match Packet::read(&mut inbuf, shared.max_packet) {
                Ok(p) => {
                    last_heard = Instant::now();
                    session.on_client(p, &mut actions);
                }
                Err(CodecError::InsufficientBytes(n)) => {
                    if inbuf.is_empty() && inbuf.capacity() > KEEP_BUFFER {
                        inbuf = BytesMut::new();
                    }
                    inbuf.reserve(n.max(READ_CHUNK));
                    break;
                }
                Err(CodecError::PayloadSizeLimitExceeded(_)) => {
                    session.on_bad_packet(Refusal::PacketTooLarge, &mut actions);
                }
                Err(_) => session.on_bad_packet(Refusal::Protocol, &mut actions),
            }
            io.apply(&mut actions).await;
        }
        if registered.is_none()
            && !session.is_closed()
            && let Some(id) = session.upstream_id()
        {
            // A newer connection with this id takes over (and this one
            // ends the older one's).
            let older = shared
                .sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id.to_owned(), (number, takeover.clone()));
            if let Some((_, older)) = older {
                older.notify_one();
            }
            registered = Some(id.to_owned());
        }
        io.flush_all(&mut client).await;
        if io.end.is_some() {
            break;
        }
        let reading = session.accepts_input() && session.awaiting_store() < max_inflight;
        if !reading {
            // Time spent not reading is not the client's silence.
            last_heard = Instant::now();
        }
        let silent_at = match session.silence_limit() {
            _ if session.identity().is_none() => Some(connect_by),
            Some(limit) => Some(last_heard + limit),
            None => None,
        };
        tokio::select! {
            biased;
            _ = closing.changed() => io.end = Some(End::Shutdown),
            () = takeover.notified() => io.end = Some(End::TakenOver),
            () = io.stored.notify.notified() => {
                let n = io.stored.count.swap(0, Ordering::AcqRel);
                session.on_stored(n, &mut actions);
                io.apply(&mut actions).await;
            }
                        made = linked(&mut io.linking), if io.linking.is_some() => {
                io.linking = None;
                match made {
                    Ok((up, ack)) => {
                        io.up = Some(up);
                        session.on_upstream_connack(&ack, &mut actions);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reach the internal MQTT broker for a subscriber");
                        session.on_upstream_lost(&mut actions);
                    }
                }
                io.apply(&mut actions).await;
            }
                        open = read_upstream(&mut io.up), if io.up.is_some() => {
                if open {
                    upstream_packets(&mut session, &mut io, &mut actions).await;
                } else {
                    io.up = None;
                    session.on_upstream_lost(&mut actions);
                    io.apply(&mut actions).await;
                }
            }
            _ = ping.tick(), if io.up.is_some() => {
                let _ = Packet::PingReq.write(&mut io.up_out, usize::MAX);
            }
            read = client.read_buf(&mut inbuf), if reading => {
                if !matches!(read, Ok(n) if n > 0) {
                    io.end = Some(End::Gone);
                }
            }
            () = async {
                match silent_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            }, if reading => {
                if session.identity().is_none() {
                    shared.refused(Refusal::ConnectTimeout);
                }
                io.end = Some(End::Silent);
            }
        }
    }

    if io.end == Some(End::Shutdown) {
        drain(&mut session, &mut io, &mut client, &mut actions).await;
    }
    if let Some(id) = registered {
        let mut sessions = shared
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if sessions.get(&id).is_some_and(|(n, _)| *n == number) {
            sessions.remove(&id);
        }
    }
    if let Some(mut up) = io.up.take()
        && matches!(
            io.end,
            Some(End::Shutdown | End::Session(Closed::Disconnect))
        )
    {
        let _ = Packet::Disconnect.write(&mut io.up_out, usize::MAX);
        let _ = flush(&mut up.write, &mut io.up_out).await;
    }
    if let Some(slot) = io.slot {
        shared.give_slot(slot);
    }
    tracing::debug!(peer = %peer, end = ?io.end, "MQTT connection closed");
    let _ = tokio::time::timeout(Duration::from_secs(1), client.shutdown()).await;
}

/// Handles every complete packet the internal broker sent.
async fn upstream_packets(session: &mut Session, io: &mut Io, actions: &mut Vec<Action>) {
    loop {
        let Some(up) = io.up.as_mut() else { return };
        match Packet::read(&mut up.buf, UPSTREAM_MAX_PACKET) {
            Ok(p) => session.on_upstream(p, actions),
            Err(CodecError::InsufficientBytes(_)) => return,
            Err(e) => {
                tracing::warn!(error = %e, "a bad packet from the internal MQTT broker");
                io.up = None;
                session.on_upstream_lost(actions);
            }
        }
        io.apply(actions).await;
    }
}

/// At shutdown: reads nothing more, lets go of the writer (so that it can
/// finish) and sends the PUBACKs of what it stores, for up to [`DRAIN`].
async fn drain<S: AsyncWrite + Unpin>(
    session: &mut Session,
    io: &mut Io,
    client: &mut S,
    actions: &mut Vec<Action>,
) {
    io.handle = None;
    let until = Instant::now() + DRAIN;
    while session.awaiting_store() > 0 && !session.is_closed() {
        tokio::select! {
            () = io.stored.notify.notified() => {
                let n = io.stored.count.swap(0, Ordering::AcqRel);
                session.on_stored(n, actions);
                io.apply(actions).await;
                if !flush(client, &mut io.out).await {
                    return;
                }
            }
            () = tokio::time::sleep_until(until) => return,
        }
    }
}
