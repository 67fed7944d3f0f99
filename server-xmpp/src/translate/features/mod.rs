//! The IQ features of the XMPP shell, one module each, registered in one table.
//!
//! A feature names the IQ payloads it answers and the disco#info features it stands for; the table is both the
//! dispatch of a client's IQs and the server's disco#info list, so what is advertised is exactly what is served.
//! A feature the engine serves turns the IQ into an `Input::Request` and renders the engine's `Answer` and `Push`
//! in its own module too. Prosody's one-module-per-XEP layout is the model.

pub mod app_push;
pub mod avatar;
pub mod blocking;
pub mod caps;
pub mod carbons;
pub mod disco;
pub mod extdisco;
pub mod mam;
pub mod muc;
pub mod muc_admin;
pub mod muc_mediated;
pub mod muc_owner;
pub mod offline;
pub mod pep;
pub mod ping;
pub mod private;
pub mod register;
pub mod roster;
pub mod search;
pub mod session;
pub mod settings;
pub mod upload;
pub mod vcard;
pub mod version;
pub mod xml;

use presence_core::feature::{Answer, Call, Push};
use presence_core::stanza::{ErrorCondition, RequestId};
use presence_core::{Input, Jid};
use xmpp_codec::{Element, IqType, Stanza, ns};

use super::inbound::{FromClient, Me};
use super::iq_error;

/// One feature of the shell.
#[derive(Debug)]
pub struct Feature {
    /// A short name, for configuration and logs.
    pub name: &'static str,
    /// What the server's disco#info lists while the feature is on.
    pub disco: &'static [&'static str],
    /// The IQ payloads it answers, as (namespace, element name).
    pub payloads: &'static [(&'static str, &'static str)],
    /// Answers an IQ get or set whose payload it named; `None` leaves it to the next feature that names it (or to
    /// the `service-unavailable` every unclaimed IQ gets).
    pub iq: fn(&Iq<'_>) -> Option<FromClient>,
}

/// The features a server offers: every feature in [`Features::standard`] that the configuration leaves on.
#[derive(Debug, Clone)]
pub struct Features {
    on: Vec<&'static Feature>,
    /// What makes upload slots, while [`upload`] is on.
    upload: Option<std::sync::Arc<dyn upload::SlotIssuer>>,
    /// The STUN and TURN services offered, while [`extdisco`] is on.
    external_services: std::sync::Arc<[extdisco::ExternalService]>,
    /// In-band registration, while [`register`] is on.
    registration: Option<std::sync::Arc<register::Registration>>,
    /// The room service's domain, while [`muc`] is on.
    muc_domain: Option<std::sync::Arc<str>>,
    /// The user directory: PLAIN passwords and contact search ([`search`]).
    directory: Option<std::sync::Arc<dyn crate::directory::Directory>>,
}

/// Every feature, in the order IQs are offered to them.
const ALL: &[&Feature] = &[
    &roster::FEATURE,
    &blocking::FEATURE,
    &settings::FEATURE,
    &disco::FEATURE,
    &ping::FEATURE,
    &version::FEATURE,
    &session::FEATURE,
    &offline::FEATURE,
    &private::FEATURE,
    &vcard::FEATURE,
    &carbons::FEATURE,
    &mam::FEATURE,
    &pep::FEATURE,
    &upload::FEATURE,
    &extdisco::FEATURE,
    &register::FEATURE,
    &app_push::FEATURE,
    &muc::FEATURE,
    &search::FEATURE,
];

/// Features that need something from the configuration to work, so they are off until given it.
const CONFIGURED: &[&str] = &[
    upload::FEATURE.name,
    extdisco::FEATURE.name,
    register::FEATURE.name,
    muc::FEATURE.name,
    search::FEATURE.name,
];

