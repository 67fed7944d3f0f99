//! Server dialback (XEP-0220) keys, generated as XEP-0185 recommends: a key is
//! `hex(HMAC-SHA256(hex(SHA256(secret)), receiving + ' ' + originating + ' ' + stream id))`, so any node holding the
//! same secret can verify a key without remembering it.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The dialback namespace (`db:` on server streams).
pub const NS_DIALBACK: &str = "jabber:server:dialback";
/// The stream feature announcing dialback (XEP-0220 §2.4).
pub const NS_DIALBACK_FEATURE: &str = "urn:xmpp:features:dialback";

/// The secret dialback keys are made from. Never logged.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A secret from its text (the `[s2s] dialback_secret` key or the generated file's contents).
    pub fn new(text: &str) -> Self {
        Secret(text.trim().as_bytes().to_vec())
    }

    /// The key the originating server `originating` presents to `receiving` on the stream `stream_id`.
    pub fn key(&self, receiving: &str, originating: &str, stream_id: &str) -> String {
        // XEP-0185 §2: the hash of the secret is used in its hexadecimal form.
        let hashed = hex(&Sha256::digest(&self.0));
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(hashed.as_bytes())
            .expect("HMAC takes any key length");
        mac.update(receiving.as_bytes());
        mac.update(b" ");
        mac.update(originating.as_bytes());
        mac.update(b" ");
        mac.update(stream_id.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `key` is the one this secret makes for the same three values (compared in constant time).
    pub fn verifies(&self, receiving: &str, originating: &str, stream_id: &str, key: &str) -> bool {
        let expected = self.key(receiving, originating, stream_id);
        let key = key.trim().to_ascii_lowercase();
        expected.len() == key.len() && bool::from(expected.as_bytes().ct_eq(key.as_bytes()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_xep_0185() {
        // XEP-0185 §3's example: secret "s3cr3tf0rd14lb4ck", receiving xmpp.example.com, originating
        // example.org, stream id D60000229F.
        let secret = Secret::new("s3cr3tf0rd14lb4ck");
        let key = secret.key("xmpp.example.com", "example.org", "D60000229F");
        assert_eq!(
            key,
            "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"
        );
        assert!(secret.verifies("xmpp.example.com", "example.org", "D60000229F", &key));
        assert!(!secret.verifies("xmpp.example.com", "example.org", "D60000229E", &key));
        assert!(!Secret::new("other").verifies(
            "xmpp.example.com",
            "example.org",
            "D60000229F",
            &key
        ));
        assert!(!secret.verifies("xmpp.example.com", "example.org", "D60000229F", ""));
    }
}
