//! The message archive (XEP-0313): what one user's archive holds, how a query selects from it, and the user's
//! archiving preferences. Stores implement [`crate::store::ArchiveStore`] with [`select`] or an equivalent query
//! of their own (the conformance suite holds them to the same answers).

use crate::jid::{BareJid, Jid};
use crate::message::{Message, MessageKind};
use crate::time::Timestamp;

/// One archived message of a user. `id` orders the archive: each user's ids grow with every message archived.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArchivedMessage {
    /// The archive id (the XEP-0359 stanza-id the server gave the message for this user).
    pub id: u64,
    /// The other party of the conversation (the peer's bare address), what `with` filters on.
    pub with: BareJid,
    /// The sender.
    pub from: Jid,
    /// The recipient, as addressed.
    pub to: Jid,
    /// The message; its stamp is when the server took it.
    pub message: Message,
}

/// A query of one user's archive: filters, then a page of at most `max` results (XEP-0313 §4, XEP-0059).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Query {
    /// Only the conversation with this address.
    pub with: Option<BareJid>,
    /// Only messages at or after this time.
    pub start: Option<Timestamp>,
    /// Only messages at or before this time.
    pub end: Option<Timestamp>,
    /// Only messages after this id (the RSM `<after/>` or the form's `after-id`).
    pub after: Option<u64>,
    /// Only messages before this id (the RSM `<before>id</before>` or the form's `before-id`).
    pub before: Option<u64>,
    /// Exactly these ids (XEP-0313 `ids`), in archive order.
    pub ids: Option<Vec<u64>>,
    /// The page is the last matching messages rather than the first (RSM `<before/>`, empty or with an id).
    pub from_end: bool,
    /// At most this many messages.
    pub max: usize,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// The messages, in archive order.
    pub messages: Vec<ArchivedMessage>,
    /// Whether the page reaches the end of the results in the direction of the query (XEP-0313 `complete`).
    pub complete: bool,
}

impl Query {
    /// Whether `m` passes the filters (not the paging).
    pub fn matches(&self, m: &ArchivedMessage) -> bool {
        let stamp = m.message.stamp;
        self.with.as_ref().is_none_or(|w| *w == m.with)
            && self.start.is_none_or(|s| stamp >= s)
            && self.end.is_none_or(|e| stamp <= e)
            && self.after.is_none_or(|a| m.id > a)
            && self.before.is_none_or(|b| m.id < b)
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&m.id))
    }
}

/// Answers `query` from an archive given in id order (oldest first).
pub fn select<'a>(
    archive: impl DoubleEndedIterator<Item = &'a ArchivedMessage>,
    query: &Query,
) -> Page {
    select_where(archive, query, |_| true)
}

/// [`select`] with one more filter, `also` (a room archive's nickname filter).
pub fn select_where<'a>(
    archive: impl DoubleEndedIterator<Item = &'a ArchivedMessage>,
    query: &Query,
    also: impl Fn(&ArchivedMessage) -> bool,
) -> Page {
    let mut matching = archive.filter(|m| query.matches(m) && also(m));
    let mut messages: Vec<ArchivedMessage> = Vec::with_capacity(query.max.min(256));
    if query.from_end {
        let mut back = matching.rev();
        messages.extend(back.by_ref().take(query.max).cloned());
        messages.reverse();
        let complete = back.next().is_none();
        Page { messages, complete }
    } else {
        messages.extend(matching.by_ref().take(query.max).cloned());
        let complete = matching.next().is_none();
        Page { messages, complete }
    }
}

/// Whether a message goes into the archives (XEP-0313 §5, XEP-0334): chat and normal messages with text, or marked
/// to be stored, unless marked not to be.
pub fn archivable(message: &Message) -> bool {
    !message.marks.no_store
        && matches!(message.kind, MessageKind::Chat | MessageKind::Normal)
        && (message.body.is_some() || message.marks.store)
}

/// The user's archiving preferences (XEP-0313 §6): a default and two lists that override it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Prefs {
    /// What happens for addresses on neither list.
    pub default: Default,
    /// Always archived.
    pub always: Vec<BareJid>,
    /// Never archived.
    pub never: Vec<BareJid>,
}

/// The preferences' default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Default {
    /// Every conversation is archived (what the server profile expects by default).
    #[default]
    Always,
    /// None is, unless listed under `always`.
    Never,
    /// Conversations with roster contacts are.
    Roster,
}

impl Prefs {
    /// Whether a conversation with `peer` is archived; `in_roster` says whether the peer is a roster contact.
    pub fn archives(&self, peer: &BareJid, in_roster: bool) -> bool {
        if self.never.contains(peer) {
            return false;
        }
        if self.always.contains(peer) {
            return true;
        }
        match self.default {
            Default::Always => true,
            Default::Never => false,
            Default::Roster => in_roster,
        }
    }