impl Features {
    /// Every feature that is on unless configured off.
    pub fn standard() -> Self {
        Features {
            on: ALL
                .iter()
                .copied()
                .filter(|f| !CONFIGURED.contains(&f.name))
                .collect(),
            upload: None,
            external_services: std::sync::Arc::new([]),
            registration: None,
            muc_domain: None,
            directory: None,
        }
    }

    /// These features with a user directory: it checks the PLAIN passwords of its users, and answers contact
    /// searches (XEP-0055, switched on here).
    pub fn with_directory(
        mut self,
        directory: std::sync::Arc<dyn crate::directory::Directory>,
    ) -> Self {
        self.directory = Some(directory);
        self.switch_on(&search::FEATURE);
        self
    }

    /// The user directory, if one is configured (password checks use it whether or not search is on).
    pub fn directory(&self) -> Option<&std::sync::Arc<dyn crate::directory::Directory>> {
        self.directory.as_ref()
    }

    /// These features with the group chat service (XEP-0045) at `domain`: stanzas to it go to the engine's rooms
    /// and the server's disco#items lists it.
    pub fn with_muc(mut self, domain: &str) -> Self {
        self.muc_domain = Some(domain.to_ascii_lowercase().into());
        self.switch_on(&muc::FEATURE);
        self
    }

    /// The room service's domain, while it is on.
    pub fn muc_domain(&self) -> Option<&str> {
        self.muc_domain
            .as_deref()
            .filter(|_| self.is_on(muc::FEATURE.name))
    }

    /// These features with In-Band Registration (XEP-0077) on: account creation before authentication, and
    /// password change and account removal after.
    pub fn with_registration(mut self, registration: register::Registration) -> Self {
        self.registration = Some(std::sync::Arc::new(registration));
        self.switch_on(&register::FEATURE);
        self
    }

    /// In-band registration, while it is on.
    pub fn registration(&self) -> Option<&std::sync::Arc<register::Registration>> {
        self.registration
            .as_ref()
            .filter(|_| self.is_on(register::FEATURE.name))
    }

    /// These features with External Service Discovery (XEP-0215) offering `services`; with none it stays off, so
    /// it is not advertised.
    pub fn with_external_services(mut self, services: Vec<extdisco::ExternalService>) -> Self {
        if !services.is_empty() {
            self.switch_on(&extdisco::FEATURE);
        }
        self.external_services = services.into();
        self
    }

    /// The external services offered (empty while [`extdisco`] is off).
    pub fn external_services(&self) -> &[extdisco::ExternalService] {
        if self.is_on(extdisco::FEATURE.name) {
            &self.external_services
        } else {
            &[]
        }
    }

    /// These features with HTTP File Upload (XEP-0363) on, its slots made by `issuer`.
    pub fn with_upload(mut self, issuer: std::sync::Arc<dyn upload::SlotIssuer>) -> Self {
        self.upload = Some(issuer);
        self.switch_on(&upload::FEATURE);
        self
    }

    /// The upload slot issuer, while HTTP File Upload is on.
    pub fn upload(&self) -> Option<&std::sync::Arc<dyn upload::SlotIssuer>> {
        self.upload
            .as_ref()
            .filter(|_| self.is_on(upload::FEATURE.name))
    }

    fn switch_on(&mut self, feature: &'static Feature) {
        if !self.is_on(feature.name) {
            self.on.push(feature);
        }
    }

    /// These features, less those `off` names.
    pub fn without(mut self, off: &[&str]) -> Self {
        self.on.retain(|f| !off.contains(&f.name));
        self
    }

    /// The disco#info features of the server, sorted and without repeats.
    pub fn disco(&self) -> Vec<&'static str> {
        let mut all: Vec<&'static str> = self.on.iter().flat_map(|f| f.disco).copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Whether the feature named `name` is on.
    pub fn is_on(&self, name: &str) -> bool {
        self.on.iter().any(|f| f.name == name)
    }

