//! A protocol-neutral instant message.

use crate::time::Timestamp;

/// The type of a message (RFC 6121 §5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MessageKind {
    /// One-to-one chat.
    Chat,
    /// A standalone message (the default).
    #[default]
    Normal,
    /// An alert; never stored offline.
    Headline,
    /// A group chat message; never routed to a bare user address.
    Groupchat,
    /// An error reply; never answered with another error.
    Error,
}

impl MessageKind {
    /// Whether messages of this kind are kept offline when nobody can take them (XEP-0160 §3: chat and normal).
    pub fn storable(self) -> bool {
        matches!(self, MessageKind::Chat | MessageKind::Normal)
    }
}

/// An instant message as the engine routes, forks and stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Message {
    /// The sender's stanza id, echoed in errors.
    pub id: Option<String>,
    /// The type.
    pub kind: MessageKind,
    /// The text.
    pub body: Option<String>,
    /// The subject line.
    pub subject: Option<String>,
    /// The conversation thread id.
    pub thread: Option<String>,
    /// When the message reached the server (stamped by the shell); shown as the delay stamp when delivered late.
    pub stamp: Timestamp,
    /// Protocol extension payloads, opaque to the engine (for XMPP, serialized child elements), passed through and
    /// stored with the message.
    pub extensions: Vec<String>,
    /// What the shell read from the extensions that the engine acts on.
    pub marks: Marks,
    /// The id the recipient's archive gave the message (its XEP-0359 stanza-id), once archived.
    pub archive_id: Option<std::num::NonZeroU64>,
}

/// The few facts about a message's extensions that change what the engine does with it; the shell reads them
/// (for XMPP from XEP-0334 hints, XEP-0280's `<private/>`, and chat states, receipts and markers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Marks {
    /// No carbon copies (`<private/>`, `<no-copy/>`).
    pub no_copy: bool,
    /// Not archived (`<no-store/>`, `<no-permanent-store/>`).
    pub no_store: bool,
    /// Archived even without a body (`<store/>`).
    pub store: bool,
    /// Carries a conversation signal without text: a chat state (XEP-0085), a receipt (XEP-0184) or a chat marker
    /// (XEP-0333).
    pub signal: bool,
}

impl Marks {
    /// As one byte, for stores and wires: bit 0 no-copy, 1 no-store, 2 store, 3 signal.
    pub fn bits(self) -> u8 {
        u8::from(self.no_copy)
            | u8::from(self.no_store) << 1
            | u8::from(self.store) << 2
            | u8::from(self.signal) << 3
    }

    /// What [`Marks::bits`] wrote; unknown bits are ignored (a newer writer's marks this build does not act on).
    pub fn from_bits(b: u8) -> Self {
        Marks {
            no_copy: b & 1 != 0,
            no_store: b & 2 != 0,
            store: b & 4 != 0,
            signal: b & 8 != 0,
        }
    }
}
