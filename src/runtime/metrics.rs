//! Counts of the live path that a user would graph, shared by the sources
//! and the writer. Plain atomics: read by `/metrics` and the health page.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Live counters since the process started.
#[derive(Debug, Default)]
pub struct LiveMetrics {
    /// Messages handed to the writer by any source.
    pub received: AtomicU64,
    /// Messages logged and synced for the first time.
    pub stored: AtomicU64,
    /// Messages already stored before (redelivery, replay).
    pub duplicates: AtomicU64,
    /// Dead-letter records the pipeline produced.
    pub dead_letters: AtomicU64,
    /// Store syncs (one per batch).
    pub batches: AtomicU64,
    /// Whether the MQTT source holds a broker connection now.
    pub mqtt_connected: AtomicBool,
    /// Successful MQTT connections (the first one and every reconnect).
    pub mqtt_connections: AtomicU64,
    /// Subscriptions the broker confirmed (one per connection).
    pub mqtt_subscriptions: AtomicU64,
    /// MQTT connection losses and failed connection attempts.
    pub mqtt_connection_errors: AtomicU64,
    /// Tickets opened by alerts (real-time and periodic).
    pub tickets_opened: AtomicU64,
    /// Alerts delivered (logged, published, sent to webhooks).
    pub alerts_sent: AtomicU64,
    /// Modbus polls that returned every register.
    pub modbus_polls_ok: AtomicU64,
    /// Modbus polls that failed (timeout, exception, refused connection).
    pub modbus_polls_failed: AtomicU64,
    /// Lines the InfluxDB server took.
    pub influx_lines_written: AtomicU64,
    /// Lines put in the InfluxDB spool (server down, or ticket history).
    pub influx_lines_spooled: AtomicU64,
    /// InfluxDB writes that failed and are tried again.
    pub influx_write_failures: AtomicU64,
    /// Lines in batches InfluxDB refused as malformed (kept in rejected.lp).
    pub influx_lines_rejected: AtomicU64,
    /// Lines lost: the spool was full (oldest dropped) or could not be written.
    pub influx_lines_dropped: AtomicU64,
    /// Bytes in the InfluxDB spool now (a gauge).
    pub influx_buffered_bytes: AtomicU64,
    /// Whether InfluxDB writes are failing now.
    pub influx_failing: AtomicBool,
}

impl LiveMetrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters in the Prometheus text format.
    pub fn render_prometheus(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            "fleetcare_messages_received_total",
            "Messages received from live sources.",
            get(&self.received),
        );
        counter(
            "fleetcare_messages_stored_total",
            "Messages stored durably for the first time.",
            get(&self.stored),
        );
        counter(
            "fleetcare_messages_duplicate_total",
            "Messages that were already stored.",
            get(&self.duplicates),
        );
        counter(
            "fleetcare_dead_letters_total",
            "Rejected messages and lines.",
            get(&self.dead_letters),
        );
        counter(
            "fleetcare_store_batches_total",
            "Write-ahead log syncs.",
            get(&self.batches),
        );
        counter(
            "fleetcare_mqtt_connections_total",
            "Successful MQTT connections.",
            get(&self.mqtt_connections),
        );
        counter(
            "fleetcare_mqtt_connection_errors_total",
            "MQTT connection losses and failed attempts.",
            get(&self.mqtt_connection_errors),
        );
        counter(
            "fleetcare_modbus_polls_ok_total",
            "Modbus polls that read every register.",
            get(&self.modbus_polls_ok),
        );
        counter(
            "fleetcare_modbus_polls_failed_total",
            "Modbus polls that failed.",
            get(&self.modbus_polls_failed),
        );
        counter(
            "fleetcare_tickets_opened_total",
            "Tickets opened by alerts.",
            get(&self.tickets_opened),
        );
        counter(
            "fleetcare_alerts_sent_total",
            "Alerts delivered.",
            get(&self.alerts_sent),
        );
        counter(
            "fleetcare_influx_lines_written_total",
            "Lines InfluxDB took.",
            get(&self.influx_lines_written),
        );
        counter(
            "fleetcare_influx_lines_spooled_total",
            "Lines put in the InfluxDB spool on disk.",
            get(&self.influx_lines_spooled),
        );
        counter(
            "fleetcare_influx_write_failures_total",
            "InfluxDB writes that failed and are retried.",
            get(&self.influx_write_failures),
        );
        counter(
            "fleetcare_influx_lines_rejected_total",
            "Lines in batches InfluxDB refused as malformed.",
            get(&self.influx_lines_rejected),
        );
        counter(
            "fleetcare_influx_lines_dropped_total",
            "Lines lost because the InfluxDB spool was full or unwritable.",
            get(&self.influx_lines_dropped),
        );
        let mut gauge = |name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            "fleetcare_mqtt_connected",
            "Whether the MQTT source is connected.",
            u64::from(self.mqtt_connected.load(Ordering::Relaxed)),
        );
        gauge(
            "fleetcare_influx_buffered_bytes",
            "Bytes in the InfluxDB spool.",
            get(&self.influx_buffered_bytes),
        );
        gauge(
            "fleetcare_influx_failing",
            "Whether InfluxDB writes are failing now.",
            u64::from(self.influx_failing.load(Ordering::Relaxed)),
        );
        out
    }
}
