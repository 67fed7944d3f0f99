//! Dialog-event state published with PUBLISH (`Event: dialog`, RFC 4235 documents under RFC 3903): the calls a
//! user's phone or a call controller reports. Each publication is one phone line of the user to the engine
//! (DESIGN §2: on the phone per line appearance): on the phone while any dialog it reports is `confirmed`.
//!
//! Kept apart from the presence publications because the two packages' entity tags are separate name spaces
//! (RFC 3903 §4: an entity tag names state of one event package) and a dialog publication never speaks for an
//! endpoint's presence, only for a line.

use std::collections::BTreeSet;
use std::time::Instant;

use hashbrown::HashMap;
use presence_core::BareJid;
use sip_codec::dialog_info::{DialogInfo, DialogState, State};

/// The largest number of live dialogs one publication holds. A full-state document is bounded by the codec
/// ([`sip_codec::dialog_info::DEFAULT_MAX_DIALOGS`]); this bounds what partial updates accumulate.
pub const MAX_DIALOGS: usize = sip_codec::dialog_info::DEFAULT_MAX_DIALOGS;

/// One dialog publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogPublication {
    /// Whose calls.
    pub user: BareJid,
    /// The engine line it drives; stays the same through refreshes and modifications (tags rotate).
    pub line: String,
    /// The version of the last document applied (RFC 4235 §4.1.2).
    pub version: u64,
    /// The dialogs that have not terminated, by their `id`.
    pub dialogs: HashMap<String, DialogState>,
    /// When it lapses.
    pub expires: Instant,
}

impl DialogPublication {
    /// Whether a call is up on this line.
    pub fn on_the_phone(&self) -> bool {
        self.dialogs.values().any(|s| *s == DialogState::Confirmed)
    }
}

/// What a change did to a line, so the engine is told only when it flips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineChange {
    /// Whose line.
    pub user: BareJid,
    /// The line.
    pub line: String,
    /// On the phone before the change.
    pub before: bool,
    /// On the phone after it.
    pub after: bool,
}

/// Why a document was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// An initial PUBLISH beyond the user's allowance.
    #[error("too many dialog publications for one user")]
    TooManyPublications,
    /// Partial updates would hold more dialogs than [`MAX_DIALOGS`].
    #[error("too many dialogs in one publication")]
    TooManyDialogs,
}

/// Every live dialog publication by entity tag.
#[derive(Debug)]
pub struct DialogPublications {
    by_tag: HashMap<String, DialogPublication>,
    per_user: HashMap<BareJid, usize>,
    max_per_user: usize,
    /// Every publication by its expiry, so a lapse costs what lapsed, not a scan of every publication.
    expiry: BTreeSet<(Instant, String)>,
}

impl Default for DialogPublications {
    /// The default per-user allowance of publications (`[limits] sip_publications_per_user`): a desk phone, a
    /// softphone and a call controller or two need a handful; a runaway client that loses its entity tags must
    /// not grow our memory.
    fn default() -> Self {
        DialogPublications::new(crate::caps::StateCaps::default().publications.per_user)
    }
}

impl DialogPublications {
    /// An empty store allowing `max_per_user` publications per user.
    pub fn new(max_per_user: usize) -> Self {
        DialogPublications {
            by_tag: HashMap::new(),
            per_user: HashMap::new(),
            max_per_user,
            expiry: BTreeSet::new(),
        }
    }

    /// The publication with this tag, if it belongs to `user`: another user's tag is as unknown as no tag (412).
    pub fn get(&self, tag: &str, user: &BareJid) -> Option<&DialogPublication> {
        self.by_tag.get(tag).filter(|p| &p.user == user)
    }

