//! Rate limits as token buckets, with time as an argument (Prosody's `limits` module is the model: a rate in
//! bytes per second and a burst a connection may spend at once).
//!
//! A bucket holds up to `burst` tokens and refills at `rate` tokens per second. Reading is never refused
//! outright on a stream: [`TokenBucket::charge`] lets the balance go negative and says how long to pause before
//! reading again, which is what stops a flooding TCP peer without losing its bytes. Datagrams cannot be paused,
//! so [`TokenBucket::try_take`] refuses instead (the SIP shell answers `503` with Retry-After).

use std::hash::Hash;
use std::time::{Duration, Instant};

use hashbrown::HashMap;

/// A rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Tokens (bytes) per second; 0 means unlimited.
    pub per_second: u64,
    /// How many tokens a full bucket holds.
    pub burst: u64,
}

impl Rate {
    /// No limit at all.
    pub const UNLIMITED: Rate = Rate {
        per_second: 0,
        burst: 0,
    };

    /// Whether this rate limits anything.
    pub fn is_limited(self) -> bool {
        self.per_second > 0
    }
}

/// One bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: Rate,
    /// Tokens available, negative when a stream overspent and must pause.
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate: Rate, now: Instant) -> Self {
        TokenBucket {
            rate,
            tokens: rate.burst as f64,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens =
            (self.tokens + elapsed * self.rate.per_second as f64).min(self.rate.burst as f64);
    }

    /// Spends `n` tokens whatever the balance; returns how long the caller must wait before spending more
    /// (zero while within the budget).
    pub fn charge(&mut self, now: Instant, n: usize) -> Duration {
        if !self.rate.is_limited() {
            return Duration::ZERO;
        }
        self.refill(now);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate.per_second as f64)
        }
    }

    /// Spends `n` tokens if the bucket has them; `Err` carries how long until it would.
    pub fn try_take(&mut self, now: Instant, n: usize) -> Result<(), Duration> {
        if !self.rate.is_limited() {
            return Ok(());
        }
        self.refill(now);
        let n = n as f64;
        if self.tokens >= n {
            self.tokens -= n;
            return Ok(());
        }
        let missing = n.min(self.rate.burst.max(1) as f64) - self.tokens;
        Err(Duration::from_secs_f64(
            missing / self.rate.per_second as f64,
        ))
    }

    /// Whether the bucket is full at `now` (its owner has been quiet long enough to be forgotten).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.rate.burst as f64
    }
}

/// One bucket per key (a source address), with a bound on how many are kept.
///
/// At the bound, buckets that are full again are forgotten first (their owners are within their rate, so a fresh
/// bucket is the same thing); if none is, the key is refused, which is the decision at the bound: an attacker
/// spraying source addresses cannot grow this map.
#[derive(Debug)]
pub struct KeyedBuckets<K> {
    rate: Rate,
    max_keys: usize,
    buckets: HashMap<K, TokenBucket>,
}

impl<K: Hash + Eq + Clone> KeyedBuckets<K> {
    /// Buckets of `rate`, at most `max_keys` of them.
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        KeyedBuckets {
            rate,
            max_keys: max_keys.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Spends `n` tokens of `key`'s bucket if it has them; `Err` carries how long until it would.
    pub fn try_take(&mut self, key: &K, now: Instant, n: usize) -> Result<(), Duration> {
        if !self.rate.is_limited() {
            return Ok(());
        }
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.max_keys {
            self.buckets.retain(|_, b| !b.is_full(now));
            if self.buckets.len() >= self.max_keys {
                return Err(Duration::from_secs(1));
            }
        }
        self.buckets
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::new(self.rate, now))
            .try_take(now, n)
    }

    /// How many keys have a bucket.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key has a bucket.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        per_second: 1000,
        burst: 2000,
    };

    #[test]
    fn a_burst_passes_then_the_stream_pauses_for_the_overspend() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(RATE, t0);
        assert_eq!(b.charge(t0, 2000), Duration::ZERO);
        // 500 bytes over at 1000/s: half a second.
        assert_eq!(b.charge(t0, 500), Duration::from_millis(500));
        // After the pause the debt is paid and the budget refills at the rate.
        assert_eq!(
            b.charge(t0 + Duration::from_millis(1500), 1000),
            Duration::ZERO
        );
    }

    #[test]
    fn datagrams_over_the_rate_are_refused_with_the_wait() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(RATE, t0);
        assert!(b.try_take(t0, 1500).is_ok());
        assert_eq!(b.try_take(t0, 1000), Err(Duration::from_millis(500)));
        assert!(b.try_take(t0 + Duration::from_millis(500), 1000).is_ok());
    }

    #[test]
    fn unlimited_never_waits() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Rate::UNLIMITED, t0);
        assert_eq!(b.charge(t0, usize::MAX / 2), Duration::ZERO);
        assert!(b.try_take(t0, usize::MAX / 2).is_ok());
    }

    #[test]
    fn keyed_buckets_are_separate_and_bounded() {
        let t0 = Instant::now();
        let mut k = KeyedBuckets::new(RATE, 2);
        assert!(k.try_take(&1, t0, 2000).is_ok());
        assert!(k.try_take(&1, t0, 1).is_err(), "key 1 spent its burst");
        assert!(k.try_take(&2, t0, 2000).is_ok(), "key 2 has its own bucket");
        // Both buckets are drained, so a third key is refused rather than growing the map.
        assert!(k.try_take(&3, t0, 1).is_err());
        assert_eq!(k.len(), 2);
        // Once they refill, they are forgotten to make room.
        assert!(k.try_take(&3, t0 + Duration::from_secs(3), 1).is_ok());
        assert_eq!(k.len(), 1);
    }
}
