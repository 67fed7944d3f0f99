//! Event state published with PUBLISH (RFC 3903): one entry per entity tag, each the presence of one SIP endpoint
//! of a user, with its expiry.

use std::collections::BTreeSet;
use std::time::Instant;

use hashbrown::HashMap;
use presence_core::BareJid;
use presence_core::compose::EndpointPresence;

use crate::caps::{Cap, Holdings, Over};
use crate::core::Flow;

/// One publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Whose presence.
    pub user: BareJid,
    /// What it says (`None`: closed).
    pub presence: Option<EndpointPresence>,
    /// When it lapses.
    pub expires: Instant,
    /// Order of last modification, so the newest one speaks for the user's SIP endpoint.
    pub modified: u64,
    /// Published by a trusted call-control peer: the user's line and calendar state, not an endpoint of theirs.
    pub system: Option<SystemState>,
}

/// What a trusted call-control peer says about a user (DESIGN §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemState {
    /// A line of the user is in a call.
    pub on_the_phone: bool,
    /// The calendar.
    pub calendar: presence_core::compose::CalendarState,
}

/// Every live publication, indexed so that each operation costs O(log n) whatever the user's or the server's
/// count: by entity tag; per user, by modification order (the newest endpoint publication speaks, the newest
/// system one gives the calendar); by expiry across all users, so a lapse costs O(lapsed · log n). Counted per user
/// and per endpoint for the caps ([`crate::caps`]).
#[derive(Debug, Default)]
pub struct Publications {
    /// By the publication's id (its `modified` order, unique per publication).
    entries: HashMap<u64, Entry>,
    by_tag: HashMap<String, u64>,
    users: HashMap<BareJid, UserIndex>,
    by_expiry: BTreeSet<(Instant, u64)>,
    holdings: Holdings<u64>,
    clock: u64,
}

#[derive(Debug)]
struct Entry {
    tag: String,
    publication: Publication,
}

/// One user's publications by modification order.
#[derive(Debug, Default)]
struct UserIndex {
    endpoint: BTreeSet<u64>,
    system: BTreeSet<u64>,
    /// System publications that say a line is in a call.
    on_the_phone: usize,
}

impl Publications {
    /// The publication with this tag, if it belongs to `user`: another user's tag is as unknown as no tag (412).
    pub fn get(&self, tag: &str, user: &BareJid) -> Option<&Publication> {
        self.by_tag
            .get(tag)
            .and_then(|id| self.entries.get(id))
            .map(|e| &e.publication)
            .filter(|p| &p.user == user)
    }

    /// Whether `user` may add one more publication over `flow` under `cap`.
    pub fn check(&self, cap: Cap, user: &BareJid, flow: Flow) -> Result<(), Over> {
        self.holdings.check(cap, user, flow, 1)
    }

    /// How many publications `user` holds.
    pub fn count(&self, user: &BareJid) -> usize {
        self.holdings.of_user(user)
    }

    /// Stores a new or modified publication under a new tag, dropping the old tag (RFC 3903 §6: every
    /// successful PUBLISH gets a fresh entity tag). It counts against `flow`.
    #[allow(clippy::too_many_arguments)]
    pub fn put(
        &mut self,
        old_tag: Option<&str>,
        new_tag: String,
        user: &BareJid,
        flow: Flow,
        presence: Option<EndpointPresence>,
        system: Option<SystemState>,
        expires: Instant,
    ) {
        if let Some(t) = old_tag {
            self.remove(t);
        }
        self.clock += 1;
        let id = self.clock;
        let index = self.users.entry(user.clone()).or_default();
        match system {
            Some(s) => {
                index.system.insert(id);
                index.on_the_phone += usize::from(s.on_the_phone);
            }
            None => {
                index.endpoint.insert(id);
            }
        }
        self.by_expiry.insert((expires, id));
        self.holdings.insert(id, user, flow);
        self.by_tag.insert(new_tag.clone(), id);
        self.entries.insert(
            id,
            Entry {
                tag: new_tag,
                publication: Publication {
                    user: user.clone(),
                    presence,
                    expires,
                    modified: id,
                    system,
                },
            },
        );
    }

    /// Moves a publication to a new tag and expiry without changing what it says (a refresh); it now counts
    /// against `flow`.
    pub fn refresh(&mut self, old_tag: &str, new_tag: String, flow: Flow, expires: Instant) {
        let Some(id) = self.by_tag.remove(old_tag) else {
            return;
        };
        let Some(e) = self.entries.get_mut(&id) else {
            return;
        };
        self.by_expiry.remove(&(e.publication.expires, id));
        self.by_expiry.insert((expires, id));
        e.publication.expires = expires;
        e.tag = new_tag.clone();
        self.by_tag.insert(new_tag, id);
        self.holdings.move_to(&id, flow);
    }

