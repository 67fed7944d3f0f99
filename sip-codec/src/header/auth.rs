//! Authentication headers: WWW-Authenticate, Proxy-Authenticate, Authorization, Proxy-Authorization
//! (RFC 3261 §25.1 `challenge` / `credentials`, RFC 7616/8760 digest parameters).

use std::fmt;

use nom::{IResult, Parser, bytes::complete::take_while1};

use crate::grammar::{is_token, is_ws, quote, quoted_string, sep, sws, token, unquote};

/// A challenge or credentials value: a scheme and its `name=value` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    /// The scheme (`Digest`, or anything else).
    pub scheme: String,
    /// Parameters with quotes removed; `quoted` records how each was written.
    pub params: Vec<AuthParam>,
}

/// One `name=value` authentication parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParam {
    /// Parameter name.
    pub name: String,
    /// Value, unquoted.
    pub value: String,
    /// Whether the value is written as a quoted-string.
    pub quoted: bool,
}

impl AuthHeader {
    /// A header with no parameters.
    pub fn new(scheme: &str) -> Self {
        AuthHeader {
            scheme: scheme.to_owned(),
            params: Vec::new(),
        }
    }

    /// The value of a parameter (case-insensitive name).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_str())
    }

    /// Appends a parameter.
    pub fn push(&mut self, name: &str, value: &str, quoted: bool) -> &mut Self {
        self.params.push(AuthParam {
            name: name.to_owned(),
            value: value.to_owned(),
            quoted,
        });
        self
    }

    /// True for the Digest scheme.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }
}

/// Characters of an unquoted parameter value: `token` plus the `/` and `=` of base64.
fn is_token68(c: char) -> bool {
    is_token(c) || c == '/' || c == '='
}

fn auth_param(i: &str) -> IResult<&str, AuthParam> {
    let (i, name) = token(i)?;
    let (i, _) = sep('=')(i)?;
    if i.starts_with('"') {
        let (i, q) = quoted_string(i)?;
        Ok((
            i,
            AuthParam {
                name: name.to_owned(),
                value: unquote(q),
                quoted: true,
            },
        ))
    } else {
        // token68 values (base64 with '/' and '=') occur in non-digest schemes.
        let (i, v) = take_while1(is_token68).parse(i)?;
        Ok((
            i,
            AuthParam {
                name: name.to_owned(),
                value: v.to_owned(),
                quoted: false,
            },
        ))
    }
}

/// Parses a challenge or credentials value.
pub fn parse_auth(s: &str) -> Result<AuthHeader, &'static str> {
    let (i, _) = sws(s).map_err(|_| "malformed")?;
    let (i, scheme) = token(i).map_err(|_| "missing scheme")?;
    let (mut i, _) = take_while1::<_, _, nom::error::Error<&str>>(is_ws)
        .parse(i)
        .map_err(|_| "missing parameters")?;
    let mut params = Vec::new();
    loop {
        let (r, p) = auth_param(i).map_err(|_| "malformed parameter")?;
        params.push(p);
        match sep(',')(r) {
            Ok((r, _)) => i = r,
            Err(_) => {
                let (r, _) = sws(r).map_err(|_| "malformed")?;
                if !r.is_empty() {
                    return Err("unexpected characters after parameters");
                }
                break;
            }
        }
    }
    Ok(AuthHeader {
        scheme: scheme.to_owned(),
        params,
    })
}

impl fmt::Display for AuthHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        for (k, p) in self.params.iter().enumerate() {
            f.write_str(if k == 0 { " " } else { ", " })?;
            // A value the unquoted form cannot carry (empty, or with a space or comma, as a
            // quoted `qop` or `nc` read from the wire may be) is quoted so it reads back.
            if p.quoted || p.value.is_empty() || !p.value.chars().all(is_token68) {
                write!(f, "{}={}", p.name, quote(&p.value))?;
            } else {
                write!(f, "{}={}", p.name, p.value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_digest_challenge() {
        let c = parse_auth(r#"Digest realm="atlanta.com", domain="sip:ss1.carrier.com", qop="auth", nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5"#).unwrap();
        assert!(c.is_digest());
        assert_eq!(c.get("realm"), Some("atlanta.com"));
        assert_eq!(c.get("opaque"), Some(""));
        assert_eq!(c.get("ALGORITHM"), Some("MD5"));
        let again = parse_auth(&c.to_string()).unwrap();
        assert_eq!(again, c);
        assert!(parse_auth("NoOneKnowsThisScheme opaque-data=here").is_ok());
        assert!(parse_auth("Digest").is_err());
    }

    #[test]
    fn values_the_unquoted_form_cannot_carry_are_written_quoted() {
        let mut h = AuthHeader::new("Digest");
        h.push("qop", "auth, auth-int", false)
            .push("nc", "", false)
            .push("algorithm", "MD5", false);
        let text = h.to_string();
        assert_eq!(text, r#"Digest qop="auth, auth-int", nc="", algorithm=MD5"#);
        let again = parse_auth(&text).unwrap();
        assert_eq!(again.get("qop"), Some("auth, auth-int"));
        assert_eq!(again.get("nc"), Some(""));
    }
}
