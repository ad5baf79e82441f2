//! When to send, when to spool and when to try again: the sink's state
//! machine, sans IO. The shell feeds it lines and the outcome of each
//! write, and does what it returns; time is passed in.
//!
//! ```text
//!            lines ──▶ pending (memory) ──batch full or flush interval──┐
//!                                                                      ▼
//!   server up, spool empty:  Send(pending) ── failed ──▶ spool it, back off
//!   spool not empty:         SendSpooled (oldest first) once the back-off ends;
//!                            pending that is ready goes to the spool behind it
//!   a write in flight:       pending grows up to a limit, then goes to the spool
//! ```
//!
//! So batches reach the server in the order they were made, memory stays
//! bounded, and nothing waits on the network but the write in flight.

use std::time::{Duration, Instant};

use crate::runtime::Backoff;

/// Sizes and times of the state machine.
#[derive(Debug, Clone, Copy)]
pub struct BatcherConfig {
    /// A batch is sent once it holds this many lines…
    pub batch_lines: usize,
    /// …or once its oldest line waited this long.
    pub flush_interval: Duration,
    /// The waits after failed writes.
    pub retry: Backoff,
    /// Lines held in memory while a write is in flight before they go to
    /// the spool.
    pub max_pending_lines: usize,
}

/// What the shell should do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Write these lines to the server, then call [`Batcher::written`].
    Send(Vec<u8>, usize),
    /// Write the oldest spool segment, then call [`Batcher::written`].
    SendSpooled,
    /// Append these lines to the spool.
    Spool(Vec<u8>, usize),
}

/// How a write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server took the batch.
    Written,
    /// The server refused the batch itself (malformed): it is set aside,
    /// not sent again.
    Rejected,
    /// Not written (no connection, timeout, server error): send it again
    /// after the back-off.
    Failed,
}

/// What is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flight {
    Memory,
    Spooled,
}

/// The state machine; see the module documentation.
#[derive(Debug)]
pub struct Batcher {
    config: BatcherConfig,
    pending: Vec<u8>,
    pending_lines: usize,
    pending_since: Option<Instant>,
    flight: Option<Flight>,
    /// Set while the server is failing: no write before then.
    retry_at: Option<Instant>,
    /// Writes failed in a row.
    failures: u32,
}

impl Batcher {
    pub fn new(config: BatcherConfig) -> Self {
        Self {
            config,
            pending: Vec::new(),
            pending_lines: 0,
            pending_since: None,
            flight: None,
            retry_at: None,
            failures: 0,
        }
    }

    /// Adds lines made at `now`.
    pub fn push(&mut self, lines: &[u8], count: usize, now: Instant) {
        if count == 0 {
            return;
        }
        self.pending.extend_from_slice(lines);
        self.pending_lines += count;
        self.pending_since.get_or_insert(now);
    }

    pub fn in_flight(&self) -> Option<Flight> {
        self.flight
    }

    /// Whether writes are failing (the shell reports it as a gauge).
    pub fn server_failing(&self) -> bool {
        self.retry_at.is_some()
    }

    fn ready(&self, now: Instant) -> bool {
        self.pending_lines >= self.config.batch_lines
            || self
                .pending_since
                .is_some_and(|t| now.duration_since(t) >= self.config.flush_interval)
    }

    fn take(&mut self) -> (Vec<u8>, usize) {
        self.pending_since = None;
        let n = std::mem::take(&mut self.pending_lines);
        (std::mem::take(&mut self.pending), n)
    }

    /// The next thing to do at `now`, if any; call until `None`.
    pub fn poll(&mut self, now: Instant, spool_empty: bool) -> Option<Action> {
        if self.flight.is_some() {
            if self.pending_lines > self.config.max_pending_lines {
                let (b, n) = self.take();
                return Some(Action::Spool(b, n));
            }
            return None;
        }
        let may_write = self.retry_at.is_none_or(|t| now >= t);
        if may_write && !spool_empty {
            self.flight = Some(Flight::Spooled);
            return Some(Action::SendSpooled);
        }
        if !self.ready(now) {
            return None;
        }
        let (b, n) = self.take();
        if may_write && spool_empty {
            self.flight = Some(Flight::Memory);
            Some(Action::Send(b, n))
        } else {
            // Behind what is spooled, or the server is failing.
            Some(Action::Spool(b, n))
        }
    }

    /// The write in flight ended. A memory batch that failed is the
    /// shell's to spool; a spooled one stays in the spool.
    pub fn written(&mut self, outcome: Outcome, now: Instant) {
        self.flight = None;
        match outcome {
            Outcome::Written | Outcome::Rejected => {
                self.retry_at = None;
                self.failures = 0;
            }
            Outcome::Failed => {
                self.failures = self.failures.saturating_add(1);
                self.retry_at = Some(now + self.config.retry.delay(self.failures));
            }
        }
    }

