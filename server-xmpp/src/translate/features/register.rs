//! In-Band Registration (XEP-0077), when the operator turns it on: before authentication a client may create an
//! account (`<register/>` stream feature, form, username and password); once signed in, a user may change their
//! password or remove their account. Accounts are made by an [`AccountMaker`] the embedding process supplies (the
//! same derivation of SCRAM and SIP digest secrets as `presenced user add`); the store is used on the blocking
//! pool, as SASL does. New accounts are rate-limited per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use presence_core::BareJid;
use presence_core::stanza::ErrorCondition;
use presence_core::store::{Account, AccountStore, StoreError};
use tracing::info;
use xmpp_codec::{Element, IqType, Stanza, StanzaKind, ns};

use super::{Feature, FromClient, Iq};
use crate::sasl::credentials::CredentialError;
use crate::translate::iq_error;

/// XEP-0077.
pub const NS_REGISTER: &str = "jabber:iq:register";
/// The stream feature advertising registration before authentication.
pub const NS_REGISTER_FEATURE: &str = "http://jabber.org/features/iq-register";

/// The registry's entry; on only when registration is configured ([`super::Features::with_registration`]).
pub const FEATURE: Feature = Feature {
    name: "register",
    disco: &[NS_REGISTER],
    payloads: &[(NS_REGISTER, "query")],
    iq,
};

/// Makes an account's stored secrets from a password.
pub trait AccountMaker: Send + Sync + std::fmt::Debug {
    /// The account of `jid` with `password`.
    fn make(&self, jid: BareJid, password: &str) -> Result<Account, CredentialError>;
}

/// Registration as configured: how accounts are made, and how often one address may make one.
#[derive(Debug)]
pub struct Registration {
    maker: Arc<dyn AccountMaker>,
    interval: Duration,
    last: Mutex<HashMap<IpAddr, Instant>>,
}

impl Registration {
    /// Accounts made by `maker`, one per `interval` from each client address.
    pub fn new(maker: Arc<dyn AccountMaker>, interval: Duration) -> Self {
        Registration {
            maker,
            interval,
            last: Mutex::new(HashMap::new()),
        }
    }

    fn allowed(&self, ip: IpAddr, now: Instant) -> bool {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.get(&ip)
            .is_none_or(|t| now.duration_since(*t) >= self.interval)
    }

    fn made(&self, ip: IpAddr, now: Instant) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        // Forget addresses whose wait is over, so the table stays as small as the recent registrations.
        if last.len() >= 1024 {
            last.retain(|_, t| now.duration_since(*t) < self.interval);
        }
        last.insert(ip, now);
    }
}

/// What a signed-in user asks of their own account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new password.
    Password(String),
    /// Remove the account.
    Remove,
}

/// A signed-in user's request, run by the connection against the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRequest {
    /// The IQ's id.
    pub id: String,
    /// Whom it was addressed to (echoed as `from`).
    pub to: Option<String>,
    /// What to do.
    pub change: Change,
}

fn form(registered: Option<&str>) -> Element {
    let mut q = Element::new(NS_REGISTER, "query");
    if registered.is_some() {
        q = q.with_child(Element::new(NS_REGISTER, "registered"));
    }
    q.with_child(
        Element::new(NS_REGISTER, "instructions")
            .with_text("Choose a username and password for use with this service."),
    )
    .with_child(Element::new(NS_REGISTER, "username").with_text(registered.unwrap_or_default()))
    .with_child(Element::new(NS_REGISTER, "password"))
}

fn field(query: &Element, name: &str) -> Option<String> {
    query
        .child(NS_REGISTER, name)
        .map(|e| e.text())
        .filter(|t| !t.is_empty())
}

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    if !iq.for_domain() {
        return None;
    }
    let local = iq.me.jid.bare().local().unwrap_or_default();
    if iq.iq_type == IqType::Get {
        return Some(iq.result(vec![form(Some(local))]));
    }
    let change = if iq.payload.child(NS_REGISTER, "remove").is_some() {
        Change::Remove
    } else {
        match (field(iq.payload, "username"), field(iq.payload, "password")) {
            (Some(u), Some(p)) if u.to_lowercase() == local => Change::Password(p),
            (Some(_), Some(_)) => {
                return Some(iq.error(
                    ErrorCondition::NotAllowed,
                    Some("only the signed-in user's own password can be changed"),
                ));
            }
            _ => {
                return Some(iq.error(
                    ErrorCondition::BadRequest,
                    Some("a username and a password are required"),
                ));
            }
        }
    };
    Some(FromClient::Register(ChangeRequest {
        id: iq.id.to_owned(),
        to: iq.stanza.to().map(str::to_owned),
        change,
    }))
}

