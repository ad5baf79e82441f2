//! Who may do what on the embedded broker's edge (contract C14): pure
//! functions of the configuration and of what a client sends, no IO.
//!
//! - A **gateway login** belongs to one fleet (or one vehicle of it): it
//!   may publish only `{prefix}/{fleet}/{vehicle}/{can|telemetry}` of that
//!   fleet (vehicle), and subscribe only to `{prefix}/{fleet}/alerts`.
//! - An **anonymous** client (only where [`AnonymousAccess`] lets one in)
//!   and fleetcare's own service login are trusted as before the edge
//!   existed: they may publish any fleet's data, and what is not a data
//!   topic still reaches the writer as a `topic` dead letter; they may
//!   subscribe to any fleet's alerts (`{prefix}/+/alerts` too).
//! - Nobody publishes retained messages, at QoS 2, to an alerts topic, or
//!   to a topic MQTT forbids in a publish (empty, wildcards, NUL); nobody
//!   subscribes to a filter that could reach data topics or, for a
//!   gateway, another fleet's alerts; no outside client uses a client id
//!   starting `fleetcare-`, and outside ids live in their own namespace
//!   on the internal broker ([`upstream_id`]).

use std::collections::HashMap;
use std::net::SocketAddr;

use fleetcare_ingest::ids::{FleetId, VehicleId, check};
use fleetcare_ingest::topic;
use hmac::{Hmac, KeyInit, Mac};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{ConnectReturnCode, Login};
use sha2::Sha256;

/// Client ids outside clients may not use: fleetcare's own connections
/// to its internal broker start with it (compared ignoring case).
pub const INTERNAL_ID_PREFIX: &str = "fleetcare-";

/// Longest client id accepted (MQTT 3.1.1 asks servers for 23 at least).
pub const MAX_CLIENT_ID: usize = 128;

/// Why the edge refused something a client sent. Each is a label value of
/// `fleetcare_mqtt_refused_total{reason}` (a fixed list: [`Refusal::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// A client id starting `fleetcare-`, too long, or empty without a
    /// clean session (CONNACK 0x02).
    ClientId,
    /// An unknown username or a wrong password (CONNACK 0x04).
    Login,
    /// No login where logins are required (CONNACK 0x05).
    Anonymous,
    /// Not MQTT 3.1.1, a malformed packet, or a packet out of place.
    Protocol,
    /// A CONNECT with a will message (CONNACK 0x05): a will would be a
    /// publish nobody checked.
    Will,
    /// A gateway's publish into another fleet.
    OtherFleet,
    /// A vehicle login's publish for another vehicle of its fleet.
    OtherVehicle,
    /// A publish to an alerts topic (only fleetcare publishes alerts).
    Alerts,
    /// A publish to a topic that is not the login's data topic, or not a
    /// topic MQTT allows in a publish.
    Topic,
    /// A retained publish.
    Retain,
    /// A QoS 2 publish (fleetcare takes QoS 0 and 1).
    Qos,
    /// A subscription filter outside what the login may read (SUBACK 0x80).
    Subscribe,
    /// A packet larger than `[mqtt] max_packet_bytes`, refused from its header.
    PacketTooLarge,
    /// `[mqtt] max_connections` clients were connected already.
    Connections,
    /// No CONNECT (or no TLS handshake) within 10 s of connecting.
    ConnectTimeout,
}

