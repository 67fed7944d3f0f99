//! Byte keys of the per-user tables. A key starts with the user's address behind a big-endian `u16` length, so
//! one user's records form one contiguous key range and no address can be a prefix of another user's key.

use presence_core::BareJid;
use presence_core::store::{DocumentKey, StoreError};

/// The prefix every key of `user` starts with.
pub fn user_prefix(user: &BareJid) -> Vec<u8> {
    let s = user.as_str().as_bytes();
    // A bare JID is at most two 1023-byte parts and an `@` (RFC 7622 §3.1), well inside a u16.
    let len = u16::try_from(s.len()).expect("bare JID shorter than 64 KiB");
    let mut k = Vec::with_capacity(2 + s.len() + 8);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(s);
    k
}

/// The first key after every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    // A prefix ends with UTF-8 text, never 0xFF, so incrementing its last byte never carries.
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// The key of `contact` in `user`'s roster.
pub fn roster(user: &BareJid, contact: &BareJid) -> Vec<u8> {
    let mut k = user_prefix(user);
    k.extend_from_slice(contact.as_str().as_bytes());
    k
}

/// The contact a roster key names, given the length of its user prefix.
pub fn roster_contact(key: &[u8], prefix_len: usize) -> Result<BareJid, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "roster key".into(),
        detail,
    };
    let raw = key
        .get(prefix_len..)
        .ok_or_else(|| corrupt(format!("{} bytes is shorter than its prefix", key.len())))?;
    let s = std::str::from_utf8(raw).map_err(|e| corrupt(format!("contact is not UTF-8: {e}")))?;
    BareJid::new(s).map_err(|e| corrupt(format!("bad contact address: {e}")))
}

/// The key of message `seq` in `user`'s offline queue; big-endian so the queue iterates in sequence order.
pub fn offline(user: &BareJid, seq: u64) -> Vec<u8> {
    let mut k = user_prefix(user);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The key of archived message `id` of `user`; big-endian so the archive iterates in id order.
pub fn archived(user: &BareJid, id: u64) -> Vec<u8> {
    offline(user, id)
}

/// The key of document `key` of `user`; documents of one user iterate in key order.
pub fn document(user: &BareJid, key: &DocumentKey) -> Vec<u8> {
    let mut k = user_prefix(user);
    k.extend_from_slice(key.as_str().as_bytes());
    k
}

/// The document key a documents-table key names, given the length of its user prefix.
pub fn document_key(key: &[u8], prefix_len: usize) -> Result<DocumentKey, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "document key".into(),
        detail,
    };
    let raw = key
        .get(prefix_len..)
        .ok_or_else(|| corrupt(format!("{} bytes is shorter than its prefix", key.len())))?;
    let s = std::str::from_utf8(raw).map_err(|e| corrupt(format!("not UTF-8: {e}")))?;
    DocumentKey::new(s).ok_or_else(|| corrupt(format!("{} bytes is not a key", s.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> BareJid {
        BareJid::new(s).expect("valid")
    }

    #[test]
    fn one_users_keys_never_interleave_with_anothers() {
        let a = j("a@x");
        let ab = j("ab@x");
        assert!(offline(&a, u64::MAX) < offline(&ab, 0));
        assert!(offline(&a, u64::MAX) < prefix_end(&user_prefix(&a)));
        assert!(offline(&a, 255) < offline(&a, 256), "big-endian order");
        assert!(roster(&a, &j("zz@zz")) < prefix_end(&user_prefix(&a)));
    }

    #[test]
    fn roster_key_round_trips() {
        let k = roster(&j("a@x"), &j("b@y"));
        assert_eq!(
            roster_contact(&k, user_prefix(&j("a@x")).len()),
            Ok(j("b@y"))
        );
        assert!(roster_contact(&k, k.len() + 1).is_err());
    }
}