    /// Offers an IQ get or set to the features that name its payload.
    pub(super) fn iq(&self, iq: &Iq<'_>) -> FromClient {
        let key = (iq.payload.ns.as_str(), iq.payload.name.as_str());
        self.on
            .iter()
            .filter(|f| f.payloads.contains(&key))
            .find_map(|f| (f.iq)(iq))
            // Anything else, to the server or routed to another entity, is not offered (RFC 6120 §8.4).
            .unwrap_or_else(|| iq.error(ErrorCondition::ServiceUnavailable, None))
    }
}

/// An IQ get or set from a bound client, as a feature sees it.
pub struct Iq<'a> {
    /// The whole stanza.
    pub stanza: &'a Stanza,
    /// Its one child.
    pub payload: &'a Element,
    /// `Get` or `Set`.
    pub iq_type: IqType,
    /// Its id.
    pub id: &'a str,
    /// Its `to`, parsed.
    pub to: Option<&'a Jid>,
    /// The client.
    pub me: &'a Me<'a>,
}

impl Iq<'_> {
    /// Addressed to the server, the user's own account or the session itself: what the server answers.
    pub fn for_server(&self) -> bool {
        match self.to {
            None => true,
            Some(Jid::Bare(b)) => b.as_str() == self.me.domain || b == self.me.jid.bare(),
            Some(Jid::Full(f)) => f == self.me.jid,
        }
    }

    /// Addressed to the user's own account (no `to`, or the bare JID or this session).
    pub fn for_own_account(&self) -> bool {
        self.for_server() && self.to.is_none_or(|t| t.bare() == self.me.jid.bare())
    }

    /// Addressed to the server's domain itself (no `to`, or the domain).
    pub fn for_domain(&self) -> bool {
        self.for_server() && self.to.is_none_or(|t| t.bare().as_str() == self.me.domain)
    }

    /// Addressed to some account of the served domain.
    pub fn for_any_account(&self) -> bool {
        matches!(self.to, Some(Jid::Bare(b)) if b.local().is_some() && b.domain() == self.me.domain)
    }

    /// Hands the request to the engine.
    pub fn call(&self, call: Call) -> FromClient {
        FromClient::Engine(Input::Request {
            session: self.me.session,
            request: RequestId(self.id.to_owned()),
            call,
        })
    }

    /// A result carrying `children`, answered by the shell.
    pub fn result(&self, children: Vec<Element>) -> FromClient {
        let mut el = Element::new(ns::CLIENT, "iq")
            .with_attr("type", "result")
            .with_attr("id", self.id)
            .with_attr("to", self.me.jid.to_string());
        if let Some(t) = self.stanza.to() {
            el = el.with_attr("from", t);
        }
        for c in children {
            el = el.with_child(c);
        }
        FromClient::Reply(el)
    }

    /// An error answer.
    pub fn error(&self, condition: ErrorCondition, text: Option<&str>) -> FromClient {
        FromClient::Reply(iq_error(
            Some(self.id),
            &self.me.jid.to_string(),
            self.stanza.to(),
            condition,
            text,
        ))
    }
}

/// The payload of the result answering a request (none for [`Answer::Done`]).
pub(super) fn answer(answer: &Answer) -> Option<Element> {
    match answer {
        Answer::Done => None,
        Answer::Roster(r) => roster::answer(r),
        Answer::Blocking(b) => Some(blocking::answer(b)),
        Answer::Settings(s) => Some(settings::element(s)),
        Answer::Private(p) => Some(private::answer(p)),
        Answer::VCard(v) => Some(vcard::answer(v)),
        Answer::Mam(p) => Some(mam::answer(p)),
        Answer::Pep(p) => Some(pep::answer(p)),
    }
}

/// Who a result comes from, when not the server on the user's behalf: the user whose vCard was asked for, as
/// the request was addressed (RFC 6120 §8.1.2.1), so that clients match the result to their request.
pub(super) fn answer_from(answer: &Answer, me: &presence_core::FullJid) -> Option<String> {
    match answer {
        Answer::VCard(v) if &v.of != me.bare() => Some(v.of.to_string()),
        Answer::Pep(p) => pep::answer_from(p, me.bare()).map(ToString::to_string),
        _ => None,
    }
}

