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
        let up = u8::from(self.mqtt_connected.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP fleetcare_mqtt_connected Whether the MQTT source is connected.\n# TYPE fleetcare_mqtt_connected gauge\nfleetcare_mqtt_connected {up}"
        );
        out
    }
}
