//! The engine: one state object fed with [`Input`]s and drained of [`Output`]s (see the crate docs for the loop).
//!
//! Work that needs a user the engine has not loaded waits in that user's FIFO queue behind an `Output::Load`;
//! everything else runs at once. Work for one user never overtakes earlier work for the same user, so the order
//! clients see is the order the shell handed things in. When the load fails (`Input::LoadFailed`) that queue
//! fails with it, in order and with temporary errors, and the user is left unloaded for a later retry.

mod app_push;
mod archive;
mod avatar;
mod blocking;
mod carbons;
mod compliance;
mod deferred;
mod documents;
mod feature;
mod hosting;
mod input;
mod interests;
mod iq;
mod messaging;
mod output;
mod pep;
mod presence;
mod queries;
mod resumption;
mod room_proxies;
mod rooms;
mod roster_ops;
mod sessions;
mod settings;
mod subscriptions;
mod user;
mod watches;

pub use input::Input;
pub use interests::MAX_INTERESTS;
pub use output::{AddRefusal, BindError, CloseReason, Output};
pub use resumption::Undelivered;
pub use room_proxies::{PROXY_BIT, RoomTraffic};

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use hashbrown::HashMap;

use crate::compose::Overlays;
use crate::config::EngineConfig;
use crate::jid::{BareJid, Jid};
use crate::roster::SubscriptionAction;
use crate::session::SessionId;
use crate::stanza::Stanza;
use crate::watch::WatchId;
use deferred::Deferred;
use hosting::Hosting;
use user::User;
use watches::{Scope, Watch};

/// A unit of work, from the shell or generated inside the engine for a local recipient.
#[derive(Debug, Clone)]
enum Work {
    /// An input from the shell.
    Input(Input),
    /// A stanza for a local user (from a remote peer or from another local user).
    Inbound(Stanza),
    /// The second half of a reciprocal add (DESIGN §3): `from` subscribes to `to`, approved without asking `to`.
    Reciprocal { from: BareJid, to: BareJid },
    /// The first look at a watch, once `target` is loaded; `serial` names the registration it was queued for.
    Watch {
        watch: WatchId,
        serial: u64,
        target: BareJid,
    },
    /// The subscription request a watch sends for its `watcher`, once the watcher is loaded.
    WatchSubscribe {
        watch: WatchId,
        serial: u64,
        watcher: BareJid,
    },
}

/// A timer the engine armed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// A conversation of `user` with `peer` may have gone idle.
    Sticky { user: BareJid, peer: BareJid },
}

/// How many outputs' room the queue keeps once drained (see `Engine::poll_output`).
const OUTPUTS_KEPT: usize = 1024;

/// The sans-IO presence and messaging engine.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    /// Boxed: a user record is 344 bytes and the map keeps up to half its slots empty after it grows, so inline
    /// records cost a signed-in user about 590 bytes at 10,000 users against 376 boxed (benches/IDLE.md, round 5).
    users: HashMap<BareJid, Box<User>>,
    sessions: HashMap<SessionId, BareJid>,
    overlays: HashMap<BareJid, Overlays>,
    /// Work waiting for a user's load; a user with a queue is a user being loaded.
    deferred: Deferred,
    outputs: VecDeque<Output>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    offline_total: usize,
    now: Option<Instant>,
    watches: HashMap<WatchId, Watch>,
    /// The live watches on each target, to find them from a change of the target.
    watches_on: HashMap<BareJid, Vec<WatchId>>,
    watch_serial: u64,
    /// Targets whose last watch ended during the current input, to evict once it is done.
    released: Vec<BareJid>,
    /// Which users of the local domains this engine serves.
    hosting: Hosting,
    /// The group chat service, when configured.
    rooms: Option<crate::rooms::Rooms>,
    /// The latest wall-clock time a room request carried: rooms' notion of now for work that carries none (a
    /// session ending).
    room_stamp: crate::time::Timestamp,
    /// Rooms across the cluster: placement, proxy sessions, remote rooms entered.
    room_net: room_proxies::RoomNet,
}

