//! Puts the messages of one shared subscription, spread over several
//! links, back into the order the broker logged them.
//!
//! Why: rumqttd lets one subscriber hold at most 100 unacknowledged QoS 1
//! messages. fleetcare acknowledges a message only once it is stored, so
//! one link gets at most 100 messages per trip through the writer and its
//! fsync. Several links in one shared subscription multiply that window,
//! but each message goes to one link, and the links are read one after
//! another. The order matters: a J1939 BAM transfer split across messages
//! only reassembles in order, and a fault's episode follows its DM1s.
//!
//! rumqttd numbers the messages of a filter's log one after another and
//! hands each forward its number (`Forward::cursor`), and each link gets
//! its share in that order. So the next message is the one numbered one
//! past the last; it is at the head of some link's queue, or not there
//! yet. Sans-IO: this type only orders what it is given.

use std::collections::VecDeque;

/// Messages from `lanes()` links, released in log order.
#[derive(Debug)]
pub struct Reorder<T> {
    lanes: Vec<VecDeque<(Option<u64>, T)>>,
    /// The number of the message that goes next, once one was released.
    next: Option<u64>,
    queued: usize,
}

impl<T> Reorder<T> {
    /// `lanes` links (at least one).
    pub fn new(lanes: usize) -> Self {
        Self {
            lanes: (0..lanes.max(1)).map(|_| VecDeque::new()).collect(),
            next: None,
            queued: 0,
        }
    }

    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Messages held back.
    pub fn len(&self) -> usize {
        self.queued
    }

    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Queues a message that came on `lane`, numbered `offset` in the log
    /// (`None`: it has no place in the log, such as a retained message).
    /// A lane's messages come in log order. A lane out of range is taken
    /// as the last one.
    pub fn push(&mut self, lane: usize, offset: Option<u64>, item: T) {
        let last = self.lanes.len() - 1;
        if let Some(q) = self.lanes.get_mut(lane.min(last)) {
            q.push_back((offset, item));
            self.queued += 1;
        }
    }

    /// The next message in log order, if it is known to be next:
    /// - it is numbered one past the last one released;
    /// - or it has no number, or a number already passed (nothing to wait
    ///   for: it can only go now);
    /// - or every lane holds a message, so none with a lower number can
    ///   come any more (the log skipped numbers: rumqttd dropped messages
    ///   it could not keep);
    /// - or, before the first release, it is the first lane's: rumqttd
    ///   hands a shared subscription's first message to the member that
    ///   joined first.
    pub fn pop(&mut self) -> Option<T> {
        let mut lowest: Option<(usize, u64)> = None;
        let mut all_full = true;
        for (i, q) in self.lanes.iter().enumerate() {
            let Some(&(offset, _)) = q.front() else {
                all_full = false;
                continue;
            };
            let Some(offset) = offset else {
                return self.take(i, None);
            };
            match self.next {
                Some(n) if offset <= n => return self.take(i, Some(offset)),
                None if i == 0 => return self.take(i, Some(offset)),
                _ => {}
            }
            if lowest.is_none_or(|(_, o)| offset < o) {
                lowest = Some((i, offset));
            }
        }
        match lowest {
            Some((i, offset)) if all_full => self.take(i, Some(offset)),
            _ => None,
        }
    }

