use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use presence_core::store::{ScramCredentials, ScramHash, StoreError};
use proptest::prelude::*;

use super::credentials::scram_credentials;
use super::*;

const SECRET: &[u8] = b"server secret";

/// One RFC example exchange, replayed byte for byte.
struct Exchange {
    mechanism: &'static str,
    hash: ScramHash,
    salt: &'static str,
    client_first: &'static str,
    server_nonce: &'static str,
    server_first: &'static str,
    client_final: &'static str,
    server_final: &'static str,
}

/// RFC 5802 §5.
const RFC5802: Exchange = Exchange {
    mechanism: "SCRAM-SHA-1",
    hash: ScramHash::Sha1,
    salt: "QSXCR+Q6sek8bf92",
    client_first: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    server_nonce: "3rfcNHYJY1ZVvWVs7j",
    server_first: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    client_final: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    server_final: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

/// RFC 7677 §3.
const RFC7677: Exchange = Exchange {
    mechanism: "SCRAM-SHA-256",
    hash: ScramHash::Sha256,
    salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
    client_first: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    server_nonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    client_final: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    server_final: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

/// Verifiers of "pencil" for `user`, with the RFCs' salts.
fn rfc_credentials() -> Vec<ScramCredentials> {
    [&RFC5802, &RFC7677]
        .iter()
        .map(|x| scram_credentials("pencil", x.hash, 4096, &B64.decode(x.salt).expect("salt")))
        .collect()
}

fn users(username: &str) -> Result<Option<Vec<ScramCredentials>>, StoreError> {
    Ok((username == "user").then(rfc_credentials))
}

fn params(tls: bool, server_nonce: &str) -> Params<'_> {
    Params {
        tls,
        server_nonce,
        secret: SECRET,
    }
}

fn challenge(step: Step) -> String {
    match step {
        Step::Challenge(c) => String::from_utf8(c).expect("utf-8 challenge"),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn replay(x: &Exchange, initial: bool) {
    let (mut server, step) = if initial {
        SaslServer::start(
            x.mechanism,
            Some(x.client_first.as_bytes()),
            params(false, x.server_nonce),
            &users,
        )
        .expect("start")
    } else {
        let (mut server, step) =
            SaslServer::start(x.mechanism, None, params(false, x.server_nonce), &users)
                .expect("start");
        assert_eq!(step, Step::Challenge(Vec::new()));
        let step = server.step(x.client_first.as_bytes(), &users);
        (server, step)
    };
    assert_eq!(challenge(step), x.server_first);
    let step = server.step(x.client_final.as_bytes(), &users);
    assert_eq!(
        step,
        Step::Success {
            username: "user".into(),
            authzid: None,
            additional_data: x.server_final.as_bytes().to_vec(),
        }
    );
    assert!(server.is_done());
    assert_eq!(
        server.step(b"again", &users),
        Step::Failure(Failure::MalformedRequest)
    );
}

#[test]
fn rfc5802_sha1_exchange() {
    replay(&RFC5802, true);
    replay(&RFC5802, false);
}

#[test]
fn rfc7677_sha256_exchange() {
    replay(&RFC7677, true);
    replay(&RFC7677, false);
}

/// Runs a SCRAM exchange with the given client-first and client-final and returns the final step.
fn scram_final(x: &Exchange, client_first: &str, client_final: &str) -> Step {
    let (mut server, step) = SaslServer::start(
        x.mechanism,
        Some(client_first.as_bytes()),
        params(true, x.server_nonce),
        &users,
    )
    .expect("start");
    challenge(step);
    server.step(client_final.as_bytes(), &users)
}

#[test]
fn wrong_password_is_not_authorized() {
    // The RFC 7677 proof with one bit flipped is the proof of some other password.
    let mut proof = B64
        .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        .expect("b64");
    proof[0] ^= 1;
    let client_final = format!(
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p={}",
        B64.encode(proof)
    );
    assert_eq!(
        scram_final(&RFC7677, RFC7677.client_first, &client_final),
        Step::Failure(Failure::NotAuthorized)
    );
}

#[test]
fn unknown_user_gets_a_normal_challenge_then_not_authorized() {
    let first = "n,,n=nobody,r=rOprNGfwEbeRWgbNEkqO";
    let start = || {
        SaslServer::start(
            "SCRAM-SHA-256",
            Some(first.as_bytes()),
            params(false, RFC7677.server_nonce),
            &users,
        )
        .expect("start")
    };
    let (mut server, step) = start();
    let c = challenge(step);
    let salt = c
        .split(',')
        .find_map(|a| a.strip_prefix("s="))
        .expect("salt");
    assert_eq!(B64.decode(salt).expect("b64 salt").len(), 16);
    assert!(c.starts_with("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s="));
    assert!(c.ends_with(",i=4096"));
    // The fake salt is stable, so asking twice does not reveal the account is missing.
    assert_eq!(challenge(start().1), c);
    let step = server.step(RFC7677.client_final.as_bytes(), &users);
    assert_eq!(step, Step::Failure(Failure::NotAuthorized));
}

#[test]
fn scram_usernames_are_decoded_and_normalised() {
    let seen = std::cell::RefCell::new(Vec::new());
    let lookup = |u: &str| {
        seen.borrow_mut().push(u.to_owned());
        Ok(None)
    };
    for first in ["n,,n=USER,r=abc", "n,,n=a=3Db,r=abc", "n,,n=a=2Cb,r=abc"] {
        let (_, step) = SaslServer::start(
            "SCRAM-SHA-1",
            Some(first.as_bytes()),
            params(false, "x"),
            &lookup,
        )
        .expect("start");
        challenge(step);
    }
    // A comma is allowed in a localpart; `=` too; case is folded as in a JID.
    assert_eq!(*seen.borrow(), ["user", "a=b", "a,b"]);
}

#[test]
fn scram_with_y_flag_and_authzid() {
    let first = "y,a=user@example.com,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
    let (mut server, step) = SaslServer::start(
        "SCRAM-SHA-1",
        Some(first.as_bytes()),
        params(false, RFC5802.server_nonce),
        &users,
    )
    .expect("start");
    let server_first = challenge(step);
    let client_final_without_proof = format!(
        "c={},r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
        B64.encode("y,a=user@example.com,")
    );
    let proof = client_proof(
        ScramHash::Sha1,
        RFC5802.salt,
        "n=user,r=fyko+d2lbbFgONRv9qkxdawL",
        &server_first,
        &client_final_without_proof,
    );
    let step = server.step(
        format!("{client_final_without_proof},p={proof}").as_bytes(),
        &users,
    );
    match step {
        Step::Success {
            username, authzid, ..
        } => {
            assert_eq!(username, "user");
            assert_eq!(authzid.as_deref(), Some("user@example.com"));
        }
        other => panic!("expected success, got {other:?}"),
    }
}

/// The client side of the proof, computed from the password as a client would.
fn client_proof(
    hash: ScramHash,
    salt: &str,
    bare: &str,
    server_first: &str,
    without: &str,
) -> String {
    use super::credentials::{digest, hmac};
    let salt = B64.decode(salt).expect("salt");
    let mut salted = vec![0; if hash == ScramHash::Sha1 { 20 } else { 32 }];
    match hash {
        ScramHash::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(b"pencil", &salt, 4096, &mut salted),
        ScramHash::Sha256 => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"pencil", &salt, 4096, &mut salted)
        }
    }
    let client_key = hmac(hash, &salted, b"Client Key");
    let stored_key = digest(hash, &client_key);
    let auth = format!("{bare},{server_first},{without}");
    let signature = hmac(hash, &stored_key, auth.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    B64.encode(proof)
}

#[test]
fn scram_rejects_bad_first_messages() {
    for first in [
        "p=tls-unique,,n=user,r=abc",
        "n,,m=ext,n=user,r=abc",
        "n,,n=user",
        "n,,n=,r=abc",
        "n,,n=us=41er,r=abc",
        "n,,r=abc,n=user",
        "n,,n=user,r=",
        "n,,n=user,r=abc,1",
        "x,,n=user,r=abc",
        "n,b=user,n=user,r=abc",
        "n,n=user,r=abc",
        "",
    ] {
        let got = SaslServer::start(
            "SCRAM-SHA-1",
            Some(first.as_bytes()),
            params(false, "x"),
            &users,
        )
        .map(|(_, s)| s);
        assert_eq!(
            got,
            Ok(Step::Failure(Failure::MalformedRequest)),
            "{first:?}"
        );
    }
}

#[test]
fn scram_rejects_bad_final_messages() {
    let x = &RFC5802;
    let good_proof = "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
    let nonce = "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
    for (client_final, want) in [
        // Wrong nonce.
        (
            format!("c=biws,r={nonce}X,{good_proof}"),
            Failure::NotAuthorized,
        ),
        // Channel binding data that is not the gs2 header.
        (
            format!("c=eSws,r={nonce},{good_proof}"),
            Failure::MalformedRequest,
        ),
        // Missing proof, bad base64 proof, short proof.
        (format!("c=biws,r={nonce}"), Failure::MalformedRequest),
        (format!("c=biws,r={nonce},p=***"), Failure::MalformedRequest),
        (
            format!("c=biws,r={nonce},p=AAAA"),
            Failure::MalformedRequest,
        ),
        // Mandatory extension, attributes out of order.
        (
            format!("c=biws,r={nonce},m=x,{good_proof}"),
            Failure::MalformedRequest,
        ),
        (
            format!("r={nonce},c=biws,{good_proof}"),
            Failure::MalformedRequest,
        ),
    ] {
        assert_eq!(
            scram_final(x, x.client_first, &client_final),
            Step::Failure(want),
            "{client_final:?}"
        );
    }
}

#[test]
fn mechanisms_and_failures() {
    assert_eq!(
        offered(false),
        [Mechanism::ScramSha256, Mechanism::ScramSha1]
    );
    assert_eq!(
        offered(true),
        [
            Mechanism::ScramSha256,
            Mechanism::ScramSha1,
            Mechanism::Plain
        ]
    );
    for m in offered(true) {
        assert_eq!(Mechanism::from_name(m.name()), Some(m));
    }
    assert_eq!(Mechanism::from_name("DIGEST-MD5"), None);
    assert_eq!(
        SaslServer::start("DIGEST-MD5", None, params(true, "x"), &users).map(|_| ()),
        Err(Failure::InvalidMechanism)
    );
    assert_eq!(
        SaslServer::start("SCRAM-SHA-1", None, params(true, "a,b"), &users).map(|_| ()),
        Err(Failure::TemporaryAuthFailure)
    );
    assert_eq!(Failure::NotAuthorized.condition(), "not-authorized");
    assert_eq!(
        Failure::EncryptionRequired.condition(),
        "encryption-required"
    );
    assert_eq!(server_nonce(&[0xab; 18]).len(), 36);
}

#[test]
fn store_failure_is_temporary() {
    let broken = |_: &str| Err(StoreError::Backend("down".into()));
    let (_, step) = SaslServer::start(
        "SCRAM-SHA-256",
        Some(RFC7677.client_first.as_bytes()),
        params(false, "x"),
        &broken,
    )
    .expect("start");
    assert_eq!(step, Step::Failure(Failure::TemporaryAuthFailure));
}

#[test]
fn plain_needs_tls() {
    assert_eq!(
        SaslServer::start("PLAIN", Some(b"\0user\0pencil"), params(false, "x"), &users).map(|_| ()),
        Err(Failure::EncryptionRequired)
    );
}

fn plain(message: &[u8]) -> Step {
    SaslServer::start("PLAIN", Some(message), params(true, "x"), &users)
        .expect("start")
        .1
}

#[test]
fn plain_right_and_wrong_passwords() {
    assert_eq!(
        plain(b"\0User\0pencil"),
        Step::Success {
            username: "user".into(),
            authzid: None,
            additional_data: Vec::new(),
        }
    );
    assert!(matches!(
        plain(b"user@example.com\0user\0pencil"),
        Step::Success { authzid: Some(a), .. } if a == "user@example.com"
    ));
    assert_eq!(plain(b"\0user\0pen"), Step::Failure(Failure::NotAuthorized));
    assert_eq!(
        plain(b"\0nobody\0pencil"),
        Step::Failure(Failure::NotAuthorized)
    );
    assert_eq!(plain(b"\0user\0"), Step::Failure(Failure::MalformedRequest));
    assert_eq!(
        plain(b"user\0pencil"),
        Step::Failure(Failure::MalformedRequest)
    );
    assert_eq!(
        plain(b"\0\xff\0pencil"),
        Step::Failure(Failure::MalformedRequest)
    );
}

#[test]
fn plain_without_initial_response() {
    let (mut server, step) =
        SaslServer::start("PLAIN", None, params(true, "x"), &users).expect("start");
    assert_eq!(step, Step::Challenge(Vec::new()));
    assert!(matches!(
        server.step(b"\0user\0pencil", &users),
        Step::Success { .. }
    ));
}

/// Lookups that never find anyone keep the random tests fast: real verifiers would cost a PBKDF2 per case.
fn nobody(_: &str) -> Result<Option<Vec<ScramCredentials>>, StoreError> {
    Ok(None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(
        mechanism in prop::sample::select(vec!["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "X"]),
        tls: bool,
        first in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
        rest in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..3),
    ) {
        if let Ok((mut server, _)) = SaslServer::start(mechanism, first.as_deref(), params(tls, "nonce"), &nobody) {
            for r in &rest {
                let _ = server.step(r, &nobody);
            }
        }
    }

    #[test]
    fn mutated_client_messages_never_panic(
        first_prefix in "(n|y|p=x),(a=[a-z=]{0,4})?,",
        user in "[a-zA-Z=,2CD3]{0,6}",
        cnonce in "[!-~]{0,6}",
        final_tail in "[!-~]{0,40}",
    ) {
        let first = format!("{first_prefix}n={user},r={cnonce}");
        if let Ok((mut server, _)) =
            SaslServer::start("SCRAM-SHA-1", Some(first.as_bytes()), params(false, "nonce"), &users)
        {
            let _ = server.step(format!("c=biws,r={cnonce}nonce,{final_tail}").as_bytes(), &users);
        }
    }
}
