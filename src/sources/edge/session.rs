//! One client connection of the edge as a state machine: packets in,
//! [`Action`]s out. Like rumqttc's `state.rs`, methods change state and
//! perform no IO; the shell ([`super`]) writes what they return.
//!
//! ```text
//!            CONNECT ok, clean session          CONNECT ok, stored session
//! Awaiting ──────────────────────────▶ Connected ◀── broker's CONNACK ── Resuming
//!    │  anything else, refused CONNECT      │  refused publish, protocol error,
//!    └──────────────────────────────▶ Closed ◀─ DISCONNECT, lost broker link
//! ```
//!
//! - A PUBLISH the policy allows becomes [`Action::Ingest`]; with
//!   acknowledgement after storage its packet id waits in a queue until
//!   the writer reports it stored ([`Session::on_stored`]), so PUBACKs
//!   leave in the order the publishes came (the writer stores one
//!   connection's messages in order). A refused one closes the connection.
//! - SUBSCRIBE keeps the filters the policy allows and sends them to the
//!   internal broker, connecting to it first when needed; the client's
//!   SUBACK has `0x80` in the place of each refused filter.
//! - PINGREQ is answered here; the link to the internal broker keeps
//!   itself alive.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::mqttbytes::Protocol;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Packet, PubAck, Publish, SubAck, Subscribe,
    SubscribeReasonCode, UnsubAck, Unsubscribe,
};

use super::policy::{self, Identity, Policy, Refusal};

/// The alerts filters of single fleets that trusted clients had sent to
/// the internal broker. rumqttd keeps a log for every distinct filter it
/// was ever asked for, so there are at most `cap` of these; a gateway's
/// own fleet and `{prefix}/+/alerts` are not counted (the configured
/// logins bound those).
#[derive(Debug)]
pub struct FleetFilters {
    cap: usize,
    seen: Mutex<HashSet<String>>,
}

impl FleetFilters {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// Whether `filter` was sent before or there is room for it.
    fn admit(&self, filter: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.contains(filter) || (seen.len() < self.cap && seen.insert(filter.to_owned()))
    }
}

/// What the shell must do, in order.
#[derive(Debug)]
pub enum Action {
    /// Send to the client.
    Reply(Packet),
    /// Open the link to the internal broker as `client_id`; answer with
    /// [`Session::on_upstream_connack`] or [`Session::on_upstream_lost`].
    ConnectUpstream {
        client_id: String,
        clean_session: bool,
    },
    /// Send to the internal broker (the link is up).
    Forward(Packet),
    /// Hand a message to the store's writer; when `acknowledge`, report
    /// it stored through [`Session::on_stored`].
    Ingest {
        topic: String,
        payload: Bytes,
        acknowledge: bool,
    },
    /// Count the refusal; log it when `first` (once per connection).
    Refused(Refused),
    /// Close the connection (after sending what was replied before).
    Close(Closed),
}

/// A refusal, as counted and logged.
#[derive(Debug)]
pub struct Refused {
    pub reason: Refusal,
    /// The topic or filter refused, or the client id of a CONNECT.
    pub subject: String,
    /// The client's id and login (empty for an anonymous client).
    pub client: String,
    pub login: String,
    /// Whether its CONNECT had been accepted (else this refuses it).
    pub connected: bool,
    /// The first refusal of this connection: the one logged.
    pub first: bool,
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    Refused(Refusal),
    /// The client sent DISCONNECT.
    Disconnect,
    /// The link to the internal broker failed.
    UpstreamLost,
}

/// The link to the internal broker.
#[derive(Debug)]
enum Upstream {
    None,
    /// Connecting; these go once it is up.
    Connecting(Vec<Packet>),
    Up,
}

/// A client past its CONNECT.
#[derive(Debug)]
struct Client {
    identity: Identity,
    client_id: String,
    upstream_id: String,
    clean_session: bool,
    keep_alive: u16,
    upstream: Upstream,
    /// Packet ids of QoS 1 messages handed to the writer, in order.
    awaiting_store: VecDeque<u16>,
    /// Per SUBSCRIBE sent on: for each filter the client asked for, its
    /// place in what was forwarded, or `None` when refused.
    subscribes: HashMap<u16, Vec<Option<usize>>>,
    warned: bool,
}

