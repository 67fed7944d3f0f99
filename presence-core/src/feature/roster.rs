//! The contact list as a session reads and edits it (RFC 6121 §2).

use crate::jid::BareJid;
use crate::roster::{ItemDetails, RosterChange, RosterItem};

/// What a session asks of its roster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// The whole roster (§2.1.3); asking is what subscribes the session to pushes.
    Get {
        /// The version the client has cached (§2.6.2), if it sent one this server could have issued.
        known: Option<u64>,
    },
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
    /// Every listed item, ordered by address; `None` when the client's cached version is the current one, so
    /// it gets an empty result and keeps its copy (RFC 6121 §2.6.3).
    pub items: Option<Vec<RosterItem>>,
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

/// The document that keeps a user's roster version across restarts and evictions.
///
/// RFC 6121 §2.6: a client compares the `ver` it cached with the server's; equal means "your copy is current".
/// A counter that lived only in memory would start again at 0 on every load, reach a number the client already
/// holds with different contents, and the client would keep a stale roster. So the counter is durable, written
/// in the same commit as the roster change that moved it, and only ever grows.
pub fn version_key() -> crate::store::DocumentKey {
    crate::store::DocumentKey::new("roster/version").expect("a short, non-empty key")
}

/// About how many bytes an item takes in memory.
pub(crate) fn item_weight(i: &RosterItem) -> usize {
    64 + i.jid.as_str().len()
        + i.details.name.as_ref().map_or(0, String::len)
        + i.details.groups.iter().map(String::len).sum::<usize>()
}
