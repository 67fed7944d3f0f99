//! Clients' entity capabilities (XEP-0115) read as PEP interests (XEP-0163 §4.3.3): a client that lists
//! `NODE+notify` among its disco#info features wants notifications of `NODE` from its contacts. The engine only
//! learns the node names (`Input::Interests`); capabilities are XMPP's.
//!
//! Decisions:
//! - The `<c/>` of a client's available broadcast presence names a `ver`. A `ver` hashed with `sha-1` is looked
//!   up in one server-wide [`Cache`]; otherwise the server asks the client itself, on its own connection, for
//!   the disco#info of `node#ver` (an IQ from the domain with an id this connection made up, so only that
//!   client's answer matches and its answer is never routed or translated as a stanza of its own).
//! - An answer is cached only once its hash is the `ver` (XEP-0115 §5.1, with the server's own hashing in
//!   `translate::features::caps`) and it is well formed (§5.4: no repeated identity, feature or form type).
//!   Anything else (legacy caps without `hash`, another hash, a mismatch) still gives the session its interests,
//!   but is not cached, so a client cannot make another client's `ver` mean something it does not.
//! - Nothing waits for an answer: presence goes to the engine first, interests follow when known. An answer
//!   later than [`QUERY_TIMEOUT`] is dropped, and the next presence with those caps asks again; an error answer
//!   leaves the session's interests as they were.
//! - The cache keeps at most [`CACHE_MAX`] `ver`s, each only as its `+notify` node names; past the bound the
//!   oldest entry goes (a `ver` still in use is asked for once more, from its next client).
//! - Unchanged caps in a later presence (a status change) ask nothing; unavailable presence forgets them, as the
//!   engine forgets the session's interests then.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use presence_core::FullJid;
use presence_core::engine::MAX_INTERESTS;
use tracing::debug;
use xmpp_codec::{Element, IqType, Stanza, StanzaKind, ns};

use crate::translate::features::caps::{self, Form, Identity, NS_CAPS};
use crate::translate::features::disco::NS_DISCO_INFO;

/// How many verified `ver`s the server remembers.
pub const CACHE_MAX: usize = 4096;

/// How long the server waits for a client's disco#info answer.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The feature suffix that marks an interest (XEP-0163 §4.3.3).
const NOTIFY: &str = "+notify";

/// XEP-0004 data forms, the XEP-0128 extended information of a disco#info answer.
const NS_DATA: &str = "jabber:x:data";

/// Why an answer cannot be cached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unverified {
    /// Legacy capabilities (XEP-0115 before 1.5) name no hash: the `ver` is an opaque version.
    #[error("legacy capabilities without a hash")]
    NoHash,
    /// A hash function other than the SHA-1 every entity supports.
    #[error("hash '{0}' is not verified here")]
    Hash(String),
    /// The answer repeats an identity, a feature or a form type (§5.4).
    #[error("the answer repeats {0}")]
    Repeated(&'static str),
    /// The answer does not hash to the `ver`.
    #[error("the answer hashes to {computed}, not {ver}")]
    Mismatch {
        /// What the presence said.
        ver: String,
        /// What the answer hashes to.
        computed: String,
    },
}

/// The capabilities a presence announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The software's node.
    pub node: String,
    /// The verification string (an opaque version for legacy caps).
    pub ver: String,
    /// The hash function, absent for legacy caps.
    pub hash: Option<String>,
}

/// What a client's stanza says about its capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Available broadcast presence, with or without `<c/>`.
    Available(Option<Offer>),
    /// Unavailable broadcast presence.
    Unavailable,
}

impl Seen {
    /// What `stanza` says, if it is broadcast presence (directed presence does not change interests).
    pub fn of(stanza: &Stanza) -> Option<Self> {
        if stanza.kind() != StanzaKind::Presence || stanza.to().is_some() {
            return None;
        }
        match stanza.stanza_type() {
            None => {
                let offer = stanza.element().child(NS_CAPS, "c").and_then(|c| {
                    let node = c.attr("node").filter(|n| !n.is_empty())?;
                    let ver = c.attr("ver").filter(|v| !v.is_empty())?;
                    Some(Offer {
                        node: node.to_owned(),
                        ver: ver.to_owned(),
                        hash: c.attr("hash").map(str::to_owned),
                    })
                });
                Some(Seen::Available(offer))
            }
            Some("unavailable") => Some(Seen::Unavailable),
            Some(_) => None,
        }
    }
}

