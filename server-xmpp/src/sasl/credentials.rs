//! SCRAM verifiers (RFC 5802 §3, RFC 7677): what a server stores instead of a password, and the primitives the
//! SASL server checks them with. Sans-IO: salts come in from the caller.

use hmac::{KeyInit, Mac};
use pbkdf2::pbkdf2_hmac;
use precis_profiles::OpaqueString;
use precis_profiles::precis_core::profile::PrecisFastInvocation;
use presence_core::BareJid;
use presence_core::store::{Account, ScramCredentials, ScramHash};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// PBKDF2 iterations of new verifiers: the RFC 5802/7677 example count, and what common clients expect at least.
pub const ITERATIONS: u32 = 4096;

/// Bytes of salt of new verifiers.
pub const SALT_LEN: usize = 16;

/// Why a verifier could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The password is not a valid PRECIS OpaqueString (RFC 8265 §4.2): empty, or holding a disallowed character.
    #[error("the password is not allowed: {0}")]
    BadPassword(String),
    /// The operating system gave no random bytes for the salt.
    #[error("cannot get random bytes for the salt: {0}")]
    Random(String),
}

/// Normalises a password as SCRAM requires (RFC 5802 §2.2 SASLprep, updated by RFC 8265 to OpaqueString); PRECIS
/// "enforce", not "prepare", because only enforcement applies the space and NFC mappings.
pub fn prepare_password(password: &str) -> Result<String, CredentialError> {
    OpaqueString::enforce(password)
        .map(|p| p.into_owned())
        .map_err(|e| CredentialError::BadPassword(e.to_string()))
}

pub(crate) fn hmac(hash: ScramHash, key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    match hash {
        ScramHash::Sha1 => {
            let mut m = hmac::Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        ScramHash::Sha256 => {
            let mut m =
                hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    }
}

pub(crate) fn digest(hash: ScramHash, data: &[u8]) -> Vec<u8> {
    match hash {
        ScramHash::Sha1 => Sha1::digest(data).to_vec(),
        ScramHash::Sha256 => Sha256::digest(data).to_vec(),
    }
}

/// Computes the verifier of an already prepared password (see [`prepare_password`]).
pub fn scram_credentials(
    password: &str,
    hash: ScramHash,
    iterations: u32,
    salt: &[u8],
) -> ScramCredentials {
    let mut salted = match hash {
        ScramHash::Sha1 => vec![0; 20],
        ScramHash::Sha256 => vec![0; 32],
    };
    match hash {
        ScramHash::Sha1 => pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, iterations, &mut salted),
        ScramHash::Sha256 => {
            pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted)
        }
    }
    let client_key = hmac(hash, &salted, b"Client Key");
    ScramCredentials {
        hash,
        salt: salt.to_vec(),
        iterations,
        stored_key: digest(hash, &client_key),
        server_key: hmac(hash, &salted, b"Server Key"),
    }
}

/// An account for `jid` with SCRAM-SHA-1 and SCRAM-SHA-256 verifiers of `password`, salted with the given salts
/// (the caller draws them at random: this module does no I/O).
pub fn account_with_salts(
    jid: BareJid,
    password: &str,
    sha1_salt: &[u8],
    sha256_salt: &[u8],
) -> Result<Account, CredentialError> {
    let password = prepare_password(password)?;
    let credentials = vec![
        scram_credentials(&password, ScramHash::Sha1, ITERATIONS, sha1_salt),
        scram_credentials(&password, ScramHash::Sha256, ITERATIONS, sha256_salt),
    ];
    Ok(Account {
        jid,
        credentials,
        digest: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;

    use super::*;

    struct Exchange {
        hash: ScramHash,
        salt: &'static str,
        client_first_bare: &'static str,
        server_first: &'static str,
        client_final_without_proof: &'static str,
        proof: &'static str,
        server_signature: &'static str,
    }

    /// RFC 5802 §5.
    const RFC5802: Exchange = Exchange {
        hash: ScramHash::Sha1,
        salt: "QSXCR+Q6sek8bf92",
        client_first_bare: "n=user,r=fyko+d2lbbFgONRv9qkxdawL",
        server_first: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
        client_final_without_proof: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
        proof: "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        server_signature: "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    };

    /// RFC 7677 §3.
    const RFC7677: Exchange = Exchange {
        hash: ScramHash::Sha256,
        salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
        client_first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO",
        server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        client_final_without_proof: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        proof: "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        server_signature: "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    };

    /// Checks the verifier of "pencil" against the RFC exchange the way a server would: the client proof must
    /// yield a ClientKey hashing to StoredKey, and ServerKey must sign the exchange to the RFC's `v=` value.
    fn check(x: &Exchange) {
        let salt = B64.decode(x.salt).expect("RFC salt");
        let c = scram_credentials("pencil", x.hash, 4096, &salt);
        let auth_message = format!(
            "{},{},{}",
            x.client_first_bare, x.server_first, x.client_final_without_proof
        );
        assert_eq!(
            B64.encode(hmac(x.hash, &c.server_key, auth_message.as_bytes())),
            x.server_signature,
            "ServerSignature"
        );
        let client_signature = hmac(x.hash, &c.stored_key, auth_message.as_bytes());
        let proof = B64.decode(x.proof).expect("RFC proof");
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        assert_eq!(
            digest(x.hash, &client_key),
            c.stored_key,
            "H(ClientKey) == StoredKey"
        );
        assert_eq!((c.salt, c.iterations, c.hash), (salt, 4096, x.hash));
    }

    #[test]
    fn rfc5802_sha1_example() {
        check(&RFC5802);
    }

    #[test]
    fn rfc7677_sha256_example() {
        check(&RFC7677);
    }

    #[test]
    fn new_accounts_have_both_mechanisms_with_fresh_salts() {
        let jid = BareJid::new("alice@example.com").expect("valid");
        let a = account_with_salts(jid.clone(), "pencil", &[1; SALT_LEN], &[2; SALT_LEN])
            .expect("account");
        let b = account_with_salts(jid, "pencil", &[3; SALT_LEN], &[4; SALT_LEN]).expect("account");
        let hashes: Vec<_> = a.credentials.iter().map(|c| c.hash).collect();
        assert_eq!(hashes, [ScramHash::Sha1, ScramHash::Sha256]);
        for c in &a.credentials {
            assert_eq!((c.iterations, c.salt.len()), (ITERATIONS, SALT_LEN));
        }
        assert_ne!(a.credentials[0].salt, b.credentials[0].salt);
        assert_ne!(a.credentials[0].stored_key, b.credentials[0].stored_key);
    }

    #[test]
    fn passwords_are_normalised_and_bad_ones_refused() {
        // OpaqueString maps non-ASCII spaces to U+0020 and NFC-normalises.
        assert_eq!(prepare_password("a\u{00A0}b").expect("ok"), "a b");
        assert_eq!(prepare_password("e\u{0301}").expect("ok"), "\u{00E9}");
        assert!(prepare_password("").is_err());
        assert!(prepare_password("bad\u{0007}").is_err());
    }
}
