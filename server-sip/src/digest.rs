//! Digest authentication of requests (RFC 3261 §22, RFC 8760): stateless nonces and the check of a request's
//! credentials against the account's stored `H(user:realm:password)`.
//!
//! A nonce is the time it was issued plus an HMAC of that time under a per-process secret, so the server keeps no
//! nonce table: any nonce it issued verifies until it is `lifetime` old, after which the client is challenged
//! again with `stale=true` (RFC 3261 §22.4: re-auth without asking the user). A nonce may be reused for many
//! requests within its lifetime — phones and sipp do that — and the nonce count is not tracked; the short lifetime
//! bounds replay instead.

use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use presence_core::BareJid;
use presence_core::store::{DigestHash, DigestSecret};
use sha2::Sha256;
use sip_codec::Request;
use sip_codec::auth::{Algorithm, DigestChallenge, DigestCredentials};

/// The outcome of checking a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The request is from this user.
    Authenticated(BareJid),
    /// No usable credentials (or an expired nonce): answer 401 with fresh challenges.
    Challenge {
        /// The nonce was ours but too old.
        stale: bool,
    },
    /// Credentials that are wrong: answer 403 with this reason.
    Forbidden(&'static str),
    /// Credentials that do not parse: answer 400 with this reason.
    Malformed(&'static str),
}

/// Issues and checks nonces for one realm.
pub struct Authenticator {
    realm: String,
    secret: [u8; 32],
    epoch: Instant,
    lifetime: Duration,
}

impl Authenticator {
    /// An authenticator for `realm` whose nonces live `lifetime`; `secret` keys the nonce MAC.
    pub fn new(realm: &str, secret: [u8; 32], epoch: Instant, lifetime: Duration) -> Self {
        Authenticator {
            realm: realm.to_owned(),
            secret,
            epoch,
            lifetime,
        }
    }

    fn mac(&self, issued: u64) -> [u8; 16] {
        let mut m =
            hmac::Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        m.update(&issued.to_be_bytes());
        m.update(self.realm.as_bytes());
        let full = m.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// A fresh nonce.
    pub fn nonce(&self, now: Instant) -> String {
        let issued = now.saturating_duration_since(self.epoch).as_millis() as u64;
        let mut raw = issued.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.mac(issued));
        hex(&raw)
    }

    /// The `WWW-Authenticate` values to send: MD5, then SHA-256. RFC 8760 §2.4 would list the preferred SHA-256
    /// first, but much of the installed base (sipp 3.6 among them) answers the first challenge whatever its
    /// algorithm and gives up on SHA-256, while clients that know SHA-256 also know MD5; interop wins.
    pub fn challenges(&self, now: Instant, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        [Algorithm::Md5, Algorithm::Sha256]
            .into_iter()
            .map(|algorithm| {
                DigestChallenge {
                    realm: self.realm.clone(),
                    nonce: nonce.clone(),
                    opaque: None,
                    algorithm,
                    qop: vec!["auth".into()],
                    stale,
                }
                .to_header()
                .to_string()
            })
            .collect()
    }

    /// Whether `nonce` is ours, and if so whether it is still fresh.
    fn nonce_state(&self, nonce: &str, now: Instant) -> NonceState {
        let Some(raw) = unhex(nonce) else {
            return NonceState::Foreign;
        };
        if raw.len() != 24 {
            return NonceState::Foreign;
        }
        let issued = u64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        let expected = self.mac(issued);
        // Constant-time comparison: the MAC is what keeps nonces unforgeable.
        if expected
            .iter()
            .zip(&raw[8..])
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            != 0
        {
            return NonceState::Foreign;
        }
        let age = now
            .saturating_duration_since(self.epoch)
            .saturating_sub(Duration::from_millis(issued));
        if age > self.lifetime {
            NonceState::Stale
        } else {
            NonceState::Fresh
        }
    }

    /// Checks `req`'s Authorization for this realm. `secrets` looks up the digest secrets of a user's account
    /// by address (`None`: no such account).
    pub fn check<'a>(
        &self,
        req: &Request,
        now: Instant,
        secrets: impl FnOnce(&BareJid) -> Option<&'a [DigestSecret]>,
    ) -> Verdict {
        let Ok(headers) = req.headers.authorization() else {
            return Verdict::Malformed("Malformed Authorization header");
        };
        let Some(header) = headers
            .iter()
            .find(|h| h.is_digest() && h.get("realm") == Some(self.realm.as_str()))
        else {
            return Verdict::Challenge { stale: false };
        };
        let creds = match DigestCredentials::from_header(header) {
            Ok(c) => c,
            Err(_) => return Verdict::Malformed("Malformed digest credentials"),
        };
        match self.nonce_state(&creds.nonce, now) {
            NonceState::Foreign => return Verdict::Challenge { stale: false },
            NonceState::Stale => return Verdict::Challenge { stale: true },
            NonceState::Fresh => {}
        }
        let Ok(user) = BareJid::new(&format!("{}@{}", creds.username, self.realm)) else {
            return Verdict::Forbidden("Bad credentials");
        };
        let hash = match creds.algorithm {
            Algorithm::Md5 | Algorithm::Md5Sess => DigestHash::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => DigestHash::Sha256,
        };
        // An unknown user and a wrong password look the same to the client.
        let Some(secret) =
            secrets(&user).and_then(|s| s.iter().find(|d| d.hash == hash && d.realm == self.realm))
        else {
            return Verdict::Forbidden("Bad credentials");
        };
        if creds.verify_with_ha1(&secret.ha1, req.method.as_str(), &req.body) {
            Verdict::Authenticated(user)
        } else {
            Verdict::Forbidden("Bad credentials")
        }
    }
}