impl Refusal {
    pub const ALL: [Self; 15] = [
        Self::ClientId,
        Self::Login,
        Self::Anonymous,
        Self::Protocol,
        Self::Will,
        Self::OtherFleet,
        Self::OtherVehicle,
        Self::Alerts,
        Self::Topic,
        Self::Retain,
        Self::Qos,
        Self::Subscribe,
        Self::PacketTooLarge,
        Self::Connections,
        Self::ConnectTimeout,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientId => "client_id",
            Self::Login => "login",
            Self::Anonymous => "anonymous",
            Self::Protocol => "protocol",
            Self::Will => "will",
            Self::OtherFleet => "other_fleet",
            Self::OtherVehicle => "other_vehicle",
            Self::Alerts => "alerts",
            Self::Topic => "topic",
            Self::Retain => "retain",
            Self::Qos => "qos",
            Self::Subscribe => "subscribe",
            Self::PacketTooLarge => "packet_too_large",
            Self::Connections => "connections",
            Self::ConnectTimeout => "connect_timeout",
        }
    }

    /// The CONNACK return code that answers a CONNECT refused for this.
    pub const fn connack(self) -> ConnectReturnCode {
        match self {
            Self::ClientId => ConnectReturnCode::BadClientId,
            Self::Login => ConnectReturnCode::BadUserNamePassword,
            Self::Anonymous | Self::Will => ConnectReturnCode::NotAuthorized,
            Self::Protocol => ConnectReturnCode::RefusedProtocolVersion,
            _ => ConnectReturnCode::ServiceUnavailable,
        }
    }
}

/// Who a connected client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// An anonymous client where anonymous access is allowed, or
    /// fleetcare's own service login (`login` names it): any fleet's data
    /// and alerts.
    Trusted { login: Option<String> },
    /// A gateway login: its fleet's data (its vehicle's, when it names
    /// one) and its fleet's alerts.
    Gateway {
        login: String,
        fleet: FleetId,
        vehicle: Option<VehicleId>,
    },
}

impl Identity {
    /// The login's name for logs and for the client's namespace; empty
    /// for an anonymous client.
    pub fn login(&self) -> &str {
        match self {
            Self::Trusted { login } => login.as_deref().unwrap_or(""),
            Self::Gateway { login, .. } => login,
        }
    }
}

/// Whether the edge lets clients in without a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnonymousAccess {
    /// Every client logs in.
    Refused,
    /// The listener is on loopback and no logins are configured: only
    /// processes of this machine can connect, as before logins existed.
    Loopback,
    /// `allow_anonymous = true`: anyone who reaches the port (warned about
    /// at every start unless the listener is on loopback).
    Configured { loopback: bool },
}

impl AnonymousAccess {
    pub fn allowed(self) -> bool {
        !matches!(self, Self::Refused)
    }
}

/// A listener reachable from other machines with nobody required to log in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the embedded MQTT broker would listen on {listen}, which other machines can reach, with no gateway logins; add [[mqtt.logins]] (username, password_env, fleet) for each gateway, or set [mqtt] listen to 127.0.0.1:1883, or set [mqtt] allow_anonymous = true to let anyone publish (not recommended)"
)]
pub struct ExposedWithoutLogins {
    pub listen: SocketAddr,
}

/// The loopback rule: anonymous clients only while the listener is on
/// loopback and no logins are configured, or where `allow_anonymous =
/// true` says so; a listener other machines can reach with no logins and
/// no such setting is refused.
pub fn anonymous_access(
    listen: &[SocketAddr],
    allow_anonymous: Option<bool>,
    logins: usize,
) -> Result<AnonymousAccess, ExposedWithoutLogins> {
    let loopback = !listen.is_empty() && listen.iter().all(|a| a.ip().is_loopback());
    match allow_anonymous {
        Some(true) => Ok(AnonymousAccess::Configured { loopback }),
        _ if !loopback && logins == 0 => Err(ExposedWithoutLogins {
            listen: listen
                .first()
                .copied()
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        }),
        Some(false) => Ok(AnonymousAccess::Refused),
        None if loopback && logins == 0 => Ok(AnonymousAccess::Loopback),
        None => Ok(AnonymousAccess::Refused),
    }
}

/// What a username grants.
#[derive(Debug, Clone)]
enum Grant {
    /// fleetcare's own service login (the demo's simulated fleet).
    Service,
    Fleet {
        fleet: FleetId,
        vehicle: Option<VehicleId>,
    },
}

/// A login as the edge keeps it: the password only as an HMAC under a
/// key of this process, so checking a guess takes the same time however
/// much of it is right.
#[derive(Clone)]
struct Entry {
    tag: Vec<u8>,
    grant: Grant,
}