/// Carries out a signed-in user's change; the result or error to send. After a removal the connection ends the
/// stream (XEP-0077 §3.2).
pub async fn change<S: AccountStore + Send + Sync + 'static>(
    registration: Arc<Registration>,
    store: Arc<S>,
    me: &presence_core::FullJid,
    request: ChangeRequest,
) -> Element {
    let user = me.bare().clone();
    let change = request.change.clone();
    let done = tokio::task::spawn_blocking(move || -> Result<(), (ErrorCondition, String)> {
        match change {
            Change::Password(p) => {
                let account = registration
                    .maker
                    .make(user.clone(), &p)
                    .map_err(refused_password)?;
                store.put_account(&account).map_err(store_failed)?;
                info!(%user, "password changed in-band");
            }
            Change::Remove => {
                store.remove_account(&user).map_err(store_failed)?;
                info!(%user, "account removed in-band");
            }
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|_| Err(store_failed(StoreError::Backend("task failed".into()))));
    let to = me.to_string();
    match done {
        Ok(()) => result(&request.id, Some(&to), request.to.as_deref()),
        Err((c, text)) => iq_error(
            Some(&request.id),
            &to,
            request.to.as_deref(),
            c,
            Some(&text),
        ),
    }
}

fn refused_password(e: CredentialError) -> (ErrorCondition, String) {
    (ErrorCondition::NotAcceptable, e.to_string())
}

fn store_failed(e: StoreError) -> (ErrorCondition, String) {
    tracing::warn!(error = %e, "in-band registration: the store failed");
    (
        ErrorCondition::InternalServerError,
        "the account store failed; try again later".into(),
    )
}

fn result(id: &str, to: Option<&str>, from: Option<&str>) -> Element {
    let mut el = Element::new(ns::CLIENT, "iq")
        .with_attr("type", "result")
        .with_attr("id", id);
    if let Some(t) = to {
        el = el.with_attr("to", t);
    }
    if let Some(f) = from {
        el = el.with_attr("from", f);
    }
    el
}

/// Whether `stanza`, sent before authentication, is a registration request.
pub fn is_request(stanza: &Stanza) -> bool {
    stanza.kind() == StanzaKind::Iq
        && stanza
            .payloads()
            .next()
            .is_some_and(|p| p.is(NS_REGISTER, "query"))
}

/// Answers a registration request sent before authentication (XEP-0077 §3.1) from `ip`.
pub async fn unauthenticated<S: AccountStore + Send + Sync + 'static>(
    registration: Arc<Registration>,
    store: Arc<S>,
    domain: &str,
    ip: IpAddr,
    stanza: &Stanza,
) -> Element {
    let id = stanza.id().unwrap_or_default().to_owned();
    // No address yet: the answers carry none (RFC 6120 §8.1.2.1 allows leaving 'to' out).
    let error = |c, text: &str| {
        let mut el = iq_error(Some(&id), "", None, c, Some(text));
        el.attrs.retain(|a| a.name != "to");
        el
    };
    let Some(query) = stanza.payloads().next() else {
        return error(ErrorCondition::BadRequest, "no query");
    };
    match stanza.iq_type() {
        Some(IqType::Get) => return result(&id, None, None).with_child(form(None)),
        Some(IqType::Set) => {}
        _ => return error(ErrorCondition::BadRequest, "a get or a set is expected"),
    }
    if query.child(NS_REGISTER, "remove").is_some() {
        return error(ErrorCondition::Forbidden, "sign in first");
    }
    let (Some(username), Some(password)) = (field(query, "username"), field(query, "password"))
    else {
        return error(
            ErrorCondition::NotAcceptable,
            "a username and a password are required",
        );
    };
    // The same preparation as every address (PRECIS UsernameCaseMapped for the localpart).
    let Ok(jid) = BareJid::from_parts(Some(username.trim()), domain) else {
        return error(ErrorCondition::NotAcceptable, "that username is not valid");
    };
    if !registration.allowed(ip, Instant::now()) {
        return error(
            ErrorCondition::ResourceConstraint,
            "too many registrations from this address; try again later",
        );
    }
    let reg = registration.clone();
    let made = jid.clone();
    let outcome = tokio::task::spawn_blocking(move || -> Result<(), (ErrorCondition, String)> {
        if store.account(&made).map_err(store_failed)?.is_some() {
            return Err((ErrorCondition::Conflict, "that username is taken".into()));
        }
        let account = reg.maker.make(made, &password).map_err(refused_password)?;
        store.put_account(&account).map_err(store_failed)
    })
    .await
    .unwrap_or_else(|_| Err(store_failed(StoreError::Backend("task failed".into()))));
    match outcome {
        Ok(()) => {
            registration.made(ip, Instant::now());
            info!(user = %jid, %ip, "account registered in-band");
            result(&id, None, None)
        }
        Err((c, text)) => error(c, &text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Maker;
    impl AccountMaker for Maker {
        fn make(&self, jid: BareJid, _: &str) -> Result<Account, CredentialError> {
            Ok(Account {
                jid,
                credentials: Vec::new(),
                digest: Vec::new(),
            })
        }
    }

    #[test]
    fn one_registration_per_interval_per_address() {
        let r = Registration::new(Arc::new(Maker), Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        let t0 = Instant::now();
        assert!(r.allowed(a, t0));
        r.made(a, t0);
        assert!(!r.allowed(a, t0 + Duration::from_secs(59)));
        assert!(r.allowed(b, t0 + Duration::from_secs(1)));
        assert!(r.allowed(a, t0 + Duration::from_secs(60)));
    }
}
