//! PLAIN (RFC 4616), checked against the stored SCRAM verifier: the password is salted and hashed as SCRAM would,
//! and the resulting StoredKey compared in constant time, so no password is ever stored.

use presence_core::store::ScramHash;
use subtle::ConstantTimeEq;

use super::credentials::{prepare_password, scram_credentials};
use super::scram::fake_credentials;
use super::{CredentialLookup, Failure, Step, find_credentials, normalise_username};

/// RFC 4616 §2: each of authzid, authcid and passwd is at most 255 octets.
const MAX_PART: usize = 255;

/// Verifies `[authzid] NUL authcid NUL passwd`.
pub(super) fn verify(message: &[u8], lookup: &impl CredentialLookup) -> Step {
    match check(message, lookup) {
        Ok(step) => step,
        Err(f) => Step::Failure(f),
    }
}

/// A PLAIN message's parts (RFC 4616 §2), as UTF-8.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainMessage {
    /// The authorization identity; empty when none was given.
    pub authzid: String,
    /// The authentication identity (the username as sent).
    pub authcid: String,
    /// The password as sent.
    pub password: String,
}

impl std::fmt::Debug for PlainMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMessage")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Splits `[authzid] NUL authcid NUL passwd`, enforcing the RFC's lengths and UTF-8.
pub fn parse(message: &[u8]) -> Result<PlainMessage, Failure> {
    let parts: Vec<&[u8]> = message.split(|&b| b == 0).collect();
    let [authzid, authcid, password] = parts[..] else {
        return Err(Failure::MalformedRequest);
    };
    if authcid.is_empty()
        || password.is_empty()
        || [authzid, authcid, password]
            .iter()
            .any(|p| p.len() > MAX_PART)
    {
        return Err(Failure::MalformedRequest);
    }
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| Failure::MalformedRequest)
    };
    Ok(PlainMessage {
        authzid: text(authzid)?,
        authcid: text(authcid)?,
        password: text(password)?,
    })
}

fn check(message: &[u8], lookup: &impl CredentialLookup) -> Result<Step, Failure> {
    let PlainMessage {
        authzid,
        authcid,
        password,
    } = parse(message)?;

    let username = normalise_username(&authcid);
    // Prefer the stronger verifier; either proves the same password.
    let mut real = None;
    if let Some(u) = &username {
        for hash in [ScramHash::Sha256, ScramHash::Sha1] {
            real = find_credentials(lookup, u, hash)?;
            if real.is_some() {
                break;
            }
        }
    }
    // An unknown user still costs one PBKDF2, so timing does not tell accounts apart.
    let fake = real.is_none();
    let credentials = real.unwrap_or_else(|| fake_credentials(ScramHash::Sha256, &authcid, b""));
    let Ok(password) = prepare_password(&password) else {
        return Err(Failure::NotAuthorized);
    };
    let candidate = scram_credentials(
        &password,
        credentials.hash,
        credentials.iterations,
        &credentials.salt,
    );
    let matches = candidate.stored_key.ct_eq(&credentials.stored_key);
    match username {
        Some(username) if bool::from(matches) && !fake => Ok(Step::Success {
            username,
            authzid: (!authzid.is_empty()).then_some(authzid),
            additional_data: Vec::new(),
        }),
        _ => Err(Failure::NotAuthorized),
    }
}
