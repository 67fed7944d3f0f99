//! A room's message archive (XEP-0313 on a MUC room): every groupchat message with a body that a persistent room
//! with archiving on accepts is kept under the next id of the room's own counter, which is also the XEP-0359
//! stanza-id the room stamps on the broadcast (`by` the room). The archive is the room's history too: the last
//! messages a newcomer gets are kept in memory by the room and loaded back from the archive at start, so a message
//! is one append to the store instead of a rewrite of the room's record.
//!
//! Entries reuse the user archive's [`ArchivedMessage`]: `from` is the occupant address (`room/nick`), `to` the
//! room, and `with` the sender's real bare address (kept so history loaded back keeps the occupant ids; never shown).
//! A query reuses [`Query`] for times, ids and paging; its `with` is ignored and [`RoomQuery::nick`] filters
//! instead, since a room's `with` names an occupant (`room/nick`, Prosody's rule), not a bare address.

use super::history::HistoryEntry;
pub use crate::archive::{ArchivedMessage, Page, Query};
use crate::jid::{BareJid, Jid};

/// Archive trims are emitted when the id is a multiple of this, as for user archives: a range delete every few
/// hundred messages instead of one per message once the archive is full.
pub const TRIM_STEP: u64 = 256;

/// A query of one room's archive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RoomQuery {
    /// Only messages sent by the occupant with this nickname (the form's `with` = `room/nick`).
    pub nick: Option<String>,
    /// Times, ids and the page; `with` is not used.
    pub query: Query,
}

/// An archive query a room allowed: what the shell reads from the store and how it answers. The room hands it
/// back untouched in [`super::RoomAnswer::ArchiveRead`], so the read itself is never engine work.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ArchiveRead {
    /// The query.
    pub query: RoomQuery,
    /// The client's query id, echoed on every result.
    pub queryid: Option<String>,
    /// Results in reverse order within the page (`<flip-page/>`).
    pub flip: bool,
}

/// The nickname an archived room message was sent under.
pub fn nick_of(m: &ArchivedMessage) -> Option<&str> {
    match &m.from {
        Jid::Full(f) => Some(f.resource()),
        Jid::Bare(_) => None,
    }
}

/// Answers `query` from a room archive given in id order (oldest first).
pub fn select<'a>(
    archive: impl DoubleEndedIterator<Item = &'a ArchivedMessage>,
    query: &RoomQuery,
) -> Page {
    let q = Query {
        with: None,
        ..query.query.clone()
    };
    let nick = query.nick.as_deref();
    crate::archive::select_where(archive, &q, |m| nick.is_none_or(|n| nick_of(m) == Some(n)))
}

/// The archive entry of a message `room` accepted, under `id`.
pub fn entry(id: u64, room: &BareJid, h: &HistoryEntry) -> Option<ArchivedMessage> {
    let from = room.with_resource(&h.nick).ok()?;
    let mut message = h.message.clone();
    // The id is the entry's own; a copy inside the message would only go stale.
    message.archive_id = None;
    Some(ArchivedMessage {
        id,
        with: h.sender.clone(),
        from: Jid::Full(from),
        to: Jid::Bare(room.clone()),
        message,
    })
}

/// What newcomers are sent of an archived message: the message carries its archive id (the stanza-id).
pub fn history_entry(m: &ArchivedMessage) -> Option<HistoryEntry> {
    let nick = nick_of(m)?.to_owned();
    let mut message = m.message.clone();
    message.archive_id = std::num::NonZeroU64::new(m.id);
    Some(HistoryEntry {
        nick,
        sender: m.with.clone(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::time::Timestamp;

    fn room() -> BareJid {
        BareJid::new("r@conference.x").expect("valid")
    }

    fn archived(id: u64, nick: &str) -> ArchivedMessage {
        let h = HistoryEntry {
            nick: nick.into(),
            sender: BareJid::new(&format!("{nick}@x")).expect("valid"),
            message: Message {
                body: Some(format!("m{id}")),
                stamp: Timestamp(id * 1000),
                ..Message::default()
            },
        };
        entry(id, &room(), &h).expect("a valid nick")
    }

    #[test]
    fn entries_round_trip_to_history_with_their_id() {
        let m = archived(7, "alice");
        assert_eq!(nick_of(&m), Some("alice"));
        let h = history_entry(&m).expect("has a nick");
        assert_eq!(h.nick, "alice");
        assert_eq!(h.message.archive_id.map(|n| n.get()), Some(7));
        assert_eq!(h.sender.as_str(), "alice@x");
    }

    #[test]
    fn nick_filters_and_with_is_ignored() {
        let a: Vec<ArchivedMessage> = (1..=6)
            .map(|id| archived(id, if id % 2 == 0 { "bob" } else { "carol" }))
            .collect();
        let q = RoomQuery {
            nick: Some("bob".into()),
            query: Query {
                with: Some(BareJid::new("nobody@x").expect("valid")),
                max: 10,
                ..Query::default()
            },
        };
        let ids: Vec<u64> = select(a.iter(), &q).messages.iter().map(|m| m.id).collect();
        assert_eq!(ids, [2, 4, 6]);
    }
}
