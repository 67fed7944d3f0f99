//! The contact list as a session reads and edits it (RFC 6121 §2).

use crate::jid::BareJid;
use crate::roster::{ItemDetails, RosterChange, RosterItem};

/// What a session asks of its roster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// The whole roster (§2.1.3); asking is what subscribes the session to pushes.
    Get,
    /// Adds or edits an item (§2.1.5).
    Set {
        /// The contact.
        jid: BareJid,
        /// Name and groups.
        details: ItemDetails,
    },
    /// Removes an item, cancelling both subscription directions first (§2.5).
    Remove {
        /// The contact.
        jid: BareJid,
    },
}

/// The roster, as a get answers it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Answer {
    /// Every listed item, ordered by address.
    pub items: Vec<RosterItem>,
    /// The roster version.
    pub version: u64,
}

/// One changed item, pushed to the sessions that asked for the roster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Push {
    /// What changed.
    pub change: RosterChange,
    /// The roster version after it.
    pub version: u64,
}

/// About how many bytes an item takes in memory.
pub(crate) fn item_weight(i: &RosterItem) -> usize {
    64 + i.jid.as_str().len()
        + i.details.name.as_ref().map_or(0, String::len)
        + i.details.groups.iter().map(String::len).sum::<usize>()
}
