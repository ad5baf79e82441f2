//! Recordings (contract C2): JSON Lines, one MQTT message a line, read by
//! `fleetcare replay` and published by `fleetcare simulate --mqtt`.

use std::borrow::Cow;

use serde::Deserialize;

use crate::lines::Line;

/// The longest recording line: one MQTT message, at most the payload limit
/// escaped as JSON.
pub const MAX_LINE: usize = 4 << 20;

/// A line of a recording file: `None` for a blank line, else the message
/// or why the line is not one.
pub fn parse(line: Line<'_>) -> Option<Result<RecordingLine<'_>, String>> {
    match line {
        Line::Text(t) if t.trim().is_empty() => None,
        Line::Text(t) => Some(serde_json::from_str(t).map_err(|e| e.to_string())),
        Line::TooLong => Some(Err(format!("longer than {MAX_LINE} bytes"))),
        Line::NotText => Some(Err("not UTF-8 text".to_owned())),
    }
}

/// One line of a recording.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingLine<'a> {
    #[serde(borrow)]
    pub topic: Cow<'a, str>,
    #[serde(borrow)]
    pub payload: Cow<'a, str>,
}
