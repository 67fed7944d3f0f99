//! Digest authentication helpers (RFC 3261 §22.4 with RFC 2617, RFC 7616 and RFC 8760
//! algorithms): typed challenge/credentials over [`AuthHeader`] values and the response hash.
//! Pure functions: nonces and passwords come from the caller.

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::header::AuthHeader;

/// A digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (the default when `algorithm` is absent).
    Md5,
    /// MD5-sess
    Md5Sess,
    /// SHA-256 (RFC 8760)
    Sha256,
    /// SHA-256-sess (RFC 8760)
    Sha256Sess,
}

impl Algorithm {
    /// Maps an `algorithm` parameter value (case-insensitive).
    pub fn parse(s: &str) -> Option<Algorithm> {
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Lower-case hex of the hash of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => to_hex(&Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => to_hex(&Sha256::digest(data)),
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// Why a header is not a usable digest challenge or credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The scheme is not Digest.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// A required parameter is missing.
    #[error("digest parameter {0} is missing")]
    Missing(&'static str),
    /// The algorithm is not supported.
    #[error("unsupported digest algorithm")]
    UnsupportedAlgorithm,
}

/// A parsed Digest challenge (WWW-Authenticate / Proxy-Authenticate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// The protection space.
    pub realm: String,
    /// The server nonce.
    pub nonce: String,
    /// Opaque data to echo back.
    pub opaque: Option<String>,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Offered qop values (`auth`, `auth-int`); empty for RFC 2069 style.
    pub qop: Vec<String>,
    /// True when the previous nonce was stale but the credentials were right.
    pub stale: bool,
}

/// Parsed Digest credentials (Authorization / Proxy-Authorization).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// The user name.
    pub username: String,
    /// The realm.
    pub realm: String,
    /// The nonce being answered.
    pub nonce: String,
    /// The digest-uri.
    pub uri: String,
    /// The hex response.
    pub response: String,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Client nonce (with qop).
    pub cnonce: Option<String>,
    /// Echoed opaque.
    pub opaque: Option<String>,
    /// Chosen qop.
    pub qop: Option<String>,
    /// Nonce count, 8 hex digits (with qop).
    pub nc: Option<String>,
}

fn digest_only(h: &AuthHeader) -> Result<(), DigestError> {
    if h.is_digest() {
        Ok(())
    } else {
        Err(DigestError::NotDigest)
    }
}

fn algorithm(h: &AuthHeader) -> Result<Algorithm, DigestError> {
    match h.get("algorithm") {
        None => Ok(Algorithm::Md5),
        Some(a) => Algorithm::parse(a).ok_or(DigestError::UnsupportedAlgorithm),
    }
}

fn req(h: &AuthHeader, name: &'static str) -> Result<String, DigestError> {
    h.get(name)
        .map(str::to_owned)
        .ok_or(DigestError::Missing(name))
}

impl DigestChallenge {
    /// Reads a challenge header.
    pub fn from_header(h: &AuthHeader) -> Result<Self, DigestError> {
        digest_only(h)?;
        Ok(DigestChallenge {
            realm: req(h, "realm")?,
            nonce: req(h, "nonce")?,
            opaque: h.get("opaque").map(str::to_owned),
            algorithm: algorithm(h)?,
            qop: h
                .get("qop")
                .map(|q| {
                    q.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            stale: h
                .get("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// Writes the challenge header value.
    pub fn to_header(&self) -> AuthHeader {
        let mut h = AuthHeader::new("Digest");
        h.push("realm", &self.realm, true)
            .push("nonce", &self.nonce, true);
        if let Some(o) = &self.opaque {
            h.push("opaque", o, true);
        }
        h.push("algorithm", self.algorithm.as_str(), false);
        if !self.qop.is_empty() {
            h.push("qop", &self.qop.join(","), true);
        }
        if self.stale {
            h.push("stale", "TRUE", false);
        }
        h
    }
}

impl DigestCredentials {
    /// Reads a credentials header.
    pub fn from_header(h: &AuthHeader) -> Result<Self, DigestError> {
        digest_only(h)?;
        Ok(DigestCredentials {
            username: req(h, "username")?,
            realm: req(h, "realm")?,
            nonce: req(h, "nonce")?,
            uri: req(h, "uri")?,
            response: req(h, "response")?,
            algorithm: algorithm(h)?,
            cnonce: h.get("cnonce").map(str::to_owned),
            opaque: h.get("opaque").map(str::to_owned),
            qop: h.get("qop").map(str::to_owned),
            nc: h.get("nc").map(str::to_owned),
        })
    }

    /// Writes the credentials header value.
    pub fn to_header(&self) -> AuthHeader {
        let mut h = AuthHeader::new("Digest");
        h.push("username", &self.username, true)
            .push("realm", &self.realm, true)
            .push("nonce", &self.nonce, true)
            .push("uri", &self.uri, true)
            .push("response", &self.response, true)
            .push("algorithm", self.algorithm.as_str(), false);
        if let Some(c) = &self.cnonce {
            h.push("cnonce", c, true);
        }
        if let Some(o) = &self.opaque {
            h.push("opaque", o, true);
        }
        if let Some(q) = &self.qop {
            h.push("qop", q, false);
        }
        if let Some(n) = &self.nc {
            h.push("nc", n, false);
        }
        h
    }

    /// Checks the response against a stored HA1 (`H(username:realm:password)`) for `method`
    /// and the request body (needed only for qop=auth-int). Compares in constant time.
    pub fn verify_with_ha1(&self, ha1: &str, method: &str, body: &[u8]) -> bool {
        let expected = response_from_ha1(&ResponseInput {
            algorithm: self.algorithm,
            ha1,
            nonce: &self.nonce,
            cnonce: self.cnonce.as_deref(),
            nc: self.nc.as_deref(),
            qop: self.qop.as_deref(),
            method,
            uri: &self.uri,
            body,
        });
        let (a, b) = (
            expected.as_bytes(),
            self.response.to_ascii_lowercase().into_bytes(),
        );
        a.len() == b.len() && a.iter().zip(&b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// `H(username:realm:password)`, what a registrar may store instead of the password.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hex(format!("{username}:{realm}:{password}").as_bytes())
}

/// The inputs of the response computation once HA1 is known.
#[derive(Debug, Clone, Copy)]
pub struct ResponseInput<'a> {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// `H(username:realm:password)` in hex.
    pub ha1: &'a str,
    /// Server nonce.
    pub nonce: &'a str,
    /// Client nonce (required with qop or -sess).
    pub cnonce: Option<&'a str>,
    /// Nonce count (with qop).
    pub nc: Option<&'a str>,
    /// `auth`, `auth-int`, or none for RFC 2069 style.
    pub qop: Option<&'a str>,
    /// The request method.
    pub method: &'a str,
    /// The digest-uri.
    pub uri: &'a str,
    /// The body (qop=auth-int only).
    pub body: &'a [u8],
}

/// The hex `response` value (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1).
pub fn response_from_ha1(i: &ResponseInput<'_>) -> String {
    let alg = i.algorithm;
    let cnonce = i.cnonce.unwrap_or("");
    let ha1 = if alg.is_sess() {
        alg.hex(format!("{}:{}:{}", i.ha1, i.nonce, cnonce).as_bytes())
    } else {
        i.ha1.to_owned()
    };
    let ha2 = match i.qop {
        Some(q) if q.eq_ignore_ascii_case("auth-int") => {
            alg.hex(format!("{}:{}:{}", i.method, i.uri, alg.hex(i.body)).as_bytes())
        }
        _ => alg.hex(format!("{}:{}", i.method, i.uri).as_bytes()),
    };
    match i.qop {
        Some(q) => alg.hex(
            format!(
                "{ha1}:{}:{}:{cnonce}:{q}:{ha2}",
                i.nonce,
                i.nc.unwrap_or("")
            )
            .as_bytes(),
        ),
        None => alg.hex(format!("{ha1}:{}:{ha2}", i.nonce).as_bytes()),
    }
}

/// Builds credentials answering `challenge` for a request (client side).
#[allow(clippy::too_many_arguments)]
pub fn answer(
    challenge: &DigestChallenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
    body: &[u8],
) -> DigestCredentials {
    let qop = if challenge.qop.iter().any(|q| q == "auth") {
        Some("auth".to_owned())
    } else if challenge.qop.iter().any(|q| q == "auth-int") {
        Some("auth-int".to_owned())
    } else {
        None
    };
    let nc_s = format!("{nc:08x}");
    let h1 = ha1(challenge.algorithm, username, &challenge.realm, password);
    let with_cnonce = qop.is_some() || challenge.algorithm.is_sess();
    let response = response_from_ha1(&ResponseInput {
        algorithm: challenge.algorithm,
        ha1: &h1,
        nonce: &challenge.nonce,
        cnonce: with_cnonce.then_some(cnonce),
        nc: qop.as_ref().map(|_| nc_s.as_str()),
        qop: qop.as_deref(),
        method,
        uri,
        body,
    });
    DigestCredentials {
        username: username.to_owned(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: uri.to_owned(),
        response,
        algorithm: challenge.algorithm,
        cnonce: with_cnonce.then(|| cnonce.to_owned()),
        opaque: challenge.opaque.clone(),
        nc: qop.as_ref().map(|_| nc_s.clone()),
        qop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::parse_auth;

    #[test]
    fn rfc2617_example() {
        let creds = parse_auth(
            r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        let c = DigestCredentials::from_header(&creds).unwrap();
        let h1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert!(c.verify_with_ha1(&h1, "GET", b""));
        assert!(!c.verify_with_ha1(&h1, "POST", b""));
    }

    // RFC 7616 §3.9.1, the vectors RFC 8760 relies on for SHA-256.
    #[test]
    fn rfc7616_md5_and_sha256() {
        for (alg, expected) in [
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let h1 = ha1(alg, "Mufasa", "http-auth@example.org", "Circle of Life");
            let r = response_from_ha1(&ResponseInput {
                algorithm: alg,
                ha1: &h1,
                nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
                cnonce: Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"),
                nc: Some("00000001"),
                qop: Some("auth"),
                method: "GET",
                uri: "/dir/index.html",
                body: b"",
            });
            assert_eq!(r, expected, "{alg:?}");
        }
    }

    #[test]
    fn challenge_answer_verify_round_trip() {
        let ch = DigestChallenge {
            realm: "example.com".into(),
            nonce: "abc".into(),
            opaque: Some("xyz".into()),
            algorithm: Algorithm::Sha256,
            qop: vec!["auth".into()],
            stale: false,
        };
        let parsed =
            DigestChallenge::from_header(&parse_auth(&ch.to_header().to_string()).unwrap())
                .unwrap();
        assert_eq!(parsed, ch);
        let creds = answer(
            &ch,
            "alice",
            "pw",
            "REGISTER",
            "sip:example.com",
            "c1",
            1,
            b"",
        );
        let back =
            DigestCredentials::from_header(&parse_auth(&creds.to_header().to_string()).unwrap())
                .unwrap();
        assert_eq!(back, creds);
        assert!(back.verify_with_ha1(
            &ha1(Algorithm::Sha256, "alice", "example.com", "pw"),
            "REGISTER",
            b""
        ));
        assert_eq!(
            DigestChallenge::from_header(&AuthHeader::new("Basic")),
            Err(DigestError::NotDigest)
        );
    }
}
