//! Typed identifiers of catalogue entries, so that a task id cannot be
//! passed where a part id is expected.

use std::borrow::Borrow;
use std::fmt;

use serde::Serialize;
use thiserror::Error;

/// Longest id accepted, the same bound as fleet and vehicle ids (C1).
pub const MAX_ID_LEN: usize = 64;

/// An id that is not 1–64 characters of `[A-Za-z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{what} id \"{id}\" must be 1 to 64 characters of letters, digits, '_', '.' and '-'")]
pub struct InvalidId {
    pub what: &'static str,
    pub id: String,
}

// Ids end up in CSV files, URLs and ticket keys (`repair:SPN:FMI`, task ids):
// a conservative alphabet keeps them safe in all of those without escaping.
fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
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
