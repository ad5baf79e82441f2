//! Charts as inline SVG, drawn on the server (no JavaScript): a line for a
//! meter over time, stacked bars per week, a timeline of fault episodes
//! and demand-against-stock bars. Colours come from the style sheet
//! (classes `s0`…`s5`, `short`), text is escaped like every template, and
//! each mark carries a `<title>` that browsers show on hover.

use maud::{Markup, html};

use super::layout::number;

/// The drawing area, in SVG units; the SVG scales to the width it gets.
const W: f64 = 400.0;
const H: f64 = 160.0;
/// Room for the axis labels.
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 18.0;
const TOP: f64 = 8.0;
const RIGHT: f64 = 8.0;

fn frame(label: &str, height: f64, content: Markup) -> Markup {
    html! {
        svg.chart viewBox=(format!("0 0 {W} {height}")) role="img" aria-label=(label)
            xmlns="http://www.w3.org/2000/svg" {
            title { (label) }
            (content)
        }
    }
}

/// Maps `v` in `lo..=hi` onto `a..=b`.
fn scale(v: f64, lo: f64, hi: f64, a: f64, b: f64) -> f64 {
    if hi > lo {
        a + (v - lo) / (hi - lo) * (b - a)
    } else {
        (a + b) / 2.0
    }
}

/// One meter over time: `points` are (seconds since the epoch, value),
/// oldest first; `x_label` names the first and last point.
pub fn line(label: &str, points: &[(i64, f64)], x_labels: (&str, &str)) -> Markup {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return html! {};
    };
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let (t0, t1) = (first.0 as f64, last.0 as f64);
    let path: Vec<String> = points
        .iter()
        .map(|&(t, v)| {
            format!(
                "{:.1},{:.1}",
                scale(t as f64, t0, t1, LEFT, W - RIGHT),
                scale(v, lo, hi, H - BOTTOM, TOP)
            )
        })
        .collect();
    frame(
        label,
        H,
        html! {
            line.axis x1=(LEFT) y1=(H - BOTTOM) x2=(W - RIGHT) y2=(H - BOTTOM) {}
            line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(H - BOTTOM) {}
            text.tick x=(LEFT - 4.0) y=(TOP + 8.0) text-anchor="end" { (number(hi, 1)) }
            text.tick x=(LEFT - 4.0) y=(H - BOTTOM) text-anchor="end" { (number(lo, 1)) }
            text.tick x=(LEFT) y=(H - 4.0) { (x_labels.0) }
            text.tick x=(W - RIGHT) y=(H - 4.0) text-anchor="end" { (x_labels.1) }
            polyline.s0.line points=(path.join(" ")) {}
            @if points.len() == 1 {
                circle.s0 cx=(LEFT) cy=(scale(first.1, lo, hi, H - BOTTOM, TOP)) r="3" {}
            }
        },
    )
}

/// A condition signal by day against its baseline (C12): `days` are
/// (days since the epoch, the day's mean, the expected value), oldest
/// first; the band is the expected value ± `band`. The signal is a solid
/// line, the expected value a dashed one inside its shaded band.
pub fn band_line(
    label: &str,
    days: &[(i64, f64, f64)],
    band: f64,
    x_labels: (&str, &str),
) -> Markup {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return html! {};
    };
    let (lo, hi) = days
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), d| {
            (lo.min(d.1).min(d.2 - band), hi.max(d.1).max(d.2 + band))
        });
    let (t0, t1) = (first.0 as f64, last.0 as f64);
    let x = |t: i64| scale(t as f64, t0, t1, LEFT, W - RIGHT);
    let y = |v: f64| scale(v, lo, hi, H - BOTTOM, TOP);
    let pts = |f: &dyn Fn(&(i64, f64, f64)) -> f64| -> Vec<String> {
        days.iter()
            .map(|d| format!("{:.1},{:.1}", x(d.0), y(f(d))))
            .collect()
    };
    let upper = pts(&|d| d.2 + band);
    let mut lower = pts(&|d| d.2 - band);
    lower.reverse();
    let polygon = [upper, lower].concat().join(" ");
    frame(
        label,
        H,
        html! {
            line.axis x1=(LEFT) y1=(H - BOTTOM) x2=(W - RIGHT) y2=(H - BOTTOM) {}
            line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(H - BOTTOM) {}
            text.tick x=(LEFT - 4.0) y=(TOP + 8.0) text-anchor="end" { (number(hi, 1)) }
            text.tick x=(LEFT - 4.0) y=(H - BOTTOM) text-anchor="end" { (number(lo, 1)) }
            text.tick x=(LEFT) y=(H - 4.0) { (x_labels.0) }
            text.tick x=(W - RIGHT) y=(H - 4.0) text-anchor="end" { (x_labels.1) }
            polygon.band points=(polygon) {}
            polyline.line.expected points=(pts(&|d| d.2).join(" ")) {}
            polyline.s0.line points=(pts(&|d| d.1).join(" ")) {}
        },
    )
}

