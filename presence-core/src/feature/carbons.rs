//! Message carbons (XEP-0280): a session that enables them gets a copy of every eligible message its user's
//! other sessions send, and of every eligible message to its user that went to another session.

use crate::jid::Jid;
use crate::message::{Message, MessageKind};

/// What a session asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// Copies from now on.
    Enable,
    /// No more copies.
    Disable,
}

/// Which way the copied message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Another session of the user sent it.
    Sent,
    /// It was sent to the user and went to another session.
    Received,
}

/// A copy of a message, pushed to a session that enabled carbons.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Copy {
    /// Which way the message went.
    pub direction: Direction,
    /// Its sender.
    pub from: Jid,
    /// Its recipient, as addressed.
    pub to: Jid,
    /// The message.
    pub message: Message,
}

/// Whether a message is copied (XEP-0280 §6, as the server profile asks): chat and normal messages that carry
/// text or a conversation signal (chat state, receipt, marker), unless the sender marked them private.
pub fn eligible(message: &Message) -> bool {
    !message.marks.no_copy
        && matches!(message.kind, MessageKind::Chat | MessageKind::Normal)
        && (message.body.is_some() || message.marks.signal)
}
