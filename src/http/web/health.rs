//! `/ui/health`: ingest health. Message rates from the live counters (the
//! ones `/metrics` exports), the MQTT broker's state, each Modbus device's
//! status, and dead letters by reason (the store's `dead_letters` table,
//! which `GET /dead-letters` lists).
//!
//! The counters and the broker are service-wide, so only roles that see
//! every fleet get them; an operator sees its own fleets' devices and
//! dead letters.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::chart;
use super::error::WebError;
use super::layout::{Nav, number, page as frame, scroll, time, time_text};
use super::session::Session;
use super::{Broker, WebState};
use crate::http::api::{Resource, Scope, blocking, logs};
use crate::query::archive;
use crate::runtime::LiveMetrics;

/// How often the counters are sampled, and how many samples are kept
/// (ten minutes).
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const KEEP: usize = 121;
/// The window of the "per second" column.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Dead letters listed under the counts.
const RECENT_DEAD_LETTERS: usize = 20;

/// The counters the page shows, in its row order.
const COUNTERS: usize = 5;

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    counts: [u64; COUNTERS],
}

impl Sample {
    fn of(m: &LiveMetrics) -> Self {
        Self {
            at: Instant::now(),
            counts: [
                m.received.get(),
                m.stored.get(),
                m.duplicates.get(),
                m.dead_letters_total(),
                m.batches.get(),
            ],
        }
    }

    /// Per-second rates from `earlier` to this sample.
    fn rates_since(&self, earlier: &Sample) -> Option<[f64; COUNTERS]> {
        let dt = self.at.checked_duration_since(earlier.at)?.as_secs_f64();
        (dt >= 1.0).then(|| {
            let mut out = [0.0; COUNTERS];
            for (i, o) in out.iter_mut().enumerate() {
                *o = self.counts[i].saturating_sub(earlier.counts[i]) as f64 / dt;
            }
            out
        })
    }
}

/// Recent samples of the live counters, for rates.
#[derive(Debug, Default)]
pub struct Rates {
    samples: Mutex<VecDeque<Sample>>,
}

impl Rates {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Sample>> {
        self.samples.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, s: Sample) {
        let mut q = self.lock();
        if q.len() == KEEP {
            q.pop_front();
        }
        q.push_back(s);
    }

    /// Rates from the oldest sample of the last minute up to `now`.
    fn per_second(&self, now: &Sample) -> Option<[f64; COUNTERS]> {
        let q = self.lock();
        let oldest = q
            .iter()
            .find(|s| now.at.saturating_duration_since(s.at) <= RATE_WINDOW)?;
        now.rates_since(oldest)
    }

    /// Messages received per second between consecutive samples, as
    /// (seconds before `now`, rate), oldest first.
    fn received_series(&self, now: &Sample) -> Vec<(i64, f64)> {
        let q = self.lock();
        q.iter()
            .zip(q.iter().skip(1))
            .filter_map(|(a, b)| {
                let rate = b.rates_since(a)?;
                let ago = now.at.saturating_duration_since(b.at).as_secs() as i64;
                Some((-ago, rate[0]))
            })
            .collect()
    }
}

/// Samples the counters every 5 s (runs until aborted).
pub async fn sample_rates(rates: Arc<Rates>, metrics: Arc<LiveMetrics>) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    loop {
        every.tick().await;
        rates.push(Sample::of(&metrics));
    }
}

