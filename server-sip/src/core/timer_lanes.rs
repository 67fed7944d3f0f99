//! Transaction timers in lanes by delay: a transaction's timers come in a handful of fixed delays (T1 and its
//! doublings up to T2, 64·T1, T4), so the deadlines armed with one delay arrive in time order and a lane is a
//! FIFO queue: arming and firing cost O(1) whatever the number of timers, where a binary heap paid log n
//! comparisons on cache-cold entries (at 10,000 NOTIFYs/s, Timer J alone keeps 32 s of PUBLISH transactions).
//!
//! An entry out of order in its lane (two delays that round to the same millisecond, or more distinct delays
//! than [`MAX_LANES`]) is inserted at its place, so the order holds in every case; only the cost changes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Distinct delays kept apart; a further delay shares the lane of the nearest one.
pub const MAX_LANES: usize = 32;

/// Deadlines with what is due at each, earliest first.
#[derive(Debug)]
pub struct TimerLanes<T> {
    now: Instant,
    lanes: Vec<(Duration, VecDeque<(Instant, T)>)>,
}

impl<T> TimerLanes<T> {
    /// Empty lanes, the clock at `now`.
    pub fn new(now: Instant) -> Self {
        TimerLanes {
            now,
            lanes: Vec::new(),
        }
    }

    /// The clock moved on; delays of what is armed next count from `now`.
    pub fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Arms `item` for `at`.
    pub fn arm(&mut self, at: Instant, item: T) {
        let delay = round(at.saturating_duration_since(self.now));
        let lane = match self.lanes.iter().position(|(d, _)| *d == delay) {
            Some(i) => i,
            None if self.lanes.len() < MAX_LANES => {
                self.lanes.push((delay, VecDeque::new()));
                self.lanes.len() - 1
            }
            None => self
                .lanes
                .iter()
                .enumerate()
                .min_by_key(|(_, (d, _))| d.abs_diff(delay))
                .map(|(i, _)| i)
                .unwrap_or(0),
        };
        let queue = &mut self.lanes[lane].1;
        if queue.back().is_none_or(|(last, _)| *last <= at) {
            queue.push_back((at, item));
        } else {
            let i = queue.partition_point(|(t, _)| *t <= at);
            queue.insert(i, (at, item));
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.lanes
            .iter()
            .filter_map(|(_, q)| q.front().map(|(at, _)| *at))
            .min()
    }

    /// The earliest item due at `now`, taken out.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        let (_, queue) = self
            .lanes
            .iter_mut()
            .filter(|(_, q)| q.front().is_some_and(|(at, _)| *at <= now))
            .min_by_key(|(_, q)| q.front().map(|(at, _)| *at))?;
        queue.pop_front().map(|(_, item)| item)
    }

    /// How many items are armed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lanes.iter().map(|(_, q)| q.len()).sum()
    }
}

/// Delays to the millisecond: timers are no finer, and it keeps one lane per timer kind.
fn round(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn items_come_out_in_deadline_order_across_lanes() {
        let t0 = Instant::now();
        let mut l = TimerLanes::new(t0);
        l.arm(t0 + Duration::from_millis(500), "e1");
        l.arm(t0 + Duration::from_secs(32), "j1");
        l.advance(t0 + Duration::from_millis(10));
        l.arm(t0 + Duration::from_millis(510), "e2");
        assert_eq!(l.next(), Some(t0 + Duration::from_millis(500)));
        assert_eq!(l.pop_due(t0 + Duration::from_millis(499)), None);
        let late = t0 + Duration::from_secs(40);
        assert_eq!(l.pop_due(late), Some("e1"));
        assert_eq!(l.pop_due(late), Some("e2"));
        assert_eq!(l.pop_due(late), Some("j1"));
        assert_eq!(l.pop_due(late), None);
        assert_eq!(l.next(), None);
    }

    proptest! {
        /// Whatever the delays and however the clock moves, every item comes out once, never before its
        /// deadline, and in deadline order.
        #[test]
        fn any_arming_pops_in_order(steps in proptest::collection::vec((0u64..50, 0u64..100_000), 1..300)) {
            let t0 = Instant::now();
            let mut l = TimerLanes::new(t0);
            let mut now = t0;
            for (i, (advance, delay)) in steps.iter().enumerate() {
                now += Duration::from_millis(*advance);
                l.advance(now);
                l.arm(now + Duration::from_micros(*delay * 37), i);
            }
            prop_assert_eq!(l.len(), steps.len());
            let mut seen = vec![false; steps.len()];
            let mut last = t0;
            while let Some(at) = l.next() {
                prop_assert!(at >= last);
                last = at;
                let i = l.pop_due(at).expect("due at its deadline");
                prop_assert!(!seen[i]);
                seen[i] = true;
            }
            prop_assert!(seen.iter().all(|s| *s));
        }
    }
}
