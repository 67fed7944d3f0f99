//! What the engine asks the shell to do.

use crate::jid::{BareJid, FullJid};
use crate::session::SessionId;
use crate::stanza::{Broadcast, Stanza};
use crate::store::StoreWrite;
use crate::watch::{WatchId, WatchState};

/// Why a session could not be bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// There is no account for the user.
    #[error("no account exists for {0}")]
    NoSuchUser(BareJid),
    /// The user holds the maximum number of sessions (RFC 6120 §7.6.2.1 `resource-constraint`).
    #[error("{user} already has {limit} sessions, the maximum")]
    TooManySessions {
        /// The user.
        user: BareJid,
        /// The limit.
        limit: usize,
    },
    /// The requested resource is not a valid resourcepart (RFC 6120 §7.7.2.1 `bad-request`).
    #[error("{0}")]
    BadResource(crate::jid::JidError),
    /// The session id is already bound.
    #[error("session {0:?} is already bound")]
    DuplicateSession(SessionId),
    /// Another node of the cluster serves the user; the client should sign in there.
    #[error("{0} is served by another node")]
    ServedElsewhere(BareJid),
    /// The user's data could not be loaded (`Input::LoadFailed`); the bind may succeed if tried again.
    #[error("the data of {0} could not be loaded; try again later")]
    StoreUnavailable(BareJid),
}

/// Why the engine ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// A new session bound the same resource (RFC 6120 §7.7.2.2: the old one gets a `conflict` stream error).
    Conflict,
    /// The user is now served by another node of the cluster (failover, fallback, rebalancing): the client
    /// signs in again and is sent there.
    Moved,
    /// The user's account was removed (by an administrator, or in-band by another of its sessions).
    AccountRemoved,
}

/// A contact a bulk add refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddRefusal {
    /// The roster is at its contact limit.
    #[error("{0} not added: the contact limit is reached")]
    OverLimit(BareJid),
    /// A user cannot add themself.
    #[error("{0} not added: a user cannot add themself")]
    SelfAdd(BareJid),
    /// The roster's owner is served by another node of the cluster; the add belongs there.
    #[error("{0} not added: the user is served by another node")]
    ServedElsewhere(BareJid),
    /// The roster's owner could not be loaded (`Input::LoadFailed`); nothing was added, the add may be retried.
    #[error("{0} not added: the roster could not be loaded; try again later")]
    StoreUnavailable(BareJid),
}

/// An effect for the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a stanza to a local session.
    Deliver {
        /// The session.
        session: SessionId,
        /// The stanza.
        stanza: Stanza,
    },
    /// Hand a stanza to the router: its recipient is not hosted here.
    Route(Stanza),
    /// Hand a presence for several users not hosted here to the router (a presence change's watchers served
    /// elsewhere, all at once); a router that cannot carry it as one sends [`Broadcast::into_stanzas`] as
    /// `Route` would.
    RouteBroadcast(Broadcast),
    /// A user served here has an available session now (`available`: their first) or none (their last went).
    /// Said only by an engine that serves some of its domains' users, for the router: presence broadcast to a
    /// user without an available session reaches no one, so it need not be carried to this engine.
    Available {
        /// The user.
        user: BareJid,
        /// Whether they have an available session.
        available: bool,
    },
    /// Carry room traffic to the node of the cluster that serves its room (see `engine/room_proxies.rs`); when
    /// that cannot be done, its sender is answered with [`super::RoomTraffic::bounce`].
    ToRoom(super::RoomTraffic),
    /// Read the persistent rooms from the store and answer with `Input::RoomsLoaded` (this engine started
    /// serving another node's rooms, or its own again).
    LoadRooms,
    /// A session was bound to this address.
    Bound {
        /// The session.
        session: SessionId,
        /// Its full address.
        jid: FullJid,
    },
    /// A session could not be bound.
    BindRefused {
        /// The session.
        session: SessionId,
        /// Why.
        reason: BindError,
    },
    /// End a session (the engine has already forgotten it).
    Close {
        /// The session.
        session: SessionId,
        /// Why.
        reason: CloseReason,
    },
    /// Load a user's record and answer with `Input::Loaded`, or with `Input::LoadFailed` when the store cannot
    /// be read (never with `Loaded { record: None }`, which says the account does not exist).
    Load(BareJid),
    /// Make a change durable, in order with the other writes and before answering later loads.
    Store(StoreWrite),
    /// Write a message's compliance record (only when [`EngineConfig::compliance`](crate::EngineConfig) is on).
    /// It comes before the outputs that deliver, route or hold that message, in the same commit group as the
    /// message's writes, so a runtime that must archive before delivering can hold them back when the write fails.
    Comply(crate::compliance::Record),
    /// The outcome of an `Input::AddContacts`.
    ContactsAdded {
        /// Whose roster.
        user: BareJid,
        /// Added in order.
        added: Vec<BareJid>,
        /// Refused, with the reason.
        refused: Vec<AddRefusal>,
    },
    /// A watch's state, once when the watch has been looked at and again whenever the state or its view changes.
    /// The engine forgets a watch once it reports it terminated.
    Watch {
        /// Which watch.
        watch: WatchId,
        /// Its state now.
        state: WatchState,
    },
}
