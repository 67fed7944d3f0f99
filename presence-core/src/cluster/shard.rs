//! Which engine shard of a node serves a user (issue 17): users are hashed over the node's shards.
//!
//! FNV-1a over the user's normalised bare address: every part of a process (the shells' handle, each shard's
//! engine) computes the same answer from the address alone, with no table to keep. A shard count is fixed for
//! the life of a process, so the hash only needs to be stable within one; it is stable across processes too,
//! which keeps tests reproducible. Not a cryptographic hash: nobody gains by steering users onto one shard
//! beyond what they could do by sending more traffic.

use crate::jid::BareJid;

/// The shard (in `0..shards`) that serves `user`; always 0 for one shard (or none).
pub fn shard_of(user: &BareJid, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in user.as_str().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The shard count is at most the number of cores, so the modulo's bias is immaterial.
    usize::try_from(hash % shards as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(i: usize) -> BareJid {
        BareJid::new(&format!("user{i}@example.com")).expect("valid user")
    }

    #[test]
    fn users_spread_over_the_shards_and_stay_put() {
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            let s = shard_of(&user(i), 4);
            assert_eq!(s, shard_of(&user(i), 4));
            counts[s] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
        assert_eq!(shard_of(&user(7), 1), 0);
        assert_eq!(shard_of(&user(7), 0), 0);
        // The address is compared normalised.
        let upper = BareJid::new("USER7@example.com").expect("valid user");
        assert_eq!(shard_of(&upper, 4), shard_of(&user(7), 4));
    }
}
