//! vCard-temp (XEP-0054): a user's business card, set by the user's sessions and readable by anyone who asks.

use crate::jid::BareJid;

/// What a session asks of vCards.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// The vCard of `of`, or of the session's own user when `None`.
    Get {
        /// Whose card.
        of: Option<BareJid>,
    },
    /// Replaces the user's own vCard with `xml` (a serialized `<vCard xmlns='vcard-temp'/>`).
    Set {
        /// The card, serialized by the shell.
        xml: String,
    },
}

/// What a get answers: the stored card, serialized, or `None` for a user who never set one (an empty card).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Answer {
    /// Whose card it is.
    pub of: BareJid,
    /// The card.
    pub xml: Option<String>,
}

/// The document key of the vCard.
pub(crate) fn key() -> crate::store::DocumentKey {
    crate::store::DocumentKey::new("vcard").expect("a short, non-empty key")
}