    /// The lowest-numbered message held, whether or not it is known to be
    /// next: for when the one awaited has not come for too long.
    pub fn pop_stalled(&mut self) -> Option<T> {
        let lane = self
            .lanes
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|(o, _)| (i, *o)))
            .min_by_key(|&(_, o)| o)?;
        self.take(lane.0, lane.1)
    }

    fn take(&mut self, lane: usize, offset: Option<u64>) -> Option<T> {
        let (_, item) = self.lanes.get_mut(lane)?.pop_front()?;
        self.queued -= 1;
        if let Some(o) = offset {
            self.next = Some(self.next.map_or(o + 1, |n| n.max(o + 1)));
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn drain(r: &mut Reorder<u64>) -> Vec<u64> {
        std::iter::from_fn(|| r.pop()).collect()
    }

    #[test]
    fn round_robin_shares_come_back_in_order_whatever_lane_is_read_first() {
        let mut r = Reorder::new(3);
        // Offsets 0..9 dealt round robin: lane 0 gets 0, 3, 6, 9.
        // Lane 2 is read first, then lane 1, then lane 0.
        for lane in [2, 1, 0] {
            for o in (lane as u64..10).step_by(3) {
                r.push(lane, Some(o), o);
            }
        }
        assert_eq!(drain(&mut r), (0..10).collect::<Vec<_>>());
        assert!(r.is_empty());
    }

    #[test]
    fn a_message_waits_for_the_one_before_it() {
        let mut r = Reorder::new(2);
        r.push(0, Some(0), 0);
        assert_eq!(r.pop(), Some(0));
        r.push(0, Some(2), 2);
        assert_eq!(r.pop(), None, "1 has not come yet");
        assert_eq!(r.len(), 1);
        r.push(1, Some(1), 1);
        assert_eq!(drain(&mut r), vec![1, 2]);
    }

    #[test]
    fn before_the_first_release_only_the_first_lane_or_all_lanes_decide() {
        let mut r = Reorder::new(2);
        r.push(1, Some(6), 6);
        assert_eq!(r.pop(), None);
        r.push(0, Some(5), 5);
        assert_eq!(drain(&mut r), vec![5, 6]);

        let mut r = Reorder::new(2);
        r.push(1, Some(4), 4);
        assert_eq!(r.pop(), None);
        // The first lane's message comes first even if numbered later.
        r.push(0, Some(7), 7);
        assert_eq!(r.pop(), Some(7));
        // 4 is behind: it goes at once.
        assert_eq!(r.pop(), Some(4));
    }

    #[test]
    fn a_gap_the_log_skipped_is_passed_once_every_lane_has_a_message() {
        let mut r = Reorder::new(2);
        r.push(0, Some(0), 0);
        assert_eq!(r.pop(), Some(0));
        r.push(1, Some(5), 5);
        assert_eq!(r.pop(), None, "1 to 4 may still come on lane 0");
        r.push(0, Some(6), 6);
        assert_eq!(drain(&mut r), vec![5, 6]);
    }

    #[test]
    fn a_stall_releases_the_lowest_held() {
        let mut r = Reorder::new(3);
        r.push(0, Some(0), 0);
        assert_eq!(r.pop(), Some(0));
        r.push(2, Some(9), 9);
        r.push(1, Some(4), 4);
        assert_eq!(r.pop(), None);
        assert_eq!(r.pop_stalled(), Some(4));
        assert_eq!(r.pop(), None, "5 to 8 may still come on lane 0");
        assert_eq!(r.pop_stalled(), Some(9));
        assert_eq!(r.pop_stalled(), None);
    }

    #[test]
    fn messages_without_a_number_go_at_once() {
        let mut r = Reorder::new(2);
        r.push(1, None, 100);
        assert_eq!(r.pop(), Some(100));
        r.push(5, Some(0), 0);
        r.push(0, Some(1), 1);
        // Lane 5 is out of range and taken as lane 1.
        assert_eq!(drain(&mut r), vec![1, 0]);
    }

    proptest! {
        /// However rumqttd deals the log out (any lane for any message, as
        /// long as each lane keeps log order) and however the lanes' queues
        /// are read in turn, the messages come out in log order, none lost
        /// or doubled, as soon as the first lane has its first one.
        #[test]
        fn any_deal_and_any_reading_order_gives_the_log_order(
            deal in prop::collection::vec(0usize..4, 1..200),
            reads in prop::collection::vec((0usize..4, 1usize..20), 1..100),
            start in 0u64..1_000,
        ) {
            let lanes = 4;
            // The first message goes to the first lane, as rumqttd does.
            let mut deal = deal;
            deal[0] = 0;
            let mut dealt: Vec<VecDeque<u64>> = vec![VecDeque::new(); lanes];
            for (i, &lane) in deal.iter().enumerate() {
                dealt[lane].push_back(start + i as u64);
            }
            let mut r = Reorder::new(lanes);
            let mut out = Vec::new();
            let mut reads = reads.into_iter().cycle();
            while dealt.iter().any(|q| !q.is_empty()) {
                let (lane, n) = reads.next().unwrap();
                // A lane with nothing left passes its turn to the next.
                let lane = (lane..lane + lanes)
                    .map(|l| l % lanes)
                    .find(|&l| !dealt[l].is_empty())
                    .unwrap();
                for _ in 0..n {
                    if let Some(o) = dealt[lane].pop_front() {
                        r.push(lane, Some(o), o);
                    }
                }
                out.extend(std::iter::from_fn(|| r.pop()));
            }
            prop_assert!(r.is_empty(), "{} held back", r.len());
            prop_assert_eq!(out, (start..start + deal.len() as u64).collect::<Vec<_>>());
        }
    }
}
