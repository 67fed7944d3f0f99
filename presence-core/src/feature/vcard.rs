//! vCard-temp (XEP-0054): a user's business card, set by the user's sessions and readable by anyone who asks.
//!
//! The card's PHOTO is the account's avatar (XEP-0398, see `feature::avatar`): the shell takes it out of a card
//! being set and hands it over as an [`avatar::Image`], the engine keeps the rest of the card and publishes the
//! image to PEP, and a card read back has its PHOTO filled in from the avatar ([`CardPhoto`]).

use crate::feature::avatar;
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
        /// The card, serialized by the shell, without the PHOTO when that is [`SetPhoto::Image`].
        xml: String,
        /// What the card said of the photo.
        photo: SetPhoto,
    },
}

/// The PHOTO of a card being set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SetPhoto {
    /// No PHOTO: the user has no avatar.
    None,
    /// An image (TYPE and BINVAL), taken out of the card: it becomes the avatar.
    Image(avatar::Image),
    /// A PHOTO the server cannot convert (EXTVAL, no TYPE, broken base64), left in the card as sent: the server
    /// no longer claims to know the avatar, and the card is answered as it was set.
    Kept,
}

/// What a get answers: the stored card, serialized, or `None` for a user who never set one (an empty card).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Answer {
    /// Whose card it is.
    pub of: BareJid,
    /// The card.
    pub xml: Option<String>,
    /// Its PHOTO.
    pub photo: CardPhoto,
}

/// The PHOTO of a card read back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CardPhoto {
    /// Whatever the stored card holds: the server knows nothing of the avatar (a card set before conversion was
    /// served, or with a PHOTO it could not convert).
    AsStored,
    /// None: the user has no avatar (any PHOTO in the stored card is left out).
    Without,
    /// The avatar, in place of any PHOTO in the stored card.
    Image {
        /// Its type.
        mime: avatar::MimeType,
        /// The avatar's item of the `urn:xmpp:avatar:data` node, as published (a `<data/>` holding base64).
        data: String,
    },
}

impl CardPhoto {
    /// About how many bytes it takes in memory.
    pub fn weight(&self) -> usize {
        match self {
            CardPhoto::Image { data, .. } => data.len(),
            _ => 0,
        }
    }
}

/// The document key of the vCard.
pub(crate) fn key() -> crate::store::DocumentKey {
    crate::store::DocumentKey::new("vcard").expect("a short, non-empty key")
}