impl Engine {
    /// A new engine with no users loaded and no messages held.
    pub fn new(config: EngineConfig) -> Self {
        let rooms = config
            .rooms
            .clone()
            .map(|c| crate::rooms::Rooms::new(c, Vec::new()));
        Engine {
            config,
            users: HashMap::new(),
            sessions: HashMap::new(),
            overlays: HashMap::new(),
            deferred: Deferred::default(),
            outputs: VecDeque::new(),
            timers: BinaryHeap::new(),
            offline_total: 0,
            now: None,
            watches: HashMap::new(),
            watches_on: HashMap::new(),
            watch_serial: 0,
            released: Vec::new(),
            hosting: Hosting::default(),
            rooms,
            room_stamp: crate::time::Timestamp::default(),
            room_net: room_proxies::RoomNet::default(),
        }
    }

    /// Tells the engine how many offline messages the store already holds, so the per-node cap counts them.
    pub fn with_offline_total(mut self, held: u64) -> Self {
        self.offline_total = usize::try_from(held).unwrap_or(usize::MAX);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Handles one event at time `now`. Drain [`Engine::poll_output`] afterwards.
    pub fn handle(&mut self, now: Instant, input: Input) {
        self.now = Some(now);
        match input {
            Input::Loaded { user, record } => self.loaded(user, record),
            Input::LoadFailed { user } => self.load_failed(user),
            Input::Watch {
                watch,
                watcher,
                target,
                kind,
            } => self.open_watch(watch, watcher, target, kind),
            // Placement is not work for a user: it takes effect now, ahead of anything queued behind a load.
            Input::Rehome { users, here } => self.rehome(users, here),
            // So is room placement, and the rooms read for it.
            Input::RoomPlacement { nodes, served } => self.room_placement(nodes, served),
            Input::RoomsLoaded(stored) => self.rooms_loaded(stored),
            Input::RoomsLoadFailed => self.rooms_load_failed(),
            // Room work waits while the persistent rooms are read for a change of placement.
            input @ (Input::Room { .. } | Input::FromRemoteRoom(_)) if self.room_net.waits() => {
                self.room_wait(input)
            }
            other => self.submit(Work::Input(other)),
        }
        // Watches can end deep inside other work on their target; the target may only go once that work is done.
        while let Some(user) = self.released.pop() {
            self.evict_if_idle(&user);
        }
    }

    /// The next effect to carry out, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        let next = self.outputs.pop_front();
        if next.is_none() && self.outputs.capacity() > OUTPUTS_KEPT {
            // A burst (thousands of sign-ins broadcasting presence at once) grows the queue to megabytes that
            // would otherwise stay allocated for the engine's life; the next burst grows it again.
            self.outputs.shrink_to(OUTPUTS_KEPT);
        }
        next
    }

