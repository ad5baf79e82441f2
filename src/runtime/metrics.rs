//! What a user graphs about the live path, shared by the sources, the
//! writer, the alerts and the InfluxDB sink; `/metrics` renders it and the
//! health page reads it.
//!
//! The handles are prometheus-client's (`Counter`, `Gauge`, `Family`),
//! registered in a [`Registry`] of this value's own rather than a global
//! one: the end-to-end tests run several services in one process. Labels
//! are only where users slice, and their values are bounded: dead-letter
//! reasons (an enum of the pipeline), configured Modbus devices, ticket
//! kinds and priorities, why a ticket was not raised. Never a vehicle or
//! ticket id.

use fleetcare_ingest::pipeline::DeadLetterReason;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`LiveMetrics::render`]: the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DeadLetterLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefusedLabels {
    /// One of the embedded broker edge's fixed refusal reasons.
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PollLabels {
    /// The configured `host:port`.
    device: String,
    /// `ok` or `failed`.
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TicketLabels {
    kind: &'static str,
    priority: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SkipLabels {
    reason: &'static str,
}

/// Why a ticket an alert asked for was not raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketSkip {
    /// The vehicle is not in the fleet registry.
    UnregisteredVehicle,
    /// Its message had raised `alerts.max_tickets_per_message` already.
    MessageLimit,
}

impl TicketSkip {
    pub const ALL: [Self; 2] = [Self::UnregisteredVehicle, Self::MessageLimit];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnregisteredVehicle => "unregistered_vehicle",
            Self::MessageLimit => "message_limit",
        }
    }
}

// `LiveMetrics::count_dead_letters` indexes by `reason as usize`: this
// holds `DeadLetterReason::ALL` to the declaration order, at compile time.
const _: () = {
    let mut i = 0;
    while i < DeadLetterReason::ALL.len() {
        assert!(DeadLetterReason::ALL[i] as usize == i);
        i += 1;
    }
};

// The same for `TicketSkip::ALL` and `LiveMetrics::tickets_skipped`.
const _: () = {
    let mut i = 0;
    while i < TicketSkip::ALL.len() {
        assert!(TicketSkip::ALL[i] as usize == i);
        i += 1;
    }
};

/// Live counts since the process started.
#[derive(Debug)]
pub struct LiveMetrics {
    registry: Registry,
    /// Messages handed to the writer by any source.
    pub received: Counter,
    /// Messages logged and synced for the first time.
    pub stored: Counter,
    /// Messages already stored before (redelivery, replay).
    pub duplicates: Counter,
    /// Dead-letter records the pipeline produced, one handle per reason in
    /// `DeadLetterReason::ALL` order (each a series of one family).
    dead_letters: [Counter; DeadLetterReason::ALL.len()],
    /// Store syncs (one per batch).
    pub batches: Counter,
    /// 1 while the MQTT source holds a broker connection, else 0.
    pub mqtt_connected: Gauge,
    /// Successful MQTT connections (the first one and every reconnect).
    pub mqtt_connections: Counter,
    /// Subscriptions the broker confirmed (one per connection).
    pub mqtt_subscriptions: Counter,
    /// MQTT connection losses and failed connection attempts.
    pub mqtt_connection_errors: Counter,
    /// Clients connected to the embedded broker now.
    pub mqtt_clients: Gauge,
    /// What the embedded broker refused its clients, by reason.
    mqtt_refused: Family<RefusedLabels, Counter>,
    /// Modbus polls by device and result.
    modbus_polls: Family<PollLabels, Counter>,
    /// Tickets opened by alerts (real-time and periodic), by kind and priority.
    tickets_opened: Family<TicketLabels, Counter>,
    /// Tickets asked for but not raised, one handle per reason in
    /// `TicketSkip::ALL` order.
    tickets_skipped: [Counter; TicketSkip::ALL.len()],
    /// Alerts delivered (logged, published, sent to webhooks).
    pub alerts_sent: Counter,
    /// Webhook deliveries given up: redirected, refused, or failing every
    /// attempt.
    pub webhook_failures: Counter,
    /// Lines the InfluxDB server took.
    pub influx_lines_written: Counter,
    /// Lines put in the InfluxDB spool (server down, or ticket history).
    pub influx_lines_spooled: Counter,
    /// InfluxDB writes that failed and are tried again.
    pub influx_write_failures: Counter,
    /// Lines in batches InfluxDB refused as malformed (kept in rejected.lp).
    pub influx_lines_rejected: Counter,
    /// Lines lost: the spool was full (oldest dropped) or could not be written.
    pub influx_lines_dropped: Counter,
    /// Bytes in the InfluxDB spool now.
    pub influx_buffered_bytes: Gauge<u64, std::sync::atomic::AtomicU64>,
    /// 1 while InfluxDB writes are failing, else 0.
    pub influx_failing: Gauge,
}

