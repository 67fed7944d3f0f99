//! Properties of the `sip_digest` target: SIP digest credentials, from header parsing
//! (`sip_codec::header::parse_auth`, `sip_codec::auth`) to the registrar's check
//! (`server_sip::digest::Authenticator`).
//!
//! The input is a flag byte and then fields separated by `0xFF`:
//!
//! - flag bit 0 clear: field 0 is an `Authorization` value (or `Proxy-Authorization` with bit 1),
//!   taken as is.
//! - flag bit 0 set: the value is built from the fields `username, uri, cnonce, nc, qop, response,
//!   password, body, realm, nonce`, with the algorithm from bits 2–3; bit 4 asks for a nonce the
//!   authenticator issued (else field 9 is the nonce, bit 5 makes that nonce stale), bit 6
//!   computes the response from `password` as a client would (else `response` is sent as given),
//!   bit 7 keeps `username` and `realm` (else they are `alice` and the authenticator's realm).
//!
//! Checked: nothing panics; every value that parses writes back to text that parses to the same
//! values (the header list, each challenge or credentials, and typed digest credentials); the
//! authenticator accepts only `alice` and only a response that an independent RFC 2617/7616
//! computation from her password gives; and a response computed with her password over a fresh
//! nonce is accepted, with any other password refused.

use std::time::{Duration, Instant};

use md5::Md5;
use presence_core::BareJid;
use server_sip::credentials::digest_secrets;
use server_sip::digest::{Authenticator, Verdict};
use sha2::{Digest, Sha256};
use sip_codec::auth::{Algorithm, DigestChallenge, DigestCredentials, answer};
use sip_codec::header::{AuthHeader, parse_auth};
use sip_codec::{HeaderName, Headers, Method, Request, Uri};

const REALM: &str = "example.com";
const PASSWORD: &str = "correct horse";
const LIFETIME: Duration = Duration::from_secs(300);

/// What one input exercised, so unit tests can tell a check ran from a check skipped.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DigestOutcome {
    /// How many challenges or credentials the header held, if it parsed.
    pub parsed: Option<usize>,
    /// The authenticator's verdict.
    pub verdict: Option<Verdict>,
    /// The built credentials answered a fresh nonce with the right password, so had to pass.
    pub must_authenticate: bool,
}

fn alice() -> BareJid {
    BareJid::new("alice@example.com").expect("valid JID")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `H(data)` in lower-case hex, written here from RFC 7616 rather than taken from the codec.
fn h(algorithm: Algorithm, data: &str) -> String {
    match algorithm {
        Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data.as_bytes())),
        Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data.as_bytes())),
    }
}

/// The response alice's password gives for these credentials (RFC 2617 §3.2.2, RFC 7616 §3.4),
/// with the server's reading of missing `cnonce`/`nc` as empty.
fn expected_response(c: &DigestCredentials, method: &str, body: &[u8]) -> String {
    let alg = c.algorithm;
    let cnonce = c.cnonce.as_deref().unwrap_or("");
    let mut ha1 = h(alg, &format!("alice:{REALM}:{PASSWORD}"));
    if matches!(alg, Algorithm::Md5Sess | Algorithm::Sha256Sess) {
        ha1 = h(alg, &format!("{ha1}:{}:{cnonce}", c.nonce));
    }
    let ha2 = match c.qop.as_deref() {
        Some(q) if q.eq_ignore_ascii_case("auth-int") => {
            let body_hash = match alg {
                Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(body)),
                _ => hex(&Sha256::digest(body)),
            };
            h(alg, &format!("{method}:{}:{body_hash}", c.uri))
        }
        _ => h(alg, &format!("{method}:{}", c.uri)),
    };
    match c.qop.as_deref() {
        Some(q) => h(
            alg,
            &format!(
                "{ha1}:{}:{}:{cnonce}:{q}:{ha2}",
                c.nonce,
                c.nc.as_deref().unwrap_or("")
            ),
        ),
        None => h(alg, &format!("{ha1}:{}:{ha2}", c.nonce)),
    }
}

