//! `[[xmpp.external_services]]`: the STUN and TURN servers announced by External Service Discovery (XEP-0215).

use std::time::Duration;

use serde::Deserialize;
use server_xmpp::translate::features::extdisco::{Credentials, ExternalService};

/// One `[[xmpp.external_services]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalServiceConfig {
    /// `"stun"`, `"stuns"`, `"turn"` or `"turns"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Host name or address clients connect to.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `"udp"` or `"tcp"`; absent: the service does not say.
    pub transport: Option<String>,
    /// A fixed username (with `password`).
    pub username: Option<String>,
    /// A fixed password (with `username`).
    pub password: Option<String>,
    /// A secret shared with the TURN server (coturn's `static-auth-secret`): each client gets credentials made
    /// from it that expire after `ttl`.
    pub secret: Option<String>,
    /// How long credentials made from `secret` are valid (default `"24h"`).
    #[serde(default, deserialize_with = "crate::config::optional_duration")]
    pub ttl: Option<Duration>,
}

impl ExternalServiceConfig {
    /// Why the entry cannot work, as (key, value, problem).
    pub fn problem(&self) -> Option<(&'static str, String, String)> {
        if !matches!(self.kind.as_str(), "stun" | "stuns" | "turn" | "turns") {
            return Some((
                "xmpp.external_services.type",
                self.kind.clone(),
                "is not stun, stuns, turn or turns".into(),
            ));
        }
        if self.host.trim().is_empty() || self.port == 0 {
            return Some((
                "xmpp.external_services.host",
                format!("{}:{}", self.host, self.port),
                "needs a host and a port other than 0".into(),
            ));
        }
        if let Some(t) = &self.transport
            && t != "udp"
            && t != "tcp"
        {
            return Some((
                "xmpp.external_services.transport",
                t.clone(),
                "is not udp or tcp".into(),
            ));
        }
        if self.username.is_some() != self.password.is_some() {
            return Some((
                "xmpp.external_services.username",
                self.host.clone(),
                "username and password go together".into(),
            ));
        }
        if self.secret.is_some() && self.username.is_some() {
            return Some((
                "xmpp.external_services.secret",
                self.host.clone(),
                "is given with a fixed username and password: choose one".into(),
            ));
        }
        if self.ttl.is_some_and(|t| t.is_zero()) {
            return Some((
                "xmpp.external_services.ttl",
                "0s".into(),
                "would hand out credentials that are already expired".into(),
            ));
        }
        None
    }

    /// The service as the XMPP shell offers it.
    pub fn service(&self) -> ExternalService {
        let credentials = match (&self.username, &self.password, &self.secret) {
            (Some(u), Some(p), _) => Credentials::Static {
                username: u.clone(),
                password: p.clone(),
            },
            (_, _, Some(s)) => Credentials::Ephemeral {
                secret: s.clone(),
                ttl: self.ttl.unwrap_or(Duration::from_secs(24 * 3600)),
            },
            _ => Credentials::None,
        };
        ExternalService {
            kind: self.kind.clone(),
            host: self.host.clone(),
            port: self.port,
            transport: self.transport.clone(),
            credentials,
        }
    }
}
