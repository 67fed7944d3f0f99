//! Wall-clock timestamps carried by data (a message's original send time).
//!
//! The engine never reads a clock. Timers use the monotonic `std::time::Instant` the caller passes to `handle`;
//! what clients see as a date (the XEP-0203 delay stamp of an offline message) is a `Timestamp` the shell puts on the
//! message when it arrives.

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Builds a timestamp from milliseconds since the Unix epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }
}
