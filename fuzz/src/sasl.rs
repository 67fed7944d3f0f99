//! Properties of the `sasl` target: the SASL exchanges of `server_xmpp::sasl`.
//!
//! The input is a flag byte and then fields separated by `0xFF` (a byte UTF-8 never holds, so
//! every text field can still be any string): the account's password, a mechanism name, a server
//! nonce and the client's messages. One account, `user`, has verifiers of that password (few
//! PBKDF2 iterations, so the fuzzer stays fast); `broken` is a user whose lookup fails.
//!
//! Checked: nothing panics; a failure to start has the reason the inputs call for; a success is
//! only ever for `user` and only for a message that carries the password (PLAIN) or the proof an
//! independent SCRAM client computes from it; and an honest SCRAM-SHA-1/256 and PLAIN exchange
//! with the password succeeds (with the right server signature), while the same exchange with one
//! bit of the proof flipped, or another password, does not.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use presence_core::BareJid;
use presence_core::store::{ScramCredentials, ScramHash, StoreError};
use server_xmpp::sasl::credentials::{prepare_password, scram_credentials};
use server_xmpp::sasl::{Failure, Mechanism, Params, SaslServer, Step, offered};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// PBKDF2 iterations of the fuzzed account: SCRAM allows any count, and 4096 would make every
/// exchange take milliseconds.
const ITERATIONS: u32 = 2;
const SALT: &[u8] = b"fuzz salt";
const SECRET: &[u8] = b"fuzz server secret";
const DEFAULT_NONCE: &str = "3rfcNHYJY1ZVvWVs7j";
/// Used when the fuzzed password is not a valid PRECIS OpaqueString (so no verifier can exist).
const FALLBACK_PASSWORD: &str = "pencil";

/// What one input exercised, so unit tests can tell a check ran from a check skipped.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SaslOutcome {
    /// `start` refused the mechanism or parameters with this failure.
    pub start_failure: Option<Failure>,
    /// Successes of the fuzzed exchange (each checked against the password).
    pub successes: usize,
    /// The last step of the fuzzed exchange.
    pub last: Option<Step>,
}

fn hmac_of(hash: ScramHash, key: &[u8], data: &[u8]) -> Vec<u8> {
    match hash {
        ScramHash::Sha1 => {
            let mut m = hmac::Hmac::<Sha1>::new_from_slice(key).expect("any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        ScramHash::Sha256 => {
            let mut m = hmac::Hmac::<Sha256>::new_from_slice(key).expect("any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    }
}

fn hash_of(hash: ScramHash, data: &[u8]) -> Vec<u8> {
    match hash {
        ScramHash::Sha1 => Sha1::digest(data).to_vec(),
        ScramHash::Sha256 => Sha256::digest(data).to_vec(),
    }
}

/// A SCRAM client written from RFC 5802 §3, independent of the server's code.
struct Client {
    hash: ScramHash,
    salted: Vec<u8>,
}

impl Client {
    fn new(hash: ScramHash, password: &str, salt: &[u8], iterations: u32) -> Self {
        let mut salted = vec![0; if hash == ScramHash::Sha1 { 20 } else { 32 }];
        match hash {
            ScramHash::Sha1 => {
                pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, iterations, &mut salted)
            }
            ScramHash::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted)
            }
        }
        Client { hash, salted }
    }

    fn proof(&self, auth_message: &str) -> Vec<u8> {
        let client_key = hmac_of(self.hash, &self.salted, b"Client Key");
        let stored_key = hash_of(self.hash, &client_key);
        let signature = hmac_of(self.hash, &stored_key, auth_message.as_bytes());
        client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect()
    }

    fn server_signature(&self, auth_message: &str) -> Vec<u8> {
        let server_key = hmac_of(self.hash, &self.salted, b"Server Key");
        hmac_of(self.hash, &server_key, auth_message.as_bytes())
    }
}

fn hash_of_mechanism(m: Mechanism) -> Option<ScramHash> {
    match m {
        Mechanism::ScramSha1 => Some(ScramHash::Sha1),
        Mechanism::ScramSha256 => Some(ScramHash::Sha256),
        Mechanism::Plain => None,
    }
}

/// The credential store of the fuzzed exchange.
fn lookup_for(
    password: &str,
) -> impl Fn(&str) -> Result<Option<Vec<ScramCredentials>>, StoreError> + use<> {
    let creds: Vec<ScramCredentials> = [ScramHash::Sha1, ScramHash::Sha256]
        .into_iter()
        .map(|h| scram_credentials(password, h, ITERATIONS, SALT))
        .collect();
    move |user: &str| match user {
        "user" => Ok(Some(creds.clone())),
        "broken" => Err(StoreError::Backend("fuzz".into())),
        _ => Ok(None),
    }
}

/// `user` as the server normalises a SASL name (the localpart rules of a JID).
fn is_user(name: &str) -> bool {
    BareJid::from_parts(Some(name), "localhost")
        .ok()
        .is_some_and(|j| j.local() == Some("user"))
}

fn params<'a>(tls: bool, server_nonce: &'a str) -> Params<'a> {
    Params {
        tls,
        server_nonce,
        secret: SECRET,
    }
}