/// `GET /ui/health`.
pub async fn page(State(state): State<WebState>, session: Session) -> Result<Response, WebError> {
    let scope = session.scope(Resource::DeadLetters)?;
    let api = &state.api;
    let recent = logs::visible_dead_letters(api, &scope, None, RECENT_DEAD_LETTERS).await?;
    let fleets = scope.fleets_visible().map(<[_]>::to_vec);
    let st = api.clone();
    let reasons = blocking(move || {
        let store = archive::open(&st.store)?;
        Ok(archive::dead_letter_reasons(
            &store,
            &st.config.mqtt.topic_prefix,
            fleets.as_deref(),
        )?)
    })
    .await?;
    let lang = session.lang;
    let t = lang.text();
    let service_wide = scope.fleets_visible().is_none();
    let body = html! {
        @if service_wide {
            (rates(&state, &session))
            (broker(&state, &session))
        } @else {
            p.note { (t.service_wide) }
        }
        (devices(&state, &session, &scope))
        section #dead-letter-reasons {
            h2 { (t.dead_letters_by_reason) }
            @if reasons.is_empty() {
                p.muted { (t.nothing_here) }
            } @else {
                (scroll(html! {
                    table.stack {
                        thead { tr { th { (t.reason) } th.num { (t.count) } th { (t.last) } } }
                        tbody {
                            @for r in &reasons {
                                tr data-reason=(r.reason) data-count=(r.count) {
                                    td data-label=(t.reason) { (r.reason) }
                                    td.num data-label=(t.count) { (r.count) }
                                    td data-label=(t.last) { (time_text(&r.last)) }
                                }
                            }
                        }
                    }
                }))
            }
        }
        section #recent-dead-letters {
            h2 { (t.recent_dead_letters) }
            @if recent.is_empty() {
                p.muted { (t.nothing_here) }
            } @else {
                (scroll(html! {
                    table.stack {
                        thead { tr { th { (t.time) } th { (t.topic) } th { (t.reason) } th { (t.detail) } } }
                        tbody {
                            @for d in &recent {
                                tr {
                                    td data-label=(t.time) { (time_text(&d.received)) }
                                    td data-label=(t.topic) { code { (d.topic) } }
                                    td data-label=(t.reason) { (d.reason) }
                                    td.wrap data-label=(t.detail) { (d.detail) }
                                }
                            }
                        }
                    }
                }))
            }
        }
    };
    Ok(frame(&session, Some(Nav::Health), t.health_title, body).into_response())
}

fn rates(state: &WebState, session: &Session) -> Markup {
    let t = session.lang.text();
    let now = Sample::of(&state.api.metrics);
    let per_second = state.rates.per_second(&now);
    let series = state.rates.received_series(&now);
    let names = [
        t.received,
        t.stored,
        t.duplicates,
        t.dead_letters,
        t.store_batches,
    ];
    let ids = [
        "received",
        "stored",
        "duplicates",
        "dead-letters",
        "batches",
    ];
    html! {
        section #message-rates {
            h2 { (t.message_rates) }
            (scroll(html! {
                table.stack {
                    thead { tr { th { (t.counter) } th.num { (t.since_start) } th.num { (t.per_second) } } }
                    tbody {
                        @for i in 0..COUNTERS {
                            tr data-counter=(ids[i]) {
                                td data-label=(t.counter) { (names[i]) }
                                td.num data-label=(t.since_start) data-col="total" { (now.counts[i]) }
                                td.num data-label=(t.per_second) {
                                    (per_second.map_or_else(|| "–".to_owned(), |r| number(r[i], 1)))
                                }
                            }
                        }
                    }
                }
            }))
            @if series.len() > 1 {
                figure {
                    figcaption { (t.received_chart) }
                    (chart::line(t.received_chart, &series, ("-10 min", "0")))
                }
            }
        }
    }
}

