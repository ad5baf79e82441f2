//! MQTT topics of contract C1: the data topics
//! `{prefix}/{fleet}/{vehicle}/can` and `{prefix}/{fleet}/{vehicle}/telemetry`,
//! built by [`data_topic`] and read by [`parse`], and the alerts topic
//! `{prefix}/{fleet}/alerts` fleetcare publishes on ([`alerts_topic`]).

use crate::ids::{FleetId, IdError, VehicleId, check};

/// What a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// candump -L lines.
    Can,
    /// Telemetry JSON.
    Telemetry,
}

impl Channel {
    /// The last level of the topic.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Can => "can",
            Self::Telemetry => "telemetry",
        }
    }
}

/// A parsed data topic, borrowing from the topic string so that the hot
/// path allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Topic<'a> {
    pub fleet: &'a str,
    pub vehicle: &'a str,
    /// `{fleet}/{vehicle}`: one key per truck.
    pub vehicle_key: &'a str,
    pub channel: Channel,
}

impl Topic<'_> {
    pub fn fleet_id(&self) -> FleetId {
        FleetId::from_checked(self.fleet)
    }

    pub fn vehicle_id(&self) -> VehicleId {
        VehicleId::from_checked(self.vehicle)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("does not start with the prefix {prefix:?}")]
    WrongPrefix { prefix: String },
    #[error("is not {{prefix}}/{{fleet}}/{{vehicle}}/{{can|telemetry}}")]
    WrongShape,
    #[error("fleet id {0}")]
    BadFleet(IdError),
    #[error("vehicle id {0}")]
    BadVehicle(IdError),
    #[error("ends in {0:?}, not can or telemetry")]
    UnknownChannel(String),
}

/// The data topic on which `vehicle` of `fleet` publishes `channel` under
/// `prefix` (e.g. `fleet`): `{prefix}/{fleet}/{vehicle}/{can|telemetry}`.
/// The typed ids make it a topic [`parse`] reads back.
pub fn data_topic(prefix: &str, fleet: &FleetId, vehicle: &VehicleId, channel: Channel) -> String {
    format!("{prefix}/{fleet}/{vehicle}/{}", channel.as_str())
}

/// The topic of `fleet`'s alerts under `prefix`: `{prefix}/{fleet}/alerts`.
/// One level shorter than a data topic, so a subscription to the data
/// topics (`{prefix}/+/+/+`) does not receive it, and [`parse`] refuses it.
pub fn alerts_topic(prefix: &str, fleet: &FleetId) -> String {
    format!("{prefix}/{fleet}/alerts")
}

/// Parses a data topic under `prefix` (e.g. `fleet`).
pub fn parse<'a>(prefix: &str, topic: &'a str) -> Result<Topic<'a>, TopicError> {
    let rest = topic
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| TopicError::WrongPrefix {
            prefix: prefix.to_owned(),
        })?;
    let (vehicle_key, channel) = rest.rsplit_once('/').ok_or(TopicError::WrongShape)?;
    let (fleet, vehicle) = vehicle_key.split_once('/').ok_or(TopicError::WrongShape)?;
    if vehicle.contains('/') {
        return Err(TopicError::WrongShape);
    }
    check(fleet).map_err(TopicError::BadFleet)?;
    check(vehicle).map_err(TopicError::BadVehicle)?;
    let channel = match channel {
        "can" => Channel::Can,
        "telemetry" => Channel::Telemetry,
        other => return Err(TopicError::UnknownChannel(other.chars().take(32).collect())),
    };
    Ok(Topic {
        fleet,
        vehicle,
        vehicle_key,
        channel,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_data_topics() {
        let t = parse("fleet", "fleet/acme/TRK-001/can").unwrap();
        assert_eq!(
            (t.fleet, t.vehicle, t.vehicle_key, t.channel),
            ("acme", "TRK-001", "acme/TRK-001", Channel::Can)
        );
        assert_eq!(t.vehicle_id().as_str(), "TRK-001");
        let t = parse("a/b", "a/b/acme/TRK-001/telemetry").unwrap();
        assert_eq!(t.channel, Channel::Telemetry);
    }

    #[test]
    fn built_topics_parse_back() {
        let fleet = FleetId::new("acme").unwrap();
        let vehicle = VehicleId::new("TRK-001").unwrap();
        for (prefix, channel, expected) in [
            ("fleet", Channel::Can, "fleet/acme/TRK-001/can"),
            ("a/b", Channel::Telemetry, "a/b/acme/TRK-001/telemetry"),
        ] {
            let built = data_topic(prefix, &fleet, &vehicle, channel);
            assert_eq!(built, expected);
            let t = parse(prefix, &built).unwrap();
            assert_eq!(
                (t.fleet_id(), t.vehicle_id(), t.channel),
                (fleet.clone(), vehicle.clone(), channel)
            );
        }
    }

    #[test]
    fn the_alerts_topic_is_not_a_data_topic() {
        let topic = alerts_topic("fleet", &FleetId::new("acme").unwrap());
        assert_eq!(topic, "fleet/acme/alerts");
        assert_eq!(parse("fleet", &topic), Err(TopicError::WrongShape));
    }

    #[test]
    fn refuses_other_topics() {
        assert!(matches!(
            parse("fleet", "fleetx/acme/T/can"),
            Err(TopicError::WrongPrefix { .. })
        ));
        assert_eq!(
            parse("fleet", "fleet/acme/can"),
            Err(TopicError::WrongShape)
        );
        assert_eq!(
            parse("fleet", "fleet/acme/T/can/x"),
            Err(TopicError::WrongShape)
        );
        assert!(matches!(
            parse("fleet", "fleet/ac me/T/can"),
            Err(TopicError::BadFleet(_))
        ));
        assert!(matches!(
            parse("fleet", "fleet/acme//can"),
            Err(TopicError::BadVehicle(IdError::Empty))
        ));
        assert_eq!(
            parse("fleet", "fleet/acme/T/alerts"),
            Err(TopicError::UnknownChannel("alerts".into()))
        );
    }
}
