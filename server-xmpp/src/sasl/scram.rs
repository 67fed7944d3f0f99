//! SCRAM (RFC 5802, RFC 7677) without channel binding: client-first → server-first → client-final → server-final.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use presence_core::store::{ScramCredentials, ScramHash};
use subtle::ConstantTimeEq;

use super::credentials::{ITERATIONS, SALT_LEN, digest, hmac};
use super::{CredentialLookup, Failure, Step, find_credentials, normalise_username};

/// What the server remembers between server-first and client-final.
#[derive(Debug)]
pub(super) struct Pending {
    credentials: ScramCredentials,
    /// The verifier is made up (unknown user): the exchange must fail however good the proof looks.
    fake: bool,
    username: String,
    authzid: Option<String>,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// `printable` of RFC 5802 §7: the characters a nonce may hold.
pub(super) fn is_printable(s: &str) -> bool {
    s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Decodes a `saslname` (RFC 5802 §5.1): `=2C` is `,`, `=3D` is `=`, and any other `=` is malformed.
fn decode_saslname(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    (!out.is_empty()).then_some(out)
}

/// Whether `attr` is a well-formed optional extension (`x=value`, any letter but the ones SCRAM defines).
fn is_extension(attr: &str) -> bool {
    let b = attr.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b'=' && b[0] != b'm'
}

/// Verifier of an unknown user (RFC 5802 §5.1): the salt derives from the server secret and the username, so it is
/// the same on every try and looks like a real one; the keys are never matched because the exchange is marked fake.
pub(super) fn fake_credentials(hash: ScramHash, username: &str, secret: &[u8]) -> ScramCredentials {
    let label = match hash {
        ScramHash::Sha1 => "SCRAM-SHA-1",
        ScramHash::Sha256 => "SCRAM-SHA-256",
    };
    let mut input = format!("fake salt\0{label}\0").into_bytes();
    input.extend_from_slice(username.as_bytes());
    let mut salt = hmac(ScramHash::Sha256, secret, &input);
    salt.truncate(SALT_LEN);
    let key = hmac(hash, secret, b"fake key");
    ScramCredentials {
        hash,
        salt,
        iterations: ITERATIONS,
        stored_key: key.clone(),
        server_key: key,
    }
}

/// Parses client-first and answers with server-first.
pub(super) fn first(
    hash: ScramHash,
    message: &[u8],
    server_nonce: &str,
    secret: &[u8],
    lookup: &impl CredentialLookup,
) -> Result<(Pending, Vec<u8>), Failure> {
    let message = std::str::from_utf8(message).map_err(|_| Failure::MalformedRequest)?;
    // gs2-header = gs2-cbind-flag "," [authzid] ","
    let mut parts = message.splitn(3, ',');
    let (flag, authzid, bare) = match (parts.next(), parts.next(), parts.next()) {
        (Some(f), Some(a), Some(b)) => (f, a, b),
        _ => return Err(Failure::MalformedRequest),
    };
    // `y` means "I could bind but you did not offer it", true here since no -PLUS is offered; `p=` asks for it.
    if flag != "n" && flag != "y" {
        return Err(Failure::MalformedRequest);
    }
    let authzid = match authzid {
        "" => None,
        a => Some(
            a.strip_prefix("a=")
                .and_then(decode_saslname)
                .ok_or(Failure::MalformedRequest)?,
        ),
    };
    let gs2_header = message[..message.len() - bare.len()].to_owned();

    let mut attrs = bare.split(',');
    // A mandatory extension (`m=`) is one this server cannot know, so RFC 5802 §5.1 says fail.
    let username = attrs
        .next()
        .and_then(|a| a.strip_prefix("n="))
        .and_then(decode_saslname)
        .ok_or(Failure::MalformedRequest)?;
    let client_nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| !n.is_empty() && is_printable(n))
        .ok_or(Failure::MalformedRequest)?;
    if !attrs.all(is_extension) {
        return Err(Failure::MalformedRequest);
    }

    // A name that cannot be a localpart cannot have an account: treat it like an unknown user.
    let normalised = normalise_username(&username);
    let real = match &normalised {
        Some(u) => find_credentials(lookup, u, hash)?,
        None => None,
    };
    let username = normalised.unwrap_or(username);
    let fake = real.is_none();
    let credentials = real.unwrap_or_else(|| fake_credentials(hash, &username, secret));

    let nonce = format!("{client_nonce}{server_nonce}");
    let server_first = format!(
        "r={nonce},s={},i={}",
        B64.encode(&credentials.salt),
        credentials.iterations
    );
    let pending = Pending {
        credentials,
        fake,
        username,
        authzid,
        gs2_header,
        client_first_bare: bare.to_owned(),
        server_first: server_first.clone(),
        nonce,
    };
    Ok((pending, server_first.into_bytes()))
}

impl Pending {
    /// Verifies client-final and answers with server-final (as success data) or a failure.
    pub(super) fn finish(self, message: &[u8]) -> Step {
        match self.verify(message) {
            Ok(step) => step,
            Err(f) => Step::Failure(f),
        }
    }

    fn verify(self, message: &[u8]) -> Result<Step, Failure> {
        let message = std::str::from_utf8(message).map_err(|_| Failure::MalformedRequest)?;
        // The proof is always last and is not part of AuthMessage.
        let at = message.rfind(",p=").ok_or(Failure::MalformedRequest)?;
        let (without_proof, proof) = (&message[..at], &message[at + 3..]);
        let proof = B64.decode(proof).map_err(|_| Failure::MalformedRequest)?;

        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .and_then(|c| B64.decode(c).ok())
            .ok_or(Failure::MalformedRequest)?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(Failure::MalformedRequest)?;
        if !attrs.all(is_extension) {
            return Err(Failure::MalformedRequest);
        }
        // Without channel binding, `c=` is just the gs2 header again; a mismatch is a client that changed its mind.
        if binding != self.gs2_header.as_bytes() {
            return Err(Failure::MalformedRequest);
        }
        if proof.len() != self.credentials.stored_key.len() {
            return Err(Failure::MalformedRequest);
        }
        // A wrong nonce is a replayed or spliced exchange: an authentication failure, not a syntax error.
        if nonce != self.nonce {
            return Err(Failure::NotAuthorized);
        }

        let hash = self.credentials.hash;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let client_signature = hmac(hash, &self.credentials.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let matches = digest(hash, &client_key).ct_eq(&self.credentials.stored_key);
        if !bool::from(matches) || self.fake {
            return Err(Failure::NotAuthorized);
        }
        let signature = hmac(hash, &self.credentials.server_key, auth_message.as_bytes());
        Ok(Step::Success {
            username: self.username,
            authzid: self.authzid,
            additional_data: format!("v={}", B64.encode(signature)).into_bytes(),
        })
    }
}
