//! Fleet and vehicle ids as they appear in MQTT topics and imports:
//! 1–64 characters of `[A-Za-z0-9_.-]` (contract C1).

use std::fmt;

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is empty")]
    Empty,
    #[error("is {0} characters long; at most 64 are allowed")]
    TooLong(usize),
    #[error("contains {0:?}; only letters, digits, '_', '.' and '-' are allowed")]
    BadChar(char),
}

/// Checks `s` against the id alphabet and length.
pub fn check(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(IdError::BadChar(c));
    }
    if s.len() > 64 {
        return Err(IdError::TooLong(s.len()));
    }
    Ok(())
}

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Box<str>);

        impl $name {
            pub fn new(s: &str) -> Result<Self, IdError> {
                check(s)?;
                Ok(Self(s.into()))
            }

            /// For strings already checked with [`check`].
            pub(crate) fn from_checked(s: &str) -> Self {
                Self(s.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_id!(
    /// A customer fleet (a sanitation company or one of its depots' fleets).
    FleetId
);
name_id!(
    /// A truck, as named by its gateway and in the fleet registry.
    VehicleId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        assert_eq!(
            VehicleId::new("TRK-001_a.b").unwrap().as_str(),
            "TRK-001_a.b"
        );
        assert!(FleetId::new(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn refuses_with_a_reason() {
        assert_eq!(FleetId::new(""), Err(IdError::Empty));
        assert_eq!(FleetId::new(&"a".repeat(65)), Err(IdError::TooLong(65)));
        assert_eq!(VehicleId::new("TRK 1"), Err(IdError::BadChar(' ')));
        assert_eq!(VehicleId::new("a/b"), Err(IdError::BadChar('/')));
        assert_eq!(VehicleId::new("车1"), Err(IdError::BadChar('车')));
        assert_eq!(VehicleId::new("+"), Err(IdError::BadChar('+')));
    }
}
