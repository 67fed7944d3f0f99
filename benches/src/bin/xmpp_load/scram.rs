//! The client side of SCRAM-SHA-1 (RFC 5802) without channel binding, from the RustCrypto primitives.
//!
//! Pure functions only: the caller moves the messages over the wire. RFC 5802 §5.1 lets a client cache ClientKey
//! and ServerKey for a given salt and iteration count; [`Keys`] is what the load tool caches, so that the PBKDF2
//! cost sits in the tool once per account and not in every measured login.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use sha1::{Digest, Sha1};

/// ClientKey and ServerKey of one password, salt and iteration count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keys {
    pub client_key: [u8; 20],
    pub server_key: [u8; 20],
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut m = hmac::Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    let mut out = [0u8; 20];
    out.copy_from_slice(&m.finalize().into_bytes());
    out
}

impl Keys {
    /// SaltedPassword = PBKDF2-HMAC-SHA-1(password, salt, i), then the two keys (RFC 5802 §3).
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Keys {
        let mut salted = [0u8; 20];
        pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, iterations, &mut salted);
        Keys {
            client_key: hmac_sha1(&salted, b"Client Key"),
            server_key: hmac_sha1(&salted, b"Server Key"),
        }
    }
}

/// The server-first-message's attributes.
#[derive(Debug, PartialEq, Eq)]
pub struct ServerFirst {
    /// Client nonce + server nonce.
    pub nonce: String,
    /// The salt as sent (base64), the cache key.
    pub salt_b64: String,
    pub salt: Vec<u8>,
    pub iterations: u32,
}

/// Parses `r=..,s=..,i=..`, checking that the combined nonce extends ours.
pub fn parse_server_first(msg: &str, client_nonce: &str) -> Result<ServerFirst, String> {
    let (mut nonce, mut salt_b64, mut iterations) = (None, None, None);
    for attr in msg.split(',') {
        if let Some(v) = attr.strip_prefix("r=") {
            nonce = Some(v);
        } else if let Some(v) = attr.strip_prefix("s=") {
            salt_b64 = Some(v);
        } else if let Some(v) = attr.strip_prefix("i=") {
            iterations = v.parse::<u32>().ok();
        } else if attr.starts_with("m=") {
            return Err("server-first-message has a mandatory extension".into());
        }
    }
    let nonce = nonce.ok_or("no nonce in server-first-message")?;
    if !nonce.starts_with(client_nonce) || nonce.len() == client_nonce.len() {
        return Err(format!("server nonce {nonce:?} does not extend ours"));
    }
    let salt_b64 = salt_b64.ok_or("no salt in server-first-message")?;
    let salt = B64.decode(salt_b64).map_err(|e| format!("bad salt: {e}"))?;
    let iterations = iterations
        .filter(|&i| i > 0)
        .ok_or("no iteration count in server-first-message")?;
    Ok(ServerFirst {
        nonce: nonce.to_string(),
        salt_b64: salt_b64.to_string(),
        salt,
        iterations,
    })
}

/// The client-final-message (gs2 header `n,,`, so `c=biws`) and the ServerSignature the server must send back.
pub fn client_final(
    keys: &Keys,
    client_first_bare: &str,
    server_first: &str,
    nonce: &str,
) -> (String, [u8; 20]) {
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let stored_key = Sha1::digest(keys.client_key);
    let signature = hmac_sha1(&stored_key, auth_message.as_bytes());
    let mut proof = keys.client_key;
    for (p, s) in proof.iter_mut().zip(signature) {
        *p ^= s;
    }
    let server_signature = hmac_sha1(&keys.server_key, auth_message.as_bytes());
    (
        format!("{without_proof},p={}", B64.encode(proof)),
        server_signature,
    )
}

/// Whether a server-final-message (`v=..`) carries the expected ServerSignature.
pub fn verify_server_final(msg: &str, expected: &[u8; 20]) -> bool {
    msg.strip_prefix("v=")
        .and_then(|v| B64.decode(v).ok())
        .is_some_and(|v| v == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exchange of RFC 5802 §5 (user "user", password "pencil").
    #[test]
    fn rfc5802_example() {
        let cnonce = "fyko+d2lbbFgONRv9qkxdawL";
        let first_bare = format!("n=user,r={cnonce}");
        let server_first = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
        let sf = parse_server_first(server_first, cnonce).unwrap();
        assert_eq!(sf.iterations, 4096);
        let keys = Keys::derive("pencil", &sf.salt, sf.iterations);
        let (msg, server_sig) = client_final(&keys, &first_bare, server_first, &sf.nonce);
        assert_eq!(
            msg,
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        assert!(verify_server_final(
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
            &server_sig
        ));
        assert!(!verify_server_final("v=AAAA", &server_sig));
    }

    #[test]
    fn server_first_checks() {
        assert!(parse_server_first("r=abc,s=QSXC,i=1", "xyz").is_err());
        assert!(parse_server_first("r=abc,s=QSXC,i=1", "abc").is_err());
        assert!(parse_server_first("m=x,r=abcd,s=QSXC,i=1", "abc").is_err());
        assert!(parse_server_first("r=abcd,s=QSXC,i=0", "abc").is_err());
        assert!(parse_server_first("r=abcd,s=QSXC,i=1", "abc").is_ok());
    }
}
