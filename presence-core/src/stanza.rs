//! Protocol-neutral stanzas: what the engine delivers to sessions and routes to other domains. The shells render
//! them as XMPP stanzas or SIP requests.

use crate::compose::{PresenceState, Show};
use crate::feature::{Answer, Push};
use crate::jid::{BareJid, Jid};
use crate::message::Message;
use crate::roster::SubscriptionAction;
use crate::time::Timestamp;

/// The shell's identifier for a request (an IQ id), echoed in the answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(pub String);

/// What a watcher is told about one available session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PresenceView {
    /// The `<show/>` to render.
    pub show: Show,
    /// The status text.
    pub status: Option<String>,
    /// The session's priority.
    pub priority: i8,
    /// The user's composed state (for PIDF and basic-presence peers).
    pub composed: PresenceState,
    /// The session's presence extensions (entity capabilities, avatar hash …), passed through.
    pub extensions: crate::compose::PresenceExtensions,
    /// The avatar hash to announce (XEP-0153): the account's avatar where the server knows it, else what the
    /// session said.
    pub avatar: Option<crate::feature::avatar::PhotoUpdate>,
}

/// The kinds of presence stanza that carry availability.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PresenceKind {
    /// Available, with what to show. Shared: one presence change is delivered to every watching session, and
    /// each delivery holding its own copy cost an allocation (the status) per recipient (issue 17).
    Available(std::sync::Arc<PresenceView>),
    /// Gone (or blocked: polite blocking looks the same).
    Unavailable,
    /// A request for the current presence (RFC 6121 §4.3).
    Probe,
}

/// One presence for several users another engine serves: a presence change's watchers that are served
/// elsewhere, carried there as one rather than as a stanza per watcher (issue 17: routed one by one, a change
/// for a hundred watchers on another shard was a hundred queue entries, each moved, woken and taken apart).
/// The receiving engine takes it as the presence stanza of `from` to each of `to` in turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// Whose presence.
    pub from: Jid,
    /// What it says (never a probe: a probe asks one contact).
    pub kind: PresenceKind,
    /// The recipients, each addressed by bare JID (every available session of each).
    pub to: Vec<BareJid>,
}

impl Broadcast {
    /// The presence stanzas it stands for, one per recipient, in order.
    pub fn into_stanzas(self) -> impl Iterator<Item = Stanza> {
        let Broadcast { from, kind, to } = self;
        to.into_iter().map(move |to| Stanza::Presence {
            from: from.clone(),
            to: Jid::Bare(to),
            kind: kind.clone(),
        })
    }
}

/// Why a stanza could not be handled (the RFC 6120 §8.3.3 conditions the engine uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCondition {
    /// The request is malformed.
    BadRequest,
    /// Something with that name exists already.
    Conflict,
    /// The requester may not do this (another user's private data, for example).
    Forbidden,
    /// The requester has not given the credentials it takes (a room's password).
    NotAuthorized,
    /// The requester must be registered first (a members-only room).
    RegistrationRequired,
    /// The server could not complete the request because its store failed; a `wait`-type error: try again.
    InternalServerError,
    /// The addressed item does not exist.
    ItemNotFound,
    /// The action is not allowed (for example a roster at its size limit, RFC 6121 §2.3.3).
    NotAllowed,
    /// The request does not meet the server's criteria.
    NotAcceptable,
    /// The sender went over a policy limit.
    PolicyViolation,
    /// A condition the request set does not hold (XEP-0060 §7.1.5: a node exists with other options).
    PreconditionNotMet,
    /// The recipient cannot take it right now.
    RecipientUnavailable,
    /// The recipient's domain cannot be reached.
    RemoteServerNotFound,
    /// The recipient's domain was found but could not be reached in time (a federated peer that did not answer).
    RemoteServerTimeout,
    /// A resource limit was reached.
    ResourceConstraint,
    /// Nobody can take it (also what a blocked sender is told).
    ServiceUnavailable,
    /// The addressed entity does not offer this (a room that does not archive, asked for its archive).
    FeatureNotImplemented,
}

/// What an error answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorAbout {
    /// A request of the session.
    Request(RequestId),
    /// A message the sender sent to `to`.
    Message {
        /// The message's id.
        id: Option<String>,
        /// Where the message was sent (the error comes from there).
        to: Jid,
    },
    /// A presence stanza the session sent to `to`.
    Presence {
        /// Where it was sent.
        to: Jid,
    },
    /// An IQ request the session sent to another entity, `to` (the error comes from there, with the request's id).
    Iq {
        /// The request's id.
        id: String,
        /// Where it was sent.
        to: Jid,
    },
}

