//! Registrations (RFC 3261 §10): each user's contact bindings with their expiry and the flow they came over.

use std::collections::BTreeMap;
use std::time::Instant;

use hashbrown::HashMap;
use presence_core::BareJid;

use crate::caps::{Cap, Holdings, Over};
use crate::core::Flow;

/// One contact binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI as the endpoint gave it.
    pub contact: String,
    /// The flow requests for this contact go over.
    pub flow: Flow,
    /// When the binding lapses.
    pub expires: Instant,
    /// Its key in the expiry index and the cap counts.
    id: u64,
}

/// Every user's bindings, with an index by expiry across all users so a lapse costs O(lapsed · log n), and counts
/// per user and per endpoint for the caps ([`crate::caps`]). A user's own list is bounded by the cap, so
/// per-user operations scan it.
#[derive(Debug, Default)]
pub struct Registrar {
    users: HashMap<BareJid, Vec<Binding>>,
    by_expiry: BTreeMap<(Instant, u64), BareJid>,
    holdings: Holdings<u64>,
    next_id: u64,
}

impl Registrar {
    /// Whether a REGISTER of `user` over `flow` that binds or refreshes `contacts` and removes `removed` stays
    /// within `cap`. A request that adds no new contact always does: refreshes and removals are never refused.
    pub fn admits(
        &self,
        cap: Cap,
        user: &BareJid,
        flow: Flow,
        contacts: &[&str],
        removed: &[&str],
    ) -> Result<(), Over> {
        let mine = self.bindings(user);
        let bound = |c: &str| mine.iter().find(|b| b.contact == c);
        let mut new: Vec<&str> = contacts
            .iter()
            .copied()
            .filter(|c| bound(c).is_none() && !removed.contains(c))
            .collect();
        new.sort_unstable();
        new.dedup();
        if new.is_empty() {
            return Ok(());
        }
        // Refreshed bindings that arrive over this flow move to it; removed ones leave their flow.
        let moving = contacts
            .iter()
            .filter_map(|c| bound(c))
            .filter(|b| b.flow != flow && !removed.contains(&b.contact.as_str()))
            .count();
        let gone: Vec<&Binding> = mine
            .iter()
            .filter(|b| removed.contains(&b.contact.as_str()))
            .collect();
        let gone_here = gone.iter().filter(|b| b.flow == flow).count();
        let user_after = (self.holdings.of_user(user) + new.len()).saturating_sub(gone.len());
        let endpoint_after =
            (self.holdings.of_endpoint(user, flow) + new.len() + moving).saturating_sub(gone_here);
        cap.check(user_after, endpoint_after, 0)
    }

    /// Adds or refreshes a binding.
    pub fn bind(&mut self, user: &BareJid, contact: String, flow: Flow, expires: Instant) {
        let list = self.users.entry(user.clone()).or_default();
        match list.iter_mut().find(|b| b.contact == contact) {
            Some(b) => {
                self.by_expiry.remove(&(b.expires, b.id));
                self.by_expiry.insert((expires, b.id), user.clone());
                b.flow = flow;
                b.expires = expires;
                self.holdings.move_to(&b.id, flow);
            }
            None => {
                self.next_id += 1;
                let id = self.next_id;
                self.by_expiry.insert((expires, id), user.clone());
                self.holdings.insert(id, user, flow);
                list.push(Binding {
                    contact,
                    flow,
                    expires,
                    id,
                });
            }
        }
    }

    /// Takes a removed binding out of the indexes.
    fn unindex(&mut self, b: &Binding) {
        self.by_expiry.remove(&(b.expires, b.id));
        self.holdings.remove(&b.id);
    }

    /// Removes the user's bindings `drop` picks; whether there were any.
    fn unbind_where(&mut self, user: &BareJid, drop: impl Fn(&Binding) -> bool) -> bool {
        let Some(list) = self.users.get_mut(user) else {
            return false;
        };
        let (gone, kept): (Vec<Binding>, Vec<Binding>) =
            std::mem::take(list).into_iter().partition(drop);
        if kept.is_empty() {
            self.users.remove(user);
        } else {
            *list = kept;
        }
        for b in &gone {
            self.unindex(b);
        }
        !gone.is_empty()
    }

    /// Removes one binding.
    pub fn unbind(&mut self, user: &BareJid, contact: &str) {
        self.unbind_where(user, |b| b.contact == contact);
    }