/// Runs the fuzzed exchange and the honest ones; panics on a broken property.
pub fn check_sasl(data: &[u8]) -> SaslOutcome {
    let Some((&flags, rest)) = data.split_first() else {
        return SaslOutcome::default();
    };
    let mut fields = rest.split(|&b| b == 0xFF);
    let mut text = || String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let raw_password = text();
    let raw_mechanism = text();
    let raw_nonce = text();
    let messages: Vec<&[u8]> = fields.collect();

    let tls = flags & 1 != 0;
    let mechanism = match (flags >> 1) & 3 {
        0 => raw_mechanism.as_str(),
        1 => "SCRAM-SHA-1",
        2 => "SCRAM-SHA-256",
        _ => "PLAIN",
    };
    let initial = flags & 8 != 0;
    let server_nonce = if flags & 16 != 0 {
        raw_nonce.as_str()
    } else {
        DEFAULT_NONCE
    };
    let password = prepare_password(&raw_password).unwrap_or_else(|_| FALLBACK_PASSWORD.to_owned());
    let lookup = lookup_for(&password);

    check_offered();
    honest_exchanges(&password, &raw_password, &lookup);
    fuzzed_exchange(
        mechanism,
        tls,
        server_nonce,
        initial,
        &messages,
        &password,
        &lookup,
    )
}

/// Every offered mechanism is known by its name, PLAIN only with TLS.
fn check_offered() {
    for tls in [false, true] {
        let m = offered(tls);
        assert_eq!(m.contains(&Mechanism::Plain), tls);
        for mech in m {
            assert_eq!(Mechanism::from_name(mech.name()), Some(mech));
        }
    }
}

fn scram_client_first(client_nonce: &str) -> String {
    format!("n,,n=user,r={client_nonce}")
}