enum NonceState {
    Foreign,
    Stale,
    Fresh,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::digest_secrets;
    use sip_codec::Message;

    fn auth() -> (Authenticator, Instant) {
        let epoch = Instant::now();
        (
            Authenticator::new("example.com", [7; 32], epoch, Duration::from_secs(300)),
            epoch,
        )
    }

    /// Alice's digest secrets for `password`, leaked so a lookup can lend them.
    fn account(password: &str) -> &'static [DigestSecret] {
        let jid = BareJid::new("alice@example.com").expect("valid");
        digest_secrets(&jid, password).leak()
    }

    fn register(authorization: Option<String>) -> Request {
        let mut text = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n".to_owned();
        if let Some(a) = authorization {
            text.push_str(&format!("Authorization: {a}\r\n"));
        }
        text.push_str("\r\n");
        match Message::parse(text.as_bytes()).expect("parses") {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn answer(a: &Authenticator, now: Instant, algorithm: Algorithm, password: &str) -> String {
        let challenge = a
            .challenges(now, false)
            .into_iter()
            .map(|c| {
                let h = sip_codec::header::parse_auth(&c).expect("parses");
                DigestChallenge::from_header(&h).expect("digest")
            })
            .find(|c| c.algorithm == algorithm)
            .expect("offered");
        sip_codec::auth::answer(
            &challenge,
            "alice",
            password,
            "REGISTER",
            "sip:example.com",
            "abc",
            1,
            b"",
        )
        .to_header()
        .to_string()
    }

    #[test]
    fn no_credentials_is_a_challenge_for_both_algorithms() {
        let (a, now) = auth();
        assert_eq!(
            a.check(&register(None), now, |_| None),
            Verdict::Challenge { stale: false }
        );
        let offered = a.challenges(now, false);
        assert!(
            offered[0].contains("MD5") && offered[1].contains("SHA-256"),
            "{offered:?}"
        );
    }

    #[test]
    fn right_password_authenticates_with_md5_and_sha256() {
        let (a, now) = auth();
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let req = register(Some(answer(&a, now, alg, "pw")));
            assert_eq!(
                a.check(&req, now, |_| Some(account("pw"))),
                Verdict::Authenticated(BareJid::new("alice@example.com").expect("valid")),
                "{alg:?}"
            );
        }
    }

    #[test]
    fn wrong_password_and_unknown_user_are_forbidden() {
        let (a, now) = auth();
        let req = register(Some(answer(&a, now, Algorithm::Md5, "guess")));
        assert_eq!(
            a.check(&req, now, |_| Some(account("pw"))),
            Verdict::Forbidden("Bad credentials")
        );
        assert_eq!(
            a.check(&req, now, |_| None),
            Verdict::Forbidden("Bad credentials")
        );
    }

    #[test]
    fn old_nonce_is_stale_and_forged_nonce_is_rechallenged() {
        let (a, now) = auth();
        let req = register(Some(answer(&a, now, Algorithm::Md5, "pw")));
        let later = now + Duration::from_secs(301);
        assert_eq!(
            a.check(&req, later, |_| Some(account("pw"))),
            Verdict::Challenge { stale: true }
        );
        let other = Authenticator::new("example.com", [8; 32], now, Duration::from_secs(300));
        assert_eq!(
            other.check(&req, now, |_| Some(account("pw"))),
            Verdict::Challenge { stale: false }
        );
    }
}
