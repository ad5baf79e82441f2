//! CPU time of this process, by thread name, from Linux's `/proc`.
//!
//! Why the benchmark reports it: on 2 cores the publisher, the broker and
//! the subscriber share the CPU, so messages/s alone cannot tell a slow
//! subscriber from a busy machine. The CPU seconds each part used for the
//! run can.
//!
//! Elsewhere than Linux the readings are empty and nothing is printed.

use std::collections::BTreeMap;

/// Clock ticks per second of `/proc`'s `utime` and `stime`: `USER_HZ`,
/// which is 100 on every Linux architecture Rust builds for.
const TICKS: f64 = 100.0;

/// User and system ticks from a `stat` line: fields 14 and 15, counted
/// after the command name, which is in parentheses and may hold spaces.
fn ticks(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// What the process and each of its live threads had used at one moment.
#[derive(Debug, Default)]
pub(crate) struct CpuReading {
    /// All threads, including those that have ended.
    process: u64,
    /// Live threads, summed by name.
    threads: BTreeMap<String, u64>,
}

impl CpuReading {
    pub(crate) fn now() -> Self {
        let process = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| ticks(&s))
            .unwrap_or(0);
        let mut threads = BTreeMap::new();
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let path = task.path();
                let name = std::fs::read_to_string(path.join("comm"));
                let stat = std::fs::read_to_string(path.join("stat"));
                if let (Ok(name), Some(t)) = (name, stat.ok().and_then(|s| ticks(&s))) {
                    *threads.entry(name.trim().to_owned()).or_default() += t;
                }
            }
        }
        Self { process, threads }
    }

    /// `3.59 s in all; fleetcare-write 1.97 s, router-0 0.85 s, …`:
    /// what was used since `start`, busiest thread first. `None` where
    /// `/proc` could not be read.
    pub(crate) fn since(&self, start: &CpuReading) -> Option<String> {
        if self.process == 0 {
            return None;
        }
        let mut used: Vec<(&str, u64)> = self
            .threads
            .iter()
            .map(|(name, &t)| {
                let before = start.threads.get(name).copied().unwrap_or(0);
                (name.as_str(), t.saturating_sub(before))
            })
            .filter(|&(_, t)| t > 0)
            .collect();
        used.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let threads: Vec<String> = used
            .iter()
            .map(|(name, t)| format!("{name} {:.2} s", *t as f64 / TICKS))
            .collect();
        Some(format!(
            "{:.2} s in all; {}",
            self.process.saturating_sub(start.process) as f64 / TICKS,
            threads.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_read_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (tokio rt (x)) S 1 2 3 4 5 6 7 8 9 10 120 35 0 0 20 0";
        assert_eq!(ticks(stat), Some(155));
        assert_eq!(ticks("4242 (short"), None);
    }

    #[test]
    fn usage_is_the_difference_busiest_first() {
        let start = CpuReading {
            process: 100,
            threads: [("writer".to_owned(), 10), ("router".to_owned(), 50)].into(),
        };
        let end = CpuReading {
            process: 459,
            threads: [
                ("writer".to_owned(), 207),
                ("router".to_owned(), 135),
                ("idle".to_owned(), 0),
            ]
            .into(),
        };
        assert_eq!(
            end.since(&start).as_deref(),
            Some("3.59 s in all; writer 1.97 s, router 0.85 s")
        );
    }
}
