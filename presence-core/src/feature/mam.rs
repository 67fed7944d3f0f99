//! Message archive management (XEP-0313) as the engine serves it: the user's archiving preferences. Archiving
//! itself happens as messages pass through the engine; queries are reads of the store the shells make directly
//! (see `store::ArchiveStore`).

use crate::archive::Prefs;

/// What a session asks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// The preferences.
    GetPrefs,
    /// Replaces the preferences; answered with the preferences now in force.
    SetPrefs(Prefs),
}

/// The preferences, as a get or set answers them.
pub type Answer = Prefs;

/// The document key of the preferences.
pub(crate) fn prefs_key() -> crate::store::DocumentKey {
    crate::store::DocumentKey::new("mam/prefs").expect("a short, non-empty key")
}
