//! `candump -L` lines: `fleetcare_ingest::candump::parse_line`.

use fleetcare_ingest::FrameId;
use fleetcare_ingest::candump::{CandumpError, parse_line};

pub fn check(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    match parse_line(line) {
        Ok(None) => assert!(
            !line.starts_with('('),
            "a line starting with '(' was skipped: {line:?}"
        ),
        Ok(Some(record)) => {
            assert!(line.starts_with('('));
            let frame = record.frame;
            assert!(frame.data.len() <= 8, "{frame:?}");
            assert_eq!(frame.data.as_slice().len(), frame.data.len());
            if let FrameId::Standard(id) = frame.id {
                assert!(id <= 0x7FF, "{frame:?}");
            }
            assert!(
                !record.interface.is_empty() && !record.interface.contains(' '),
                "interface {:?}",
                record.interface
            );
            // Replay and `fleetcare decode` print frames back as candump
            // lines; what they print must read back as the same frame.
            let text = frame.to_candump(record.interface);
            let again = match parse_line(&text) {
                Ok(Some(again)) => again,
                other => panic!("{line:?} re-rendered as {text:?} parses as {other:?}"),
            };
            assert_eq!(again.frame, frame, "{line:?} → {text:?}");
            assert_eq!(again.interface, record.interface, "{line:?} → {text:?}");
            assert_eq!(again.frame.to_candump(again.interface), text);
        }
        Err(error) => {
            assert!(line.starts_with('('), "{line:?}: {error:?}");
            // Listed one by one so that a new variant has to be looked at
            // here; a few are cheap to cross-check against the text.
            match error {
                CandumpError::UnclosedTimestamp => assert!(!line.contains(')'), "{line:?}"),
                CandumpError::CanFd => assert!(line.contains("##"), "{line:?}"),
                CandumpError::RemoteFrame => {
                    assert!(line.contains("#R") || line.contains("#r"), "{line:?}")
                }
                CandumpError::BadTimestamp
                | CandumpError::MissingInterface
                | CandumpError::MissingFrame
                | CandumpError::MissingSeparator
                | CandumpError::BadIdLength
                | CandumpError::BadIdDigit
                | CandumpError::StandardIdTooLarge
                | CandumpError::ExtendedIdTooLarge
                | CandumpError::BadData
                | CandumpError::DataTooLong
                | CandumpError::TrailingText => {}
            }
        }
    }
}