impl Client {
    /// A refusal of this client's `subject`; the first one is logged.
    fn refused(&mut self, reason: Refusal, subject: String) -> Refused {
        Refused {
            reason,
            subject,
            client: self.client_id.clone(),
            login: self.identity.login().to_owned(),
            connected: true,
            first: !std::mem::replace(&mut self.warned, true),
        }
    }
}

#[derive(Debug)]
enum State {
    Awaiting,
    /// Waiting for the internal broker's CONNACK before answering a
    /// CONNECT that asked for a stored session.
    Resuming(Client),
    Connected(Client),
    Closed,
}

/// A connection's state.
#[derive(Debug)]
pub struct Session {
    policy: Arc<Policy>,
    filters: Arc<FleetFilters>,
    ack_after_store: bool,
    /// The connection's number: names the session of a client that gave
    /// no client id.
    number: u64,
    state: State,
}

impl Session {
    pub fn new(
        policy: Arc<Policy>,
        filters: Arc<FleetFilters>,
        ack_after_store: bool,
        number: u64,
    ) -> Self {
        Self {
            policy,
            filters,
            ack_after_store,
            number,
            state: State::Awaiting,
        }
    }

    fn client(&self) -> Option<&Client> {
        match &self.state {
            State::Resuming(c) | State::Connected(c) => Some(c),
            _ => None,
        }
    }