/// An honest exchange succeeds with the right server signature; a flipped proof bit fails.
fn honest_exchanges(
    password: &str,
    raw_password: &str,
    lookup: &impl Fn(&str) -> Result<Option<Vec<ScramCredentials>>, StoreError>,
) {
    // The client nonce is any printable, comma-free text: take it from the password.
    let client_nonce: String = raw_password
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != ',')
        .take(24)
        .collect();
    let client_nonce = if client_nonce.is_empty() {
        "fyko+d2lbbFgONRv9qkxdawL".to_owned()
    } else {
        client_nonce
    };
    for (mechanism, hash) in [
        (Mechanism::ScramSha1, ScramHash::Sha1),
        (Mechanism::ScramSha256, ScramHash::Sha256),
    ] {
        let client = Client::new(hash, password, SALT, ITERATIONS);
        for flip in [None, Some(0usize), Some(usize::MAX)] {
            let first = scram_client_first(&client_nonce);
            let (mut server, step) = SaslServer::start(
                mechanism.name(),
                Some(first.as_bytes()),
                params(false, DEFAULT_NONCE),
                lookup,
            )
            .expect("SCRAM starts");
            let Step::Challenge(server_first) = step else {
                panic!("client-first {first:?} got {step:?}");
            };
            let server_first = String::from_utf8(server_first).expect("UTF-8 server-first");
            assert_eq!(
                server_first,
                format!(
                    "r={client_nonce}{DEFAULT_NONCE},s={},i={ITERATIONS}",
                    B64.encode(SALT)
                )
            );
            let without_proof = format!("c=biws,r={client_nonce}{DEFAULT_NONCE}");
            let auth_message = format!("n=user,r={client_nonce},{server_first},{without_proof}");
            let mut proof = client.proof(&auth_message);
            if let Some(bit) = flip {
                let bit = bit.min(proof.len() * 8 - 1);
                proof[bit / 8] ^= 1 << (bit % 8);
            }
            let final_message = format!("{without_proof},p={}", B64.encode(&proof));
            let step = server.step(final_message.as_bytes(), lookup);
            match flip {
                None => assert_eq!(
                    step,
                    Step::Success {
                        username: "user".into(),
                        authzid: None,
                        additional_data: format!(
                            "v={}",
                            B64.encode(client.server_signature(&auth_message))
                        )
                        .into_bytes(),
                    },
                    "{} with password {password:?}",
                    mechanism.name()
                ),
                Some(_) => assert_eq!(
                    step,
                    Step::Failure(Failure::NotAuthorized),
                    "{} with a flipped proof bit",
                    mechanism.name()
                ),
            }
            assert!(server.is_done());
        }
    }
    // A PLAIN client sends the password as typed; the server prepares it. (Not the prepared form:
    // preparing is not idempotent, e.g. U+0387 is accepted and becomes U+00B7, which preparing
    // again refuses.)
    let typed = if prepare_password(raw_password).is_ok() {
        raw_password
    } else {
        FALLBACK_PASSWORD
    };
    for (sent, right) in [(typed.to_owned(), true), (format!("{typed}x"), false)] {
        let mut message = b"\0user\0".to_vec();
        message.extend_from_slice(sent.as_bytes());
        let (_, step) = SaslServer::start("PLAIN", Some(&message), params(true, "n"), lookup)
            .expect("PLAIN starts over TLS");
        // An over-long password is a malformed request (RFC 4616 §2), not a wrong one.
        let expected = if sent.len() > 255 {
            Step::Failure(Failure::MalformedRequest)
        } else if right {
            Step::Success {
                username: "user".into(),
                authzid: None,
                additional_data: Vec::new(),
            }
        } else {
            Step::Failure(Failure::NotAuthorized)
        };
        assert_eq!(step, expected, "PLAIN with {sent:?}");
    }
}

/// The client messages of the fuzzed exchange as far as SCRAM needs to remember them.
#[derive(Default)]
struct Transcript {
    client_first: Option<Vec<u8>>,
    server_first: Option<Vec<u8>>,
}

#[allow(clippy::too_many_arguments)]
fn fuzzed_exchange(
    mechanism: &str,
    tls: bool,
    server_nonce: &str,
    initial: bool,
    messages: &[&[u8]],
    password: &str,
    lookup: &impl Fn(&str) -> Result<Option<Vec<ScramCredentials>>, StoreError>,
) -> SaslOutcome {
    let mut outcome = SaslOutcome::default();
    let known = Mechanism::from_name(mechanism);
    let (initial_response, rest) = match (initial, messages.split_first()) {
        (true, Some((first, rest))) => (Some(*first), rest),
        (true, None) => (Some(&[][..]), messages),
        (false, _) => (None, messages),
    };
    let started = SaslServer::start(
        mechanism,
        initial_response,
        params(tls, server_nonce),
        lookup,
    );
    let (mut server, step) = match started {
        Ok(s) => s,
        Err(f) => {
            let expected = match known {
                None => Failure::InvalidMechanism,
                Some(Mechanism::Plain) => Failure::EncryptionRequired,
                Some(_) => Failure::TemporaryAuthFailure,
            };
            assert_eq!(f, expected, "start({mechanism:?}) refused");
            if f == Failure::TemporaryAuthFailure {
                assert!(
                    server_nonce.is_empty()
                        || server_nonce
                            .bytes()
                            .any(|b| !(0x21..=0x7e).contains(&b) || b == b','),
                    "a printable server nonce {server_nonce:?} was refused"
                );
            }
            outcome.start_failure = Some(f);
            return outcome;
        }
    };
    let Some(known) = known else {
        panic!("unknown mechanism {mechanism:?} started");
    };
    assert!(
        tls || known != Mechanism::Plain,
        "PLAIN started without TLS"
    );

    let mut transcript = Transcript::default();
    let mut sent = initial_response;
    let mut step = step;
    let mut rest = rest.iter();
    loop {
        if let Some(m) = sent
            && transcript.client_first.is_none()
        {
            transcript.client_first = Some(m.to_vec());
        }
        match &step {
            Step::Challenge(c) => {
                if sent.is_some() && transcript.server_first.is_none() {
                    transcript.server_first = Some(c.clone());
                }
                assert!(!server.is_done(), "a challenge ended the exchange");
            }
            Step::Success { username, .. } => {
                assert_eq!(username, "user", "success for someone else");
                let last = sent.expect("success needs a client message");
                justify_success(known, last, &transcript, password);
                outcome.successes += 1;
            }
            Step::Failure(_) => {}
        }
        if !matches!(step, Step::Challenge(_)) {
            assert!(server.is_done(), "{step:?} left the exchange open");
            // Nothing more is accepted, whatever comes.
            let after = rest.next().copied().unwrap_or(b"again");
            assert_eq!(
                server.step(after, lookup),
                Step::Failure(Failure::MalformedRequest)
            );
            break;
        }
        let Some(next) = rest.next() else {
            break;
        };
        sent = Some(next);
        step = server.step(next, lookup);
    }
    outcome.last = Some(step);
    outcome
}