/// The poll counters of one Modbus device, looked up once by its poller.
#[derive(Debug, Clone)]
pub struct ModbusPolls {
    /// Polls that read every register.
    pub ok: Counter,
    /// Polls that failed (timeout, exception, refused connection).
    pub failed: Counter,
}

impl Default for LiveMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveMetrics {
    /// Every metric at zero, registered with its help text. Counters are
    /// registered without `_total`: the encoder adds it.
    pub fn new() -> Self {
        let mut r = Registry::default();
        let counter = |r: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            r.register(name, help, c.clone());
            c
        };
        let received = counter(
            &mut r,
            "fleetcare_messages_received",
            "Messages received from live sources",
        );
        let stored = counter(
            &mut r,
            "fleetcare_messages_stored",
            "Messages stored durably for the first time",
        );
        let duplicates = counter(
            &mut r,
            "fleetcare_messages_duplicate",
            "Messages that were already stored",
        );
        let dead_letter_family = Family::<DeadLetterLabels, Counter>::default();
        r.register(
            "fleetcare_dead_letters",
            "Rejected messages and lines, by reason",
            dead_letter_family.clone(),
        );
        // Every reason from the start, at 0: a rate over a series that
        // appears only with its first dead letter misses that one.
        let dead_letters = DeadLetterReason::ALL.map(|reason| {
            dead_letter_family.get_or_create_owned(&DeadLetterLabels {
                reason: reason.as_str(),
            })
        });
        let batches = counter(&mut r, "fleetcare_store_batches", "Write-ahead log syncs");
        let mqtt_connected = Gauge::default();
        r.register(
            "fleetcare_mqtt_connected",
            "Whether the MQTT source is connected",
            mqtt_connected.clone(),
        );
        let mqtt_connections = counter(
            &mut r,
            "fleetcare_mqtt_connections",
            "Successful MQTT connections",
        );
        let mqtt_subscriptions = counter(
            &mut r,
            "fleetcare_mqtt_subscriptions",
            "MQTT subscriptions the broker confirmed",
        );
        let mqtt_connection_errors = counter(
            &mut r,
            "fleetcare_mqtt_connection_errors",
            "MQTT connection losses and failed attempts",
        );
        let mqtt_clients = Gauge::default();
        r.register(
            "fleetcare_mqtt_clients",
            "Clients connected to the embedded MQTT broker",
            mqtt_clients.clone(),
        );
        let mqtt_refused = Family::<RefusedLabels, Counter>::default();
        r.register(
            "fleetcare_mqtt_refused",
            "Connections, publishes and subscriptions the embedded MQTT broker refused, by reason",
            mqtt_refused.clone(),
        );
        let modbus_polls = Family::<PollLabels, Counter>::default();
        r.register(
            "fleetcare_modbus_polls",
            "Modbus polls by device and result (ok: every register read)",
            modbus_polls.clone(),
        );
        let tickets_opened = Family::<TicketLabels, Counter>::default();
        r.register(
            "fleetcare_tickets_opened",
            "Tickets opened by alerts",
            tickets_opened.clone(),
        );
        let skipped_family = Family::<SkipLabels, Counter>::default();
        r.register(
            "fleetcare_tickets_skipped",
            "Tickets asked for but not raised, by reason",
            skipped_family.clone(),
        );
        let tickets_skipped = TicketSkip::ALL.map(|reason| {
            skipped_family.get_or_create_owned(&SkipLabels {
                reason: reason.as_str(),
            })
        });
        let alerts_sent = counter(&mut r, "fleetcare_alerts_sent", "Alerts delivered");
        let webhook_failures = counter(
            &mut r,
            "fleetcare_webhook_failures",
            "Webhook deliveries given up (redirected, refused, or failing every attempt)",
        );
        let influx_lines_written = counter(
            &mut r,
            "fleetcare_influx_lines_written",
            "Lines InfluxDB took",
        );
        let influx_lines_spooled = counter(
            &mut r,
            "fleetcare_influx_lines_spooled",
            "Lines put in the InfluxDB spool on disk",
        );
        let influx_write_failures = counter(
            &mut r,
            "fleetcare_influx_write_failures",
            "InfluxDB writes that failed and are retried",
        );
        let influx_lines_rejected = counter(
            &mut r,
            "fleetcare_influx_lines_rejected",
            "Lines in batches InfluxDB refused as malformed",
        );
        let influx_lines_dropped = counter(
            &mut r,
            "fleetcare_influx_lines_dropped",
            "Lines lost because the InfluxDB spool was full or unwritable",
        );
        let influx_buffered_bytes = Gauge::<u64, _>::default();
        r.register_with_unit(
            "fleetcare_influx_buffered",
            "Bytes in the InfluxDB spool",
            Unit::Bytes,
            influx_buffered_bytes.clone(),
        );
        let influx_failing = Gauge::default();
        r.register(
            "fleetcare_influx_failing",
            "Whether InfluxDB writes are failing now",
            influx_failing.clone(),
        );
        Self {
            registry: r,
            received,
            stored,
            duplicates,
            dead_letters,
            batches,
            mqtt_connected,
            mqtt_connections,
            mqtt_subscriptions,
            mqtt_connection_errors,
            mqtt_clients,
            mqtt_refused,
            modbus_polls,
            tickets_opened,
            tickets_skipped,
            alerts_sent,
            webhook_failures,
            influx_lines_written,
            influx_lines_spooled,
            influx_write_failures,
            influx_lines_rejected,
            influx_lines_dropped,
            influx_buffered_bytes,
            influx_failing,
        }
    }

    /// Counts a batch's dead letters, given as (reason, how many): one add
    /// per reason present, not one per letter.
    pub fn count_dead_letters(&self, letters: impl IntoIterator<Item = (DeadLetterReason, u64)>) {
        let mut counts = [0u64; DeadLetterReason::ALL.len()];
        for (reason, k) in letters {
            if let Some(n) = counts.get_mut(reason as usize) {
                *n += k;
            }
        }
        for (counter, n) in self.dead_letters.iter().zip(counts) {
            if n > 0 {
                counter.inc_by(n);
            }
        }
    }

    /// Dead letters of every reason.
    pub fn dead_letters_total(&self) -> u64 {
        self.dead_letters.iter().map(Counter::get).sum()
    }

    /// The counters of the device at `address` (`host:port`, as
    /// configured): both series exist, at 0, from this call on.
    pub fn modbus_polls(&self, address: &str) -> ModbusPolls {
        let series = |result| {
            self.modbus_polls.get_or_create_owned(&PollLabels {
                device: address.to_owned(),
                result,
            })
        };
        ModbusPolls {
            ok: series("ok"),
            failed: series("failed"),
        }
    }

    /// The counter of refusals for `reason` (a name from the embedded
    /// broker's fixed list, never a client id); the series exists, at 0,
    /// from this call on.
    pub fn mqtt_refused(&self, reason: &'static str) -> Counter {
        self.mqtt_refused
            .get_or_create_owned(&RefusedLabels { reason })
    }

    /// Counts a ticket an alert opened. `kind` and `priority` are the
    /// ticket's (`TicketKind::as_str`, `Priority::as_str`): names from a
    /// fixed list, never ids.
    pub fn ticket_opened(&self, kind: &'static str, priority: &'static str) {
        self.tickets_opened
            .get_or_create(&TicketLabels { kind, priority })
            .inc();
    }

    /// Counts `n` tickets that were asked for and not raised.
    pub fn tickets_skipped(&self, reason: TicketSkip, n: u64) {
        if let Some(c) = self.tickets_skipped.get(reason as usize) {
            c.inc_by(n);
        }
    }

    /// Every metric in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail, and every label value here is
        // one the encoder takes.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text's lines, sorted: series of a labelled family come in no
    /// fixed order.
    fn sorted_lines(text: &str) -> Vec<&str> {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        lines
    }

    #[test]
    fn renders_names_labels_values_and_help_in_the_openmetrics_text_format() {
        let m = LiveMetrics::new();
        m.received.inc_by(7);
        m.stored.inc_by(5);
        m.duplicates.inc();
        m.count_dead_letters([
            (DeadLetterReason::Topic, 1),
            (DeadLetterReason::NotUtf8, 1),
            (DeadLetterReason::Topic, 1),
            (DeadLetterReason::Candump, 99_900),
        ]);
        m.batches.inc_by(2);
        m.mqtt_connected.set(1);
        m.mqtt_connections.inc();
        m.mqtt_subscriptions.inc();
        m.mqtt_connection_errors.inc_by(3);
        m.mqtt_clients.set(2);
        m.mqtt_refused("other_fleet").inc();
        m.mqtt_refused("retain");
        let device = m.modbus_polls("10.0.0.7:502");
        device.ok.inc_by(4);
        device.failed.inc_by(2);
        m.modbus_polls("gateway.local:5020");
        m.ticket_opened("fault", "P1");
        m.ticket_opened("maintenance", "P3");
        m.ticket_opened("fault", "P1");
        m.tickets_skipped(TicketSkip::MessageLimit, 4_992);
        m.alerts_sent.inc_by(2);
        m.webhook_failures.inc();
        m.influx_lines_written.inc_by(100);
        m.influx_lines_spooled.inc_by(10);
        m.influx_write_failures.inc();
        m.influx_lines_rejected.inc_by(4);
        m.influx_lines_dropped.inc_by(6);
        m.influx_buffered_bytes.set(8192);
        m.influx_failing.set(1);

        let text = m.render();
        let expected = "\
# HELP fleetcare_messages_received Messages received from live sources.
# TYPE fleetcare_messages_received counter
fleetcare_messages_received_total 7
# HELP fleetcare_messages_stored Messages stored durably for the first time.
# TYPE fleetcare_messages_stored counter
fleetcare_messages_stored_total 5
# HELP fleetcare_messages_duplicate Messages that were already stored.
# TYPE fleetcare_messages_duplicate counter
fleetcare_messages_duplicate_total 1
# HELP fleetcare_dead_letters Rejected messages and lines, by reason.
# TYPE fleetcare_dead_letters counter
fleetcare_dead_letters_total{reason=\"topic\"} 2
fleetcare_dead_letters_total{reason=\"payload_too_large\"} 0
fleetcare_dead_letters_total{reason=\"not_utf8\"} 1
fleetcare_dead_letters_total{reason=\"candump\"} 99900
fleetcare_dead_letters_total{reason=\"telemetry\"} 0
fleetcare_dead_letters_total{reason=\"j1939\"} 0
fleetcare_dead_letters_total{reason=\"transport\"} 0
fleetcare_dead_letters_total{reason=\"too_many_interfaces\"} 0
fleetcare_dead_letters_total{reason=\"meter\"} 0
fleetcare_dead_letters_total{reason=\"too_many_dtcs\"} 0
fleetcare_dead_letters_total{reason=\"implausible_time\"} 0
fleetcare_dead_letters_total{reason=\"too_many_vehicles\"} 0
# HELP fleetcare_store_batches Write-ahead log syncs.
# TYPE fleetcare_store_batches counter
fleetcare_store_batches_total 2
# HELP fleetcare_mqtt_connected Whether the MQTT source is connected.
# TYPE fleetcare_mqtt_connected gauge
fleetcare_mqtt_connected 1
# HELP fleetcare_mqtt_connections Successful MQTT connections.
# TYPE fleetcare_mqtt_connections counter
fleetcare_mqtt_connections_total 1
# HELP fleetcare_mqtt_subscriptions MQTT subscriptions the broker confirmed.
# TYPE fleetcare_mqtt_subscriptions counter
fleetcare_mqtt_subscriptions_total 1
# HELP fleetcare_mqtt_connection_errors MQTT connection losses and failed attempts.
# TYPE fleetcare_mqtt_connection_errors counter
fleetcare_mqtt_connection_errors_total 3
# HELP fleetcare_mqtt_clients Clients connected to the embedded MQTT broker.
# TYPE fleetcare_mqtt_clients gauge
fleetcare_mqtt_clients 2
# HELP fleetcare_mqtt_refused Connections, publishes and subscriptions the embedded MQTT broker refused, by reason.
# TYPE fleetcare_mqtt_refused counter
fleetcare_mqtt_refused_total{reason=\"other_fleet\"} 1
fleetcare_mqtt_refused_total{reason=\"retain\"} 0
# HELP fleetcare_modbus_polls Modbus polls by device and result (ok: every register read).
# TYPE fleetcare_modbus_polls counter
fleetcare_modbus_polls_total{device=\"10.0.0.7:502\",result=\"ok\"} 4
fleetcare_modbus_polls_total{device=\"10.0.0.7:502\",result=\"failed\"} 2
fleetcare_modbus_polls_total{device=\"gateway.local:5020\",result=\"ok\"} 0
fleetcare_modbus_polls_total{device=\"gateway.local:5020\",result=\"failed\"} 0
# HELP fleetcare_tickets_opened Tickets opened by alerts.
# TYPE fleetcare_tickets_opened counter
fleetcare_tickets_opened_total{kind=\"fault\",priority=\"P1\"} 2
fleetcare_tickets_opened_total{kind=\"maintenance\",priority=\"P3\"} 1
# HELP fleetcare_tickets_skipped Tickets asked for but not raised, by reason.
# TYPE fleetcare_tickets_skipped counter
fleetcare_tickets_skipped_total{reason=\"unregistered_vehicle\"} 0
fleetcare_tickets_skipped_total{reason=\"message_limit\"} 4992
# HELP fleetcare_alerts_sent Alerts delivered.
# TYPE fleetcare_alerts_sent counter
fleetcare_alerts_sent_total 2
# HELP fleetcare_webhook_failures Webhook deliveries given up (redirected, refused, or failing every attempt).
# TYPE fleetcare_webhook_failures counter
fleetcare_webhook_failures_total 1
# HELP fleetcare_influx_lines_written Lines InfluxDB took.
# TYPE fleetcare_influx_lines_written counter
fleetcare_influx_lines_written_total 100
# HELP fleetcare_influx_lines_spooled Lines put in the InfluxDB spool on disk.
# TYPE fleetcare_influx_lines_spooled counter
fleetcare_influx_lines_spooled_total 10
# HELP fleetcare_influx_write_failures InfluxDB writes that failed and are retried.
# TYPE fleetcare_influx_write_failures counter
fleetcare_influx_write_failures_total 1
# HELP fleetcare_influx_lines_rejected Lines in batches InfluxDB refused as malformed.
# TYPE fleetcare_influx_lines_rejected counter
fleetcare_influx_lines_rejected_total 4
# HELP fleetcare_influx_lines_dropped Lines lost because the InfluxDB spool was full or unwritable.
# TYPE fleetcare_influx_lines_dropped counter
fleetcare_influx_lines_dropped_total 6
# HELP fleetcare_influx_buffered_bytes Bytes in the InfluxDB spool.
# TYPE fleetcare_influx_buffered_bytes gauge
# UNIT fleetcare_influx_buffered_bytes bytes
fleetcare_influx_buffered_bytes 8192
# HELP fleetcare_influx_failing Whether InfluxDB writes are failing now.
# TYPE fleetcare_influx_failing gauge
fleetcare_influx_failing 1
# EOF
";
        assert_eq!(sorted_lines(&text), sorted_lines(expected), "{text}");
        // The families in registration order, the end marker last.
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        let expected_families: Vec<&str> = expected
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        assert_eq!(families, expected_families);
        assert!(text.ends_with("\n# EOF\n"), "{text}");
        assert_eq!(m.dead_letters_total(), 99_903);
    }

    /// Each value counts on its own: services in one test process do not
    /// see each other's counts.
    #[test]
    fn two_values_keep_their_counts_apart() {
        let (a, b) = (LiveMetrics::new(), LiveMetrics::new());
        a.stored.inc();
        assert!(a.render().contains("\nfleetcare_messages_stored_total 1\n"));
        assert!(b.render().contains("\nfleetcare_messages_stored_total 0\n"));
    }
}
