//! Registrations (RFC 3261 §10): each user's contact bindings with their expiry and the flow they came over.

use std::time::Instant;

use hashbrown::HashMap;
use presence_core::BareJid;

use crate::transport::Flow;

/// One contact binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI as the endpoint gave it.
    pub contact: String,
    /// The flow requests for this contact go over.
    pub flow: Flow,
    /// When the binding lapses.
    pub expires: Instant,
}

/// Every user's bindings.
#[derive(Debug, Default)]
pub struct Registrar {
    users: HashMap<BareJid, Vec<Binding>>,
}

impl Registrar {
    /// Adds or refreshes a binding.
    pub fn bind(&mut self, user: &BareJid, contact: String, flow: Flow, expires: Instant) {
        let list = self.users.entry(user.clone()).or_default();
        match list.iter_mut().find(|b| b.contact == contact) {
            Some(b) => {
                b.flow = flow;
                b.expires = expires;
            }
            None => list.push(Binding {
                contact,
                flow,
                expires,
            }),
        }
    }

    /// Removes one binding.
    pub fn unbind(&mut self, user: &BareJid, contact: &str) {
        if let Some(list) = self.users.get_mut(user) {
            list.retain(|b| b.contact != contact);
            if list.is_empty() {
                self.users.remove(user);
            }
        }
    }

    /// Removes every binding of a user (`Contact: *`).
    pub fn unbind_all(&mut self, user: &BareJid) {
        self.users.remove(user);
    }

    /// A user's live bindings.
    pub fn bindings(&self, user: &BareJid) -> &[Binding] {
        self.users.get(user).map_or(&[], Vec::as_slice)
    }

    /// Whether the user has a binding.
    pub fn is_registered(&self, user: &BareJid) -> bool {
        self.users.contains_key(user)
    }

    /// Drops bindings that lapsed by `now` and those over a closed flow; returns the users that changed.
    pub fn expire(&mut self, now: Instant, closed: Option<Flow>) -> Vec<BareJid> {
        let mut changed = Vec::new();
        self.users.retain(|user, list| {
            let before = list.len();
            list.retain(|b| b.expires > now && Some(b.flow) != closed);
            if list.len() != before {
                changed.push(user.clone());
            }
            !list.is_empty()
        });
        changed
    }

    /// The earliest expiry of a user's bindings.
    pub fn next_expiry(&self, user: &BareJid) -> Option<Instant> {
        self.bindings(user).iter().map(|b| b.expires).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bindings_refresh_lapse_and_die_with_their_flow() {
        let now = Instant::now();
        let alice = BareJid::new("alice@example.com").expect("valid");
        let mut r = Registrar::default();
        let udp = Flow::Udp("127.0.0.1:5070".parse().expect("addr"));
        r.bind(&alice, "sip:a@1".into(), udp, now + Duration::from_secs(10));
        r.bind(
            &alice,
            "sip:a@2".into(),
            Flow::Tcp(1),
            now + Duration::from_secs(20),
        );
        r.bind(&alice, "sip:a@1".into(), udp, now + Duration::from_secs(30));
        assert_eq!(r.bindings(&alice).len(), 2);
        assert_eq!(
            r.expire(now + Duration::from_secs(25), None),
            vec![alice.clone()]
        );
        assert_eq!(r.bindings(&alice)[0].contact, "sip:a@1");
        assert_eq!(r.expire(now, Some(udp)), vec![alice.clone()]);
        assert!(!r.is_registered(&alice));
    }
}
