//! Per-second counts of the last minute, from a counter sampled once a second: a fixed ring, never longer.

/// Seconds the ring remembers.
pub const WINDOW: usize = 60;

/// The increments of one monotonic counter over each of the last [`WINDOW`] seconds.
#[derive(Debug, Clone)]
pub struct PerSecond {
    slots: [u64; WINDOW],
    /// Where the next sample goes.
    next: usize,
    /// Samples taken, up to `WINDOW`.
    filled: usize,
    /// The counter's value at the previous sample (none before the first).
    last: Option<u64>,
}

impl Default for PerSecond {
    fn default() -> Self {
        PerSecond {
            slots: [0; WINDOW],
            next: 0,
            filled: 0,
            last: None,
        }
    }
}

impl PerSecond {
    /// Records the counter's value at the end of one more second. The first value only sets the baseline; a
    /// counter that went backwards (never, for a counter) counts as no increment.
    pub fn sample(&mut self, total: u64) {
        if let Some(last) = self.last {
            self.slots[self.next] = total.saturating_sub(last);
            self.next = (self.next + 1) % WINDOW;
            self.filled = (self.filled + 1).min(WINDOW);
        }
        self.last = Some(total);
    }

    /// The increments, oldest second first (at most [`WINDOW`]).
    pub fn series(&self) -> Vec<u64> {
        let start = (self.next + WINDOW - self.filled) % WINDOW;
        (0..self.filled)
            .map(|i| self.slots[(start + i) % WINDOW])
            .collect()
    }

    /// The sum over the seconds remembered.
    pub fn sum(&self) -> u64 {
        self.series().iter().sum()
    }

    /// The mean per second over the seconds remembered (0 before two samples).
    pub fn mean(&self) -> f64 {
        if self.filled == 0 {
            0.0
        } else {
            self.sum() as f64 / self.filled as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_are_kept_for_one_minute_only() {
        let mut r = PerSecond::default();
        r.sample(100);
        assert!(r.series().is_empty(), "the first sample is the baseline");
        r.sample(103);
        r.sample(103);
        r.sample(110);
        assert_eq!(r.series(), vec![3, 0, 7]);
        assert!((r.mean() - 10.0 / 3.0).abs() < 1e-9);
        for i in 0..WINDOW as u64 {
            r.sample(110 + i + 1);
        }
        let s = r.series();
        assert_eq!(s.len(), WINDOW);
        assert!(s.iter().all(|&n| n == 1), "{s:?}");
        assert_eq!(r.sum(), WINDOW as u64);
    }

    #[test]
    fn a_counter_going_backwards_counts_nothing() {
        let mut r = PerSecond::default();
        r.sample(10);
        r.sample(4);
        r.sample(6);
        assert_eq!(r.series(), vec![0, 2]);
    }
}