/// A gateway login with its password, as read from the configuration and
/// the environment.
#[derive(Debug, Clone)]
pub struct LoginSpec {
    pub username: String,
    pub password: String,
    pub fleet: FleetId,
    pub vehicle: Option<VehicleId>,
}

/// The rules of one edge: its topic prefix, logins and anonymous access.
pub struct Policy {
    prefix: String,
    anonymous: AnonymousAccess,
    key: [u8; 32],
    logins: HashMap<String, Entry>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("prefix", &self.prefix)
            .field("anonymous", &self.anonymous)
            .field("logins", &self.logins.len())
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// `key` keys the password HMACs (random per start).
    pub fn new(prefix: &str, anonymous: AnonymousAccess, key: [u8; 32]) -> Self {
        Self {
            prefix: prefix.to_owned(),
            anonymous,
            key,
            logins: HashMap::new(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn anonymous(&self) -> AnonymousAccess {
        self.anonymous
    }

    fn mac(&self, password: &[u8]) -> Hmac<Sha256> {
        #[allow(clippy::expect_used)]
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(password);
        mac
    }

    fn insert(&mut self, username: &str, password: &str, grant: Grant) {
        let tag = self
            .mac(password.as_bytes())
            .finalize()
            .into_bytes()
            .to_vec();
        self.logins
            .insert(username.to_owned(), Entry { tag, grant });
    }

    /// Adds a gateway login.
    pub fn add_login(&mut self, login: &LoginSpec) {
        let grant = Grant::Fleet {
            fleet: login.fleet.clone(),
            vehicle: login.vehicle.clone(),
        };
        self.insert(&login.username, &login.password, grant);
    }

    /// Adds fleetcare's own login, trusted like an anonymous client on
    /// loopback (the demo publishes its simulated fleet with it).
    pub fn add_service_login(&mut self, username: &str, password: &str) {
        self.insert(username, password, Grant::Service);
    }

    /// Who the CONNECT's login makes the client.
    pub fn authenticate(&self, login: Option<&Login>) -> Result<Identity, Refusal> {
        let Some(login) = login else {
            return if self.anonymous.allowed() {
                Ok(Identity::Trusted { login: None })
            } else {
                Err(Refusal::Anonymous)
            };
        };
        // An unknown user costs the same HMAC as a known one.
        let entry = self.logins.get(&login.username);
        let expected = entry.map_or(&[0u8; 32][..], |e| &e.tag);
        let matches = self
            .mac(login.password.as_bytes())
            .verify_slice(expected)
            .is_ok();
        match entry {
            Some(e) if matches => Ok(match &e.grant {
                Grant::Service => Identity::Trusted {
                    login: Some(login.username.clone()),
                },
                Grant::Fleet { fleet, vehicle } => Identity::Gateway {
                    login: login.username.clone(),
                    fleet: fleet.clone(),
                    vehicle: vehicle.clone(),
                },
            }),
            _ => Err(Refusal::Login),
        }
    }

    /// `{fleet}` when `topic` is `{prefix}/{fleet}/alerts` (any text
    /// between, wildcards too: the caller decides).
    fn alerts_fleet<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let rest = topic.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        let (fleet, leaf) = rest.split_once('/')?;
        (leaf == "alerts").then_some(fleet)
    }

    /// Whether `who` may publish this message; a refused one is never stored.
    pub fn publish(
        &self,
        who: &Identity,
        topic: &str,
        qos: QoS,
        retain: bool,
    ) -> Result<(), Refusal> {
        if retain {
            return Err(Refusal::Retain);
        }
        if qos == QoS::ExactlyOnce {
            return Err(Refusal::Qos);
        }
        if topic.is_empty() || topic.contains(['+', '#', '\0']) {
            return Err(Refusal::Topic);
        }
        if self.alerts_fleet(topic).is_some() {
            return Err(Refusal::Alerts);
        }
        match who {
            // Anything else reaches the writer, which keeps a dead letter
            // for what is not a data topic.
            Identity::Trusted { .. } => Ok(()),
            Identity::Gateway { fleet, vehicle, .. } => {
                let t = topic::parse(&self.prefix, topic).map_err(|_| Refusal::Topic)?;
                if t.fleet != fleet.as_str() {
                    Err(Refusal::OtherFleet)
                } else if vehicle.as_ref().is_some_and(|v| v.as_str() != t.vehicle) {
                    Err(Refusal::OtherVehicle)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Whether `who` may subscribe to `filter`: exactly its fleet's alerts
    /// topic; a trusted client any fleet's, or `{prefix}/+/alerts`.
    pub fn subscribe(&self, who: &Identity, filter: &str) -> bool {
        let Some(fleet) = self.alerts_fleet(filter) else {
            return false;
        };
        match who {
            Identity::Trusted { .. } => fleet == "+" || check(fleet).is_ok(),
            Identity::Gateway { fleet: own, .. } => fleet == own.as_str(),
        }
    }

    /// Whether a message the internal broker delivers on `topic` may go to
    /// `who` (it only delivers what the subscriptions allowed; this is the
    /// second lock on the door).
    pub fn may_receive(&self, who: &Identity, topic: &str) -> bool {
        match self.alerts_fleet(topic) {
            Some(fleet) if check(fleet).is_ok() => match who {
                Identity::Trusted { .. } => true,
                Identity::Gateway { fleet: own, .. } => fleet == own.as_str(),
            },
            _ => false,
        }
    }
}

/// Whether an outside client may use `client_id`.
pub fn check_client_id(client_id: &str, clean_session: bool) -> Result<(), Refusal> {
    let internal = client_id
        .get(..INTERNAL_ID_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(INTERNAL_ID_PREFIX));
    if internal || client_id.len() > MAX_CLIENT_ID || (client_id.is_empty() && !clean_session) {
        Err(Refusal::ClientId)
    } else {
        Ok(())
    }
}

/// The client id an outside client has on the internal broker: `x:`, its
/// login (usernames hold no ':'), ':', its own id. fleetcare's own ids
/// start `fleetcare-`, so none of these can displace them, and a login
/// cannot take over another login's session.
pub fn upstream_id(who: &Identity, client_id: &str) -> String {
    format!("x:{}:{client_id}", who.login())
}

/// The internal id of a client that sent an empty id (with a clean
/// session): a namespace of its own, numbered by connection.
pub fn assigned_upstream_id(connection: u64) -> String {
    format!("a:{connection}")
}

#[cfg(test)]
pub(super) mod tests {
    use proptest::prelude::*;
    use rumqttc::mqttbytes::matches;

    use super::*;

    fn fleet(s: &str) -> FleetId {
        FleetId::new(s).unwrap()
    }

    fn gateway(f: &str, v: Option<&str>) -> Identity {
        Identity::Gateway {
            login: format!("gw-{f}"),
            fleet: fleet(f),
            vehicle: v.map(|v| VehicleId::new(v).unwrap()),
        }
    }

    fn anyone() -> Identity {
        Identity::Trusted { login: None }
    }

    fn policy() -> Policy {
        let mut p = Policy::new("fleet", AnonymousAccess::Loopback, [7; 32]);
        p.add_login(&LoginSpec {
            username: "gw-a".into(),
            password: "secret-a".into(),
            fleet: fleet("a"),
            vehicle: None,
        });
        p.add_login(&LoginSpec {
            username: "gw-a-1".into(),
            password: "secret-a1".into(),
            fleet: fleet("a"),
            vehicle: Some(VehicleId::new("TRK-1").unwrap()),
        });
        p.add_service_login("fleetcare-service", "svc");
        p
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn anonymous_only_on_loopback_without_logins_or_when_configured() {
        let local = [addr("127.0.0.1:1883")];
        let local6 = [addr("[::1]:1883")];
        let any = [addr("0.0.0.0:1883")];
        let lan = [addr("10.0.0.5:1883")];
        assert_eq!(
            anonymous_access(&local, None, 0),
            Ok(AnonymousAccess::Loopback)
        );
        assert_eq!(
            anonymous_access(&local6, None, 0),
            Ok(AnonymousAccess::Loopback)
        );
        // Logins configured: everybody logs in, on loopback too.
        assert_eq!(
            anonymous_access(&local, None, 2),
            Ok(AnonymousAccess::Refused)
        );
        assert_eq!(
            anonymous_access(&local, Some(false), 0),
            Ok(AnonymousAccess::Refused)
        );
        // Reachable from other machines.
        for exposed in [&any[..], &lan[..], &[local[0], lan[0]][..]] {
            let e = anonymous_access(exposed, None, 0).unwrap_err().to_string();
            assert!(e.contains("[[mqtt.logins]]"), "{e}");
            assert!(e.contains("allow_anonymous = true"), "{e}");
            assert_eq!(
                anonymous_access(exposed, Some(false), 0),
                Err(ExposedWithoutLogins { listen: exposed[0] })
            );
            assert_eq!(
                anonymous_access(exposed, None, 1),
                Ok(AnonymousAccess::Refused)
            );
            assert_eq!(
                anonymous_access(exposed, Some(true), 0),
                Ok(AnonymousAccess::Configured { loopback: false })
            );
        }
        assert!(!AnonymousAccess::Refused.allowed());
        assert!(AnonymousAccess::Configured { loopback: true }.allowed());
    }

    #[test]
    fn logins_and_passwords() {
        let p = policy();
        let login = |u: &str, pw: &str| Some(Login::new(u, pw));
        assert_eq!(
            p.authenticate(login("gw-a", "secret-a").as_ref()),
            Ok(gateway("a", None).clone_with_login("gw-a"))
        );
        assert_eq!(
            p.authenticate(login("gw-a", "secret-b").as_ref()),
            Err(Refusal::Login)
        );
        assert_eq!(
            p.authenticate(login("gw-a", "").as_ref()),
            Err(Refusal::Login)
        );
        assert_eq!(
            p.authenticate(login("nobody", "secret-a").as_ref()),
            Err(Refusal::Login)
        );
        assert_eq!(
            p.authenticate(login("fleetcare-service", "svc").as_ref()),
            Ok(Identity::Trusted {
                login: Some("fleetcare-service".into())
            })
        );
        assert_eq!(p.authenticate(None), Ok(anyone()));
        let closed = Policy::new("fleet", AnonymousAccess::Refused, [1; 32]);
        assert_eq!(closed.authenticate(None), Err(Refusal::Anonymous));
    }

    impl Identity {
        fn clone_with_login(&self, name: &str) -> Self {
            match self {
                Self::Gateway { fleet, vehicle, .. } => Self::Gateway {
                    login: name.into(),
                    fleet: fleet.clone(),
                    vehicle: vehicle.clone(),
                },
                other => other.clone(),
            }
        }
    }

    #[test]
    fn a_gateway_publishes_its_own_fleets_data_only() {
        let p = policy();
        let a = gateway("a", None);
        let q1 = QoS::AtLeastOnce;
        assert_eq!(p.publish(&a, "fleet/a/TRK-9/can", q1, false), Ok(()));
        assert_eq!(
            p.publish(&a, "fleet/a/TRK-9/telemetry", QoS::AtMostOnce, false),
            Ok(())
        );
        for (topic, why) in [
            ("fleet/b/TRK-9/telemetry", Refusal::OtherFleet),
            ("fleet/a/alerts", Refusal::Alerts),
            ("fleet/b/alerts", Refusal::Alerts),
            ("fleet/a/TRK-9/gps", Refusal::Topic),
            ("fleet/a/TRK-9/can/x", Refusal::Topic),
            ("fleet/a/bad id/can", Refusal::Topic),
            ("other/a/TRK-9/can", Refusal::Topic),
            ("fleet/a/+/can", Refusal::Topic),
            ("fleet/#", Refusal::Topic),
            ("", Refusal::Topic),
        ] {
            assert_eq!(p.publish(&a, topic, q1, false), Err(why), "{topic}");
        }
        assert_eq!(
            p.publish(&a, "fleet/a/TRK-9/can", q1, true),
            Err(Refusal::Retain)
        );
        assert_eq!(
            p.publish(&a, "fleet/a/TRK-9/can", QoS::ExactlyOnce, false),
            Err(Refusal::Qos)
        );
        let one = gateway("a", Some("TRK-1"));
        assert_eq!(p.publish(&one, "fleet/a/TRK-1/can", q1, false), Ok(()));
        assert_eq!(
            p.publish(&one, "fleet/a/TRK-2/can", q1, false),
            Err(Refusal::OtherVehicle)
        );
        assert_eq!(
            p.publish(&one, "fleet/b/TRK-1/can", q1, false),
            Err(Refusal::OtherFleet)
        );
    }

    #[test]
    fn a_trusted_client_publishes_anything_but_alerts_and_retained() {
        let p = policy();
        let q1 = QoS::AtLeastOnce;
        // Malformed topics go on to the writer, as dead letters.
        for topic in [
            "fleet/b/TRK-9/telemetry",
            "fleet/ac me/TRK-1/can",
            "fleet/a/TRK-1/gps",
            "fleetx/a/TRK-1/can",
            "fleet/a/TRK-1",
        ] {
            assert_eq!(p.publish(&anyone(), topic, q1, false), Ok(()), "{topic}");
        }
        assert_eq!(
            p.publish(&anyone(), "fleet/a/alerts", q1, false),
            Err(Refusal::Alerts)
        );
        assert_eq!(
            p.publish(&anyone(), "fleet/a/TRK-1/can", q1, true),
            Err(Refusal::Retain)
        );
        assert_eq!(
            p.publish(&anyone(), "fleet/+/TRK-1/can", q1, false),
            Err(Refusal::Topic)
        );
    }

    #[test]
    fn subscriptions_reach_alerts_only() {
        let p = policy();
        let a = gateway("a", None);
        assert!(p.subscribe(&a, "fleet/a/alerts"));
        for f in [
            "fleet/b/alerts",
            "fleet/+/alerts",
            "fleet/#",
            "#",
            "fleet/a/#",
            "fleet/a/+/can",
            "fleet/a/TRK-1/can",
            "$share/g/fleet/a/alerts",
            "fleet/a/alerts/#",
        ] {
            assert!(!p.subscribe(&a, f), "{f}");
        }
        assert!(p.subscribe(&anyone(), "fleet/b/alerts"));
        assert!(p.subscribe(&anyone(), "fleet/+/alerts"));
        for f in ["fleet/#", "fleet/+/+/+", "fleet/#/alerts", "+/+/alerts"] {
            assert!(!p.subscribe(&anyone(), f), "{f}");
        }
        assert!(p.may_receive(&a, "fleet/a/alerts"));
        assert!(!p.may_receive(&a, "fleet/b/alerts"));
        assert!(p.may_receive(&anyone(), "fleet/b/alerts"));
        assert!(!p.may_receive(&anyone(), "fleet/b/TRK-1/can"));
    }

    #[test]
    fn client_ids() {
        for id in [
            "fleetcare-ingest-0",
            "fleetcare-anything",
            "fleetcare-ingest-alerts",
            "FleetCare-x",
        ] {
            assert_eq!(check_client_id(id, true), Err(Refusal::ClientId), "{id}");
        }
        assert_eq!(check_client_id("", false), Err(Refusal::ClientId));
        assert_eq!(check_client_id("", true), Ok(()));
        assert_eq!(check_client_id("gw-17", false), Ok(()));
        assert_eq!(check_client_id("fleetcare", false), Ok(()));
        assert_eq!(
            check_client_id(&"x".repeat(MAX_CLIENT_ID + 1), true),
            Err(Refusal::ClientId)
        );
        assert_eq!(upstream_id(&anyone(), "gw"), "x::gw");
        assert_eq!(upstream_id(&gateway("a", None), "gw"), "x:gw-a:gw");
        let labels: std::collections::HashSet<_> =
            Refusal::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), Refusal::ALL.len());
    }

    /// Topic levels an attacker would try, and some noise.
    pub(in crate::sources::edge) fn level() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("fleet".to_owned()),
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("TRK-1".to_owned()),
            Just("TRK-2".to_owned()),
            Just("alerts".to_owned()),
            Just("can".to_owned()),
            Just("telemetry".to_owned()),
            Just("+".to_owned()),
            Just("#".to_owned()),
            Just(String::new()),
            Just("$share".to_owned()),
            "[a-zA-Z0-9_.+#$ -]{0,6}",
        ]
    }

    fn topic_like() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec(level(), 1..7).prop_map(|l| l.join("/")),
            any::<String>(),
        ]
    }

    fn identity() -> impl Strategy<Value = Identity> {
        prop_oneof![
            Just(anyone()),
            Just(gateway("a", None)),
            Just(gateway("b", None)),
            Just(gateway("a", Some("TRK-1"))),
        ]
    }

    /// A data topic of some fleet and vehicle.
    fn data_topic() -> impl Strategy<Value = String> {
        (
            prop_oneof![Just("a"), Just("b"), Just("c")],
            prop_oneof![Just("TRK-1"), Just("TRK-2")],
            prop_oneof![Just("can"), Just("telemetry")],
        )
            .prop_map(|(f, v, c)| format!("fleet/{f}/{v}/{c}"))
    }

    proptest! {
        /// A gateway's allowed publish is a data topic of its own fleet
        /// (and vehicle); nobody's allowed publish is retained, QoS 2 or
        /// an alerts topic.
        #[test]
        fn no_publish_leaves_the_logins_fleet(
            who in identity(),
            topic in topic_like(),
            qos in prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce), Just(QoS::ExactlyOnce)],
            retain in any::<bool>(),
        ) {
            let p = policy();
            if p.publish(&who, &topic, qos, retain).is_ok() {
                prop_assert!(!retain);
                prop_assert!(qos != QoS::ExactlyOnce);
                let levels: Vec<&str> = topic.split('/').collect();
                prop_assert!(
                    !(levels.len() == 3 && levels[0] == "fleet" && levels[2] == "alerts"),
                    "{} is an alerts topic", topic
                );
                if let Identity::Gateway { fleet, vehicle, .. } = &who {
                    let t = topic::parse("fleet", &topic).unwrap();
                    prop_assert_eq!(t.fleet, fleet.as_str());
                    if let Some(v) = vehicle {
                        prop_assert_eq!(t.vehicle, v.as_str());
                    }
                }
            }
        }

