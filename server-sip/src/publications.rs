//! Event state published with PUBLISH (RFC 3903): one entry per entity tag, each the presence of one SIP endpoint
//! of a user, with its expiry.

use std::time::Instant;

use hashbrown::HashMap;
use presence_core::BareJid;
use presence_core::compose::EndpointPresence;

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

/// Every live publication by entity tag.
#[derive(Debug, Default)]
pub struct Publications {
    by_tag: HashMap<String, Publication>,
    clock: u64,
}

impl Publications {
    /// The publication with this tag, if it belongs to `user`: another user's tag is as unknown as no tag (412).
    pub fn get(&self, tag: &str, user: &BareJid) -> Option<&Publication> {
        self.by_tag.get(tag).filter(|p| &p.user == user)
    }

    /// Stores a new or modified publication under a new tag, dropping the old tag (RFC 3903 §6: every
    /// successful PUBLISH gets a fresh entity tag).
    pub fn put(
        &mut self,
        old_tag: Option<&str>,
        new_tag: String,
        user: &BareJid,
        presence: Option<EndpointPresence>,
        system: Option<SystemState>,
        expires: Instant,
    ) {
        if let Some(t) = old_tag {
            self.by_tag.remove(t);
        }
        self.clock += 1;
        self.by_tag.insert(
            new_tag,
            Publication {
                user: user.clone(),
                presence,
                expires,
                modified: self.clock,
                system,
            },
        );
    }

    /// Moves a publication to a new tag and expiry without changing what it says (a refresh).
    pub fn refresh(&mut self, old_tag: &str, new_tag: String, expires: Instant) {
        if let Some(mut p) = self.by_tag.remove(old_tag) {
            p.expires = expires;
            self.by_tag.insert(new_tag, p);
        }
    }

    /// Removes a publication.
    pub fn remove(&mut self, tag: &str) -> Option<Publication> {
        self.by_tag.remove(tag)
    }

    /// The newest endpoint publication of a user.
    pub fn current(&self, user: &BareJid) -> Option<&Publication> {
        self.by_tag
            .values()
            .filter(|p| &p.user == user && p.system.is_none())
            .max_by_key(|p| p.modified)
    }

    /// What the trusted peers say about a user, merged: on the phone if any line is; the newest calendar.
    pub fn system(&self, user: &BareJid) -> SystemState {
        let mut mine: Vec<(u64, SystemState)> = self
            .by_tag
            .values()
            .filter(|p| &p.user == user)
            .filter_map(|p| p.system.map(|s| (p.modified, s)))
            .collect();
        mine.sort_by_key(|(m, _)| *m);
        SystemState {
            on_the_phone: mine.iter().any(|(_, s)| s.on_the_phone),
            calendar: mine.last().map(|(_, s)| s.calendar).unwrap_or_default(),
        }
    }

    /// Drops publications that lapsed; returns their users.
    pub fn expire(&mut self, now: Instant) -> Vec<BareJid> {
        let mut changed = Vec::new();
        self.by_tag.retain(|_, p| {
            let keep = p.expires > now;
            if !keep {
                changed.push(p.user.clone());
            }
            keep
        });
        changed
    }

    /// The earliest expiry of all publications.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_tag.values().map(|p| p.expires).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn newest_publication_speaks_and_tags_rotate() {
        let now = Instant::now();
        let alice = BareJid::new("alice@example.com").expect("valid");
        let bob = BareJid::new("bob@example.com").expect("valid");
        let mut p = Publications::default();
        p.put(
            None,
            "t1".into(),
            &alice,
            None,
            None,
            now + Duration::from_secs(60),
        );
        p.put(
            None,
            "t2".into(),
            &alice,
            Some(EndpointPresence::default()),
            None,
            now + Duration::from_secs(30),
        );
        assert!(p.current(&alice).expect("one").presence.is_some());
        assert!(p.get("t1", &bob).is_none(), "another user's tag is unknown");
        p.refresh("t1", "t3".into(), now + Duration::from_secs(90));
        assert!(p.get("t1", &alice).is_none() && p.get("t3", &alice).is_some());
        assert_eq!(p.expire(now + Duration::from_secs(40)), vec![alice.clone()]);
        assert!(p.current(&alice).expect("t3 left").presence.is_none());
    }
}