/// Every parsed value writes back to text that parses to the same value.
fn check_round_trips(headers: &Headers, name: &HeaderName) -> Option<Vec<AuthHeader>> {
    let list = match name {
        HeaderName::ProxyAuthorization => headers.proxy_authorization(),
        _ => headers.authorization(),
    }
    .ok()?;
    let mut again = Headers::new();
    again.push(
        name.clone(),
        list.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    );
    let reparsed = match name {
        HeaderName::ProxyAuthorization => again.proxy_authorization(),
        _ => again.authorization(),
    };
    assert_eq!(reparsed.as_ref(), Ok(&list), "{again:?}");
    for h in &list {
        let text = h.to_string();
        assert_eq!(parse_auth(&text).as_ref(), Ok(h), "{text}");
        if let Ok(c) = DigestCredentials::from_header(h) {
            let text = c.to_header().to_string();
            let back = parse_auth(&text).map(|h| DigestCredentials::from_header(&h));
            assert_eq!(back, Ok(Ok(c)), "{text}");
        }
        if let Ok(c) = DigestChallenge::from_header(h) {
            let text = c.to_header().to_string();
            let back = parse_auth(&text).map(|h| DigestChallenge::from_header(&h));
            assert_eq!(back, Ok(Ok(c)), "{text}");
        }
    }
    Some(list)
}

