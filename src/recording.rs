//! Recordings (contract C2): JSON Lines, one MQTT message a line, read by
//! `fleetcare replay` and published by `fleetcare simulate --mqtt`.

use std::borrow::Cow;

use serde::Deserialize;

/// The longest recording line: one MQTT message, at most the payload limit
/// escaped as JSON.
pub const MAX_LINE: usize = 4 << 20;

/// One line of a recording.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingLine<'a> {
    #[serde(borrow)]
    pub topic: Cow<'a, str>,
    #[serde(borrow)]
    pub payload: Cow<'a, str>,
}
