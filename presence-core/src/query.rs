//! Requests between engines: what a session asks of another user's data when that user is served by another
//! engine of the node (a shard) or another node of the cluster.
//!
//! A single engine answers a session's vCard read or PEP read from the user it holds. When the owner is served
//! elsewhere, the asking engine routes a [`Query`] to the owner's engine, exactly as it routes a message there
//! (`Output::Route`); that engine loads the owner if it must, decides with the owner's roster and policy (the
//! access model is the owner's to apply), and routes back a [`Reply`] or a `Stanza::Error` about the request,
//! which the asking engine delivers to the session. PEP notifications travel the same way as
//! [`Notification`]s, addressed to the user whose sessions hear them, so a contact on another engine hears of a
//! publish as one on the owner's engine does.
//!
//! Nothing is held while a query travels: the answer names the session by its full address and the request by
//! its id, so a session that ended meanwhile simply gets nothing, and a query that cannot be carried comes back
//! to its session as an error (see `runtime::driver::undeliverable`).

use crate::feature::pep::Event;
use crate::feature::{Answer, pep};
use crate::jid::{BareJid, FullJid};
use crate::stanza::RequestId;

/// A session's request about a user served by another engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    /// The asking session.
    pub from: FullJid,
    /// The user whose data it asks about.
    pub to: BareJid,
    /// What it asks.
    pub ask: Ask,
}

/// What a [`Query`] asks of the user it goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ask {
    /// A session's request, answered with a [`Reply`] or an error about it.
    Request {
        /// The session's request id, echoed in the answer.
        request: RequestId,
        /// What it reads or changes.
        read: Read,
    },
    /// The last item of each of these nodes that would notify the asking session by its interests
    /// (XEP-0163 §4.3.4), sent as notifications to that session; nothing is sent back otherwise, and nothing
    /// if the owner is not in memory, as a single engine reads last items only from users it holds.
    LastItems {
        /// The nodes the session named for the first time.
        nodes: Vec<String>,
    },
}

/// A request about another user's data that their engine answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Read {
    /// Their vCard (XEP-0054).
    VCard,
    /// Items of their node (XEP-0060 §6.5): those named by `ids`, or else the newest `max`.
    Items {
        /// The node.
        node: String,
        /// Which items; empty for "the newest".
        ids: Vec<String>,
        /// At most this many of the newest.
        max: Option<usize>,
    },
    /// Subscribes the asker to their node (XEP-0060 §6.1), or unsubscribes when `on` is false.
    Subscribe {
        /// The node.
        node: String,
        /// Subscribe or unsubscribe.
        on: bool,
    },
}

impl Read {
    /// What a session's PEP call asks of another user, if it names one: reads and (un)subscriptions.
    pub fn of_pep(call: &pep::Call) -> Option<(BareJid, Read)> {
        match call {
            pep::Call::Items {
                owner: Some(owner),
                node,
                ids,
                max,
            } => Some((
                owner.clone(),
                Read::Items {
                    node: node.clone(),
                    ids: ids.clone(),
                    max: *max,
                },
            )),
            pep::Call::Subscribe { owner, node } => Some((
                owner.clone(),
                Read::Subscribe {
                    node: node.clone(),
                    on: true,
                },
            )),
            pep::Call::Unsubscribe { owner, node } => Some((
                owner.clone(),
                Read::Subscribe {
                    node: node.clone(),
                    on: false,
                },
            )),
            _ => None,
        }
    }
}

/// The answer to a [`Query`], for the session that asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reply {
    /// The asking session.
    pub to: FullJid,
    /// Its request id.
    pub request: RequestId,
    /// The answer, as the owner's engine would have given it to a session of its own.
    pub answer: Answer,
}

/// A PEP notification for sessions of a user served by another engine than the node owner's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    /// Whose sessions hear it.
    pub audience: Audience,
    /// What changed.
    pub event: Event,
}

/// Which sessions of a user a [`Notification`] is for. The owner's engine has decided that the user may read
/// the node; which of their sessions hear it is the recipient engine's to decide, since it holds them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Audience {
    /// One session: the one that subscribed (the last item, XEP-0060 §6.1.7) or asked for last items.
    Session(FullJid),
    /// Every available session of a subscriber of the node.
    Subscriber(BareJid),
    /// The available sessions of a contact whose clients asked for the node (`+notify`, XEP-0163 §4.3.3).
    Interested(BareJid),
}

impl Audience {
    /// The user whose sessions hear it.
    pub fn user(&self) -> &BareJid {
        match self {
            Audience::Session(jid) => jid.bare(),
            Audience::Subscriber(user) | Audience::Interested(user) => user,
        }
    }
}