    /// Removes a publication.
    pub fn remove(&mut self, tag: &str) -> Option<Publication> {
        let id = self.by_tag.remove(tag)?;
        let Entry { publication, .. } = self.entries.remove(&id)?;
        self.unindex(id, &publication);
        Some(publication)
    }

    /// Takes a removed publication out of the per-user and expiry indexes.
    fn unindex(&mut self, id: u64, p: &Publication) {
        self.by_expiry.remove(&(p.expires, id));
        self.holdings.remove(&id);
        if let hashbrown::hash_map::Entry::Occupied(mut e) = self.users.entry(p.user.clone()) {
            let index = e.get_mut();
            match p.system {
                Some(s) => {
                    index.system.remove(&id);
                    index.on_the_phone -= usize::from(s.on_the_phone);
                }
                None => {
                    index.endpoint.remove(&id);
                }
            }
            if index.endpoint.is_empty() && index.system.is_empty() {
                e.remove();
            }
        }
    }

    fn by_id(&self, id: Option<&u64>) -> Option<&Publication> {
        id.and_then(|id| self.entries.get(id))
            .map(|e| &e.publication)
    }

    /// The newest endpoint publication of a user.
    pub fn current(&self, user: &BareJid) -> Option<&Publication> {
        self.by_id(self.users.get(user)?.endpoint.last())
    }

    /// What the trusted peers say about a user, merged: on the phone if any line is; the newest calendar.
    pub fn system(&self, user: &BareJid) -> SystemState {
        let Some(index) = self.users.get(user) else {
            return SystemState::default();
        };
        SystemState {
            on_the_phone: index.on_the_phone > 0,
            calendar: self
                .by_id(index.system.last())
                .and_then(|p| p.system)
                .map(|s| s.calendar)
                .unwrap_or_default(),
        }
    }

    /// Drops publications that lapsed; returns their users.
    pub fn expire(&mut self, now: Instant) -> Vec<BareJid> {
        let mut users = Vec::new();
        while let Some(&(at, id)) = self.by_expiry.first() {
            if at > now {
                break;
            }
            self.by_expiry.pop_first();
            let Some(Entry { tag, publication }) = self.entries.remove(&id) else {
                continue;
            };
            self.by_tag.remove(&tag);
            self.unindex(id, &publication);
            users.push(publication.user);
        }
        users
    }

