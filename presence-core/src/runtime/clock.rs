//! The wall clock and the operating system's randomness, read in one place for every shell (the engine gets time
//! as data and needs no randomness).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::time::Timestamp;

/// Now, as a [`Timestamp`] to stamp a message with when it arrives (XEP-0203 delay stamps come from it).
pub fn timestamp() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_millis(ms)
}

/// Random bytes from the operating system (nonces, tags, secrets).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random source is available");
    b
}
