//! The digest secrets of accounts read from the store lately, so that a phone's steady traffic (a PUBLISH or
//! re-SUBSCRIBE every few seconds, each authenticated) costs no store read and no parked second pass per request.
//!
//! What a cached entry may get wrong, and for how long (at most [`TTL`]):
//! - a changed password: the new one works at once (a failed check on a cached entry asks the store again);
//!   the old one keeps working until the entry ages out;
//! - a removed account: the engine closes the user's sessions, which drops the entry (see `delivery`); a user
//!   with no session open here authenticates from the entry until it ages out.
//!
//! Only accounts that exist are kept: an unknown user is asked about every time (those requests are rate
//! limited per source) so that a new account works at once.

use std::time::{Duration, Instant};

use hashbrown::HashMap;
use presence_core::BareJid;
use presence_core::store::DigestSecret;

/// How long an entry is trusted.
pub const TTL: Duration = Duration::from_secs(30);

/// Entries kept at most; past it the aged ones go, then any one (a miss only costs a store read).
pub const CAPACITY: usize = 8192;

/// Digest secrets by user, each with when it was read.
#[derive(Debug, Default)]
pub struct AccountCache {
    entries: HashMap<BareJid, (Instant, Vec<DigestSecret>)>,
}

impl AccountCache {
    /// The user's secrets, when read less than [`TTL`] ago.
    pub fn get(&self, user: &BareJid, now: Instant) -> Option<&[DigestSecret]> {
        self.entries
            .get(user)
            .filter(|(read, _)| now.saturating_duration_since(*read) < TTL)
            .map(|(_, secrets)| secrets.as_slice())
    }

    /// Keeps what the store said about an existing account at `now`.
    pub fn put(&mut self, user: BareJid, secrets: Vec<DigestSecret>, now: Instant) {
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(&user) {
            self.entries
                .retain(|_, (read, _)| now.saturating_duration_since(*read) < TTL);
            if self.entries.len() >= CAPACITY
                && let Some(any) = self.entries.keys().next().cloned()
            {
                self.entries.remove(&any);
            }
        }
        self.entries.insert(user, (now, secrets));
    }

    /// Forgets the user (a failed check, or their session closed).
    pub fn forget(&mut self, user: &BareJid) {
        self.entries.remove(user);
    }

    /// How many entries are kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_core::store::DigestHash;

    fn secret() -> Vec<DigestSecret> {
        vec![DigestSecret {
            hash: DigestHash::Md5,
            realm: "example.com".into(),
            ha1: "00".into(),
        }]
    }

    fn user(i: usize) -> BareJid {
        BareJid::new(&format!("u{i}@example.com")).expect("valid")
    }

    #[test]
    fn an_entry_ages_out() {
        let now = Instant::now();
        let mut c = AccountCache::default();
        c.put(user(1), secret(), now);
        assert!(c.get(&user(1), now + TTL / 2).is_some());
        assert!(c.get(&user(1), now + TTL).is_none());
    }

    #[test]
    fn the_cache_is_bounded() {
        let now = Instant::now();
        let mut c = AccountCache::default();
        for i in 0..CAPACITY + 10 {
            c.put(user(i), secret(), now);
        }
        assert_eq!(c.len(), CAPACITY);
        assert!(c.get(&user(CAPACITY + 9), now).is_some());
        // Aged entries are the first to go.
        c.put(user(CAPACITY + 20), secret(), now + TTL);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn forget_drops_the_entry() {
        let now = Instant::now();
        let mut c = AccountCache::default();
        c.put(user(1), secret(), now);
        c.forget(&user(1));
        assert!(c.get(&user(1), now).is_none());
    }
}