/// A success must come from a message that proves the password.
fn justify_success(mechanism: Mechanism, last: &[u8], t: &Transcript, password: &str) {
    let Some(hash) = hash_of_mechanism(mechanism) else {
        // PLAIN: `authzid NUL authcid NUL passwd` with authcid `user` and the password.
        let parts: Vec<&[u8]> = last.split(|&b| b == 0).collect();
        let [_, authcid, sent] = parts[..] else {
            panic!("PLAIN succeeded for a message without two NULs: {last:?}");
        };
        let authcid = std::str::from_utf8(authcid).expect("UTF-8 authcid");
        assert!(is_user(authcid), "PLAIN succeeded for {authcid:?}");
        let sent = std::str::from_utf8(sent).expect("UTF-8 password");
        assert_eq!(
            prepare_password(sent).ok().as_deref(),
            Some(password),
            "PLAIN succeeded with another password"
        );
        return;
    };
    let first = t
        .client_first
        .as_deref()
        .expect("SCRAM success without client-first");
    let server_first = t
        .server_first
        .as_deref()
        .expect("SCRAM success without server-first");
    let first = std::str::from_utf8(first).expect("UTF-8 client-first");
    let bare = first.splitn(3, ',').nth(2).expect("client-first-bare");
    let server_first = std::str::from_utf8(server_first).expect("UTF-8 server-first");
    let last = std::str::from_utf8(last).expect("UTF-8 client-final");
    let at = last.rfind(",p=").expect("client-final has a proof");
    let proof = B64.decode(&last[at + 3..]).expect("base64 proof");
    let auth_message = format!("{bare},{server_first},{}", &last[..at]);
    let client = Client::new(hash, password, SALT, ITERATIONS);
    assert_eq!(
        proof,
        client.proof(&auth_message),
        "SCRAM succeeded with a proof not computed from the password"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(flags: u8, fields: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![flags];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                v.push(0xFF);
            }
            v.extend_from_slice(f);
        }
        v
    }

    #[test]
    fn honest_exchanges_succeed_for_odd_passwords() {
        // Empty (falls back), non-ASCII, spaces, commas and '=' (escaped in SCRAM names only).
        for pw in [
            "",
            "pencil",
            "pässwörd",
            "a b,c=d",
            "\u{FFFD}",
            &"x".repeat(300),
        ] {
            check_sasl(&input(0, &[pw.as_bytes()]));
        }
    }

    /// Found by the fuzzer (the oracle's mistake, not the server's): the honest PLAIN client sent
    /// the prepared password, but preparing "\u{387}" (GREEK ANO TELEIA) gives "\u{b7}", which
    /// preparing again refuses (CONTEXTO), so the server said not-authorized. Clients send the
    /// password as typed, which the server prepares once.
    #[test]
    fn plain_sends_the_password_as_typed() {
        assert_eq!(
            prepare_password("pass\u{387}word").ok().as_deref(),
            Some("pass\u{b7}word")
        );
        assert!(prepare_password("pass\u{b7}word").is_err());
        let o = check_sasl(&input(0, &["pass\u{387}word".as_bytes()]));
        assert_eq!(o.start_failure, Some(Failure::InvalidMechanism));
        let o = check_sasl(&input(
            1 | 3 << 1 | 8,
            &[
                "pass\u{387}word".as_bytes(),
                b"",
                b"",
                "\0user\0pass\u{387}word".as_bytes(),
            ],
        ));
        assert_eq!(o.successes, 1);
        check_sasl(&[
            0xf0, 0xcc, 0x97, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2,
            0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0x8b, 0x8b, 0x8b, 0x66,
            0x79, 0x6b, 0x6f, 0x2b, 0x64, 0x32, 0x6c, 0x62, 0x62, 0x46, 0x67, 0x4f, 0x4e, 0x52,
            0x76, 0x39, 0x71, 0x6b, 0x78, 0x64, 0x61, 0x77, 0x4c, 0x33, 0x72, 0x48, 0x59, 0x4a,
            0x59, 0x31, 0x5a, 0x56, 0x76, 0x57, 0x56, 0x73, 0x37, 0x6a, 0x93, 0x27, 0xce, 0x87,
            0xcc, 0x93, 0x27, 0xce, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0xe2, 0x85, 0x85, 0xe2,
            0xe2, 0xe2, 0xe2, 0xe2, 0xcc, 0x93, 0x27, 0xce, 0x97, 0xcc, 0x93, 0x27, 0xce,
        ]);
    }

    #[test]
    fn unknown_mechanism_and_plain_without_tls_are_refused() {
        let o = check_sasl(&input(0, &[b"pw", b"SCRAM-SHA-512"]));
        assert_eq!(o.start_failure, Some(Failure::InvalidMechanism));
        let o = check_sasl(&input(0, &[b"pw", b"plain"]));
        assert_eq!(o.start_failure, Some(Failure::InvalidMechanism));
        let o = check_sasl(&input(3 << 1, &[b"pw"]));
        assert_eq!(o.start_failure, Some(Failure::EncryptionRequired));
        let o = check_sasl(&input(1 << 1 | 16, &[b"pw", b"", b"bad,nonce"]));
        assert_eq!(o.start_failure, Some(Failure::TemporaryAuthFailure));
    }

    #[test]
    fn plain_with_the_password_succeeds_and_is_justified() {
        let o = check_sasl(&input(1 | 3 << 1 | 8, &[b"pw", b"", b"", b"\0USER\0pw"]));
        assert_eq!(o.successes, 1);
        let o = check_sasl(&input(1 | 3 << 1 | 8, &[b"pw", b"", b"", b"\0user\0pX"]));
        assert_eq!(
            (o.successes, o.last),
            (0, Some(Step::Failure(Failure::NotAuthorized)))
        );
    }

    #[test]
    fn scram_with_a_replayed_or_wrong_proof_fails() {
        // A client-final whose proof is for another exchange (the RFC 5802 example).
        let o = check_sasl(&input(
            1 << 1 | 8,
            &[
                b"pencil",
                b"",
                b"",
                b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
                b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            ],
        ));
        assert_eq!(o.successes, 0);
        assert_eq!(o.last, Some(Step::Failure(Failure::NotAuthorized)));
    }

    #[test]
    fn store_failure_is_temporary() {
        let o = check_sasl(&input(1 << 1 | 8, &[b"pw", b"", b"", b"n,,n=broken,r=abc"]));
        assert_eq!(o.last, Some(Step::Failure(Failure::TemporaryAuthFailure)));
    }

    #[test]
    #[should_panic(expected = "not computed from the password")]
    fn a_success_without_the_right_proof_is_reported() {
        let t = Transcript {
            client_first: Some(b"n,,n=user,r=a".to_vec()),
            server_first: Some(b"r=ab,s=c2FsdA==,i=2".to_vec()),
        };
        justify_success(Mechanism::ScramSha1, b"c=biws,r=ab,p=AAAA", &t, "pw");
    }
}