/// The server-wide cache: verified `ver` to the `+notify` node names its features list.
#[derive(Debug)]
pub struct Cache {
    entries: Mutex<Entries>,
    max: usize,
}

#[derive(Debug, Default)]
struct Entries {
    by_ver: HashMap<String, Arc<[String]>>,
    /// Insertion order, oldest first, to evict at the bound.
    order: VecDeque<String>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache::new(CACHE_MAX)
    }
}

impl Cache {
    /// An empty cache of at most `max` entries.
    pub fn new(max: usize) -> Self {
        Cache {
            entries: Mutex::default(),
            max: max.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic elsewhere cannot leave the map half-changed: every change below is one insert or remove.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node names of a verified `ver`.
    pub fn get(&self, ver: &str) -> Option<Arc<[String]>> {
        self.lock().by_ver.get(ver).cloned()
    }

    /// Remembers a verified `ver`, evicting the oldest entry past the bound.
    pub fn insert(&self, ver: &str, nodes: &[String]) {
        let mut e = self.lock();
        if e.by_ver.contains_key(ver) {
            return;
        }
        e.by_ver.insert(ver.to_owned(), nodes.into());
        e.order.push_back(ver.to_owned());
        while e.order.len() > self.max {
            if let Some(old) = e.order.pop_front() {
                e.by_ver.remove(&old);
            }
        }
    }

    /// How many `ver`s are remembered.
    pub fn len(&self) -> usize {
        self.lock().by_ver.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the connection does after a presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing changed.
    Nothing,
    /// Tell the engine the session's interests.
    Interests(Vec<String>),
    /// Send the client this disco#info query.
    Query(Element),
}

/// A query sent and not answered yet.
#[derive(Debug)]
struct Pending {
    id: String,
    offer: Offer,
    sent: Instant,
}

/// One connection's view of its client's capabilities.
#[derive(Debug, Default)]
pub struct SessionCaps {
    /// The caps of the last available presence: resolved, or being asked about.
    current: Option<Offer>,
    /// Boxed: a query is outstanding only for a moment after a new offer, and inline every session's state
    /// kept 112 bytes for it (issue 17).
    pending: Option<Box<Pending>>,
    queries: u64,
}

impl SessionCaps {
    /// Reads a broadcast presence the engine was given. `me` is the client, `domain` the server.
    pub fn presence(
        &mut self,
        seen: Seen,
        cache: &Cache,
        domain: &str,
        me: &FullJid,
        now: Instant,
    ) -> Step {
        let offer = match seen {
            Seen::Unavailable => {
                self.current = None;
                self.pending = None;
                return Step::Nothing;
            }
            Seen::Available(None) => return Step::Nothing,
            Seen::Available(Some(offer)) => offer,
        };
        let expired = self
            .pending
            .as_ref()
            .is_some_and(|p| now.saturating_duration_since(p.sent) >= QUERY_TIMEOUT);
        if self.current.as_ref() == Some(&offer) && !expired {
            return Step::Nothing;
        }
        self.current = Some(offer.clone());
        self.pending = None;
        if offer.hash.as_deref() == Some("sha-1")
            && let Some(nodes) = cache.get(&offer.ver)
        {
            return Step::Interests(nodes.to_vec());
        }
        self.queries += 1;
        let id = format!("caps{}", self.queries);
        let query = Element::new(ns::CLIENT, "iq")
            .with_attr("type", "get")
            .with_attr("id", &id)
            .with_attr("from", domain)
            .with_attr("to", me.to_string())
            .with_child(
                Element::new(NS_DISCO_INFO, "query")
                    .with_attr("node", format!("{}#{}", offer.node, offer.ver)),
            );
        self.pending = Some(Box::new(Pending {
            id,
            offer,
            sent: now,
        }));
        Step::Query(query)
    }

    /// Forgets the caps, so the next presence resolves them again (the engine could not be told).
    pub fn forget(&mut self) {
        self.current = None;
        self.pending = None;
    }

    /// Whether `stanza` is the client's answer to the query outstanding (a result or an error with its id, to
    /// the server): the connection then hands it to [`SessionCaps::answer`] instead of translating it.
    pub fn answers(&self, stanza: &Stanza, domain: &str) -> bool {
        let Some(pending) = &self.pending else {
            return false;
        };
        matches!(stanza.iq_type(), Some(IqType::Result | IqType::Error))
            && stanza.id() == Some(pending.id.as_str())
            && stanza.to().is_none_or(|to| to == domain)
    }

    /// Reads the answer to the outstanding query: the session's interests, if the answer gives them. A verified
    /// answer is cached for every client with the same caps.
    pub fn answer(&mut self, stanza: &Stanza, cache: &Cache, now: Instant) -> Option<Vec<String>> {
        let pending = self.pending.take()?;
        if now.saturating_duration_since(pending.sent) >= QUERY_TIMEOUT {
            debug!(ver = %pending.offer.ver, "caps answer came too late");
            return None;
        }
        if stanza.iq_type() != Some(IqType::Result) {
            debug!(ver = %pending.offer.ver, "the client did not answer its caps query");
            return None;
        }
        let Some(query) = stanza.element().child(NS_DISCO_INFO, "query") else {
            debug!(ver = %pending.offer.ver, "caps answer without a disco#info query");
            return None;
        };
        let info = Info::read(query);
        let nodes = info.interests();
        match info.verify(&pending.offer) {
            Ok(()) => cache.insert(&pending.offer.ver, &nodes),
            Err(why) => debug!(ver = %pending.offer.ver, %why, "caps kept for this session only"),
        }
        Some(nodes)
    }
}

/// A disco#info answer, as far as XEP-0115 hashes it.
struct Info<'a> {
    identities: Vec<Identity<'a>>,
    features: Vec<&'a str>,
    forms: Vec<Form>,
}

impl<'a> Info<'a> {
    fn read(query: &'a Element) -> Self {
        let identities = query
            .elements()
            .filter(|e| e.is(NS_DISCO_INFO, "identity"))
            .map(|e| Identity {
                category: e.attr("category").unwrap_or_default(),
                kind: e.attr("type").unwrap_or_default(),
                lang: e.lang().unwrap_or_default(),
                name: e.attr("name").unwrap_or_default(),
            })
            .collect();
        let features = query
            .elements()
            .filter(|e| e.is(NS_DISCO_INFO, "feature"))
            .filter_map(|e| e.attr("var"))
            .collect();
        // A form without a FORM_TYPE is not hashed (§5.4, step 3.6).
        let forms = query
            .elements()
            .filter(|e| e.is(NS_DATA, "x"))
            .filter_map(|x| {
                let mut form_type = None;
                let mut fields = Vec::new();
                for field in x.elements().filter(|f| f.is(NS_DATA, "field")) {
                    let var = field.attr("var").unwrap_or_default();
                    let values: Vec<String> = field
                        .elements()
                        .filter(|v| v.is(NS_DATA, "value"))
                        .map(Element::text)
                        .collect();
                    if var == "FORM_TYPE" {
                        form_type = values.into_iter().next();
                    } else {
                        fields.push((var.to_owned(), values));
                    }
                }
                Some(Form {
                    form_type: form_type?,
                    fields,
                })
            })
            .collect();
        Info {
            identities,
            features,
            forms,
        }
    }

    /// The node names of the `+notify` features, without the suffix, at most the engine's bound.
    fn interests(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .features
            .iter()
            .filter_map(|f| f.strip_suffix(NOTIFY))
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes.truncate(MAX_INTERESTS);
        nodes
    }

    /// Whether the answer is what `offer`'s `ver` promises (XEP-0115 §5.4).
    fn verify(&self, offer: &Offer) -> Result<(), Unverified> {
        match offer.hash.as_deref() {
            None => return Err(Unverified::NoHash),
            Some("sha-1") => {}
            Some(other) => return Err(Unverified::Hash(other.to_owned())),
        }
        if has_repeats(
            self.identities
                .iter()
                .map(|i| (i.category, i.kind, i.lang, i.name)),
        ) {
            return Err(Unverified::Repeated("an identity"));
        }
        if has_repeats(self.features.iter().copied()) {
            return Err(Unverified::Repeated("a feature"));
        }
        if has_repeats(self.forms.iter().map(|f| f.form_type.as_str())) {
            return Err(Unverified::Repeated("a form type"));
        }
        let computed = caps::ver(&self.identities, &self.features, &self.forms);
        if computed != offer.ver {
            return Err(Unverified::Mismatch {
                ver: offer.ver.clone(),
                computed,
            });
        }
        Ok(())
    }
}

fn has_repeats<T: std::hash::Hash + Eq>(items: impl Iterator<Item = T>) -> bool {
    let mut seen = hashbrown::HashSet::new();
    items.into_iter().any(|i| !seen.insert(i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_codec::{StreamEvent, StreamParser};

    const DOMAIN: &str = "example.com";

    fn stanza(xml: &str) -> Stanza {
        let mut p = StreamParser::new();
        p.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>");
        p.feed(xml.as_bytes());
        loop {
            match p.next_event() {
                Ok(Some(StreamEvent::Stanza(s))) => return s,
                Ok(Some(_)) => continue,
                other => panic!("no stanza: {other:?}"),
            }
        }
    }

    fn me() -> FullJid {
        FullJid::new("bob@example.com/phone").expect("valid")
    }

    const FEATURES: [&str; 3] = [
        "http://jabber.org/protocol/disco#info",
        "urn:xmpp:avatar:metadata+notify",
        "eu.siacs.conversations.axolotl.devicelist+notify",
    ];

    fn client_ver() -> String {
        let id = Identity {
            category: "client",
            kind: "phone",
            lang: "",
            name: "Test",
        };
        caps::ver(&[id], &FEATURES, &[])
    }

    fn presence(hash: Option<&str>, ver: &str) -> Seen {
        let hash = hash.map(|h| format!(" hash='{h}'")).unwrap_or_default();
        let s = stanza(&format!(
            "<presence><c xmlns='{NS_CAPS}'{hash} node='https://test' ver='{ver}'/></presence>"
        ));
        Seen::of(&s).expect("broadcast presence")
    }

    fn answer_to(query: &Element, ver_features: &[&str]) -> Stanza {
        let id = query.attr("id").expect("an id");
        let node = query
            .child(NS_DISCO_INFO, "query")
            .and_then(|q| q.attr("node"))
            .expect("a node");
        let features: String = ver_features
            .iter()
            .map(|f| format!("<feature var='{f}'/>"))
            .collect();
        stanza(&format!(
            "<iq type='result' id='{id}' to='{DOMAIN}'><query xmlns='{NS_DISCO_INFO}' node='{node}'>\
             <identity category='client' type='phone' name='Test'/>{features}</query></iq>"
        ))
    }

    #[test]
    fn a_verified_answer_is_cached_and_serves_the_next_client() {
        let cache = Cache::default();
        let now = Instant::now();
        let ver = client_ver();
        let mut first = SessionCaps::default();
        let Step::Query(q) =
            first.presence(presence(Some("sha-1"), &ver), &cache, DOMAIN, &me(), now)
        else {
            panic!("a query")
        };
        assert_eq!(q.attr("from"), Some(DOMAIN));
        assert_eq!(q.attr("to"), Some("bob@example.com/phone"));
        let answer = answer_to(&q, &FEATURES);
        assert!(first.answers(&answer, DOMAIN));
        let nodes = first.answer(&answer, &cache, now).expect("interests");
        assert_eq!(
            nodes,
            [
                "eu.siacs.conversations.axolotl.devicelist",
                "urn:xmpp:avatar:metadata"
            ]
        );
        assert_eq!(cache.len(), 1);
        // The same caps again (a status change) ask nothing.
        assert_eq!(
            first.presence(presence(Some("sha-1"), &ver), &cache, DOMAIN, &me(), now),
            Step::Nothing
        );
        let mut second = SessionCaps::default();
        assert_eq!(
            second.presence(presence(Some("sha-1"), &ver), &cache, DOMAIN, &me(), now),
            Step::Interests(nodes)
        );
    }

    #[test]
    fn an_answer_that_does_not_hash_to_the_ver_serves_its_session_only() {
        let cache = Cache::default();
        let now = Instant::now();
        for (hash, ver) in [
            (Some("sha-1"), "bm90IHRoZSBoYXNo".to_owned()),
            (None, "1.0".to_owned()),
            (Some("sha-256"), client_ver()),
        ] {
            let mut s = SessionCaps::default();
            let Step::Query(q) = s.presence(presence(hash, &ver), &cache, DOMAIN, &me(), now)
            else {
                panic!("a query")
            };
            let nodes = s.answer(&answer_to(&q, &FEATURES), &cache, now);
            assert_eq!(nodes.map(|n| n.len()), Some(2), "{hash:?}");
        }
        assert!(cache.is_empty());
    }

    #[test]
    fn repeats_make_an_answer_unverifiable() {
        let with_repeat = [FEATURES[0], FEATURES[1], FEATURES[1]];
        let id = Identity {
            category: "client",
            kind: "phone",
            lang: "",
            name: "Test",
        };
        let ver = caps::ver(&[id], &with_repeat, &[]);
        let cache = Cache::default();
        let mut s = SessionCaps::default();
        let now = Instant::now();
        let Step::Query(q) = s.presence(presence(Some("sha-1"), &ver), &cache, DOMAIN, &me(), now)
        else {
            panic!("a query")
        };
        assert!(
            s.answer(&answer_to(&q, &with_repeat), &cache, now)
                .is_some()
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn only_the_outstanding_id_to_the_server_is_taken_and_late_answers_are_dropped() {
        let cache = Cache::default();
        let t0 = Instant::now();
        let mut s = SessionCaps::default();
        assert!(!s.answers(&stanza("<iq type='result' id='caps1'/>"), DOMAIN));
        let Step::Query(q) = s.presence(
            presence(Some("sha-1"), &client_ver()),
            &cache,
            DOMAIN,
            &me(),
            t0,
        ) else {
            panic!("a query")
        };
        assert!(s.answers(&stanza("<iq type='result' id='caps1'/>"), DOMAIN));
        assert!(s.answers(
            &stanza("<iq type='error' id='caps1' to='example.com'/>"),
            DOMAIN
        ));
        assert!(!s.answers(
            &stanza("<iq type='result' id='caps1' to='alice@example.com/pc'/>"),
            DOMAIN
        ));
        assert!(!s.answers(&stanza("<iq type='result' id='other'/>"), DOMAIN));
        assert!(!s.answers(
            &stanza("<iq type='get' id='caps1'><ping xmlns='urn:xmpp:ping'/></iq>"),
            DOMAIN
        ));

        // No answer in time: the next presence with the same caps asks again, and the late answer is dropped.
        let later = t0 + QUERY_TIMEOUT;
        assert!(matches!(
            s.presence(
                presence(Some("sha-1"), &client_ver()),
                &cache,
                DOMAIN,
                &me(),
                later
            ),
            Step::Query(_)
        ));
        let late = answer_to(&q, &FEATURES);
        assert!(!s.answers(&late, DOMAIN), "the first query's id is stale");
        assert_eq!(s.answer(&late, &cache, later + QUERY_TIMEOUT), None);

        // Unavailable presence forgets the caps: the next available presence resolves them again.
        assert_eq!(
            s.presence(Seen::Unavailable, &cache, DOMAIN, &me(), later),
            Step::Nothing
        );
        assert!(matches!(
            s.presence(
                presence(Some("sha-1"), &client_ver()),
                &cache,
                DOMAIN,
                &me(),
                later
            ),
            Step::Query(_)
        ));
    }

    #[test]
    fn the_cache_evicts_its_oldest_entry_at_the_bound() {
        let cache = Cache::new(2);
        for ver in ["a", "b", "c"] {
            cache.insert(ver, &[ver.to_owned()]);
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a").is_none());
        assert_eq!(cache.get("c").as_deref(), Some(&["c".to_owned()][..]));
    }

    #[test]
    fn only_broadcast_presence_speaks_of_caps() {
        assert_eq!(
            Seen::of(&stanza("<presence to='alice@example.com'/>")),
            None
        );
        assert_eq!(
            Seen::of(&stanza(
                "<presence type='subscribe' to='alice@example.com'/>"
            )),
            None
        );
        assert_eq!(
            Seen::of(&stanza("<presence type='unavailable'/>")),
            Some(Seen::Unavailable)
        );
        assert_eq!(
            Seen::of(&stanza("<presence/>")),
            Some(Seen::Available(None))
        );
        assert_eq!(Seen::of(&stanza("<message/>")), None);
    }
}