    /// Whether the shell should read the client's next packet: not while
    /// the answer to its CONNECT or the link to the internal broker is
    /// pending, nor once closed.
    pub fn accepts_input(&self) -> bool {
        match &self.state {
            State::Awaiting => true,
            State::Connected(c) => !matches!(c.upstream, Upstream::Connecting(_)),
            _ => false,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// QoS 1 messages handed to the writer and not yet acknowledged.
    pub fn awaiting_store(&self) -> usize {
        self.client().map_or(0, |c| c.awaiting_store.len())
    }

    /// How long the client may stay silent: 1.5 × its keep-alive (MQTT
    /// 3.1.1 §3.1.2.10); `None` before CONNECT or with keep-alive 0.
    pub fn silence_limit(&self) -> Option<Duration> {
        match self.client() {
            Some(c) if c.keep_alive > 0 => {
                Some(Duration::from_millis(u64::from(c.keep_alive) * 1500))
            }
            _ => None,
        }
    }

    pub fn identity(&self) -> Option<&Identity> {
        self.client().map(|c| &c.identity)
    }

    pub fn client_id(&self) -> Option<&str> {
        self.client().map(|c| c.client_id.as_str())
    }

    /// The client's id on the internal broker (also its key for taking
    /// over a session from an earlier connection).
    pub fn upstream_id(&self) -> Option<&str> {
        self.client().map(|c| c.upstream_id.as_str())
    }

    pub fn has_upstream(&self) -> bool {
        self.client()
            .is_some_and(|c| matches!(c.upstream, Upstream::Up))
    }

    /// Ends the session for `reason`, counted and replied as it asks.
    fn refuse(&mut self, reason: Refusal, subject: String, out: &mut Vec<Action>) {
        let refused = match &mut self.state {
            State::Resuming(c) | State::Connected(c) => c.refused(reason, subject),
            _ => Refused {
                reason,
                subject,
                client: String::new(),
                login: String::new(),
                connected: false,
                first: true,
            },
        };
        out.push(Action::Refused(refused));
        out.push(Action::Close(Closed::Refused(reason)));
        self.state = State::Closed;
    }

    /// A packet the client sent.
    pub fn on_client(&mut self, packet: Packet, out: &mut Vec<Action>) {
        match (&mut self.state, packet) {
            (State::Closed, _) => {}
            (State::Awaiting, Packet::Connect(c)) => self.on_connect(c, out),
            (State::Awaiting, _) => self.refuse(Refusal::Protocol, String::new(), out),
            (State::Connected(_), Packet::Publish(p)) => self.on_publish(p, out),
            (State::Connected(_), Packet::Subscribe(s)) => self.on_subscribe(s, out),
            (State::Connected(c), Packet::Unsubscribe(u)) => {
                on_unsubscribe(&self.policy, c, u, out)
            }
            (State::Connected(c), Packet::PubAck(a)) => {
                // The acknowledgement of an alert the broker delivered.
                if matches!(c.upstream, Upstream::Up) {
                    out.push(Action::Forward(Packet::PubAck(a)));
                }
            }
            (State::Connected(_), Packet::PingReq) => out.push(Action::Reply(Packet::PingResp)),
            (State::Connected(c), Packet::Disconnect) => {
                if matches!(c.upstream, Upstream::Up) {
                    out.push(Action::Forward(Packet::Disconnect));
                }
                out.push(Action::Close(Closed::Disconnect));
                self.state = State::Closed;
            }
            // A second CONNECT, QoS 2 flows, server-to-client packets.
            (_, _) => self.refuse(Refusal::Protocol, String::new(), out),
        }
    }

    /// A packet too large or malformed, seen in its header.
    pub fn on_bad_packet(&mut self, reason: Refusal, out: &mut Vec<Action>) {
        if !self.is_closed() {
            self.refuse(reason, String::new(), out);
        }
    }

    fn on_connect(&mut self, c: Connect, out: &mut Vec<Action>) {
        let mut refuse = |this: &mut Self, reason: Refusal, subject: String| {
            out.push(Action::Reply(Packet::ConnAck(ConnAck::new(
                reason.connack(),
                false,
            ))));
            this.refuse(reason, subject, out);
        };
        if c.protocol != Protocol::V4 {
            return refuse(self, Refusal::Protocol, c.client_id);
        }
        let identity = match self.policy.authenticate(c.login.as_ref()) {
            Ok(i) => i,
            Err(r) => return refuse(self, r, c.client_id),
        };
        if let Err(r) = policy::check_client_id(&c.client_id, c.clean_session) {
            return refuse(self, r, c.client_id);
        }
        if c.last_will.is_some() {
            return refuse(self, Refusal::Will, c.client_id);
        }
        let upstream_id = if c.client_id.is_empty() {
            policy::assigned_upstream_id(self.number)
        } else {
            policy::upstream_id(&identity, &c.client_id)
        };
        let mut client = Client {
            identity,
            client_id: c.client_id,
            upstream_id,
            clean_session: c.clean_session,
            keep_alive: c.keep_alive,
            upstream: Upstream::None,
            awaiting_store: VecDeque::new(),
            subscribes: HashMap::new(),
            warned: false,
        };
        if c.clean_session {
            out.push(Action::Reply(Packet::ConnAck(ConnAck::new(
                ConnectReturnCode::Success,
                false,
            ))));
            self.state = State::Connected(client);
        } else {
            // A stored session may hold alerts to deliver, and the client
            // must learn whether there is one: ask the broker first.
            client.upstream = Upstream::Connecting(Vec::new());
            out.push(Action::ConnectUpstream {
                client_id: client.upstream_id.clone(),
                clean_session: false,
            });
            self.state = State::Resuming(client);
        }
    }

    fn on_publish(&mut self, p: Publish, out: &mut Vec<Action>) {
        let State::Connected(c) = &mut self.state else {
            return;
        };
        if let Err(reason) = self.policy.publish(&c.identity, &p.topic, p.qos, p.retain) {
            return self.refuse(reason, p.topic, out);
        }
        let acknowledge = p.qos == QoS::AtLeastOnce && self.ack_after_store;
        if acknowledge {
            c.awaiting_store.push_back(p.pkid);
        } else if p.qos == QoS::AtLeastOnce {
            out.push(Action::Reply(Packet::PubAck(PubAck::new(p.pkid))));
        }
        out.push(Action::Ingest {
            topic: p.topic,
            payload: p.payload,
            acknowledge,
        });
    }

    fn on_subscribe(&mut self, s: Subscribe, out: &mut Vec<Action>) {
        let State::Connected(c) = &mut self.state else {
            return;
        };
        let mut layout = Vec::with_capacity(s.filters.len());
        let mut forwarded = Vec::new();
        let every_fleet = format!("{}/+/alerts", self.policy.prefix());
        for mut f in s.filters {
            let allowed = self.policy.subscribe(&c.identity, &f.path)
                && (matches!(c.identity, Identity::Gateway { .. })
                    || f.path == every_fleet
                    || self.filters.admit(&f.path));
            if allowed {
                layout.push(Some(forwarded.len()));
                // MQTT lets a server grant less than asked: QoS 2 is 1 here.
                if f.qos == QoS::ExactlyOnce {
                    f.qos = QoS::AtLeastOnce;
                }
                forwarded.push(f);
            } else {
                layout.push(None);
                out.push(Action::Refused(c.refused(Refusal::Subscribe, f.path)));
            }
        }
        if forwarded.is_empty() {
            let codes = vec![SubscribeReasonCode::Failure; layout.len()];
            out.push(Action::Reply(Packet::SubAck(SubAck::new(s.pkid, codes))));
            return;
        }
        c.subscribes.insert(s.pkid, layout);
        let packet = Packet::Subscribe(Subscribe {
            pkid: s.pkid,
            filters: forwarded,
        });
        match &mut c.upstream {
            Upstream::Up => out.push(Action::Forward(packet)),
            Upstream::Connecting(queued) => queued.push(packet),
            Upstream::None => {
                c.upstream = Upstream::Connecting(vec![packet]);
                out.push(Action::ConnectUpstream {
                    client_id: c.upstream_id.clone(),
                    clean_session: c.clean_session,
                });
            }
        }
    }

    /// The writer stored `n` more of this connection's acknowledged
    /// messages (in the order they were handed to it).
    pub fn on_stored(&mut self, n: usize, out: &mut Vec<Action>) {
        let State::Connected(c) = &mut self.state else {
            return;
        };
        for _ in 0..n {
            match c.awaiting_store.pop_front() {
                Some(pkid) => out.push(Action::Reply(Packet::PubAck(PubAck::new(pkid)))),
                None => break,
            }
        }
    }

    /// The internal broker answered the link's CONNECT.
    pub fn on_upstream_connack(&mut self, ack: &ConnAck, out: &mut Vec<Action>) {
        if ack.code != ConnectReturnCode::Success {
            return self.on_upstream_lost(out);
        }
        let resumed = match std::mem::replace(&mut self.state, State::Closed) {
            State::Resuming(c) => {
                out.push(Action::Reply(Packet::ConnAck(ConnAck::new(
                    ConnectReturnCode::Success,
                    ack.session_present,
                ))));
                c
            }
            State::Connected(c) => c,
            other => {
                self.state = other;
                return;
            }
        };
        let mut c = resumed;
        if let Upstream::Connecting(queued) = std::mem::replace(&mut c.upstream, Upstream::Up) {
            out.extend(queued.into_iter().map(Action::Forward));
        }
        self.state = State::Connected(c);
    }

    /// The link to the internal broker could not be made or broke: the
    /// client is told (a CONNACK it waits for) and disconnected, and
    /// reconnects.
    pub fn on_upstream_lost(&mut self, out: &mut Vec<Action>) {
        match &self.state {
            State::Resuming(_) => out.push(Action::Reply(Packet::ConnAck(ConnAck::new(
                ConnectReturnCode::ServiceUnavailable,
                false,
            )))),
            State::Connected(_) => {}
            _ => return,
        }
        out.push(Action::Close(Closed::UpstreamLost));
        self.state = State::Closed;
    }

    /// A packet from the internal broker.
    pub fn on_upstream(&mut self, packet: Packet, out: &mut Vec<Action>) {
        let State::Connected(c) = &mut self.state else {
            return;
        };
        match packet {
            Packet::Publish(p) => {
                if self.policy.may_receive(&c.identity, &p.topic) {
                    out.push(Action::Reply(Packet::Publish(p)));
                } else if p.qos != QoS::AtMostOnce {
                    // Not for this client: taken off the broker's hands
                    // so that it is not delivered again.
                    out.push(Action::Forward(Packet::PubAck(PubAck::new(p.pkid))));
                }
            }
            Packet::SubAck(ack) => {
                if let Some(layout) = c.subscribes.remove(&ack.pkid) {
                    let codes = layout
                        .iter()
                        .map(|place| match place {
                            Some(i) => ack
                                .return_codes
                                .get(*i)
                                .copied()
                                .unwrap_or(SubscribeReasonCode::Failure),
                            None => SubscribeReasonCode::Failure,
                        })
                        .collect();
                    out.push(Action::Reply(Packet::SubAck(SubAck::new(ack.pkid, codes))));
                }
            }
            Packet::UnsubAck(ack) => out.push(Action::Reply(Packet::UnsubAck(ack))),
            Packet::PingResp | Packet::PubAck(_) => {}
            _ => self.on_upstream_lost(out),
        }
    }
}

fn on_unsubscribe(policy: &Policy, c: &mut Client, u: Unsubscribe, out: &mut Vec<Action>) {
    let topics: Vec<String> = u
        .topics
        .into_iter()
        .filter(|f| policy.subscribe(&c.identity, f))
        .collect();
    if topics.is_empty() || !matches!(c.upstream, Upstream::Up) {
        // Nothing it could have subscribed to is there to remove.
        out.push(Action::Reply(Packet::UnsubAck(UnsubAck::new(u.pkid))));
    } else {
        out.push(Action::Forward(Packet::Unsubscribe(Unsubscribe {
            pkid: u.pkid,
            topics,
        })));
    }
}

#[cfg(test)]
mod tests {
    use fleetcare_ingest::ids::FleetId;
    use rumqttc::mqttbytes::v4::{LastWill, Login, SubscribeFilter};

    use super::super::policy::tests::level;
    use super::super::policy::{AnonymousAccess, LoginSpec};
    use super::*;

    fn policy(anonymous: AnonymousAccess) -> Arc<Policy> {
        let mut p = Policy::new("fleet", anonymous, [3; 32]);
        for f in ["a", "b"] {
            p.add_login(&LoginSpec {
                username: format!("gw-{f}"),
                password: format!("pw-{f}"),
                fleet: FleetId::new(f).unwrap(),
                vehicle: None,
            });
        }
        Arc::new(p)
    }

    fn session(anonymous: AnonymousAccess, after_store: bool) -> Session {
        Session::new(
            policy(anonymous),
            Arc::new(FleetFilters::new(2)),
            after_store,
            1,
        )
    }

    fn connect(id: &str, login: Option<(&str, &str)>, clean: bool) -> Packet {
        let mut c = Connect::new(id);
        c.clean_session = clean;
        c.keep_alive = 10;
        c.login = login.map(|(u, p)| Login::new(u, p));
        Packet::Connect(c)
    }

    fn publish(topic: &str, pkid: u16) -> Packet {
        let mut p = Publish::new(topic, QoS::AtLeastOnce, "x");
        p.pkid = pkid;
        Packet::Publish(p)
    }

    fn run(s: &mut Session, packet: Packet) -> Vec<Action> {
        let mut out = Vec::new();
        s.on_client(packet, &mut out);
        out
    }

    fn gateway_a(after_store: bool) -> Session {
        let mut s = session(AnonymousAccess::Refused, after_store);
        let out = run(&mut s, connect("gw-17", Some(("gw-a", "pw-a")), true));
        assert_eq!(
            connack(&out),
            Some((ConnectReturnCode::Success, false)),
            "{out:?}"
        );
        assert_eq!(out.len(), 1, "{out:?}");
        s
    }

    fn connack_code(out: &[Action]) -> Option<ConnectReturnCode> {
        connack(out).map(|(code, _)| code)
    }

    /// The CONNACK among `out`: its code and session-present flag.
    fn connack(out: &[Action]) -> Option<(ConnectReturnCode, bool)> {
        out.iter().find_map(|a| match a {
            Action::Reply(Packet::ConnAck(c)) => Some((c.code, c.session_present)),
            _ => None,
        })
    }

    #[test]
    fn refused_connects_get_their_code_and_close() {
        let p = policy(AnonymousAccess::Refused);
        let cases = [
            (
                connect("fleetcare-ingest-0", Some(("gw-a", "pw-a")), true),
                ConnectReturnCode::BadClientId,
                Refusal::ClientId,
            ),
            (
                connect("gw", Some(("gw-a", "wrong")), true),
                ConnectReturnCode::BadUserNamePassword,
                Refusal::Login,
            ),
            (
                connect("gw", None, true),
                ConnectReturnCode::NotAuthorized,
                Refusal::Anonymous,
            ),
            (
                connect("", Some(("gw-a", "pw-a")), false),
                ConnectReturnCode::BadClientId,
                Refusal::ClientId,
            ),
        ];
        for (packet, code, reason) in cases {
            let mut s = Session::new(p.clone(), Arc::new(FleetFilters::new(2)), true, 1);
            let out = run(&mut s, packet);
            assert_eq!(connack_code(&out), Some(code));
            assert!(
                matches!(out.last(), Some(Action::Close(Closed::Refused(r))) if *r == reason),
                "{out:?}"
            );
            assert!(s.is_closed());
        }
        let mut with_will = Connect::new("gw");
        with_will.login = Some(Login::new("gw-a", "pw-a"));
        with_will.last_will = Some(LastWill::new(
            "fleet/a/alerts",
            "gone",
            QoS::AtLeastOnce,
            true,
        ));
        let mut s = Session::new(p.clone(), Arc::new(FleetFilters::new(2)), true, 1);
        let out = run(&mut s, Packet::Connect(with_will));
        assert_eq!(connack_code(&out), Some(ConnectReturnCode::NotAuthorized));
        let mut v5 = Connect::new("gw");
        v5.protocol = Protocol::V5;
        let mut s = Session::new(p.clone(), Arc::new(FleetFilters::new(2)), true, 1);
        let out = run(&mut s, Packet::Connect(v5));
        assert_eq!(
            connack_code(&out),
            Some(ConnectReturnCode::RefusedProtocolVersion)
        );
        // Anything before CONNECT closes without a CONNACK.
        let mut s = Session::new(p, Arc::new(FleetFilters::new(2)), true, 1);
        let out = run(&mut s, Packet::PingReq);
        assert_eq!(connack_code(&out), None);
        assert!(s.is_closed());
    }

    #[test]
    fn pubacks_follow_storage_in_receipt_order() {
        let mut s = gateway_a(true);
        let mut acks = Vec::new();
        for pkid in [5, 3, 9] {
            let out = run(&mut s, publish("fleet/a/TRK-1/can", pkid));
            assert!(
                matches!(
                    &out[..],
                    [Action::Ingest {
                        acknowledge: true,
                        ..
                    }]
                ),
                "{out:?}"
            );
        }
        assert_eq!(s.awaiting_store(), 3);
        s.on_stored(2, &mut acks);
        s.on_stored(5, &mut acks);
        let pkids: Vec<u16> = acks
            .iter()
            .map(|a| match a {
                Action::Reply(Packet::PubAck(p)) => p.pkid,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(pkids, [5, 3, 9]);
        assert_eq!(s.awaiting_store(), 0);

        // On receipt: at once, before the message is stored.
        let mut s = gateway_a(false);
        let out = run(&mut s, publish("fleet/a/TRK-1/can", 4));
        assert!(
            matches!(
                &out[..],
                [
                    Action::Reply(Packet::PubAck(PubAck { pkid: 4 })),
                    Action::Ingest {
                        acknowledge: false,
                        ..
                    }
                ]
            ),
            "{out:?}"
        );
    }

    #[test]
    fn a_refused_publish_is_counted_once_never_ingested_and_closes() {
        let mut s = gateway_a(true);
        let out = run(&mut s, publish("fleet/b/TRK-1/telemetry", 1));
        assert!(
            matches!(
                &out[..],
                [
                    Action::Refused(Refused {
                        reason: Refusal::OtherFleet,
                        first: true,
                        ..
                    }),
                    Action::Close(Closed::Refused(Refusal::OtherFleet))
                ]
            ),
            "{out:?}"
        );
        assert!(run(&mut s, publish("fleet/a/TRK-1/can", 2)).is_empty());
        let mut s = gateway_a(true);
        let mut retained = Publish::new("fleet/a/TRK-1/can", QoS::AtLeastOnce, "x");
        retained.pkid = 1;
        retained.retain = true;
        let out = run(&mut s, Packet::Publish(retained));
        assert!(matches!(
            out.last(),
            Some(Action::Close(Closed::Refused(Refusal::Retain)))
        ));
    }

    #[test]
    fn subscriptions_are_filtered_and_the_suback_merged() {
        let mut s = gateway_a(true);
        let subscribe = Subscribe::new_many([
            SubscribeFilter::new("fleet/#".into(), QoS::AtLeastOnce),
            SubscribeFilter::new("fleet/a/alerts".into(), QoS::ExactlyOnce),
            SubscribeFilter::new("fleet/b/alerts".into(), QoS::AtLeastOnce),
        ]);
        let mut subscribe = subscribe;
        subscribe.pkid = 7;
        let out = run(&mut s, Packet::Subscribe(subscribe));
        let refused: Vec<&str> = out
            .iter()
            .filter_map(|a| match a {
                Action::Refused(Refused {
                    reason: Refusal::Subscribe,
                    subject,
                    ..
                }) => Some(subject.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(refused, ["fleet/#", "fleet/b/alerts"]);
        assert!(
            matches!(
                out.last(),
                Some(Action::ConnectUpstream { client_id, clean_session: true }) if client_id == "x:gw-a:gw-17"
            ),
            "{out:?}"
        );
        assert!(!s.accepts_input(), "waits for the link");
        let mut out = Vec::new();
        s.on_upstream_connack(&ConnAck::new(ConnectReturnCode::Success, false), &mut out);
        match &out[..] {
            [Action::Forward(Packet::Subscribe(f))] => {
                assert_eq!(f.pkid, 7);
                assert_eq!(
                    f.filters,
                    [SubscribeFilter::new(
                        "fleet/a/alerts".into(),
                        QoS::AtLeastOnce
                    )]
                );
            }
            other => panic!("{other:?}"),
        }
        let mut out = Vec::new();
        s.on_upstream(
            Packet::SubAck(SubAck::new(
                7,
                vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)],
            )),
            &mut out,
        );
        match &out[..] {
            [Action::Reply(Packet::SubAck(a))] => assert_eq!(
                a.return_codes,
                [
                    SubscribeReasonCode::Failure,
                    SubscribeReasonCode::Success(QoS::AtLeastOnce),
                    SubscribeReasonCode::Failure
                ]
            ),
            other => panic!("{other:?}"),
        }
        // Alerts of its fleet go through; anything else never reaches it.
        let mut out = Vec::new();
        s.on_upstream(publish("fleet/a/alerts", 3), &mut out);
        assert!(matches!(&out[..], [Action::Reply(Packet::Publish(_))]));
        let mut out = Vec::new();
        s.on_upstream(publish("fleet/b/alerts", 4), &mut out);
        assert!(matches!(
            &out[..],
            [Action::Forward(Packet::PubAck(PubAck { pkid: 4 }))]
        ));

        // Only refused filters: answered here, no link made.
        let mut s = gateway_a(true);
        let out = run(
            &mut s,
            Packet::Subscribe(Subscribe::new("fleet/#", QoS::AtMostOnce)),
        );
        assert!(
            matches!(
                out.last(),
                Some(Action::Reply(Packet::SubAck(a))) if a.return_codes == [SubscribeReasonCode::Failure]
            ),
            "{out:?}"
        );
        assert!(!s.has_upstream());
    }

    #[test]
    fn a_stored_session_is_asked_for_before_the_connack() {
        let mut s = session(AnonymousAccess::Loopback, true);
        let out = run(&mut s, connect("ops", None, false));
        assert!(
            matches!(
                &out[..],
                [Action::ConnectUpstream { client_id, clean_session: false }] if client_id == "x::ops"
            ),
            "{out:?}"
        );
        assert!(!s.accepts_input());
        let mut out = Vec::new();
        s.on_upstream_connack(&ConnAck::new(ConnectReturnCode::Success, true), &mut out);
        assert_eq!(
            connack(&out),
            Some((ConnectReturnCode::Success, true)),
            "{out:?}"
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(s.accepts_input() && s.has_upstream());

        let mut s = session(AnonymousAccess::Loopback, true);
        run(&mut s, connect("ops", None, false));
        let mut out = Vec::new();
        s.on_upstream_lost(&mut out);
        assert_eq!(
            connack_code(&out),
            Some(ConnectReturnCode::ServiceUnavailable)
        );
        assert!(s.is_closed());
    }

    /// rumqttd keeps a log per distinct filter: trusted clients get at
    /// most the cap of single-fleet filters; `+` and gateways' own fleets
    /// are not counted.
    #[test]
    fn single_fleet_filters_of_trusted_clients_are_capped() {
        let filters = Arc::new(FleetFilters::new(2));
        let mut s = Session::new(policy(AnonymousAccess::Loopback), filters.clone(), true, 1);
        run(&mut s, connect("ops", None, true));
        let mut sub = Subscribe::new_many(
            [
                "fleet/x/alerts",
                "fleet/y/alerts",
                "fleet/x/alerts",
                "fleet/z/alerts",
                "fleet/+/alerts",
            ]
            .map(|f| SubscribeFilter::new(f.into(), QoS::AtLeastOnce)),
        );
        sub.pkid = 1;
        let out = run(&mut s, Packet::Subscribe(sub));
        let refused: Vec<&str> = out
            .iter()
            .filter_map(|a| match a {
                Action::Refused(Refused { subject, .. }) => Some(subject.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(refused, ["fleet/z/alerts"]);
        // A gateway's own fleet is not counted against the cap.
        let mut gw = Session::new(policy(AnonymousAccess::Refused), filters, true, 2);
        run(&mut gw, connect("gw", Some(("gw-a", "pw-a")), true));
        let out = run(
            &mut gw,
            Packet::Subscribe(Subscribe::new("fleet/a/alerts", QoS::AtLeastOnce)),
        );
        assert!(
            matches!(out.last(), Some(Action::ConnectUpstream { .. })),
            "{out:?}"
        );
    }

    #[test]
    fn pings_are_answered_here_and_keep_alive_is_one_and_a_half_times() {
        let mut s = gateway_a(true);
        assert_eq!(s.silence_limit(), Some(Duration::from_secs(15)));
        let out = run(&mut s, Packet::PingReq);
        assert!(matches!(&out[..], [Action::Reply(Packet::PingResp)]));
        let out = run(&mut s, Packet::Connect(Connect::new("again")));
        assert!(matches!(
            out.last(),
            Some(Action::Close(Closed::Refused(Refusal::Protocol)))
        ));
    }

    proptest::proptest! {
        /// Whatever a gateway of fleet `a` sends, in any order, nothing
        /// outside its fleet reaches the writer and no filter beyond its
        /// alerts reaches the internal broker.
        #[test]
        fn a_gateway_session_never_leaves_its_fleet(
            packets in proptest::collection::vec(
                (proptest::collection::vec(level(), 1..6), proptest::prelude::any::<bool>(), 0u8..3, proptest::prelude::any::<bool>()),
                1..40,
            ),
        ) {
            let mut s = gateway_a(true);
            let mut actions = Vec::new();
            for (i, (levels, subscribe, qos, retain)) in packets.into_iter().enumerate() {
                let topic = levels.join("/");
                let qos = match qos { 0 => QoS::AtMostOnce, 1 => QoS::AtLeastOnce, _ => QoS::ExactlyOnce };
                let pkid = u16::try_from(i % 60_000 + 1).unwrap();
                let packet = if subscribe {
                    let mut sub = Subscribe::new(topic, qos);
                    sub.pkid = pkid;
                    Packet::Subscribe(sub)
                } else {
                    let mut p = Publish::new(topic, qos, "x");
                    p.pkid = pkid;
                    p.retain = retain;
                    Packet::Publish(p)
                };
                s.on_client(packet, &mut actions);
                if matches!(actions.last(), Some(Action::ConnectUpstream { .. })) {
                    s.on_upstream_connack(&ConnAck::new(ConnectReturnCode::Success, false), &mut actions);
                }
            }
            for a in &actions {
                match a {
                    Action::Ingest { topic, .. } => {
                        let t = fleetcare_ingest::topic::parse("fleet", topic).unwrap();
                        proptest::prop_assert_eq!(t.fleet, "a");
                    }
                    Action::Forward(Packet::Subscribe(sub)) => {
                        for f in &sub.filters {
                            proptest::prop_assert_eq!(f.path.as_str(), "fleet/a/alerts");
                            proptest::prop_assert!(f.qos != QoS::ExactlyOnce);
                        }
                    }
                    Action::Forward(other) => proptest::prop_assert!(false, "{other:?}"),
                    _ => {}
                }
            }
        }
    }
}