    /// When the engine next needs [`Engine::handle_timeout`], if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, timer))) = self.timers.pop() else {
                break;
            };
            match timer {
                Timer::Sticky { user, peer } => self.expire_sticky(&user, &peer, now),
            }
        }
    }

    /// How many messages are held offline on this node.
    pub fn offline_total(&self) -> usize {
        self.offline_total
    }

    /// The full addresses of a user's bound sessions (empty when the user is offline).
    pub fn sessions_of(&self, user: &BareJid) -> Vec<(SessionId, crate::jid::FullJid)> {
        self.users
            .get(user)
            .map(|u| u.sessions.iter().map(|s| (s.id, s.jid.clone())).collect())
            .unwrap_or_default()
    }

    /// The composed presence of a user (unavailable when offline).
    pub fn composed(&self, user: &BareJid) -> crate::compose::Composed {
        self.users
            .get(user)
            .map_or(crate::compose::Composed::UNAVAILABLE, |u| {
                u.composed.clone()
            })
    }

    /// A bound session's user and full address.
    fn session_address(&self, id: SessionId) -> Option<(BareJid, crate::jid::FullJid)> {
        let user = self.sessions.get(&id)?;
        let jid = self.users.get(user)?.session(id)?.jid.clone();
        Some((user.clone(), jid))
    }

    fn now(&self) -> Instant {
        self.now
            .expect("handle() sets the time before any work runs")
    }

    fn out(&mut self, o: Output) {
        self.outputs.push_back(o);
    }

    fn is_local(&self, jid: &BareJid) -> bool {
        self.config.is_local_domain(jid.domain())
    }

    /// The user a unit of work needs loaded before it can run, if any.
    fn needs(&self, work: &Work) -> Option<BareJid> {
        match work {
            Work::Input(Input::OpenSession { user, .. })
            | Work::Input(Input::SetPolicy { user, .. })
            | Work::Input(Input::AddContacts { user, .. })
            | Work::Input(Input::EditContacts { user, .. })
            | Work::Input(Input::SubscribeFor { watcher: user, .. }) => Some(user.clone()),
            Work::Input(Input::Request { call, .. }) => call.needs().cloned(),
            Work::Input(Input::FromRemote(s)) | Work::Inbound(s) => match s {
                // Presence for a user who is not loaded is for an offline user: nothing to deliver, no load.
                Stanza::Subscription { to, .. } => Some(to.clone()),
                Stanza::Message { to, .. } => Some(to.bare().clone()),
                // A request about a user reads them from the store if they are not in memory; last items
                // are read only from users in memory (see `crate::query::Ask::LastItems`).
                Stanza::Query(q) if matches!(q.ask, crate::query::Ask::Request { .. }) => {
                    Some(q.to.clone())
                }
                _ => None,
            },
            Work::Reciprocal { to, .. } => Some(to.clone()),
            Work::Watch { target, .. } => Some(target.clone()),
            Work::WatchSubscribe { watcher, .. } => Some(watcher.clone()),
            work => resumption::needs(work).cloned(),
        }
        .filter(|u| self.is_here(u))
    }

    fn submit(&mut self, work: Work) {
        if let Some(user) = self.needs(&work)
            && (!self.users.contains_key(&user) || self.deferred.is_waiting(&user))
        {
            // Behind the user's earlier work even when that is all that waits; the first work asks for the load.
            if self.deferred.push(user.clone(), work) {
                self.out(Output::Load(user));
            }
            return;
        }
        self.process(work);
    }

    fn loaded(&mut self, user: BareJid, record: Option<crate::store::UserRecord>) {
        // No queue: this load was not asked for, or was answered already.
        let Some(queue) = self.deferred.take(&user) else {
            return;
        };
        if let Some(rec) = record
            && !self.users.contains_key(&user)
        {
            self.users
                .insert(user.clone(), Box::new(User::from_record(rec)));
        }
        // The whole queue is taken before any of it runs: work it submits for this user is new work, handled
        // like any other (at once, now that the user is loaded). Other users' queues are not touched.
        for w in queue {
            self.process(w);
        }
        self.evict_if_idle(&user);
    }

    /// The store could not load `user`: the work that waited fails in order with temporary errors (see
    /// `Input::LoadFailed`). The user is not inserted, so nothing takes them for a user without an account, and
    /// with the queue gone the next work for them asks for a fresh load.
    fn load_failed(&mut self, user: BareJid) {
        let Some(queue) = self.deferred.take(&user) else {
            return;
        };
        for w in queue {
            self.fail(w);
        }
    }

    /// Answers work that cannot run because the user it waited for could not be loaded. Nothing here submits
    /// work, so failing one user's queue cannot reach another's.
    fn fail(&mut self, work: Work) {
        match work {
            Work::Input(Input::OpenSession { session, user, .. }) => {
                self.out(Output::BindRefused {
                    session,
                    reason: BindError::StoreUnavailable(user),
                })
            }
            Work::Input(Input::AddContacts { user, contacts }) => {
                let refused = contacts
                    .into_iter()
                    .map(|(contact, _)| AddRefusal::StoreUnavailable(contact))
                    .collect();
                self.out(Output::ContactsAdded {
                    user,
                    added: Vec::new(),
                    refused,
                });
            }
            Work::Input(Input::FromRemote(stanza)) | Work::Inbound(stanza) => match stanza {
                Stanza::Message {
                    from, to, message, ..
                } => self.fail_message(from, to, message),
                Stanza::Subscription { from, to, .. } => self.fail_subscription(&to, &from),
                Stanza::Query(query) => self.fail_query(*query),
                // Only messages, subscription stanzas and queries wait for their recipient (see `needs`).
                _ => {}
            },
            Work::Watch { watch, serial, .. } | Work::WatchSubscribe { watch, serial, .. } => {
                self.fail_watch(watch, serial, crate::watch::WatchEnd::StoreUnavailable)
            }
            // Nothing to answer: a policy change has no reply, and a reciprocal add has no requester to tell; its
            // user's request stays pending, as one to a contact that never answers does.
            // An edit that cannot be made now is made by the next sync, which finds the item still there.
            // A watcher that cannot be loaded asks nothing; the watch on the other shard is decided without it.
            Work::Input(Input::SetPolicy { .. })
            | Work::Input(Input::EditContacts { .. })
            | Work::Input(Input::SubscribeFor { .. })
            | Work::Reciprocal { .. } => {}
            // A request that needed another user (someone's vCard) is answered with a temporary error.
            Work::Input(Input::Request {
                session, request, ..
            }) => {
                if let Some(user) = self.sessions.get(&session).cloned() {
                    self.request_error(
                        session,
                        &user,
                        request,
                        crate::stanza::ErrorCondition::InternalServerError,
                        "the data needed could not be loaded; try again later",
                    );
                }
            }
            Work::Input(Input::HoldUndelivered { messages, .. }) => self.fail_undelivered(messages),
            // `needs` names no user for any other input, so none of them is ever queued.
            Work::Input(_) => {}
        }
    }

    /// Drops a user with no session from memory; everything about them is in the store. A watched user stays:
    /// its watches follow changes of its in-memory state.
    fn evict_if_idle(&mut self, user: &BareJid) {
        if self.users.get(user).is_some_and(|u| u.sessions.is_empty())
            && !self.deferred.is_waiting(user)
            && !self.watches_on.contains_key(user)
        {
            self.users.remove(user);
        }
    }

    fn process(&mut self, work: Work) {
        match work {
            Work::Input(input) => self.process_input(input),
            Work::Inbound(stanza) => self.inbound(stanza),
            Work::Reciprocal { from, to } => {
                self.inbound_subscription(&to, &from, SubscriptionAction::Subscribe, true)
            }
            Work::Watch { watch, serial, .. } => self.start_watch(watch, serial),
            Work::WatchSubscribe { watch, serial, .. } => self.watch_subscribe(watch, serial),
        }
    }

    fn process_input(&mut self, input: Input) {
        match input {
            Input::OpenSession {
                session,
                user,
                resource,
            } => self.open_session(session, user, resource),
            Input::CloseSession { session } => self.close_session(session),
            Input::Presence {
                session,
                to,
                presence,
            } => self.session_presence(session, to, presence),
            Input::Reachable { session, reachable } => self.set_reachable(session, reachable),
            Input::Subscription {
                session,
                to,
                action,
            } => {
                if let Some(user) = self.sessions.get(&session).cloned() {
                    self.outbound_subscription(&user, Some(session), &to, action);
                }
            }
            Input::Message {
                session,
                to,
                message,
            } => self.message_from_session(session, to, message),
            Input::Request {
                session,
                request,
                call,
            } => self.request(session, request, call),
            Input::FromRemote(stanza) => self.inbound(stanza),
            Input::FromRemoteBroadcast(b) => self.inbound_broadcast(b),
            Input::FromRemoteRoom(traffic) => self.remote_room(*traffic),
            Input::Iq { session, iq } => self.iq_from_session(session, iq),
            Input::Interests { session, notify } => self.set_interests(session, notify),
            Input::Room {
                session,
                room,
                stamp,
                request,
            } => self.room_request(session, room, stamp, request),
            Input::Loaded { .. }
            | Input::LoadFailed { .. }
            | Input::Watch { .. }
            | Input::Rehome { .. }
            | Input::RoomPlacement { .. }
            | Input::RoomsLoaded(_)
            | Input::RoomsLoadFailed => {
                unreachable!("handled before submission")
            }
            Input::Unwatch { watch } => self.forget_watch(watch),
            Input::SetPolicy { user, policy } => self.set_policy(&user, policy),
            Input::SetManualStatus { user, status } => {
                // A manual status only lives while the user is signed in somewhere (DESIGN §2).
                if self
                    .users
                    .get(&user)
                    .is_some_and(|u| !u.sessions.is_empty())
                {
                    self.overlays.entry(user.clone()).or_default().manual = status;
                    self.refresh_presence(&user);
                }
            }
            Input::PhoneLine { user, line, state } => {
                self.overlays
                    .entry(user.clone())
                    .or_default()
                    .set_line(&line, state);
                self.tidy_overlays(&user);
                self.refresh_presence(&user);
            }
            Input::Calendar { user, state } => {
                self.overlays.entry(user.clone()).or_default().calendar = state;
                self.tidy_overlays(&user);
                self.refresh_presence(&user);
            }
            Input::AddContacts { user, contacts } => self.add_contacts(&user, contacts),
            Input::EditContacts { user, edits } => self.edit_contacts(&user, edits),
            Input::SubscribeFor { watcher, target } => self.subscribe_for(&watcher, &target),
            Input::HoldUndelivered { user, messages } => self.hold_undelivered(user, messages),
            Input::Detached { session, unacked } => self.detached(session, unacked),
            Input::Reattached { session } => self.reattached(session),
            Input::AccountRemoved { user } => self.drop_user(&user, hosting::Dropped::Removed),
        }
    }

    fn tidy_overlays(&mut self, user: &BareJid) {
        if self.overlays.get(user).is_some_and(Overlays::is_empty) {
            self.overlays.remove(user);
        }
    }

    /// Dispatches a stanza for a local user.
    fn inbound(&mut self, stanza: Stanza) {
        match stanza {
            Stanza::Subscription { from, to, action } => {
                self.inbound_subscription(&to, &from, action, false)
            }
            Stanza::Message {
                from, to, message, ..
            } => self.inbound_message(from, to, message),
            Stanza::Presence { from, to, kind } => self.inbound_presence(from, to, kind),
            Stanza::Iq { from, iq } => self.inbound_iq(from, iq),
            // A room served by another node speaks to a session of this one.
            Stanza::Room(stanza) => self.room_stanza_from_remote(*stanza),
            // Another engine asks about a user served here, answers a session's query, or notifies sessions.
            Stanza::Query(query) => self.answer_query(*query),
            Stanza::Reply(reply) => self.take_reply(*reply),
            Stanza::Notification(n) => self.take_notification(*n),
            // An error from another node or domain about something a local session sent.
            Stanza::Error(error) => {
                let to = error.to.clone();
                self.reply_error(&to, error)
            }
            // Roster results, pushes and request answers only ever go from the engine to a session.
            _ => {}
        }
    }

    /// Sends a stanza towards `to`: a local user's work queue, or the router.
    fn route(&mut self, stanza: Stanza, to: &BareJid) {
        if self.is_here(to) {
            self.submit(Work::Inbound(stanza));
        } else {
            self.out(Output::Route(stanza));
        }
    }

    /// Delivers a stanza to one local session.
    fn deliver(&mut self, session: SessionId, stanza: Stanza) {
        self.out(Output::Deliver { session, stanza });
    }

    /// Sends an error to whoever sent something: a local session by full address, or the router.
    fn reply_error(&mut self, to: &Jid, error: crate::stanza::StanzaError) {
        if !self.is_here(to.bare()) {
            self.out(Output::Route(Stanza::Error(error)));
            return;
        }
        let target = match (to, self.users.get(to.bare())) {
            (Jid::Full(f), Some(u)) => u.session_by_resource(f.resource()).map(|s| s.id),
            _ => None,
        };
        if let Some(session) = target {
            self.deliver(session, Stanza::Error(error));
        }
    }

    fn arm(&mut self, at: Instant, timer: Timer) {
        self.timers.push(Reverse((at, timer)));
    }
}