fn broker(state: &WebState, session: &Session) -> Markup {
    let t = session.lang.text();
    let m = &state.api.metrics;
    let connected = m.mqtt_connected.get() != 0;
    let (kind, address) = match &state.sources.broker {
        Broker::Embedded(a) => (t.embedded_broker, a.to_string()),
        Broker::External(url) => (t.external_broker, url.clone()),
    };
    html! {
        section #broker {
            h2 { (t.broker) }
            dl.facts {
                div { dt { (t.address) } dd { code { (address) } " (" (kind) ")" } }
                div { dt { (t.connected) } dd data-field="connected" {
                    @if connected { span.badge.good { (t.yes) } } @else { span.badge.bad { (t.no) } }
                } }
                // The embedded broker is fleetcare's own edge: what counts
                // is who is connected; fleetcare's client counters are for
                // an external broker.
                @if matches!(state.sources.broker, Broker::Embedded(_)) {
                    div { dt { (t.gateways_connected) } dd data-field="gateways" { (m.mqtt_clients.get()) } }
                } @else {
                    div { dt { (t.connections) } dd { (m.mqtt_connections.get()) } }
                    div { dt { (t.subscriptions) } dd { (m.mqtt_subscriptions.get()) } }
                    div { dt { (t.connection_errors) } dd { (m.mqtt_connection_errors.get()) } }
                }
            }
        }
    }
}

fn devices(state: &WebState, session: &Session, scope: &Scope) -> Markup {
    let t = session.lang.text();
    let visible: Vec<_> = state
        .sources
        .devices
        .iter()
        .filter(|d| scope.sees(Some(&d.label.fleet)))
        .collect();
    html! {
        section #modbus-devices {
            h2 { (t.modbus_devices) }
            @if visible.is_empty() {
                p.muted { (t.no_devices) }
            } @else {
                (scroll(html! {
                    table.stack {
                        thead { tr {
                            th { (t.address) } th { (t.vehicle) } th { (t.model) } th { (t.connected) }
                            th { (t.last_ok) } th { (t.last_error) } th.num { (t.failures_in_row) }
                            th.num { (t.polls) } th { (t.values) }
                        } }
                        tbody {
                            @for d in &visible {
                                @let s = d.snapshot();
                                tr data-device=(d.label.address) data-connected=(s.connected) {
                                    td data-label=(t.address) { code { (d.label.address) } " #" (d.unit) }
                                    td data-label=(t.vehicle) {
                                        a href=(format!("/ui/vehicles/{}", d.label.vehicle)) { (d.label.vehicle.as_str()) }
                                        " · " (d.label.fleet.as_str())
                                    }
                                    td data-label=(t.model) { (session.lang.model_name(&state.api.catalog, &d.model)) }
                                    td data-label=(t.connected) {
                                        @if s.connected { span.badge.good { (t.yes) } } @else { span.badge.bad { (t.no) } }
                                    }
                                    td data-label=(t.last_ok) {
                                        @match s.last_ok.and_then(|at| at.to_datetime()) { Some(at) => (time(at)), None => "–" }
                                    }
                                    td.wrap data-label=(t.last_error) {
                                        @if let Some((at, e)) = &s.last_error {
                                            @if let Some(at) = at.to_datetime() { (time(at)) ": " }
                                            (e)
                                        }
                                    }
                                    td.num data-label=(t.failures_in_row) { (s.consecutive_failures) }
                                    td.num data-label=(t.polls) { (s.polls_ok) " / " (s.polls_failed) }
                                    td data-label=(t.values) {
                                        @for (name, v) in &s.values { span.value { (name) " " (number(*v, 2)) } " " }
                                    }
                                }
                            }
                        }
                    }
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_the_last_minute_of_samples() {
        let rates = Rates::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let sample = |s: u64, received: u64| Sample {
            at: at(s),
            counts: [received, 0, 0, 0, 0],
        };
        assert!(rates.per_second(&sample(0, 0)).is_none());
        for s in (0..=100).step_by(5) {
            rates.push(sample(s, s * 10));
        }
        // From the sample at 45 s (the oldest within 60 s of 105 s).
        let r = rates.per_second(&sample(105, 1050)).unwrap();
        assert!((r[0] - 10.0).abs() < 1e-9, "{r:?}");
        let series = rates.received_series(&sample(100, 1000));
        assert_eq!(series.len(), 20);
        assert_eq!(series.last(), Some(&(0, 10.0)));
    }
}
