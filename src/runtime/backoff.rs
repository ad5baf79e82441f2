//! The one back-off every retry loop uses (MQTT and Modbus reconnects, the
//! alert publisher, webhooks, InfluxDB writes, the simulator's publisher):
//! the wait doubles from `first` after each consecutive failure, up to
//! `max`. Plain arithmetic, no clock: the callers sleep.

use std::time::Duration;

/// Doubling waits from `first`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// No wait is longer than this.
    pub max: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self { first, max }
    }

    /// The wait after `failures` consecutive failures (1 = the first one):
    /// `first × 2^(failures − 1)`, at most `max`. Zero failures wait
    /// `first` too, so a caller that counts from 0 never gets no wait.
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first
            .checked_mul(1 << doublings)
            .map_or(self.max, |d| d.min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let waits: Vec<u64> = (1..=7).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.delay(0), Duration::from_secs(1));
    }

    #[test]
    fn never_overflows() {
        let b = Backoff::new(Duration::from_secs(u64::MAX / 2), Duration::from_secs(60));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
        let b = Backoff::new(Duration::from_millis(100), Duration::MAX);
        assert_eq!(b.delay(u32::MAX), Duration::from_millis(100) * (1 << 31));
    }
}