    /// The earliest expiry of all publications.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_expiry.first().map(|(at, _)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).expect("valid")
    }

    const FLOW: Flow = Flow::Tcp(7);

    fn open() -> Option<EndpointPresence> {
        Some(EndpointPresence::default())
    }

    #[test]
    fn newest_publication_speaks_and_tags_rotate() {
        let now = Instant::now();
        let (alice, bob) = (jid("alice@example.com"), jid("bob@example.com"));
        let s = Duration::from_secs;
        let mut p = Publications::default();
        p.put(None, "t1".into(), &alice, FLOW, None, None, now + s(60));
        p.put(None, "t2".into(), &alice, FLOW, open(), None, now + s(30));
        assert!(p.current(&alice).expect("one").presence.is_some());
        assert!(p.get("t1", &bob).is_none(), "another user's tag is unknown");
        // A refresh moves the tag and the expiry but is no modification: t2 still speaks.
        p.refresh("t1", "t3".into(), FLOW, now + s(90));
        assert!(p.get("t1", &alice).is_none() && p.get("t3", &alice).is_some());
        assert!(p.current(&alice).expect("t2").presence.is_some());
        // A modification makes the publication the newest, under a new tag.
        p.put(
            Some("t3"),
            "t4".into(),
            &alice,
            FLOW,
            None,
            None,
            now + s(90),
        );
        assert!(p.get("t3", &alice).is_none());
        assert!(p.current(&alice).expect("t4").presence.is_none());
        p.put(
            Some("t4"),
            "t5".into(),
            &alice,
            FLOW,
            open(),
            None,
            now + s(90),
        );
        assert_eq!(p.expire(now + s(40)), vec![alice.clone()], "t2 lapsed");
        assert!(p.get("t2", &alice).is_none());
        assert!(p.current(&alice).expect("t5 left").presence.is_some());
        assert_eq!(p.count(&alice), 1);
        assert!(p.remove("t5").is_some());
        assert!(p.current(&alice).is_none() && p.next_expiry().is_none());
        assert!(p.users.is_empty() && p.by_tag.is_empty() && p.entries.is_empty());
    }

    #[test]
    fn publications_lapse_in_expiry_order_whoever_holds_them() {
        let now = Instant::now();
        let s = Duration::from_secs;
        let users = [jid("a@x"), jid("b@x"), jid("c@x")];
        let mut p = Publications::default();
        // Put in an order unrelated to expiry, refreshes moving two of them.
        for (i, secs) in [50u64, 10, 40, 20, 30].into_iter().enumerate() {
            let u = &users[i % 3];
            p.put(None, format!("t{i}"), u, FLOW, open(), None, now + s(secs));
        }
        p.refresh("t1", "r1".into(), FLOW, now + s(60));
        p.refresh("t0", "r0".into(), FLOW, now + s(5));
        assert_eq!(p.next_expiry(), Some(now + s(5)));
        assert_eq!(p.expire(now + s(4)), Vec::<BareJid>::new());
        assert_eq!(p.expire(now + s(5)), vec![users[0].clone()], "r0");
        assert_eq!(p.next_expiry(), Some(now + s(20)));
        assert_eq!(
            p.expire(now + s(40)),
            vec![users[0].clone(), users[1].clone(), users[2].clone()],
            "t3 (20s), t4 (30s), t2 (40s), earliest first"
        );
        assert!(p.get("r1", &users[1]).is_some() && p.get("t1", &users[1]).is_none());
        assert_eq!(p.next_expiry(), Some(now + s(60)));
    }

    #[test]
    fn system_state_merges_lines_and_takes_the_newest_calendar() {
        let now = Instant::now() + Duration::from_secs(60);
        let alice = jid("alice@example.com");
        let busy = SystemState {
            on_the_phone: true,
            calendar: Default::default(),
        };
        let mut p = Publications::default();
        p.put(None, "e".into(), &alice, FLOW, open(), None, now);
        p.put(None, "l1".into(), &alice, FLOW, None, Some(busy), now);
        p.put(
            None,
            "l2".into(),
            &alice,
            FLOW,
            None,
            Some(SystemState::default()),
            now,
        );
        assert!(
            p.system(&alice).on_the_phone,
            "one line in a call is enough"
        );
        assert!(
            p.current(&alice).expect("e").presence.is_some(),
            "system ones never speak"
        );
        p.remove("l1");
        assert!(!p.system(&alice).on_the_phone);
        p.put(Some("l2"), "l3".into(), &alice, FLOW, None, Some(busy), now);
        assert!(p.system(&alice).on_the_phone);
        assert_eq!(p.count(&alice), 2);
    }

    #[test]
    fn caps_count_new_publications_per_user_and_endpoint() {
        let now = Instant::now() + Duration::from_secs(60);
        let (alice, bob) = (jid("alice@example.com"), jid("bob@example.com"));
        let (a, b) = (Flow::Tcp(1), Flow::Tcp(2));
        let cap = Cap {
            per_user: 3,
            per_endpoint: 2,
        };
        let mut p = Publications::default();
        p.put(None, "1".into(), &alice, a, open(), None, now);
        p.put(None, "2".into(), &alice, a, open(), None, now);
        assert_eq!(p.check(cap, &alice, a), Err(Over::Endpoint));
        assert_eq!(p.check(cap, &alice, b), Ok(()));
        p.put(None, "3".into(), &alice, b, open(), None, now);
        assert_eq!(p.check(cap, &alice, b), Err(Over::User));
        assert_eq!(p.check(cap, &bob, a), Ok(()), "bob has his own allowance");
        // A refresh over another flow moves the publication's count there.
        p.refresh("1", "1r".into(), b, now);
        p.remove("3");
        assert_eq!(p.check(cap, &alice, a), Ok(()));
        assert_eq!(p.check(cap, &alice, b), Ok(()));
        p.put(Some("1r"), "1m".into(), &alice, a, open(), None, now);
        assert_eq!(p.check(cap, &alice, a), Err(Over::Endpoint));
        p.expire(now);
        assert_eq!(p.count(&alice), 0);
        assert_eq!(p.check(cap, &alice, a), Ok(()));
    }

    #[test]
    fn ten_thousand_publications_of_one_user_keep_the_same_answers() {
        // The index at the scale of the flood: the newest speaks, lapses come earliest first, and
        // nothing is left behind (timing is measured elsewhere, never asserted).
        let now = Instant::now();
        let alice = jid("alice@example.com");
        let mut p = Publications::default();
        let n = 10_000u64;
        for i in 0..n {
            let expires = now + Duration::from_secs(n - i);
            p.put(None, format!("t{i}"), &alice, FLOW, open(), None, expires);
        }
        assert_eq!(p.count(&alice), n as usize);
        assert_eq!(p.current(&alice).expect("newest").modified, n);
        // The newest expires first (its lifetime is the shortest): after it lapses the one before speaks.
        assert_eq!(p.expire(now + Duration::from_secs(1)), vec![alice.clone()]);
        assert_eq!(p.current(&alice).expect("next").modified, n - 1);
        assert_eq!(p.expire(now + Duration::from_secs(n)).len(), n as usize - 1);
        assert!(p.current(&alice).is_none() && p.next_expiry().is_none() && p.count(&alice) == 0);
    }
}
