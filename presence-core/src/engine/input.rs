//! What the shell hands the engine.

use crate::compose::{CalendarState, EndpointPresence, LineState, ManualStatus};
use crate::feature::Call;
use crate::jid::{BareJid, Jid};
use crate::message::Message;
use crate::policy::UserPolicy;
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
    /// Whether the shell can hand the session messages while it is unavailable, which makes it take messages to
    /// the user's bare address whatever presence it announced. For a SIP endpoint with a registered contact:
    /// RFC 3428 routes a MESSAGE like any other request, by the registrar's bindings, so a phone that "appears
    /// offline" (publishes `closed` and stays registered) still gets it. Watchers keep seeing the session's
    /// presence; messages held for the user go to the session when it becomes reachable. XMPP shells never send
    /// it: a bare-address message goes to available sessions with non-negative priority (RFC 6121 §8.5.2).
    Reachable {
        /// The session.
        session: SessionId,
        /// Whether it can take messages while unavailable.
        reachable: bool,
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
    /// An IQ a session sends to another entity's full address, or its answer to one (routed, never answered by
    /// the server itself).
    Iq {
        /// The sending session.
        session: SessionId,
        /// The IQ.
        iq: crate::stanza::RoutedIq,
    },
    /// A session's request to one of the account features (roster, blocking, settings …); answered with
    /// `Stanza::Answer` or a `Stanza::Error` about the request.
    Request {
        /// The requesting session.
        session: SessionId,
        /// The request id, echoed in the answer.
        request: RequestId,
        /// What it asks.
        call: Call,
    },
    /// The PEP nodes a session's client wants notifications of (XEP-0163 §4.3.3), each named without a
    /// protocol's marking (XMPP's `+notify` suffix is the shell's to strip); replaces what the session said
    /// before. Nodes new to the session get the last published item of every node of that name it may see
    /// (XEP-0163 §4.3.4, see `engine/interests.rs`).
    Interests {
        /// The session.
        session: SessionId,
        /// The node names.
        notify: Vec<String>,
    },
    /// Something a session sends to the room service's domain: a room, an occupant, or the service itself (a
    /// `room` without local part). Answered with `Stanza::Room` deliveries; refused with a room error when the
    /// engine has no room service.
    Room {
        /// The sending session.
        session: SessionId,
        /// The room (or the service) addressed; an occupant's nickname travels in the request.
        room: BareJid,
        /// The wall-clock time it arrived (history stamps, history requests by time).
        stamp: crate::time::Timestamp,
        /// What it asks.
        request: crate::rooms::RoomRequest,
    },
    /// A stanza from another domain or node for a local address (presence, probe, subscription or message).
    FromRemote(Stanza),
    /// A presence from another node or shard for several local users (`Output::RouteBroadcast` there), taken
    /// as `FromRemote` of each of its stanzas.
    FromRemoteBroadcast(crate::stanza::Broadcast),
    /// Room traffic another node of the cluster sent here (see `engine/room_proxies.rs`): a request of one of
    /// its sessions to a room served here, or the end of such a session.
    FromRemoteRoom(Box<super::RoomTraffic>),
    /// The cluster says which nodes there are (room homes are picked among them) and whose rooms this engine
    /// serves now (its own, a failed peer's too during a takeover, none while it is failed over). Takes effect
    /// at once: rooms no longer served go (occupants hear 332), and a newly served home has its persistent
    /// rooms read again (`Output::LoadRooms`). Until it first arrives every room is served here.
    RoomPlacement {
        /// Every node's name.
        nodes: Vec<String>,
        /// The nodes whose rooms this engine serves.
        served: Vec<String>,
    },
    /// The answer to `Output::LoadRooms`: the persistent rooms the store holds. Room work that came since the
    /// load was asked for waited for it, and runs now, in order.
    RoomsLoaded(Vec<crate::rooms::RoomRecord>),
    /// The other answer to `Output::LoadRooms`: the store could not be read. The room work that waited for the
    /// read is answered with temporary errors; the next room work asks again (it never runs against rooms that
    /// were not read: a join would create a fresh room over a stored one).
    RoomsLoadFailed,
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
    /// An administrator's edits of a user's roster (a directory sync renaming or removing a contact), applied in
    /// order as the user's own changes would be: written, and pushed to the user's interested sessions. Edits of
    /// items the user does not have are skipped; nothing is answered.
    EditContacts {
        /// Whose roster.
        user: BareJid,
        /// The edits in order.
        edits: Vec<crate::directory::ContactEdit>,
    },
    /// `watcher` asks `target` for a presence subscription, as the watcher's own client would, unless it has
    /// one or asked already. The engine that opens a watch asks on the watcher's behalf when it serves both
    /// users; when they live on different engine shards, the runtime's router sends this to the watcher's shard,
    /// and the `Watch` reaches the target's only after what this emitted has been handled there.
    SubscribeFor {
        /// Who asks (served by this engine).
        watcher: BareJid,
        /// Whose presence.
        target: BareJid,
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
    /// The user's account was removed from the store: its sessions end (`CloseReason::AccountRemoved`), the
    /// watches on it end (`WatchEnd::NoResource`) and the engine forgets it, so nothing it still held is written
    /// back for an account that no longer exists.
    AccountRemoved {
        /// Whose.
        user: BareJid,
    },
    /// A session's connection dropped without closing the stream and the session waits to be resumed
    /// (XEP-0198): it stays bound and available, but what it is given now wakes its device through the push
    /// registrations its resource made (XEP-0357). `unacked` are the messages its client had not confirmed.
    Detached {
        /// Which session.
        session: SessionId,
        /// The messages given to it and not confirmed, oldest first.
        unacked: Vec<super::Undelivered>,
    },
    /// A detached session was resumed on a new connection.
    Reattached {
        /// Which session.
        session: SessionId,
    },
    /// Messages a session of `user` was given but its client never confirmed (XEP-0198 stanzas still unacked
    /// when the session ended): delivered to the user's other available sessions, or held offline under the
    /// usual caps, or refused to their senders; never dropped silently (see `engine/resumption.rs`).
    HoldUndelivered {
        /// Whose session it was.
        user: BareJid,
        /// The messages, oldest first.
        messages: Vec<super::Undelivered>,
    },
}
