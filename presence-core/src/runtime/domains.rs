//! Domains outside the engine that a shell of this process carries stanzas to: an XMPP component (XEP-0114)
//! attached under its own domain today, federated servers later.
//!
//! The engine only says "route this" (`Output::Route`). For a recipient whose domain is neither local nor a user
//! of the cluster, the driver looks the domain up here and hands the stanza to whoever attached it, else to
//! whoever attached "every other domain" (federation finding peers by DNS). A domain nobody attached, with no
//! one taking the others, is unreachable: what needs an answer bounces to its sender (`remote-server-not-found`).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::jid::Jid;
use crate::stanza::Stanza;

/// What carries stanzas to one attached domain. Called on the engine thread: it must never block.
pub trait DomainSink: Send + Sync + 'static {
    /// Takes a stanza for the domain, or gives it back when it cannot (the connection is gone or too far
    /// behind); the driver then bounces it like a stanza for an unreachable domain.
    fn send(&self, stanza: Stanza) -> Result<(), Box<Stanza>>;
}

/// The domain is already attached by someone else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the domain {0} is already attached")]
pub struct DomainTaken(pub String);

/// The key "every other domain" is attached under: no address has an empty domain, so none is looked up as it.
const OTHERS: &str = "";

/// The attached domains of one runtime, shared by its handles and its driver.
#[derive(Default)]
pub struct Domains {
    attached: RwLock<HashMap<String, Attachment>>,
    next: std::sync::atomic::AtomicU64,
}

struct Attachment {
    serial: u64,
    sink: Arc<dyn DomainSink>,
}

impl Domains {
    /// Attaches `domain` until the returned guard is dropped. A domain has at most one sink: a second
    /// attachment is refused, so two components never split one domain's traffic.
    pub fn attach(
        self: &Arc<Self>,
        domain: &str,
        sink: Arc<dyn DomainSink>,
    ) -> Result<Attached, DomainTaken> {
        let domain = domain.to_ascii_lowercase();
        let mut map = self.attached.write();
        if map.contains_key(&domain) {
            return Err(DomainTaken(domain));
        }
        let serial = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        map.insert(domain.clone(), Attachment { serial, sink });
        Ok(Attached {
            domains: self.clone(),
            domain,
            serial,
        })
    }

    /// Attaches every domain not attached by name, until the returned guard is dropped: how federation takes the
    /// stanzas for any other server it may find by DNS. One taker at a time, as for a named domain.
    pub fn attach_others(
        self: &Arc<Self>,
        sink: Arc<dyn DomainSink>,
    ) -> Result<Attached, DomainTaken> {
        self.attach(OTHERS, sink)
    }

    /// Whether `domain` is attached now.
    pub fn is_attached(&self, domain: &str) -> bool {
        self.attached
            .read()
            .contains_key(&domain.to_ascii_lowercase())
    }

    /// Hands `stanza` to the sink of its destination's domain, or gives it back when nobody attached that domain
    /// or the sink refused.
    pub(crate) fn send(&self, stanza: Stanza) -> Result<(), Box<Stanza>> {
        let sink = destination_domain(&stanza).and_then(|domain| {
            let map = self.attached.read();
            map.get(domain)
                .or_else(|| map.get(OTHERS))
                .map(|a| a.sink.clone())
        });
        match sink {
            Some(sink) => sink.send(stanza),
            None => Err(Box::new(stanza)),
        }
    }
}

/// An attached domain; dropping it detaches the domain (a component's connection ended).
pub struct Attached {
    domains: Arc<Domains>,
    domain: String,
    serial: u64,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached")
            .field("domain", &self.domain)
            .finish()
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let mut map = self.domains.attached.write();
        // Only this attachment's entry: never one that replaced it.
        if map
            .get(&self.domain)
            .is_some_and(|a| a.serial == self.serial)
        {
            map.remove(&self.domain);
        }
    }
}

/// Where a routed stanza goes: its recipient's address.
pub fn destination(stanza: &Stanza) -> Option<&Jid> {
    match stanza {
        Stanza::Presence { to, .. } | Stanza::Message { to, .. } => Some(to),
        Stanza::Error(e) => Some(&e.to),
        Stanza::Iq { iq, .. } => Some(&iq.to),
        Stanza::AppPush(n) => Some(&n.service),
        // Room traffic is delivered to local sessions only; it is never routed (see `rooms`). Queries and
        // their answers stay between the engines of one cluster (`crate::query`): no domain takes them.
        Stanza::Subscription { .. }
        | Stanza::Answer { .. }
        | Stanza::Push(_)
        | Stanza::Room(_)
        | Stanza::Query(_)
        | Stanza::Reply(_)
        | Stanza::Notification(_) => None,
    }
}

/// The domain a routed stanza goes to.
pub fn destination_domain(stanza: &Stanza) -> Option<&str> {
    match stanza {
        Stanza::Subscription { to, .. } => Some(to.domain()),
        s => destination(s).map(|j| j.bare().domain()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jid::BareJid;
    use crate::stanza::PresenceKind;
    use parking_lot::Mutex;

    struct Collect(Mutex<Vec<Stanza>>);

    impl DomainSink for Collect {
        fn send(&self, stanza: Stanza) -> Result<(), Box<Stanza>> {
            self.0.lock().push(stanza);
            Ok(())
        }
    }

    fn presence_to(to: &str) -> Stanza {
        Stanza::Presence {
            from: Jid::Bare(BareJid::new("a@x").unwrap()),
            to: Jid::Bare(BareJid::new(to).unwrap()),
            kind: PresenceKind::Unavailable,
        }
    }

    #[test]
    fn a_domain_takes_one_sink_until_its_guard_drops() {
        let domains = Arc::new(Domains::default());
        let sink = Arc::new(Collect(Mutex::new(Vec::new())));
        let guard = domains.attach("Push.X", sink.clone()).unwrap();
        assert!(domains.is_attached("push.x"));
        assert_eq!(
            domains.attach("push.x", sink.clone()).unwrap_err(),
            DomainTaken("push.x".into())
        );
        let s = presence_to("push.x");
        assert!(domains.send(s.clone()).is_ok());
        assert_eq!(sink.0.lock().as_slice(), std::slice::from_ref(&s));
        drop(guard);
        assert!(!domains.is_attached("push.x"));
        assert_eq!(domains.send(s.clone()), Err(Box::new(s)));
    }

    #[test]
    fn the_other_domains_go_to_their_taker_and_a_named_domain_to_its_own() {
        let domains = Arc::new(Domains::default());
        let named = Arc::new(Collect(Mutex::new(Vec::new())));
        let others = Arc::new(Collect(Mutex::new(Vec::new())));
        let _named = domains.attach("push.x", named.clone()).unwrap();
        let guard = domains.attach_others(others.clone()).unwrap();
        assert!(
            domains.attach_others(others.clone()).is_err(),
            "one taker at a time"
        );
        let (to_named, to_other) = (presence_to("push.x"), presence_to("far.example"));
        assert!(domains.send(to_named.clone()).is_ok());
        assert!(domains.send(to_other.clone()).is_ok());
        assert_eq!(named.0.lock().as_slice(), std::slice::from_ref(&to_named));
        assert_eq!(others.0.lock().as_slice(), std::slice::from_ref(&to_other));
        drop(guard);
        assert_eq!(domains.send(to_other.clone()), Err(Box::new(to_other)));
    }
}
