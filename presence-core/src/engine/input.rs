//! What the shell hands the engine.

use crate::compose::{CalendarState, EndpointPresence, LineState, ManualStatus};
use crate::jid::{BareJid, Jid};
use crate::message::Message;
use crate::policy::{PolicyEntry, UserPolicy};
use crate::roster::{ItemDetails, SubscriptionAction};
use crate::session::SessionId;
use crate::stanza::{RequestId, Stanza};
use crate::store::UserRecord;
use crate::watch::{WatchId, WatchKind};

/// An event for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An authenticated client asks to bind a session (`resource: None` lets the engine pick one).
    OpenSession {
        /// The shell's handle for the new session.
        session: SessionId,
        /// The authenticated user.
        user: BareJid,
        /// The resource the client asked for.
        resource: Option<String>,
    },
    /// The connection of a session is gone.
    CloseSession {
        /// Which session.
        session: SessionId,
    },
    /// A session's presence broadcast (`to: None`) or directed presence (`to: Some`). `None` presence means
    /// unavailable.
    Presence {
        /// The sending session.
        session: SessionId,
        /// Directed presence target.
        to: Option<Jid>,
        /// Available presence, or `None` for unavailable.
        presence: Option<EndpointPresence>,
    },
    /// A subscription stanza from a session.
    Subscription {
        /// The sending session.
        session: SessionId,
        /// The contact.
        to: BareJid,
        /// Which one.
        action: SubscriptionAction,
    },
    /// A message from a session.
    Message {
        /// The sending session.
        session: SessionId,
        /// The recipient as addressed.
        to: Jid,
        /// The message.
        message: Message,
    },
    /// A roster get (RFC 6121 §2.1.3).
    RosterGet {
        /// The requesting session.
        session: SessionId,
        /// The request id.
        request: RequestId,
    },
    /// A roster set adding or editing an item (RFC 6121 §2.1.5).
    RosterSet {
        /// The requesting session.
        session: SessionId,
        /// The request id.
        request: RequestId,
        /// The contact.
        jid: BareJid,
        /// Name and groups.
        details: ItemDetails,
    },
    /// A roster set removing an item (RFC 6121 §2.5).
    RosterRemove {
        /// The requesting session.
        session: SessionId,
        /// The request id.
        request: RequestId,
        /// The contact.
        jid: BareJid,
    },
    /// A stanza from another domain or node for a local address (presence, probe, subscription or message).
    FromRemote(Stanza),
    /// The answer to `Output::Load`: the user's record, or `None` when there is no such account.
    Loaded {
        /// Which user.
        user: BareJid,
        /// The record.
        record: Option<UserRecord>,
    },
    /// The other answer to `Output::Load`: the store could not be read, so whether the user exists is unknown.
    ///
    /// The engine fails closed: the work that waited for the load fails, in order, with temporary errors
    /// (a bind with [`BindError::StoreUnavailable`](crate::engine::BindError::StoreUnavailable), a message or
    /// subscription stanza with an `internal-server-error` to its sender, a watch with
    /// [`WatchEnd::StoreUnavailable`](crate::watch::WatchEnd::StoreUnavailable), a bulk add with every contact
    /// refused; a reciprocal add or a policy change is dropped). The user is never taken for a user without an
    /// account, nothing is stored for them, and the engine keeps running: the next work for the user asks for a
    /// fresh `Output::Load`.
    LoadFailed {
        /// Which user.
        user: BareJid,
    },
    /// An administrator or the user sets the privacy policy.
    SetPolicy {
        /// Whose.
        user: BareJid,
        /// The new policy.
        policy: UserPolicy,
    },
    /// A session asks for its user's block list (XEP-0191 §3.2); answered with `Stanza::BlockList`.
    BlockListGet {
        /// The requesting session.
        session: SessionId,
        /// The request id.
        request: RequestId,
    },
    /// A session adds entries to its user's block list (XEP-0191 §3.3). Only the block list changes: the allow
    /// list, which can still override a less specific block entry, and every other setting stay as they are.
    Block {
        /// The requesting session.
        session: SessionId,
        /// The request id.
        request: RequestId,
        /// What to block; empty is a `bad-request`.
        items: Vec<PolicyEntry>,
    },
    /// A session removes entries from its user's block list (XEP-0191 §3.4).
    Unblock {
        /// The requesting session.
        session: SessionId,
        /// The request id.
        request: RequestId,
        /// What to unblock; empty unblocks everything.
        items: Vec<PolicyEntry>,
    },
    /// A session asks for its user's presence settings; answered with `Stanza::PresenceSettings`.
    PresenceSettingsGet {
        /// The requesting session.
        session: SessionId,
        /// The request id.
        request: RequestId,
    },
    /// A session changes some of its user's presence settings; answered with `Stanza::Done`. Only the switches
    /// given change (the allow and block lists and the rest of the policy stay as they are); the change is stored,
    /// the presence recomposed, and watchers whose view flips are told, as for `SetPolicy`.
    PresenceSettingsSet {
        /// The requesting session.
        session: SessionId,
        /// The request id.
        request: RequestId,
        /// Show "do not disturb" instead of "on the phone" during a call, if given.
        dnd_on_phone: Option<bool>,
        /// Show "do not disturb" instead of "in a meeting" during a meeting, if given.
        dnd_in_meeting: Option<bool>,
        /// Let watchers see the user's presence at all, if given (off: everyone sees "unavailable").
        share_availability: Option<bool>,
    },
    /// Sets or clears the user's one manual status.
    SetManualStatus {
        /// Whose.
        user: BareJid,
        /// The status, or `None` to clear it.
        status: Option<ManualStatus>,
    },
    /// A phone line the user appears on changed state.
    PhoneLine {
        /// Whose.
        user: BareJid,
        /// The line identifier.
        line: String,
        /// The new state.
        state: LineState,
    },
    /// The user's calendar state changed.
    Calendar {
        /// Whose.
        user: BareJid,
        /// The new state.
        state: CalendarState,
    },
    /// Bulk add of contacts (an administrator's import): each added and subscribed to in order until the
    /// contact limit; the rest are refused (partial add, DESIGN §3).
    AddContacts {
        /// Whose roster.
        user: BareJid,
        /// The contacts in order.
        contacts: Vec<(BareJid, ItemDetails)>,
    },
    /// Opens a watch (a SIP SUBSCRIBE dialog): `watcher` wants `target`'s composed presence or watcher list.
    /// Answered with `Output::Watch`; an id already in use replaces that watch.
    Watch {
        /// The shell's handle for the watch.
        watch: WatchId,
        /// Who watches.
        watcher: BareJid,
        /// Whose presence or watcher list.
        target: BareJid,
        /// Which of the two.
        kind: WatchKind,
    },
    /// Ends a watch (the dialog is gone). Nothing is emitted for it.
    Unwatch {
        /// Which watch.
        watch: WatchId,
    },
    /// The cluster placed these users here (`here: true`) or on another node (`here: false`). Takes effect at
    /// once. A user who leaves has its sessions closed (`CloseReason::Moved`), the watches on it terminated
    /// (`WatchEnd::Moved`) and the work that waited for its load handed to the router. Ignored by an engine
    /// that serves every user (see `Engine::serving_only`).
    Rehome {
        /// The users.
        users: Vec<BareJid>,
        /// Whether they are now served here.
        here: bool,
    },
}
