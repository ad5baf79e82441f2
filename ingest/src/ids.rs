//! The contract's ids, all 1–64 characters of `[A-Za-z0-9_.-]`: fleet and
//! vehicle ids as they appear in MQTT topics and imports (C1), and the
//! catalogue's model, task and part ids (C3), so that a task id cannot be
//! passed where a part id is expected. They live here, at the bottom of
//! the workspace, because every layer above names them (the configuration
//! too).

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
    if s.len() > MAX_ID_LEN {
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

use std::borrow::Borrow;

use serde::Serialize;
use thiserror::Error;

/// Longest id accepted, for fleet and vehicle ids (C1) and catalogue ids.
pub const MAX_ID_LEN: usize = 64;

/// An id that is not 1–64 characters of `[A-Za-z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{what} id \"{id}\" must be 1 to 64 characters of letters, digits, '_', '.' and '-'")]
pub struct InvalidId {
    pub what: &'static str,
    pub id: String,
}

// Ids end up in CSV files, URLs and ticket keys (`repair:SPN:FMI`, task ids):
// the same conservative alphabet as fleet and vehicle ids keeps them safe in
// all of those without escaping.
fn is_valid_id(id: &str) -> bool {
    check(id).is_ok()
}

macro_rules! catalog_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// What this id names, for messages.
            pub const WHAT: &'static str = $what;

            pub fn new(id: impl Into<String>) -> Result<Self, InvalidId> {
                let id = id.into();
                if is_valid_id(&id) {
                    Ok(Self(id))
                } else {
                    Err(InvalidId { what: $what, id })
                }
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

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

catalog_id!(
    /// A truck model, e.g. `compactor-c12`; vehicles refer to it (C4).
    ModelId,
    "model"
);
catalog_id!(
    /// A maintenance task, unique within its model, e.g. `engine-oil`.
    TaskId,
    "task"
);
catalog_id!(
    /// A spare part, e.g. `FLT-OIL-01`.
    PartId,
    "part"
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

    #[test]
    fn accepts_the_id_alphabet() {
        assert!(ModelId::new("compactor-c12").is_ok());
        assert!(PartId::new("OIL-15W40-L").is_ok());
        assert!(TaskId::new("a.b_c-1").is_ok());
        assert!(TaskId::new("x".repeat(64)).is_ok());
    }

    #[test]
    fn refuses_anything_else() {
        for bad in ["", "engine oil", "öl", "a/b", "a:b"] {
            assert_eq!(
                TaskId::new(bad),
                Err(InvalidId {
                    what: "task",
                    id: bad.to_owned()
                })
            );
        }
        assert!(ModelId::new("x".repeat(65)).is_err());
    }

    #[test]
    fn borrows_as_str_for_lookups() {
        let mut map = std::collections::BTreeMap::new();
        map.insert(PartId::new("FLT-OIL-01").unwrap(), 1);
        assert_eq!(map.get("FLT-OIL-01"), Some(&1));
    }
}
