//! Why a poll fails, and what that means for the connection: the IO loop
//! drops the link after a timeout or a link error, and keeps it after an
//! exception response or an answer that does not fit the map.

use std::io;
use std::time::Duration;

use fleetcare_ingest::modbus::{DecodeError, RegisterKind};
use tokio_modbus::ExceptionCode;

/// Why one poll of one device failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("no connection within {0:?}")]
    ConnectTimeout(Duration),
    #[error("{kind} registers {start}+{count}: no answer within {timeout:?}")]
    Timeout {
        kind: RegisterKind,
        start: u16,
        count: u16,
        timeout: Duration,
    },
    #[error("{kind} registers {start}+{count}: exception {:#04x} ({exception})", u8::from(*exception))]
    Exception {
        kind: RegisterKind,
        start: u16,
        count: u16,
        exception: ExceptionCode,
    },
    #[error("{kind} registers {start}+{count}: {source}")]
    Link {
        kind: RegisterKind,
        start: u16,
        count: u16,
        source: tokio_modbus::Error,
    },
    #[error("{kind} registers {start}+{count}: {source}")]
    Decode {
        kind: RegisterKind,
        start: u16,
        count: u16,
        source: DecodeError,
    },
}

impl PollError {
    /// Whether the connection must be dropped: after a timeout the reply
    /// may still arrive and would be taken for the next request's, and a
    /// link error leaves the stream in an unknown place. An exception or an
    /// undecodable but well-framed answer leaves it usable.
    pub fn drops_connection(&self) -> bool {
        !matches!(self, Self::Exception { .. } | Self::Decode { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_link_failures_drop_the_connection() {
        let (kind, start, count) = (RegisterKind::Input, 0, 2);
        let exception = PollError::Exception {
            kind,
            start,
            count,
            exception: ExceptionCode::IllegalDataAddress,
        };
        assert!(!exception.drops_connection());
        assert_eq!(
            exception.to_string(),
            "input registers 0+2: exception 0x02 (Illegal data address)"
        );
        let timeout = PollError::Timeout {
            kind,
            start,
            count,
            timeout: Duration::from_secs(2),
        };
        assert!(timeout.drops_connection());
        assert!(PollError::ConnectTimeout(Duration::from_secs(2)).drops_connection());
        let decode = PollError::Decode {
            kind,
            start,
            count,
            source: DecodeError::ResponseLength {
                expected: 2,
                got: 1,
            },
        };
        assert!(!decode.drops_connection());
    }
}