    /// When [`Batcher::poll`] may have something to do next without new
    /// input: the flush of pending lines or the end of the back-off.
    pub fn deadline(&self, spool_empty: bool) -> Option<Instant> {
        if self.flight.is_some() {
            return None;
        }
        let flush = self.pending_since.map(|t| t + self.config.flush_interval);
        let retry = if spool_empty { None } else { self.retry_at };
        match (flush, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// At shutdown: what is still pending, to be sent if the server is
    /// answering and nothing is spooled, else spooled.
    pub fn finish(&mut self, spool_empty: bool) -> Option<Action> {
        if self.pending_lines == 0 {
            return None;
        }
        let (b, n) = self.take();
        if self.retry_at.is_none() && spool_empty && self.flight.is_none() {
            self.flight = Some(Flight::Memory);
            Some(Action::Send(b, n))
        } else {
            Some(Action::Spool(b, n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batcher() -> Batcher {
        Batcher::new(BatcherConfig {
            batch_lines: 3,
            flush_interval: Duration::from_secs(1),
            retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(4)),
            max_pending_lines: 5,
        })
    }

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn a_full_batch_goes_at_once_a_partial_one_after_the_interval() {
        let t0 = Instant::now();
        let mut b = batcher();
        b.push(b"a\nb\n", 2, t0);
        assert_eq!(b.poll(t0, true), None);
        assert_eq!(b.deadline(true), Some(secs(t0, 1)));
        b.push(b"c\n", 1, t0);
        assert_eq!(
            b.poll(t0, true),
            Some(Action::Send(b"a\nb\nc\n".to_vec(), 3))
        );
        assert_eq!(b.poll(t0, true), None, "one write at a time");
        b.written(Outcome::Written, t0);
        b.push(b"d\n", 1, secs(t0, 1));
        assert_eq!(b.poll(secs(t0, 1), true), None);
        assert_eq!(
            b.poll(secs(t0, 2), true),
            Some(Action::Send(b"d\n".to_vec(), 1))
        );
    }

    #[test]
    fn failures_spool_and_back_off_then_the_spool_drains_first() {
        let t0 = Instant::now();
        let mut b = batcher();
        b.push(b"1\n2\n3\n", 3, t0);
        assert!(matches!(b.poll(t0, true), Some(Action::Send(_, 3))));
        b.written(Outcome::Failed, t0); // the shell spools the batch
        assert!(b.server_failing());
        // While backing off, ready batches go to the spool.
        b.push(b"4\n5\n6\n", 3, t0);
        assert_eq!(
            b.poll(t0, false),
            Some(Action::Spool(b"4\n5\n6\n".to_vec(), 3))
        );
        assert_eq!(b.deadline(false), Some(secs(t0, 1)));
        assert_eq!(b.poll(secs(t0, 1), false), Some(Action::SendSpooled));
        b.written(Outcome::Failed, secs(t0, 1));
        // 1 s, then 2 s, 4 s, 4 s.
        assert_eq!(b.deadline(false), Some(secs(t0, 3)));
        assert_eq!(b.poll(secs(t0, 2), false), None);
        assert_eq!(b.poll(secs(t0, 3), false), Some(Action::SendSpooled));
        b.written(Outcome::Failed, secs(t0, 3));
        assert_eq!(b.deadline(false), Some(secs(t0, 7)));
        assert_eq!(b.poll(secs(t0, 7), false), Some(Action::SendSpooled));
        b.written(Outcome::Failed, secs(t0, 7));
        assert_eq!(b.deadline(false), Some(secs(t0, 11)));
        // The server is back: the spool drains before memory is sent.
        assert_eq!(b.poll(secs(t0, 11), false), Some(Action::SendSpooled));
        b.written(Outcome::Written, secs(t0, 11));
        assert!(!b.server_failing());
        b.push(b"7\n8\n9\n", 3, secs(t0, 11));
        assert_eq!(b.poll(secs(t0, 11), false), Some(Action::SendSpooled));
        b.written(Outcome::Written, secs(t0, 11));
        assert_eq!(
            b.poll(secs(t0, 11), true),
            Some(Action::Send(b"7\n8\n9\n".to_vec(), 3))
        );
        b.written(Outcome::Failed, secs(t0, 11));
        // The back-off starts again from the first delay.
        assert_eq!(b.deadline(false), Some(secs(t0, 12)));
    }

    #[test]
    fn memory_is_bounded_while_a_write_is_in_flight() {
        let t0 = Instant::now();
        let mut b = batcher();
        b.push(b"1\n2\n3\n", 3, t0);
        assert!(matches!(b.poll(t0, true), Some(Action::Send(..))));
        b.push(b"4\n5\n6\n", 3, t0);
        assert_eq!(b.poll(t0, true), None);
        b.push(b"7\n8\n9\n", 3, t0);
        assert_eq!(
            b.poll(t0, true),
            Some(Action::Spool(b"4\n5\n6\n7\n8\n9\n".to_vec(), 6))
        );
        assert_eq!(b.in_flight(), Some(Flight::Memory));
    }

    #[test]
    fn a_rejected_batch_does_not_stop_the_rest() {
        let t0 = Instant::now();
        let mut b = batcher();
        b.push(b"bad\n", 1, t0);
        assert!(matches!(b.poll(secs(t0, 1), true), Some(Action::Send(..))));
        b.written(Outcome::Rejected, secs(t0, 1));
        assert!(!b.server_failing());
        b.push(b"1\n2\n3\n", 3, secs(t0, 1));
        assert!(matches!(
            b.poll(secs(t0, 1), true),
            Some(Action::Send(_, 3))
        ));
    }

    #[test]
    fn at_shutdown_pending_lines_are_sent_or_spooled() {
        let t0 = Instant::now();
        let mut b = batcher();
        assert_eq!(b.finish(true), None);
        b.push(b"1\n", 1, t0);
        assert_eq!(b.finish(true), Some(Action::Send(b"1\n".to_vec(), 1)));
        b.written(Outcome::Failed, t0);
        b.push(b"2\n", 1, t0);
        assert_eq!(b.finish(false), Some(Action::Spool(b"2\n".to_vec(), 1)));
    }
}