/// The type of a routed IQ (RFC 6120 §8.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IqKind {
    /// A request for information.
    Get,
    /// A request to change something.
    Set,
    /// A successful answer.
    Result,
    /// A failed answer.
    Error,
}

impl IqKind {
    /// Whether this is a request, which gets an error back when it cannot be delivered (answers never do).
    pub fn is_request(self) -> bool {
        matches!(self, IqKind::Get | IqKind::Set)
    }
}

/// An IQ the server only routes (RFC 6120 §8.5.3.1): a request to another client's full address, or the answer to
/// one. Its payload is opaque, as a message's extensions are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutedIq {
    /// The recipient, as addressed.
    pub to: Jid,
    /// The id, which pairs the answer with the request.
    pub id: String,
    /// Request or answer.
    pub kind: IqKind,
    /// The child elements, serialized by the shell.
    pub payload: Vec<String>,
}

/// An error answer to something a session or peer sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StanzaError {
    /// Who receives the error (the sender of what failed).
    pub to: Jid,
    /// What it answers.
    pub about: ErrorAbout,
    /// The condition.
    pub condition: ErrorCondition,
    /// Human-readable text.
    pub text: Option<String>,
}

/// Something the engine delivers to a session or hands to the router.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Stanza {
    /// Presence of `from` for `to`.
    Presence {
        /// Whose presence (a full JID for one session, bare for the user).
        from: Jid,
        /// The recipient.
        to: Jid,
        /// What it says.
        kind: PresenceKind,
    },
    /// A subscription request or answer.
    Subscription {
        /// The sender.
        from: BareJid,
        /// The recipient.
        to: BareJid,
        /// Which one.
        action: SubscriptionAction,
    },
    /// An instant message.
    Message {
        /// The sender.
        from: Jid,
        /// The recipient as addressed.
        to: Jid,
        /// The message.
        message: Message,
        /// Set when the message was held offline: the time it first arrived (XEP-0203).
        delayed: Option<Timestamp>,
    },
    /// The successful answer to a session's `Input::Request`.
    Answer {
        /// The request.
        request: RequestId,
        /// What it returns.
        answer: Answer,
    },
    /// A change pushed to the sessions of a user that asked for it.
    Push(Push),
    /// An error answer.
    Error(StanzaError),
    /// A push notification for an app server (XEP-0357), routed to the app server's domain.
    AppPush(crate::feature::app_push::Notification),
    /// Room traffic (XEP-0045) for an occupant's or requester's session: its own variant, so that no shell takes
    /// it for a one-to-one message (a SIP shell ignores it).
    /// Boxed: an occupant presence is far larger than the other stanzas, and every queue holds stanzas.
    Room(Box<crate::rooms::RoomStanza>),
    /// A session's request about a user served by another engine or node (`crate::query`), routed there.
    Query(Box<crate::query::Query>),
    /// The answer to a [`Stanza::Query`], routed back to the asking session's engine.
    Reply(Box<crate::query::Reply>),
    /// A PEP notification for sessions of a user served by another engine or node than the node owner's.
    Notification(Box<crate::query::Notification>),
    /// An IQ between two entities, only routed.
    Iq {
        /// The sender: a client's full address, or a component's or server's domain.
        from: Jid,
        /// The IQ.
        iq: RoutedIq,
    },
}

impl Stanza {
    /// The error that tells this stanza's sender it could not be carried to its recipient, for the stanzas whose
    /// sender waits for an answer: a message (not an error message, and from a session's full address), an IQ
    /// request, or a session's query about another user. Other stanzas acknowledge nothing: `None`.
    pub fn undelivered(&self, condition: ErrorCondition, text: &str) -> Option<StanzaError> {
        let (to, about) = match self {
            Stanza::Message {
                from: from @ Jid::Full(_),
                to,
                message,
                ..
            } if message.kind != crate::message::MessageKind::Error => (
                from.clone(),
                ErrorAbout::Message {
                    id: message.id.clone(),
                    to: to.clone(),
                },
            ),
            Stanza::Iq { from, iq } if iq.kind.is_request() => (
                from.clone(),
                ErrorAbout::Iq {
                    id: iq.id.clone(),
                    to: iq.to.clone(),
                },
            ),
            Stanza::Query(query) => match &query.ask {
                crate::query::Ask::Request { request, .. } => (
                    Jid::Full(query.from.clone()),
                    ErrorAbout::Request(request.clone()),
                ),
                crate::query::Ask::LastItems { .. } => return None,
            },
            _ => return None,
        };
        Some(StanzaError {
            to,
            about,
            condition,
            text: Some(text.into()),
        })
    }
}