    /// Removes every binding of a user (`Contact: *`).
    pub fn unbind_all(&mut self, user: &BareJid) {
        self.unbind_where(user, |_| true);
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
    ///
    /// Lapses come from the expiry index; a closed flow is looked for in every binding, once per closed
    /// connection (no request pays for it).
    pub fn expire(&mut self, now: Instant, closed: Option<Flow>) -> Vec<BareJid> {
        let mut changed = Vec::new();
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, id), user) = entry.remove_entry();
            if self.unbind_where(&user, |b| b.id == id) {
                changed.push(user);
            }
        }
        if let Some(flow) = closed {
            let users: Vec<BareJid> = self
                .users
                .iter()
                .filter(|(_, list)| list.iter().any(|b| b.flow == flow))
                .map(|(u, _)| u.clone())
                .collect();
            for user in users {
                self.unbind_where(&user, |b| b.flow == flow);
                changed.push(user);
            }
        }
        changed.sort_unstable();
        changed.dedup();
        changed
    }

    /// The earliest expiry of all bindings.
    pub fn next_lapse(&self) -> Option<Instant> {
        self.by_expiry.first_key_value().map(|((at, _), _)| *at)
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

    #[test]
    fn lapses_come_in_expiry_order_across_users() {
        let now = Instant::now();
        let s = Duration::from_secs;
        let (alice, bob) = (
            BareJid::new("alice@example.com").expect("valid"),
            BareJid::new("bob@example.com").expect("valid"),
        );
        let mut r = Registrar::default();
        r.bind(&alice, "sip:a@1".into(), Flow::Tcp(1), now + s(30));
        r.bind(&bob, "sip:b@1".into(), Flow::Tcp(2), now + s(10));
        r.bind(&alice, "sip:a@2".into(), Flow::Tcp(1), now + s(20));
        // A refresh moves the binding's place in the index.
        r.bind(&bob, "sip:b@1".into(), Flow::Tcp(2), now + s(40));
        assert_eq!(r.expire(now + s(19), None), Vec::<BareJid>::new());
        assert_eq!(r.expire(now + s(20), None), vec![alice.clone()]);
        assert_eq!(r.expire(now + s(35), None), vec![alice.clone()]);
        assert!(!r.is_registered(&alice) && r.is_registered(&bob));
        r.unbind(&bob, "sip:b@1");
        assert!(r.by_expiry.is_empty() && r.users.is_empty());
    }

    #[test]
    fn caps_refuse_only_new_contacts() {
        let later = Instant::now() + Duration::from_secs(60);
        let alice = BareJid::new("alice@example.com").expect("valid");
        let (a, b) = (Flow::Tcp(1), Flow::Tcp(2));
        let cap = Cap {
            per_user: 3,
            per_endpoint: 2,
        };
        let mut r = Registrar::default();
        assert_eq!(
            r.admits(cap, &alice, a, &["sip:1", "sip:2", "sip:3"], &[]),
            Err(Over::Endpoint)
        );
        assert_eq!(
            r.admits(cap, &alice, a, &["sip:1", "sip:2", "sip:1"], &[]),
            Ok(())
        );
        r.bind(&alice, "sip:1".into(), a, later);
        r.bind(&alice, "sip:2".into(), a, later);
        assert_eq!(
            r.admits(cap, &alice, a, &["sip:3"], &[]),
            Err(Over::Endpoint)
        );
        assert_eq!(
            r.admits(cap, &alice, a, &["sip:1", "sip:2"], &[]),
            Ok(()),
            "refreshes"
        );
        assert_eq!(
            r.admits(cap, &alice, a, &["sip:3"], &["sip:1"]),
            Ok(()),
            "one out, one in"
        );
        assert_eq!(r.admits(cap, &alice, b, &["sip:3"], &[]), Ok(()));
        r.bind(&alice, "sip:3".into(), b, later);
        assert_eq!(r.admits(cap, &alice, b, &["sip:4"], &[]), Err(Over::User));
        // A refresh over another flow is never refused, even when it puts that flow over its cap for a while.
        assert_eq!(r.admits(cap, &alice, b, &["sip:1", "sip:2"], &[]), Ok(()));
        r.bind(&alice, "sip:1".into(), b, later);
        assert_eq!(r.admits(cap, &alice, a, &["sip:4"], &["sip:3"]), Ok(()));
        r.unbind_all(&alice);
        assert_eq!(r.holdings.of_user(&alice), 0);
    }
}
