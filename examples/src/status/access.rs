//! Who may read the status page and `/status.json`.
//!
//! - A request straight from loopback (the peer is `127.0.0.0/8` or `::1` and carries no `X-Forwarded-For` or
//!   `Forwarded` header) is served: it comes from this machine.
//! - Anything else needs HTTP Basic authentication as user `admin` with `[http] admin_password`: a loopback
//!   peer with a forwarding header is a local proxy passing on somebody from outside. Without a configured
//!   password such a request gets `403`; with one, a missing or wrong `Authorization` gets `401` and a
//!   `WWW-Authenticate` challenge.
//! - The password never crosses a network in the clear: on a listener that is neither TLS nor on loopback (see
//!   `HttpConfig::secure`), Basic authentication is refused with `403`.

use std::net::SocketAddr;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use subtle::ConstantTimeEq;

/// The user name of Basic authentication.
pub const ADMIN_USER: &str = "admin";

/// The access rule of one listener.
#[derive(Clone, Default)]
pub struct AccessRule {
    /// `[http] admin_password`.
    pub password: Option<String>,
    /// Whether the listener is TLS or on loopback (a password may cross it).
    pub secure: bool,
}

impl std::fmt::Debug for AccessRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessRule")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("secure", &self.secure)
            .finish()
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it.
    Allow,
    /// `401` with a Basic challenge: a password is configured and was not given right.
    Unauthorized,
    /// `403` with this explanation.
    Forbidden(&'static str),
}

impl AccessRule {
    /// The verdict for a request from `peer` with `headers`.
    pub fn check(&self, peer: SocketAddr, headers: &HeaderMap) -> Verdict {
        let forwarded =
            headers.contains_key("x-forwarded-for") || headers.contains_key(header::FORWARDED);
        if peer.ip().is_loopback() && !forwarded {
            return Verdict::Allow;
        }
        let Some(password) = &self.password else {
            return Verdict::Forbidden(
                "the status page is served to loopback only; set [http] admin_password to open it to others\n",
            );
        };
        if !self.secure {
            return Verdict::Forbidden(
                "the status page takes no password over plain HTTP on a non-loopback address; set [http] tls = true\n",
            );
        }
        match basic_credentials(headers) {
            Some((user, given))
                if user == ADMIN_USER
                    && bool::from(given.as_bytes().ct_eq(password.as_bytes())) =>
            {
                Verdict::Allow
            }
            _ => Verdict::Unauthorized,
        }
    }
}

/// The user and password of an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The `Authorization` header value for `password` (what `presenced status` sends).
pub fn authorization(password: &str) -> String {
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("{ADMIN_USER}:{password}"));
    format!("Basic {token}")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("ip"), 40000)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn loopback_without_a_proxy_header_is_served_without_a_password() {
        let rule = AccessRule::default();
        assert_eq!(
            rule.check(peer("127.0.0.1"), &HeaderMap::new()),
            Verdict::Allow
        );
        assert_eq!(rule.check(peer("::1"), &HeaderMap::new()), Verdict::Allow);
        assert!(matches!(
            rule.check(peer("10.1.2.3"), &HeaderMap::new()),
            Verdict::Forbidden(_)
        ));
        assert!(matches!(
            rule.check(
                peer("127.0.0.1"),
                &headers(&[("x-forwarded-for", "203.0.113.9")])
            ),
            Verdict::Forbidden(_)
        ));
    }

    #[test]
    fn others_need_the_admin_password_over_a_secure_listener() {
        let rule = AccessRule {
            password: Some("s3cret".into()),
            secure: true,
        };
        let remote = peer("10.1.2.3");
        assert_eq!(rule.check(remote, &HeaderMap::new()), Verdict::Unauthorized);
        let good = headers(&[("authorization", &authorization("s3cret"))]);
        assert_eq!(rule.check(remote, &good), Verdict::Allow);
        let wrong = headers(&[("authorization", &authorization("guess"))]);
        assert_eq!(rule.check(remote, &wrong), Verdict::Unauthorized);
        let other_user = base64::engine::general_purpose::STANDARD.encode("root:s3cret");
        let other = headers(&[("authorization", &format!("Basic {other_user}"))]);
        assert_eq!(rule.check(remote, &other), Verdict::Unauthorized);
        let plain = AccessRule {
            secure: false,
            ..rule
        };
        assert!(matches!(plain.check(remote, &good), Verdict::Forbidden(_)));
    }
}