/// One bar of a [`bars`] chart: stacked segments (one per series).
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub segments: Vec<f64>,
}

/// Stacked bars, one per `bars` entry, with the series named in `legend`
/// (series `i` has class `s{i}`). Every `label_every`-th bar is labelled.
pub fn bars(label: &str, bars: &[Bar], legend: &[&str], unit: &str) -> Markup {
    if bars.is_empty() {
        return html! {};
    }
    let max = bars
        .iter()
        .map(|b| b.segments.iter().sum::<f64>())
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let slot = (W - LEFT - RIGHT) / bars.len() as f64;
    let width = (slot * 0.7).max(1.0);
    // Labels at most every 40 units, so they never overlap.
    let label_every = ((40.0 / slot).ceil() as usize).max(1);
    html! {
        (frame(label, H, html! {
            line.axis x1=(LEFT) y1=(H - BOTTOM) x2=(W - RIGHT) y2=(H - BOTTOM) {}
            text.tick x=(LEFT - 4.0) y=(TOP + 8.0) text-anchor="end" { (number(max, 1)) }
            text.tick x=(LEFT - 4.0) y=(H - BOTTOM) text-anchor="end" { "0" }
            @for (i, bar) in bars.iter().enumerate() {
                @let x = LEFT + slot * i as f64 + (slot - width) / 2.0;
                @for (s, v, below) in stacked(&bar.segments) {
                    @let y0 = scale(below, 0.0, max, H - BOTTOM, TOP);
                    @let y1 = scale(below + v, 0.0, max, H - BOTTOM, TOP);
                    rect class=(format!("s{}", s % 6)) x=(format!("{x:.1}")) y=(format!("{y1:.1}"))
                        width=(format!("{width:.1}")) height=(format!("{:.1}", (y0 - y1).max(0.5))) {
                        title { (bar.label) " · " (legend.get(s).copied().unwrap_or_default()) ": " (number(v, 2)) " " (unit) }
                    }
                }
                @if i % label_every == 0 {
                    text.tick x=(format!("{:.1}", x + width / 2.0)) y=(H - 4.0) text-anchor="middle" { (bar.label) }
                }
            }
        }))
        @if legend.len() > 1 {
            (legend_list(legend))
        }
    }
}

/// The positive segments of a stacked bar: (series, value, sum below).
fn stacked(segments: &[f64]) -> Vec<(usize, f64, f64)> {
    let mut below = 0.0;
    let mut out = Vec::new();
    for (s, &v) in segments.iter().enumerate() {
        if v > 0.0 {
            out.push((s, v, below));
            below += v;
        }
    }
    out
}

fn legend_list(legend: &[&str]) -> Markup {
    html! {
        ul.legend {
            @for (i, name) in legend.iter().enumerate() {
                li { span class=(format!("swatch s{}", i % 6)) {} (name) }
            }
        }
    }
}

/// One row of a [`timeline`]: spans from start to end (seconds), `None`
/// for an end still open (drawn to the right edge).
#[derive(Debug, Clone)]
pub struct Lane {
    pub label: String,
    pub spans: Vec<(i64, Option<i64>)>,
}

/// Units across a timeline's track (its SVG stretches to the track).
const TRACK: f64 = 1000.0;

/// Fault episodes as bars on a time axis from `from` to `to` (seconds).
/// The lanes are HTML, so that they stretch with the page while their
/// labels keep their size, at 390 px as at 1280 px; each track is an SVG
/// stretched to its lane (no `style` attributes: the page's
/// Content-Security-Policy allows only the style sheet). The bars' stroke
/// does not scale, so a short episode is still 3 px wide.
pub fn timeline(label: &str, lanes: &[Lane], from: i64, to: i64, x_labels: (&str, &str)) -> Markup {
    if lanes.is_empty() {
        return html! {};
    }
    let x = |t: i64| scale(t.clamp(from, to) as f64, from as f64, to as f64, 0.0, TRACK);
    html! {
        div.timeline role="img" aria-label=(label) {
            @for lane in lanes {
                div.lane {
                    span.label { (lane.label) }
                    svg.track viewBox=(format!("0 0 {TRACK} 10")) preserveAspectRatio="none"
                        xmlns="http://www.w3.org/2000/svg" {
                        @for (start, end) in &lane.spans {
                            @let x0 = x(*start);
                            @let x1 = x(end.unwrap_or(to));
                            rect class=(if end.is_none() { "ep open" } else { "ep" })
                                x=(format!("{x0:.1}")) y="1.5" width=(format!("{:.1}", x1 - x0)) height="7" {
                                title { (lane.label) }
                            }
                        }
                    }
                }
            }
            div.lane.axis {
                span.label {}
                div.ticks { span { (x_labels.0) } span { (x_labels.1) } }
            }
        }
    }
}