    /// As text for the user's documents: `default` then one `+jid` (always) or `-jid` (never) per line.
    pub fn to_text(&self) -> String {
        let mut s = String::from(match self.default {
            Default::Always => "always",
            Default::Never => "never",
            Default::Roster => "roster",
        });
        for j in &self.always {
            s.push_str("\n+");
            s.push_str(j.as_str());
        }
        for j in &self.never {
            s.push_str("\n-");
            s.push_str(j.as_str());
        }
        s
    }

    /// What [`Prefs::to_text`] wrote; `None` for text it could not have written.
    pub fn from_text(text: &str) -> Option<Prefs> {
        let mut lines = text.lines();
        let default = match lines.next()? {
            "always" => Default::Always,
            "never" => Default::Never,
            "roster" => Default::Roster,
            _ => return None,
        };
        let mut prefs = Prefs {
            default,
            ..Prefs::default()
        };
        for line in lines {
            let (list, jid) = match line.split_at_checked(1)? {
                ("+", j) => (&mut prefs.always, j),
                ("-", j) => (&mut prefs.never, j),
                _ => return None,
            };
            list.push(BareJid::new(jid).ok()?);
        }
        Some(prefs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> BareJid {
        BareJid::new(s).expect("valid")
    }

    fn archive() -> Vec<ArchivedMessage> {
        (1..=10)
            .map(|id| ArchivedMessage {
                id,
                with: j(if id % 2 == 0 { "bob@x" } else { "carol@x" }),
                from: Jid::new("alice@x/pc").expect("valid"),
                to: Jid::new("bob@x").expect("valid"),
                message: Message {
                    body: Some(format!("m{id}")),
                    stamp: Timestamp(1000 * id),
                    ..Message::default()
                },
            })
            .collect()
    }

    fn ids(p: &Page) -> Vec<u64> {
        p.messages.iter().map(|m| m.id).collect()
    }

    #[test]
    fn pages_go_forward_from_the_start_and_backward_from_the_end() {
        let a = archive();
        let q = |after, before, from_end, max| Query {
            after,
            before,
            from_end,
            max,
            ..Query::default()
        };
        let p = select(a.iter(), &q(None, None, false, 4));
        assert_eq!((ids(&p), p.complete), (vec![1, 2, 3, 4], false));
        let p = select(a.iter(), &q(Some(8), None, false, 4));
        assert_eq!((ids(&p), p.complete), (vec![9, 10], true));
        let p = select(a.iter(), &q(None, None, true, 3));
        assert_eq!((ids(&p), p.complete), (vec![8, 9, 10], false));
        let p = select(a.iter(), &q(None, Some(3), true, 3));
        assert_eq!((ids(&p), p.complete), (vec![1, 2], true));
        let p = select(a.iter(), &q(None, None, false, 0));
        assert_eq!(
            (ids(&p), p.complete),
            (vec![], false),
            "max 0 counts nothing"
        );
    }

    #[test]
    fn filters_by_peer_time_and_ids() {
        let a = archive();
        let q = Query {
            with: Some(j("bob@x")),
            start: Some(Timestamp(3000)),
            end: Some(Timestamp(8000)),
            max: 10,
            ..Query::default()
        };
        assert_eq!(ids(&select(a.iter(), &q)), [4, 6, 8]);
        let q = Query {
            ids: Some(vec![7, 2, 99]),
            max: 10,
            ..Query::default()
        };
        assert_eq!(ids(&select(a.iter(), &q)), [2, 7]);
    }

    #[test]
    fn only_conversation_with_text_or_a_store_hint_is_archived() {
        let chat = Message {
            kind: MessageKind::Chat,
            body: Some("hi".into()),
            ..Message::default()
        };
        assert!(archivable(&chat));
        let mut m = chat.clone();
        m.marks.no_store = true;
        assert!(!archivable(&m));
        let mut m = chat.clone();
        m.body = None;
        assert!(!archivable(&m), "a chat state alone");
        m.marks.store = true;
        assert!(archivable(&m));
        let m = Message {
            kind: MessageKind::Headline,
            ..chat
        };
        assert!(!archivable(&m));
    }

    #[test]
    fn prefs_round_trip_and_decide() {
        let p = Prefs {
            default: Default::Roster,
            always: vec![j("a@x")],
            never: vec![j("b@x")],
        };
        assert_eq!(Prefs::from_text(&p.to_text()), Some(p.clone()));
        assert!(p.archives(&j("a@x"), false));
        assert!(!p.archives(&j("b@x"), true));
        assert!(p.archives(&j("c@x"), true));
        assert!(!p.archives(&j("c@x"), false));
        assert_eq!(Prefs::from_text("sometimes"), None);
    }
}
