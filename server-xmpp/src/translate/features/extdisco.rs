//! External Service Discovery (XEP-0215): the STUN and TURN servers the operator configured, for clients setting
//! up calls. A TURN server may have fixed credentials, or a shared secret from which time-limited ones are made
//! for each request (the "TURN REST API" of draft-uberti-behave-turn-rest, which coturn and others implement):
//! username `<expiry unix time>:<user's bare JID>`, password base64(HMAC-SHA1(secret, username)).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use presence_core::runtime::timestamp;
use presence_core::stanza::ErrorCondition;
use presence_core::time::Timestamp;
use xmpp_codec::{Element, IqType};

use super::{Feature, FromClient, Iq};
use crate::translate::format_stamp;

/// XEP-0215 version 2.
pub const NS_EXTDISCO: &str = "urn:xmpp:extdisco:2";

/// The registry's entry; on only when services are configured ([`super::Features::with_external_services`]).
pub const FEATURE: Feature = Feature {
    name: "extdisco",
    disco: &[NS_EXTDISCO],
    payloads: &[(NS_EXTDISCO, "services"), (NS_EXTDISCO, "credentials")],
    iq,
};

/// One configured service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalService {
    /// `stun`, `stuns`, `turn` or `turns`.
    pub kind: String,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `udp` or `tcp`, when the service names one.
    pub transport: Option<String>,
    /// What a client logs in with.
    pub credentials: Credentials,
}

/// How a client authenticates to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// It does not.
    None,
    /// The same username and password for everybody.
    Static {
        /// Username.
        username: String,
        /// Password.
        password: String,
    },
    /// Made per request from a secret shared with the service, valid for `ttl`.
    Ephemeral {
        /// The shared secret.
        secret: String,
        /// How long the credentials are valid.
        ttl: Duration,
    },
}

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    if !iq.for_domain() {
        return None;
    }
    if iq.iq_type != IqType::Get {
        return Some(iq.error(
            ErrorCondition::BadRequest,
            Some("services are asked for with an iq get"),
        ));
    }
    let services = iq.me.features.external_services();
    let user = iq.me.jid.bare().as_str();
    let now = timestamp();
    let el = |s: &ExternalService| element(s, user, now);
    Some(match iq.payload.name.as_str() {
        // §3.1, §3.2: everything, or the services of one type.
        "services" => {
            let kind = iq.payload.attr("type");
            let mut q = Element::new(NS_EXTDISCO, "services");
            if let Some(k) = kind {
                q = q.with_attr("type", k);
            }
            for s in services.iter().filter(|s| kind.is_none_or(|k| k == s.kind)) {
                q = q.with_child(el(s));
            }
            iq.result(vec![q])
        }
        // §3.3: fresh credentials for one service, named by host and type (and port when given).
        _ => {
            let ask = iq.payload.elements().find(|e| e.is(NS_EXTDISCO, "service"));
            let found = ask.and_then(|a| {
                services.iter().find(|s| {
                    a.attr("host") == Some(s.host.as_str())
                        && a.attr("type").is_none_or(|t| t == s.kind)
                        && a.attr("port").is_none_or(|p| p.parse() == Ok(s.port))
                })
            });
            match found {
                Some(s) => iq.result(vec![
                    Element::new(NS_EXTDISCO, "credentials").with_child(el(s)),
                ]),
                None => iq.error(ErrorCondition::ItemNotFound, Some("no such service")),
            }
        }
    })
}

/// A `<service/>` with credentials for `user`, made at `now`.
fn element(s: &ExternalService, user: &str, now: Timestamp) -> Element {
    let mut e = Element::new(NS_EXTDISCO, "service")
        .with_attr("type", &s.kind)
        .with_attr("host", &s.host)
        .with_attr("port", s.port.to_string());
    if let Some(t) = &s.transport {
        e = e.with_attr("transport", t);
    }
    match &s.credentials {
        Credentials::None => e,
        Credentials::Static { username, password } => e
            .with_attr("restricted", "1")
            .with_attr("username", username)
            .with_attr("password", password),
        Credentials::Ephemeral { secret, ttl } => {
            let expires_ms = now.as_millis().saturating_add(ttl.as_millis() as u64);
            let username = format!("{}:{user}", expires_ms / 1000);
            let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes any key length");
            mac.update(username.as_bytes());
            let password = B64.encode(mac.finalize().into_bytes());
            e.with_attr("restricted", "1")
                .with_attr("expires", format_stamp(Timestamp::from_millis(expires_ms)))
                .with_attr("username", username)
                .with_attr("password", password)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_credentials_follow_the_turn_rest_api() {
        let s = ExternalService {
            kind: "turn".into(),
            host: "turn.example.com".into(),
            port: 3478,
            transport: Some("udp".into()),
            credentials: Credentials::Ephemeral {
                secret: "north".into(),
                ttl: Duration::from_secs(86_400),
            },
        };
        let e = element(&s, "alice@example.com", Timestamp::from_millis(1_000_000));
        assert_eq!(e.attr("username"), Some("87400:alice@example.com"));
        assert_eq!(e.attr("expires"), Some("1970-01-02T00:16:40.000Z"));
        // Independently: python3 -c "import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b'north',
        // b'87400:alice@example.com',hashlib.sha1).digest()).decode())"
        assert_eq!(e.attr("password"), Some("XBUHQQX1bwxGJz71WSM5AVkV50c="));
    }
}
