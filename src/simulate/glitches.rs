//! How a truck's uploads reach the broker: a moment late, now and then
//! twice (a QoS 1 redelivery), or overtaken by the next upload, with
//! garbage in between.
//!
//! The glitches are placed so that the data still tells the planted truth:
//! only an upload whose fault state equals the one before it is overtaken
//! (ingest drops the older snapshot as stale, so the episodes do not
//! change), and the two halves of a cut BAM reach the broker back to back,
//! never duplicated or overtaken (a repeated or interleaved BAM
//! announcement aborts the transfer: that is a transport dead letter, not
//! a glitch ingest can repair).

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// Chance that an upload arrives twice.
const P_DUPLICATE: f64 = 0.004;
/// Chance that an eligible upload is overtaken by the next one.
const P_REORDER: f64 = 0.003;

/// Which part of a cut BAM a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Whole,
    First,
    /// Follows the [`Part::First`] just before it.
    Second,
}

/// A valid upload of one truck's day, in upload order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DayMsg {
    pub(crate) topic: String,
    pub(crate) payload: String,
    /// Time of its last frame.
    pub(crate) event_us: i64,
    /// Its fault state differs from the upload before it.
    pub(crate) transition: bool,
    pub(crate) part: Part,
}

/// A garbage message, sent shortly after upload `anchor`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Extra {
    pub(crate) anchor: usize,
    pub(crate) topic: String,
    pub(crate) payload: String,
}

/// A message as the broker delivers it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Delivered {
    pub(crate) delivery_us: i64,
    pub(crate) topic: String,
    pub(crate) payload: String,
}

/// What went wrong on the way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Glitches {
    pub(crate) duplicates: u64,
    pub(crate) out_of_order: u64,
}

struct Item {
    delivery_us: i64,
    order: usize,
    part: Part,
    topic: String,
    payload: String,
}

/// Delivery times and order of one truck's day, appended to `out` in
/// delivery order with strictly increasing times.
pub(crate) fn schedule(
    rng: &mut ChaCha8Rng,
    msgs: Vec<DayMsg>,
    garbage: Vec<Extra>,
    out: &mut Vec<Delivered>,
) -> Glitches {
    let mut g = Glitches::default();
    let mut delivery: Vec<i64> = Vec::with_capacity(msgs.len());
    for m in &msgs {
        let d = match m.part {
            Part::Second => delivery.last().copied().unwrap_or(m.event_us),
            _ => m.event_us + rng.random_range(200_000..3_000_000),
        };
        delivery.push(d.max(m.event_us));
    }
    let mut i = 0;
    while i + 1 < msgs.len() {
        let (Some(a), Some(b)) = (msgs.get(i), msgs.get(i + 1)) else {
            break;
        };
        let eligible = !a.transition && a.part == Part::Whole && b.part == Part::Whole;
        if eligible && rng.random_bool(P_REORDER) {
            let next = delivery.get(i + 1).copied().unwrap_or_default();
            if let Some(d) = delivery.get_mut(i) {
                // Up to 8 s behind its upload: never past the one after next.
                *d = next + rng.random_range(50_000..5_000_000);
            }
            g.out_of_order += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    let mut items: Vec<Item> = Vec::with_capacity(msgs.len() + garbage.len() + 4);
    let mut dups = Vec::new();
    for (i, (m, &d)) in msgs.into_iter().zip(&delivery).enumerate() {
        if m.part == Part::Whole && rng.random_bool(P_DUPLICATE) {
            dups.push(Item {
                delivery_us: d + rng.random_range(500_000..20_000_000),
                order: 0,
                part: Part::Whole,
                topic: m.topic.clone(),
                payload: m.payload.clone(),
            });
            g.duplicates += 1;
        }
        items.push(Item {
            delivery_us: d,
            order: i,
            part: m.part,
            topic: m.topic,
            payload: m.payload,
        });
    }
    for e in garbage {
        let d = delivery.get(e.anchor).copied().unwrap_or_default();
        dups.push(Item {
            delivery_us: d + rng.random_range(10_000..2_000_000),
            order: 0,
            part: Part::Whole,
            topic: e.topic,
            payload: e.payload,
        });
    }
    let base = items.len();
    for (k, mut d) in dups.into_iter().enumerate() {
        d.order = base + k;
        items.push(d);
    }
    items.sort_by_key(|it| (it.delivery_us, it.order));
    // Keep each cut BAM's halves together (equal delivery times could
    // otherwise let another message of the truck in between).
    let mut p = 0;
    while p < items.len() {
        if items.get(p).is_some_and(|it| it.part == Part::First)
            && let Some(q) = (p + 1..items.len())
                .find(|&q| items.get(q).is_some_and(|it| it.part == Part::Second))
            && q != p + 1
        {
            let second = items.remove(q);
            items.insert(p + 1, second);
        }
        p += 1;
    }
    let mut last = i64::MIN;
    for it in items {
        let d = it.delivery_us.max(last.saturating_add(1));
        last = d;
        out.push(Delivered {
            delivery_us: d,
            topic: it.topic,
            payload: it.payload,
        });
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::rng::{Purpose, Seeds};

    fn msg(i: i64, transition: bool, part: Part) -> DayMsg {
        DayMsg {
            topic: "t".into(),
            payload: format!("m{i}"),
            event_us: i * 300_000_000,
            transition,
            part,
        }
    }

    fn run(seed: u64, msgs: Vec<DayMsg>, garbage: Vec<Extra>) -> (Vec<Delivered>, Glitches) {
        let mut out = Vec::new();
        let g = schedule(
            &mut Seeds::new(seed).rng(Purpose::Glitch, 0, 0),
            msgs,
            garbage,
            &mut out,
        );
        (out, g)
    }

    #[test]
    fn only_steady_uploads_are_overtaken_and_split_halves_stay_together() {
        let mut seen_swap = false;
        for seed in 0..400 {
            let mut msgs: Vec<DayMsg> = (0..60).map(|i| msg(i, i % 7 == 0, Part::Whole)).collect();
            msgs[20].part = Part::First;
            msgs[21].part = Part::Second;
            let garbage = vec![Extra {
                anchor: 20,
                topic: "g".into(),
                payload: "garbage".into(),
            }];
            let (out, g) = run(seed, msgs, garbage);
            assert!(out.windows(2).all(|w| w[0].delivery_us < w[1].delivery_us));
            let valid: Vec<usize> = out
                .iter()
                .filter(|d| d.topic == "t")
                .map(|d| d.payload[1..].parse().unwrap())
                .collect();
            assert_eq!(valid.len() as u64, 60 + g.duplicates);
            let first = out.iter().position(|d| d.payload == "m20").unwrap();
            assert_eq!(out[first + 1].payload, "m21");
            assert_eq!(
                out.iter()
                    .filter(|d| d.payload == "m20" || d.payload == "m21")
                    .count(),
                2
            );
            // Every message that arrives after a later one (its first
            // copy) is a steady one, overtaken by exactly its successor.
            let mut firsts = Vec::new();
            for v in valid {
                if !firsts.contains(&v) {
                    firsts.push(v);
                }
            }
            for w in firsts.windows(2) {
                if w[1] < w[0] {
                    seen_swap = true;
                    assert_eq!(w[0], w[1] + 1);
                    assert!(w[1] % 7 != 0, "a transition was overtaken");
                }
            }
        }
        assert!(seen_swap);
    }
}