fn without_controls(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// Runs the checks on one input; panics on a broken property.
pub fn check_sip_digest(data: &[u8]) -> DigestOutcome {
    let Some((&flags, rest)) = data.split_first() else {
        return DigestOutcome::default();
    };
    let fields: Vec<String> = rest
        .split(|&b| b == 0xFF)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let field = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");

    let epoch = Instant::now();
    let now = epoch + LIFETIME + Duration::from_secs(1);
    let auth = Authenticator::new(REALM, [7; 32], epoch, LIFETIME);
    let method = Method::Register;
    let uri: Uri = "sip:example.com".parse().expect("valid URI");
    let mut outcome = DigestOutcome::default();
    let mut req = Request::new(method.clone(), uri);
    let name = if flags & 2 != 0 {
        HeaderName::ProxyAuthorization
    } else {
        HeaderName::Authorization
    };

    if flags & 1 == 0 {
        req.headers.push(name.clone(), field(0));
    } else {
        let algorithm = [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ][usize::from(flags >> 2 & 3)];
        let keep_names = flags & 128 != 0;
        let username = if keep_names {
            without_controls(field(0))
        } else {
            "alice".to_owned()
        };
        let realm = if keep_names {
            without_controls(field(8))
        } else {
            REALM.to_owned()
        };
        let fresh = flags & 16 != 0;
        let nonce = if fresh {
            auth.nonce(now)
        } else if flags & 32 != 0 {
            auth.nonce(epoch)
        } else {
            without_controls(field(9))
        };
        let password = field(6);
        let body = field(7).as_bytes().to_vec();
        let qop = without_controls(field(4));
        let challenge = DigestChallenge {
            realm: realm.clone(),
            nonce: nonce.clone(),
            opaque: None,
            algorithm,
            qop: (!qop.is_empty()).then(|| qop.clone()).into_iter().collect(),
            stale: false,
        };
        let uri_text = without_controls(field(1));
        let cnonce = without_controls(field(2));
        let creds = if flags & 64 != 0 {
            answer(
                &challenge,
                &username,
                password,
                method.as_str(),
                &uri_text,
                &cnonce,
                u32::from_str_radix(field(3).get(..8).unwrap_or(field(3)), 16).unwrap_or(1),
                &body,
            )
        } else {
            DigestCredentials {
                username: username.clone(),
                realm: realm.clone(),
                nonce,
                uri: uri_text,
                response: without_controls(field(5)),
                algorithm,
                cnonce: (!cnonce.is_empty()).then_some(cnonce),
                opaque: None,
                qop: (!qop.is_empty()).then_some(qop),
                nc: (!field(3).is_empty()).then(|| without_controls(field(3))),
            }
        };
        req.body = body;
        req.headers
            .push(name.clone(), creds.to_header().to_string());
        // What the codec writes must read back as the same credentials.
        let list = check_round_trips(&req.headers, &name);
        let Some([parsed]) = list.as_deref() else {
            panic!("built credentials do not parse: {:?}", req.headers);
        };
        assert_eq!(DigestCredentials::from_header(parsed).as_ref(), Ok(&creds));
        outcome.must_authenticate = flags & 64 != 0
            && fresh
            && password == PASSWORD
            && username == "alice"
            && realm == REALM
            && name == HeaderName::Authorization;
    }

    let list = check_round_trips(&req.headers, &name);
    outcome.parsed = list.as_ref().map(Vec::len);
    let secrets = digest_secrets(&alice(), PASSWORD);
    let verdict = auth.check(&req, now, |user| {
        (*user == alice()).then_some(secrets.as_slice())
    });
    if let Verdict::Authenticated(user) = &verdict {
        assert_eq!(*user, alice(), "authenticated as someone else");
        let list = list.expect("authenticated without parsable credentials");
        let creds = list
            .iter()
            .find(|h| h.is_digest() && h.get("realm") == Some(REALM))
            .and_then(|h| DigestCredentials::from_header(h).ok())
            .expect("authenticated without digest credentials for the realm");
        let expected = expected_response(&creds, method.as_str(), &req.body);
        assert!(
            creds.response.eq_ignore_ascii_case(&expected),
            "accepted response {} but the password gives {expected}",
            creds.response
        );
    }
    if outcome.must_authenticate {
        assert_eq!(
            verdict,
            Verdict::Authenticated(alice()),
            "the right password was refused: {:?}",
            req.headers
        );
    }
    if flags & 1 != 0 && field(6) != PASSWORD && flags & 64 != 0 {
        assert!(
            !matches!(verdict, Verdict::Authenticated(_)),
            "another password was accepted"
        );
    }
    // The challenges the authenticator sends are digest challenges for its realm and parse.
    for text in auth.challenges(now, flags & 32 != 0) {
        let c = DigestChallenge::from_header(&parse_auth(&text).expect("challenge parses"))
            .expect("digest challenge");
        assert_eq!((c.realm.as_str(), c.stale), (REALM, flags & 32 != 0));
    }
    outcome.verdict = Some(verdict);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(flags: u8, fields: &[&str]) -> Vec<u8> {
        let mut v = vec![flags | 1];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                v.push(0xFF);
            }
            v.extend_from_slice(f.as_bytes());
        }
        v
    }

    /// username, uri, cnonce, nc, qop, response, password, body, realm, nonce
    fn fields<'a>(qop: &'a str, password: &'a str, response: &'a str) -> [&'a str; 10] {
        [
            "alice",
            "sip:example.com",
            "c1",
            "00000001",
            qop,
            response,
            password,
            "body",
            REALM,
            "",
        ]
    }

    #[test]
    fn right_password_is_accepted_for_every_algorithm_and_qop() {
        for alg in 0..4u8 {
            for qop in ["", "auth", "auth-int"] {
                let o = check_sip_digest(&built(alg << 2 | 16 | 64, &fields(qop, PASSWORD, "")));
                assert!(o.must_authenticate);
                assert_eq!(
                    o.verdict,
                    Some(Verdict::Authenticated(alice())),
                    "{alg} {qop}"
                );
            }
        }
    }

    #[test]
    fn wrong_password_guessed_response_and_stale_nonce_are_refused() {
        let o = check_sip_digest(&built(16 | 64, &fields("auth", "guess", "")));
        assert_eq!(o.verdict, Some(Verdict::Forbidden("Bad credentials")));
        let o = check_sip_digest(&built(
            16,
            &fields("auth", "", "00000000000000000000000000000000"),
        ));
        assert_eq!(o.verdict, Some(Verdict::Forbidden("Bad credentials")));
        let o = check_sip_digest(&built(32 | 64, &fields("auth", PASSWORD, "")));
        assert_eq!(o.verdict, Some(Verdict::Challenge { stale: true }));
    }

    #[test]
    fn raw_values_parse_and_round_trip() {
        let o = check_sip_digest(
            b"\0Digest username=\"bob\", realm=\"example.com\", nonce=\"00\", uri=\"sip:x\", \
              response=\"1\", qop=auth, nc=00000001, cnonce=\"a,b\", Basic abc=/+",
        );
        assert_eq!(o.parsed, Some(2));
        assert_eq!(o.verdict, Some(Verdict::Challenge { stale: false }));
        let o = check_sip_digest(b"\0Digest username=\"unterminated");
        assert_eq!(o.parsed, None);
        assert_eq!(
            o.verdict,
            Some(Verdict::Malformed("Malformed Authorization header"))
        );
    }

    /// Credentials whose `qop` or `nc` is not a token (legal when quoted) were written unquoted
    /// and could not be read back.
    #[test]
    fn quoted_qop_and_nc_round_trip() {
        let o = check_sip_digest(
            b"\0Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", \
              qop=\"auth, x\", nc=\"1 2\"",
        );
        assert_eq!(o.parsed, Some(1));
    }
}