    /// Applies a document: a new publication when `old_tag` is `None`, else a modification of that one (which
    /// the caller has checked belongs to `user`). The publication moves to `new_tag` either way.
    ///
    /// A full-state document replaces the dialogs. A partial one (RFC 4235 §4.1) changes only the dialogs it
    /// lists (terminated ones go) and is ignored unless its version is newer than the one held, as §4.1.2 has
    /// a subscriber do; a full-state document always applies, because PUBLISH already orders modifications by
    /// entity tag (a stale one gets 412), and publishers that restart their version at each document exist.
    /// An initial partial document has nothing to update, so it is read as the full state.
    pub fn publish(
        &mut self,
        old_tag: Option<&str>,
        new_tag: String,
        user: &BareJid,
        doc: &DialogInfo,
        expires: Instant,
    ) -> Result<LineChange, Refused> {
        let old = old_tag.and_then(|t| self.by_tag.get(t));
        let before = old.is_some_and(DialogPublication::on_the_phone);
        let mut dialogs = match (old, doc.state) {
            (Some(p), State::Partial) if doc.version <= p.version => {
                tracing::debug!(
                    held = p.version,
                    got = doc.version,
                    "stale partial dialog-info ignored"
                );
                p.dialogs.clone()
            }
            (Some(p), State::Partial) => p.dialogs.clone(),
            _ => HashMap::new(),
        };
        let apply = match old {
            Some(p) => doc.state == State::Full || doc.version > p.version,
            None => true,
        };
        if apply {
            for d in &doc.dialogs {
                if d.state == DialogState::Terminated {
                    dialogs.remove(&d.id);
                } else {
                    dialogs.insert(d.id.clone(), d.state);
                }
            }
        }
        if dialogs.len() > MAX_DIALOGS {
            return Err(Refused::TooManyDialogs);
        }
        let (line, version) = match (old, old_tag) {
            (Some(p), Some(t)) => {
                let kept = (p.line.clone(), if apply { doc.version } else { p.version });
                let t = t.to_owned();
                self.remove(&t);
                kept
            }
            _ => {
                if self.per_user.get(user).copied().unwrap_or(0) >= self.max_per_user {
                    return Err(Refused::TooManyPublications);
                }
                (format!("dialog:{new_tag}"), doc.version)
            }
        };
        *self.per_user.entry(user.clone()).or_default() += 1;
        let p = DialogPublication {
            user: user.clone(),
            line,
            version,
            dialogs,
            expires,
        };
        let change = LineChange {
            user: user.clone(),
            line: p.line.clone(),
            before,
            after: p.on_the_phone(),
        };
        self.expiry.insert((expires, new_tag.clone()));
        self.by_tag.insert(new_tag, p);
        Ok(change)
    }

    /// Moves a publication to a new tag and expiry without changing what it says (a refresh).
    pub fn refresh(&mut self, old_tag: &str, new_tag: String, expires: Instant) {
        if let Some(mut p) = self.by_tag.remove(old_tag) {
            self.expiry.remove(&(p.expires, old_tag.to_owned()));
            p.expires = expires;
            self.expiry.insert((expires, new_tag.clone()));
            self.by_tag.insert(new_tag, p);
        }
    }

