//! Which faults are active at each upload of one truck.

use super::Span;
use crate::simulate::duty::Slot;

/// A fault active at an upload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Active {
    pub(crate) span: Span,
    /// Index of its episode in the ground truth.
    pub(crate) episode: usize,
    pub(crate) oc: u8,
}

/// The planned and active faults of one truck, advanced upload by upload.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// Not yet started, latest start first.
    pending: Vec<Span>,
    pub(crate) active: Vec<Active>,
}

impl Timeline {
    pub(crate) fn add(&mut self, span: Span) {
        let at = self.pending.partition_point(|s| s.start > span.start);
        self.pending.insert(at, span);
    }

    /// The spans starting at `slot`, after removing (and returning) those
    /// that end there. A pending span that starts before `slot` was
    /// planned on an upload that never happened: returned as the error.
    pub(crate) fn advance(
        &mut self,
        slot: Slot,
        ended: &mut Vec<Active>,
        started: &mut Vec<Span>,
    ) -> Result<(), Span> {
        let mut i = 0;
        while let Some(a) = self.active.get(i) {
            if a.span.end == Some(slot) {
                ended.push(self.active.remove(i));
            } else {
                i += 1;
            }
        }
        while let Some(&s) = self.pending.last() {
            if s.start > slot {
                break;
            }
            self.pending.pop();
            if s.start < slot {
                return Err(s);
            }
            started.push(s);
        }
        Ok(())
    }

    /// Spans that should have ended or started by now but did not.
    pub(crate) fn leftovers(&self) -> impl Iterator<Item = &Span> {
        self.pending.iter().chain(
            self.active
                .iter()
                .map(|a| &a.span)
                .filter(|s| s.end.is_some()),
        )
    }
}

#[cfg(test)]
mod tests {
    use fleetcare_ingest::j1939::{Fmi, Spn};

    use super::*;
    use crate::catalog::{Severity, TruckKind};
    use crate::simulate::faults::Scenario;
    use crate::simulate::fleet::Week;
    use crate::simulate::fleet::tests::truck_for_tests;

    fn slot(day: u32, idx: u32) -> Slot {
        Slot { day, idx }
    }

    #[test]
    fn timeline_starts_and_ends_on_slots() {
        let t = truck_for_tests(TruckKind::Sweeper, Week::Rota);
        let f = |start, end| Span {
            truck: t.index,
            spn: Spn::new(100).unwrap(),
            fmi: Fmi::new(1).unwrap(),
            severity: Severity::High,
            scenario: Scenario::Noise,
            start,
            end,
        };
        let mut tl = Timeline::default();
        tl.add(f(slot(0, 3), Some(slot(1, 0))));
        tl.add(f(slot(0, 1), Some(slot(0, 2))));
        let (mut ended, mut started) = (Vec::new(), Vec::new());
        tl.advance(slot(0, 0), &mut ended, &mut started).unwrap();
        assert!(started.is_empty());
        tl.advance(slot(0, 1), &mut ended, &mut started).unwrap();
        assert_eq!(started.len(), 1);
        for s in started.drain(..) {
            tl.active.push(Active {
                span: s,
                episode: 0,
                oc: 1,
            });
        }
        tl.advance(slot(0, 2), &mut ended, &mut started).unwrap();
        assert_eq!(ended.len(), 1);
        // Slot (0, 3) never came: the plan and the day disagree.
        assert!(tl.advance(slot(0, 4), &mut ended, &mut started).is_err());
    }
}