/// One row of a [`demand_against_stock`] chart.
#[derive(Debug, Clone)]
pub struct Bullet {
    pub label: String,
    pub demand: f64,
    pub on_hand: Option<f64>,
    pub unit: String,
}

/// Each part's demand over the horizon as a bar, its stock as a mark on
/// the same row; a bar past its stock is drawn as a shortfall. Each row
/// has its own scale (parts are counted in different units).
pub fn demand_against_stock(label: &str, rows: &[Bullet], legend: (&str, &str)) -> Markup {
    if rows.is_empty() {
        return html! {};
    }
    const ROW: f64 = 18.0;
    let height = TOP + ROW * rows.len() as f64 + 4.0;
    let left = 120.0;
    let right = W - 60.0;
    html! {
        (frame(label, height, html! {
            @for (i, r) in rows.iter().enumerate() {
                @let y = TOP + ROW * i as f64;
                @let max = r.demand.max(r.on_hand.unwrap_or(0.0)).max(1e-9);
                @let short = r.on_hand.is_some_and(|s| r.demand > s);
                text.tick x=(left - 4.0) y=(y + ROW * 0.65) text-anchor="end" { (r.label) }
                rect class=(if short { "short" } else { "s0" }) x=(left) y=(format!("{:.1}", y + 3.0))
                    width=(format!("{:.1}", scale(r.demand, 0.0, max, 0.0, right - left).max(1.0))) height=(ROW - 6.0) {
                    title { (r.label) ": " (number(r.demand, 2)) " " (r.unit) }
                }
                @if let Some(s) = r.on_hand {
                    @let sx = left + scale(s, 0.0, max, 0.0, right - left);
                    line.stock x1=(format!("{sx:.1}")) y1=(y + 1.0) x2=(format!("{sx:.1}")) y2=(y + ROW - 1.0) {
                        title { (legend.1) ": " (number(s, 2)) " " (r.unit) }
                    }
                }
                text.tick x=(right + 4.0) y=(y + ROW * 0.65) { (number(r.demand, 1)) " " (r.unit) }
            }
        }))
        ul.legend {
            li { span.swatch.s0 {} (legend.0) }
            li { span.swatch.stock {} (legend.1) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_their_labels_and_skip_empty_data() {
        let svg = line("a<b", &[(0, 1.0), (60, 2.0)], ("x", "y")).into_string();
        assert!(svg.contains("a&lt;b") && svg.contains("<polyline"));
        assert_eq!(line("l", &[], ("", "")).into_string(), "");
        let b = bars(
            "weekly",
            &[Bar {
                label: "03-02".into(),
                segments: vec![2.0, 1.0],
            }],
            &["planned", "corrective"],
            "pcs",
        )
        .into_string();
        assert_eq!(b.matches("<rect").count(), 2);
        assert!(b.contains("planned"));
    }

    // Issue 23: the signal, its expected value and the band around it.
    #[test]
    fn a_signal_is_drawn_with_its_baseline_band() {
        let days = [
            (20_000, 60.0, 59.0),
            (20_001, 61.0, 59.5),
            (20_002, 66.0, 59.2),
        ];
        let svg = band_line("hydraulic<oil", &days, 2.0, ("a", "b")).into_string();
        assert!(svg.contains("hydraulic&lt;oil"));
        assert_eq!(svg.matches("<polygon").count(), 1);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(!svg.contains("style="));
        assert_eq!(band_line("l", &[], 1.0, ("", "")).into_string(), "");
    }

    #[test]
    fn a_shortfall_is_drawn_as_one() {
        let rows = [
            Bullet {
                label: "P1".into(),
                demand: 5.0,
                on_hand: Some(2.0),
                unit: "pcs".into(),
            },
            Bullet {
                label: "P2".into(),
                demand: 1.0,
                on_hand: Some(2.0),
                unit: "pcs".into(),
            },
        ];
        let svg = demand_against_stock("parts", &rows, ("demand", "stock")).into_string();
        assert_eq!(svg.matches("class=\"short\"").count(), 1);
    }
}