    /// Removes a publication; its line is idle from now on.
    pub fn remove(&mut self, tag: &str) -> Option<LineChange> {
        let p = self.by_tag.remove(tag)?;
        self.expiry.remove(&(p.expires, tag.to_owned()));
        if let Some(n) = self.per_user.get_mut(&p.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_user.remove(&p.user);
            }
        }
        let before = p.on_the_phone();
        Some(LineChange {
            user: p.user,
            line: p.line,
            before,
            after: false,
        })
    }

    /// Drops publications that lapsed; returns what happened to their lines.
    pub fn expire(&mut self, now: Instant) -> Vec<LineChange> {
        let mut changes = Vec::new();
        while let Some((at, tag)) = self.expiry.first().cloned()
            && at <= now
        {
            self.expiry.remove(&(at, tag.clone()));
            changes.extend(self.remove(&tag));
        }
        changes
    }

    /// The earliest expiry of all publications.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiry.first().map(|(at, _)| *at)
    }

    /// How many publications there are.
    pub fn len(&self) -> usize {
        self.by_tag.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_tag.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn doc(version: u64, state: &str, dialogs: &[(&str, &str)]) -> DialogInfo {
        let body: String = dialogs
            .iter()
            .map(|(id, s)| format!(r#"<dialog id="{id}"><state>{s}</state></dialog>"#))
            .collect();
        let xml = format!(
            r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="{version}" state="{state}" entity="sip:alice@example.com">{body}</dialog-info>"#
        );
        DialogInfo::parse(xml.as_bytes()).expect("valid")
    }

    fn alice() -> BareJid {
        BareJid::new("alice@example.com").expect("valid")
    }

    #[test]
    fn confirmed_puts_the_line_on_the_phone_and_terminated_ends_it() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut s = DialogPublications::default();
        let c = s
            .publish(
                None,
                "t1".into(),
                &alice(),
                &doc(0, "full", &[("a", "early")]),
                later,
            )
            .expect("stored");
        assert_eq!(
            (c.before, c.after, c.line.as_str()),
            (false, false, "dialog:t1")
        );
        let c = s
            .publish(
                Some("t1"),
                "t2".into(),
                &alice(),
                &doc(1, "full", &[("a", "confirmed")]),
                later,
            )
            .expect("stored");
        assert_eq!(
            (c.before, c.after, c.line.as_str()),
            (false, true, "dialog:t1")
        );
        assert!(s.get("t1", &alice()).is_none(), "the old tag is gone");
        let c = s
            .publish(
                Some("t2"),
                "t3".into(),
                &alice(),
                &doc(2, "full", &[("a", "terminated")]),
                later,
            )
            .expect("stored");
        assert_eq!((c.before, c.after), (true, false));
        assert!(s.get("t3", &alice()).expect("held").dialogs.is_empty());
    }

    #[test]
    fn a_dialog_missing_from_a_full_document_has_ended() {
        let later = Instant::now() + Duration::from_secs(60);
        let mut s = DialogPublications::default();
        s.publish(
            None,
            "t1".into(),
            &alice(),
            &doc(5, "full", &[("a", "confirmed")]),
            later,
        )
        .expect("stored");
        // A full document with a lower version still applies: PUBLISH orders by entity tag.
        let c = s
            .publish(
                Some("t1"),
                "t2".into(),
                &alice(),
                &doc(0, "full", &[("b", "trying")]),
                later,
            )
            .expect("stored");
        assert_eq!((c.before, c.after), (true, false));
        assert_eq!(s.get("t2", &alice()).expect("held").version, 0);
    }

    #[test]
    fn partial_updates_merge_in_version_order() {
        let later = Instant::now() + Duration::from_secs(60);
        let mut s = DialogPublications::default();
        s.publish(
            None,
            "t1".into(),
            &alice(),
            &doc(1, "full", &[("a", "confirmed")]),
            later,
        )
        .expect("stored");
        // A newer partial adds a dialog and keeps the one it does not mention.
        let c = s
            .publish(
                Some("t1"),
                "t2".into(),
                &alice(),
                &doc(2, "partial", &[("b", "early")]),
                later,
            )
            .expect("stored");
        assert!(c.after);
        assert_eq!(s.get("t2", &alice()).expect("held").dialogs.len(), 2);
        // A stale partial (version not newer) is ignored, though the publication moves to its new tag.
        let c = s
            .publish(
                Some("t2"),
                "t3".into(),
                &alice(),
                &doc(2, "partial", &[("a", "terminated")]),
                later,
            )
            .expect("stored");
        assert_eq!((c.before, c.after), (true, true));
        assert_eq!(s.get("t3", &alice()).expect("held").version, 2);
        // A newer one ends the call.
        let c = s
            .publish(
                Some("t3"),
                "t4".into(),
                &alice(),
                &doc(3, "partial", &[("a", "terminated")]),
                later,
            )
            .expect("stored");
        assert_eq!((c.before, c.after), (true, false));
        let held = s.get("t4", &alice()).expect("held");
        assert_eq!(held.dialogs.get("b"), Some(&DialogState::Early));
        assert_eq!(held.line, "dialog:t1");
    }

    #[test]
    fn partial_updates_cannot_grow_past_the_dialog_limit() {
        let later = Instant::now() + Duration::from_secs(60);
        let mut s = DialogPublications::default();
        let ids: Vec<String> = (0..MAX_DIALOGS).map(|i| format!("d{i}")).collect();
        let all: Vec<(&str, &str)> = ids.iter().map(|i| (i.as_str(), "confirmed")).collect();
        s.publish(None, "t1".into(), &alice(), &doc(1, "full", &all), later)
            .expect("at the limit");
        assert_eq!(
            s.publish(
                Some("t1"),
                "t2".into(),
                &alice(),
                &doc(2, "partial", &[("x", "early")]),
                later
            ),
            Err(Refused::TooManyDialogs)
        );
        assert!(
            s.get("t1", &alice()).is_some(),
            "the refused update changed nothing"
        );
    }

    #[test]
    fn removal_and_expiry_idle_the_line_and_the_per_user_cap_holds() {
        let now = Instant::now();
        let mut s = DialogPublications::new(2);
        let on = doc(1, "full", &[("a", "confirmed")]);
        s.publish(
            None,
            "t1".into(),
            &alice(),
            &on,
            now + Duration::from_secs(10),
        )
        .expect("first");
        s.publish(
            None,
            "t2".into(),
            &alice(),
            &on,
            now + Duration::from_secs(100),
        )
        .expect("second");
        assert_eq!(
            s.publish(None, "t3".into(), &alice(), &on, now),
            Err(Refused::TooManyPublications)
        );
        let bob = BareJid::new("bob@example.com").expect("valid");
        assert!(s.get("t1", &bob).is_none(), "another user's tag is unknown");
        let lapsed = s.expire(now + Duration::from_secs(20));
        assert_eq!(lapsed.len(), 1);
        assert_eq!(
            (lapsed[0].line.as_str(), lapsed[0].before, lapsed[0].after),
            ("dialog:t1", true, false)
        );
        s.refresh("t2", "t5".into(), now + Duration::from_secs(300));
        assert!(
            s.expire(now + Duration::from_secs(200)).is_empty(),
            "refreshed"
        );
        let gone = s.remove("t5").expect("held");
        assert_eq!(
            (gone.line.as_str(), gone.before, gone.after),
            ("dialog:t2", true, false)
        );
        assert!(s.is_empty());
        s.publish(None, "t6".into(), &alice(), &on, now)
            .expect("room again");
    }
}
