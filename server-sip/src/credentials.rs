//! The SIP digest secrets of an account (RFC 3261 §22.4, RFC 8760): `H(user:realm:password)` per algorithm,
//! computed once when the password is set so the password itself is never stored.

use presence_core::BareJid;
use presence_core::store::{DigestHash, DigestSecret};
use sip_codec::auth::{Algorithm, ha1};

/// The digest secrets for `jid` with `password`: the realm is the user's domain and the digest username the
/// local part, which is what a phone is configured with for `sip:local@domain`.
pub fn digest_secrets(jid: &BareJid, password: &str) -> Vec<DigestSecret> {
    let user = jid.local().unwrap_or_default();
    let realm = jid.domain();
    [
        (DigestHash::Sha256, Algorithm::Sha256),
        (DigestHash::Md5, Algorithm::Md5),
    ]
    .into_iter()
    .map(|(hash, algorithm)| DigestSecret {
        hash,
        realm: realm.to_owned(),
        ha1: ha1(algorithm, user, realm, password),
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_secret_is_the_rfc_2617_ha1() {
        let jid = BareJid::new("alice@example.com").expect("valid");
        let secrets = digest_secrets(&jid, "secret");
        let md5 = secrets
            .iter()
            .find(|s| s.hash == DigestHash::Md5)
            .expect("md5");
        assert_eq!(md5.realm, "example.com");
        assert_eq!(md5.ha1, Algorithm::Md5.hex(b"alice:example.com:secret"));
        assert_eq!(secrets.len(), 2);
    }
}