        /// An allowed filter matches no data topic of any fleet, and a
        /// gateway's matches no other fleet's alerts.
        #[test]
        fn no_subscription_reaches_data_or_another_fleet(
            who in identity(),
            filter in topic_like(),
            data in data_topic(),
            other in prop_oneof![Just("a"), Just("b"), Just("c"), Just("_support")],
        ) {
            let p = policy();
            if p.subscribe(&who, &filter) {
                prop_assert!(!matches(&data, &filter), "{} reaches {}", filter, data);
                let alerts = format!("fleet/{other}/alerts");
                if let Identity::Gateway { fleet, .. } = &who
                    && fleet.as_str() != other
                {
                    prop_assert!(!matches(&alerts, &filter), "{} reaches {}", filter, alerts);
                }
            }
        }

        /// No outside client takes an internal id, and no two logins share
        /// a namespace.
        #[test]
        fn outside_ids_never_reach_internal_ones(
            who in identity(),
            id in prop_oneof![any::<String>(), "fleetcare-[a-z0-9-]{0,10}", "[xa]:[a-z:]{0,8}"],
            clean in any::<bool>(),
        ) {
            if check_client_id(&id, clean).is_ok() {
                prop_assert!(!id.to_ascii_lowercase().starts_with(INTERNAL_ID_PREFIX));
            }
            let up = upstream_id(&who, &id);
            prop_assert!(up.starts_with("x:"));
            let namespace = format!("x:{}:", who.login());
            prop_assert!(up.starts_with(&namespace));
        }
    }
}
