//! What the store keeps of a persistent room: configuration, affiliations, subject and (for rooms that do not
//! archive) history. Occupants are not kept: after a restart everyone joins again.

use super::affiliation::Affiliation;
use super::config::RoomConfig;
use super::history::HistoryEntry;
use crate::jid::BareJid;
use crate::time::Timestamp;

/// A room's subject and who set it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    /// The text (empty: cleared).
    pub text: String,
    /// The nickname of who set it.
    pub nick: String,
    /// When.
    pub stamp: Timestamp,
}

/// A persistent room as stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomRecord {
    /// The room's address.
    pub jid: BareJid,
    /// Its configuration.
    pub config: RoomConfig,
    /// Every user with an affiliation other than none, sorted by address.
    pub affiliations: Vec<(BareJid, Affiliation)>,
    /// The subject, once set.
    pub subject: Option<Subject>,
    /// The kept messages, oldest first. A room that archives keeps them in its archive instead and writes none
    /// here; they are filled in from the archive at start ([`crate::store::load_rooms`]). Records written before
    /// rooms had archives hold them here, and still load.
    pub history: Vec<HistoryEntry>,
    /// The highest id in the room's archive (0: empty). Not part of the stored record: the store's archive knows
    /// it, and [`crate::store::load_rooms`] fills it in.
    pub archive_head: u64,
}