/// The stanza that carries a push: an `<iq type='set'/>` named by `push_id` for roster and block list changes, a
/// `<message/>` for a carbon copy.
pub(super) fn push(
    push: Push,
    me: &presence_core::FullJid,
    push_id: impl FnOnce() -> String,
) -> super::Outgoing {
    let iq = |payload: Element| {
        Element::new(ns::CLIENT, "iq")
            .with_attr("type", "set")
            .with_attr("id", push_id())
            .with_attr("to", me.to_string())
            .with_child(payload)
            .into()
    };
    match push {
        Push::Roster(p) => iq(roster::push(&p)),
        Push::Blocking(p) => iq(blocking::push(&p)),
        Push::Carbon(copy) => carbons::copy(copy, me),
        Push::Pep(event) => pep::event(event, me),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_core::{FullJid, SessionId};
    use xmpp_codec::{StreamEvent, StreamParser};

    fn iq_to_server(features: &Features, body: &str) -> FromClient {
        let mut parser = StreamParser::new();
        parser.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='x'>");
        parser.feed(body.as_bytes());
        let stanza = loop {
            match parser.next_event() {
                Ok(Some(StreamEvent::Stanza(s))) => break s,
                Ok(Some(_)) => continue,
                other => panic!("no stanza: {other:?}"),
            }
        };
        let jid = FullJid::new("alice@x/pc").expect("valid");
        let me = Me {
            session: SessionId(1),
            jid: &jid,
            domain: "x",
            features,
        };
        super::super::from_client(stanza, &me, presence_core::time::Timestamp::from_millis(0))
    }

    fn disco_vars(reply: FromClient) -> Vec<String> {
        let FromClient::Reply(el) = reply else {
            panic!("not a reply: {reply:?}")
        };
        let q = el.child(disco::NS_DISCO_INFO, "query").expect("a query");
        q.elements()
            .filter(|e| e.is(disco::NS_DISCO_INFO, "feature"))
            .filter_map(|e| e.attr("var").map(str::to_owned))
            .collect()
    }

    #[test]
    fn disco_lists_exactly_the_features_that_are_on() {
        let disco =
            "<iq type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>";
        let all = disco_vars(iq_to_server(&Features::standard(), disco));
        for f in ALL.iter().filter(|f| !CONFIGURED.contains(&f.name)) {
            for var in f.disco {
                assert!(all.iter().any(|v| v == var), "{var} of {} missing", f.name);
            }
        }
        let fewer = Features::standard().without(&["blocking", "version"]);
        let vars = disco_vars(iq_to_server(&fewer, disco));
        assert!(!vars.iter().any(|v| v == blocking::NS_BLOCKING), "{vars:?}");
        assert!(!vars.iter().any(|v| v == version::NS_VERSION), "{vars:?}");
        assert_eq!(vars.len() + 2, all.len());
    }

    #[test]
    fn a_feature_that_is_off_is_not_served() {
        let ask = "<iq type='get' id='v'><query xmlns='jabber:iq:version'/></iq>";
        assert!(matches!(
            iq_to_server(&Features::standard(), ask),
            FromClient::Reply(el) if el.attr("type") == Some("result")
        ));
        let FromClient::Reply(el) = iq_to_server(&Features::standard().without(&["version"]), ask)
        else {
            panic!("an error reply")
        };
        assert_eq!(el.attr("type"), Some("error"));
        assert!(
            el.child(xmpp_codec::ns::CLIENT, "error")
                .and_then(|e| e.child(xmpp_codec::ns::STANZA_ERRORS, "service-unavailable"))
                .is_some(),
            "{el:?}"
        );
    }
}
