//! Engine shards (issue 17): a node's users hashed over N engines, each on its own thread with its own driver,
//! queue and group commit, all over the one store.
//!
//! A shard is an engine that serves only the users hashing to it ([`crate::Engine::serving_shard`], with
//! [`crate::cluster::shard_of`]); to it, a user of another shard is a user served by another node. So stanzas
//! between shards travel exactly as between the nodes of a cluster: the engine says `Output::Route` (or
//! `Output::ToRoom`), and the shard's [`ShardLink`], a [`Cluster`] that lives in the process, puts the stanza
//! on the input queue of the shard that serves its recipient, as `Input::FromRemote` (`Input::FromRemoteRoom`).
//! Each shard takes its queue in order and each link pushes in the order its engine emitted, so what one shard
//! sends another arrives in order: FIFO per pair of shards, hence per sender → recipient pair. A routed
//! message finding its shard idle (nothing queued, no batch running) is handled at once on the routing thread
//! instead ([`Siblings::run_here`], as `driver::Inline` does for shells), which passes nothing either: one
//! level deep, messages only, so a broadcast still reaches the other shard as one batch.
//!
//! **Who owns which input** (the [`Router`] behind the one `Handle` shells hold):
//! - a session's inputs (open, close, presence, messages, IQs, requests, room requests, XEP-0198 detach and
//!   reattach): its user's shard, learnt at `OpenSession`; an `Attach` that comes before is held until then;
//! - inputs about a user (policy, manual status, phone line, calendar, bulk contact add, account removal,
//!   held-back undelivered messages): that user's shard; admin commands are such inputs;
//! - a watch (SIP SUBSCRIBE): its target's shard, whose roster and policy decide it and whose composition it
//!   follows (see "A watch across shards" below); every shard gets a clone of the one watch sink;
//! - a stanza from another server or node (`FromRemote`, `submit_remote`): its recipient's shard; one without
//!   a local recipient goes to shard 0, whose engine answers it as a single engine would;
//! - rooms: every room has a home shard, [`crate::cluster::room_home`] over the shards' names, told to each
//!   engine as `Input::RoomPlacement` before anything else; room traffic from sessions of other shards comes
//!   in as `FromRemoteRoom` and occupants of other shards are proxy sessions, as across nodes; the room
//!   service itself (disco#items of `conference.<domain>`) is answered by the asker's shard, which lists its
//!   own public rooms and those the other shards announced to it (`RoomTraffic::Listed`, routed to the shard
//!   of the home it names; `rooms::directory` says why a directory rather than asking every shard per
//!   request, and how it stays bounded);
//! - timers: each engine's own (its users' and rooms' deadlines), fired on its thread;
//! - compliance: each shard writes the records of its own commit groups through the shared hook (each starts
//!   its own background writer in `best_effort` mode);
//! - metrics: one set for the process; the gauges a driver owns (queue depth, messages held offline) are
//!   added to by each shard rather than set, so they read as the node's sum;
//! - the offline cap: the node's cap is split evenly over the shards by whoever builds the engines (users hash
//!   evenly); the product binary does so;
//! - cluster inputs and failover (`Rehome`, `RoomPlacement` from a cluster): a node of a cluster runs one shard
//!   ([`super::spawn_with`] refuses a cluster with more), since room homes and user placement would have to be
//!   composed of nodes and shards; that is left for later.
//!
//! **A watch across shards** reports first what a single engine reports first: the decision taken after the
//! watcher's subscription request (if one is needed) has been handled. A single engine asks on the watcher's
//! behalf and then looks; here the watcher's roster is on the watcher's shard and the target's on the target's,
//! so the router sends a presence watch whose users live on different shards the long way: to the watcher's
//! shard as `Input::SubscribeFor` with the watch behind it in one unit of work (`Msg::Relay`, refused together
//! at the shells' bound). That shard handles the request (asking only if the watcher has not asked already)
//! and, once its batch has let out what it routed (the `subscribe` stanza, on the target's queue), pushes the
//! watch onto the target's queue behind it. FIFO per pair of shards then has the target's engine handle the
//! request (auto-approving it or not) before it first looks at the watch, which its roster decides as a single
//! engine's would: `Active` when approved, `Pending` when the target was asked, `Rejected` when refused.
//! - Every input of one watch takes the way its `Watch` took (the router keeps it by watch id): `Unwatch` is
//!   relayed through the same shards, so it can neither overtake the watch nor miss it. A replacement of an id
//!   on the same target shard first takes the way of the watch it replaces (which may still be on its way).
//! - A relayed `Watch` is routed work on the target's queue (`Queue::push_routed`); past that bound the
//!   relaying shard ends the watch as `Terminated(StoreUnavailable)`, which a SIP shell answers with
//!   `probation` (subscribe again later). A relayed `Unwatch` is a control message, never refused.
//! - A flush behind a relayed watch input is answered by the first shard of its way, joined with the others.
//! - A watcher whose data cannot be loaded asks nothing, and the watch is decided without the request
//!   (`Rejected` where a single engine would report `StoreUnavailable`).
//!
//! **Durability of a flush.** A flush (`submit_and_flush`) promises that everything before it is committed and
//! delivered. A message to a user of another shard is committed there, so a flush after the shard routed
//! anything elsewhere is answered only once every other shard has committed what was routed to it before: the
//! shard puts a receipt on every other shard's queue (behind what it routed there) and answers when all are
//! called (`Msg::Joined`), durable only if every commit was.
//!
//! **Requests between shards.** A session's request about a user of another shard (a vCard, PEP items, a PEP
//! subscription) travels to that user's shard as a routed `Stanza::Query` and comes back as a `Stanza::Reply`
//! or an error, and PEP notifications for users of other shards as `Stanza::Notification`s (`crate::query`),
//! exactly as between nodes.
//!
//! **At the bound.** Routed work may fill a shard's queue to twice the shells' bound (see
//! `Queue::push_routed`). Past that, a message comes back to its sender as a `wait`-type
//! `<resource-constraint/>` error, room traffic is answered by the driver as for an unreachable node (a room's
//! listing is dropped: that shard lists the room as it last heard of it until its next change), and presence
//! or other stanzas that acknowledge nothing are dropped and counted as engine busy.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use hashbrown::{HashMap, HashSet};
use parking_lot::Mutex;
use tracing::warn;

use super::cluster::{self, Cluster, Location};
use super::driver::Inline;
use super::metrics::Metrics;
use super::queue::{Msg, Queue, SubmitError};
use crate::Input;
use crate::cluster::{room_home, shard_of};
use crate::engine::RoomTraffic;
use crate::jid::{BareJid, Jid};
use crate::session::SessionId;
use crate::stanza::{Broadcast, ErrorCondition, PresenceKind, Stanza};
use crate::watch::{WatchId, WatchKind};

/// How long a stopping shard waits for the others to say their goodbyes.
const FAREWELL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The most shards a node runs (the dirty set of a link is a 64-bit mask).
pub const MAX_SHARDS: usize = 64;

/// The name of shard `index` among room homes.
pub(crate) fn names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("shard-{i}")).collect()
}

/// The shard whose engine serves `room`.
fn room_shard(room: &BareJid, names: &[String]) -> usize {
    room_home(room, names)
        .and_then(|home| names.iter().position(|n| n == home))
        .unwrap_or(0)
}

/// The shard room traffic is for: the one serving the home it names (a listing, see `rooms::directory`),
/// else the one serving its room.
fn traffic_shard(traffic: &RoomTraffic, names: &[String]) -> usize {
    match traffic.home() {
        Some(home) => names.iter().position(|n| n == home).unwrap_or(0),
        None => room_shard(traffic.room(), names),
    }
}

/// Whose stanza this is among the users of a node: [`cluster::recipient`], and the addressee of an IQ (two
/// users of one node exchange IQs, e.g. pings and file offers, which a cluster does not carry yet).
pub(crate) fn recipient(stanza: &Stanza) -> Option<&BareJid> {
    match stanza {
        // Only a user's: an IQ to a domain is not any shard's user, and goes where a single engine sends it.
        Stanza::Iq { iq, .. } => Some(iq.to.bare()).filter(|to| to.local().is_some()),
        other => cluster::recipient(other),
    }
}

/// The queues of every shard of the node, in shard order, and the shards' names as room homes.
#[derive(Clone)]
pub(crate) struct Siblings {
    pub(crate) queues: Arc<[Arc<Queue>]>,
    pub(crate) names: Arc<[String]>,
    /// Shards that have not said their goodbyes yet at shutdown.
    farewell: Arc<(Mutex<usize>, parking_lot::Condvar)>,
    /// The way each live watch's inputs take (kept by the router, see [`Router`]); a watch's entry goes with its
    /// `Unwatch`, or when its shard reports it ended (the engine forgot it then, and the shell sends no
    /// `Unwatch` for it), so the map holds live watches only. (A shell that replaced a watch under the same id
    /// just as the engine ended the old one could lose the replacement's way here; the SIP shell never reuses
    /// an id.)
    watches: Arc<Stripes<WatchId, Path>>,
    /// Per shard, its users with an available session (written by that shard's link only, in order with what
    /// its engine routes): broadcast presence for any other user of that shard reaches no one and is not
    /// carried there (see [`ShardLink::forward`]).
    available: Arc<[Mutex<HashSet<BareJid>>]>,
    /// Each shard's engine, to run a routed message on the routing thread ([`Siblings::run_here`]); set once
    /// the drivers exist.
    engines: Arc<OnceLock<Engines>>,
}

/// Each shard's engine, in shard order, held weakly (it ends with its thread).
type Engines = Arc<[Weak<dyn Inline>]>;

thread_local! {
    /// This thread is running a shard's engine for another shard's routed message: it routes no further
    /// message inline, so a thread holds at most two engines at once.
    static ROUTING_INLINE: Cell<bool> = const { Cell::new(false) };
}

impl Siblings {
    pub(crate) fn new(queues: Vec<Arc<Queue>>) -> Self {
        let names = names(queues.len());
        Siblings {
            farewell: Arc::new((Mutex::new(queues.len()), parking_lot::Condvar::new())),
            watches: Arc::default(),
            available: queues.iter().map(|_| Mutex::default()).collect(),
            queues: queues.into(),
            names: names.into(),
            engines: Arc::default(),
        }
    }

    /// Gives the siblings each shard's engine (once), for [`Siblings::run_here`].
    pub(crate) fn set_engines(&self, engines: Engines) {
        let _ = self.engines.set(engines);
    }

    /// Handles `input` on this thread with shard `shard`'s engine if it is idle (see `driver::Inline`), so
    /// that a message between users of two shards wakes neither shard's thread; hands it back otherwise, and
    /// when this thread already runs a routed input, to be queued.
    #[allow(clippy::result_large_err)]
    fn run_here(&self, shard: usize, input: Input) -> Result<(), Input> {
        let engine = self.engines.get().and_then(|e| e.get(shard)?.upgrade());
        let Some(engine) = engine else {
            return Err(input);
        };
        if ROUTING_INLINE.get() {
            return Err(input);
        }
        ROUTING_INLINE.set(true);
        let result = engine.run_here(&self.queues[shard], input);
        ROUTING_INLINE.set(false);
        result
    }

    fn user_shard(&self, user: &BareJid) -> usize {
        shard_of(user, self.queues.len())
    }

    fn stanza_shard(&self, stanza: &Stanza) -> usize {
        recipient(stanza).map_or(0, |to| self.user_shard(to))
    }

    /// A broadcast's recipients split by the shard serving each, in order within each shard.
    pub(crate) fn split(&self, b: Broadcast) -> impl Iterator<Item = (usize, Broadcast)> {
        let Broadcast { from, kind, to } = b;
        let mut parts: Vec<Vec<BareJid>> = vec![Vec::new(); self.queues.len()];
        for to in to {
            parts[self.user_shard(&to)].push(to);
        }
        parts
            .into_iter()
            .enumerate()
            .filter(|(_, to)| !to.is_empty())
            .map(move |(shard, to)| {
                (
                    shard,
                    Broadcast {
                        from: from.clone(),
                        kind: kind.clone(),
                        to,
                    },
                )
            })
    }
}

/// One shard's way to its siblings: the in-process [`Cluster`] its driver routes through.
pub(crate) struct ShardLink {
    me: usize,
    siblings: Siblings,
    metrics: Arc<Metrics>,
    /// Shards this one routed to since it last asked them for receipts (bit per shard).
    dirty: AtomicU64,
    /// Flushes waiting for other shards' receipts.
    outstanding: AtomicUsize,
    /// Per shard, its count of failed commits as this shard's last receipt from it said: a higher count on the
    /// next receipt means a commit there failed since, perhaps of what was routed there (so not durable).
    failures_seen: Arc<[AtomicU64]>,
}

impl ShardLink {
    pub(crate) fn new(me: usize, siblings: Siblings, metrics: Arc<Metrics>) -> Self {
        let failures_seen = siblings.queues.iter().map(|_| AtomicU64::new(0)).collect();
        ShardLink {
            me,
            siblings,
            metrics,
            dirty: AtomicU64::new(0),
            outstanding: AtomicUsize::new(0),
            failures_seen,
        }
    }

    /// Whether a flush must wait for other shards: something was routed to them that may not be committed yet.
    pub(crate) fn must_join(&self) -> bool {
        self.dirty.load(Ordering::Relaxed) != 0 || self.outstanding.load(Ordering::Relaxed) != 0
    }

    /// Answers `token` to `session` (through this shard's own queue, `Msg::Joined`) once every other shard has
    /// committed what it had been sent before now; `durable` is this shard's own outcome.
    pub(crate) fn join(&self, session: SessionId, token: u64, durable: bool) {
        self.dirty.store(0, Ordering::Relaxed);
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        let others = self.siblings.queues.len() - 1;
        let join = Arc::new(Join {
            remaining: AtomicUsize::new(others),
            durable: AtomicBool::new(durable),
            session,
            token,
            home: self.siblings.queues[self.me].clone(),
        });
        for (i, queue) in self.siblings.queues.iter().enumerate() {
            if i == self.me {
                continue;
            }
            let part = join.clone();
            let seen = self.failures_seen.clone();
            let receipt = Msg::Receipt(Box::new(move |ok, failures| {
                // Receipts from one shard are answered in queue order on its thread, so this swap sees them in turn.
                let before = seen[i].swap(failures, Ordering::Relaxed);
                part.arrived(ok && before == failures)
            }));
            if let Err((_, [Msg::Receipt(receipt)])) = queue.push_control(receipt) {
                // That shard has stopped: what was routed there is not known to be committed.
                receipt(false, u64::MAX);
            }
        }
    }

    /// At shutdown, after this shard's last batch (its rooms' goodbyes routed): waits until every shard is
    /// there too, so that what they route here is in this shard's queue before it ends its sessions. Bounded:
    /// a shard that never comes (its thread died) does not keep the others from stopping.
    pub(crate) fn said_goodbye(&self) {
        let (left, all_there) = &*self.siblings.farewell;
        let mut left = left.lock();
        *left = left.saturating_sub(1);
        if *left == 0 {
            all_there.notify_all();
            return;
        }
        let deadline = std::time::Instant::now() + FAREWELL_WAIT;
        while *left > 0 {
            if all_there.wait_until(&mut left, deadline).timed_out() {
                warn!("a shard did not reach shutdown in time; stopping without its goodbyes");
                return;
            }
        }
    }

    /// A watch ended by an engine (reported `Terminated` to the shell): the router forgets its way.
    pub(crate) fn watch_ended(&self, watch: WatchId) {
        self.siblings.watches.with(&watch, |map| map.remove(&watch));
    }

    /// A joined flush was answered.
    pub(crate) fn joined(&self) {
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
    }

    /// Passes a relayed watch input on (see the module docs): to the next shard of its way, or to the shard it
    /// is for. An `Unwatch` is never refused while that shard runs; a `Watch` is routed work, and at the bound
    /// it comes back (`Err`, boxed: it is rare) for the driver to end the watch.
    pub(crate) fn relay(
        &self,
        to: usize,
        mut then: Vec<usize>,
        input: Input,
    ) -> Result<(), Box<Input>> {
        let control = matches!(input, Input::Unwatch { .. });
        let (next, msg) = if then.is_empty() {
            (to, Msg::Input(input))
        } else {
            let next = then.remove(0);
            (next, Msg::Relay { to, then, input })
        };
        self.routed_to(next);
        let queue = &self.siblings.queues[next];
        let result = if control {
            queue.push_control(msg).map_err(|(e, [msg])| (e, msg))
        } else {
            queue.push_routed(msg)
        };
        match result {
            Ok(()) => Ok(()),
            // Shutting down: nobody is left to answer.
            Err((SubmitError::Stopped, _)) => Ok(()),
            Err((SubmitError::Busy { .. }, Msg::Input(input) | Msg::Relay { input, .. })) => {
                self.metrics.engine_busy();
                Err(Box::new(input))
            }
            Err(_) => unreachable!("what was pushed comes back"),
        }
    }

    fn routed_to(&self, shard: usize) {
        self.dirty.fetch_or(1 << shard, Ordering::Relaxed);
    }

    /// A stanza the target shard could not take: what its sender waits for an answer to (a message, an IQ
    /// request, a query) comes back as an error, the rest is dropped.
    fn refused(&self, stanza: Stanza, error: SubmitError) {
        if let SubmitError::Stopped = error {
            return; // shutting down: nobody is left to answer
        }
        self.metrics.engine_busy();
        const BUSY: &str = "the server is too busy to take this now; try again later";
        match stanza.undelivered(ErrorCondition::ResourceConstraint, BUSY) {
            Some(bounce) => {
                // Its sender is a user of this shard; a control message is never refused while it runs.
                let _ = self.siblings.queues[self.me]
                    .push_control(Msg::Input(Input::FromRemote(Stanza::Error(bounce))));
            }
            None => warn!(
                kind = stanza_kind(&stanza),
                "a shard's queue is full: a stanza for one of its users is dropped"
            ),
        }
    }
}

fn stanza_kind(stanza: &Stanza) -> &'static str {
    match stanza {
        Stanza::Presence { .. } => "presence",
        Stanza::Subscription { .. } => "subscription",
        Stanza::Room(_) => "room",
        Stanza::Iq { .. } => "iq",
        Stanza::Error(_) => "error",
        Stanza::Notification(_) => "pep notification",
        _ => "other",
    }
}

impl Cluster for ShardLink {
    fn locate(&self, _user: &BareJid) -> Location {
        Location::Here
    }

    fn user_available(&self, user: &BareJid, available: bool) {
        let mut here = self.siblings.available[self.me].lock();
        if available {
            here.insert(user.clone());
        } else {
            here.remove(user);
        }
    }

    fn forward(&self, stanza: Stanza) {
        let shard = self.siblings.stanza_shard(&stanza);
        // Presence broadcast to a user with no available session would be delivered to no one there: leaving it
        // here saves that shard a wake-up per presence change of each of its users' contacts (issue 16: a SIP
        // PUBLISH reaches every watcher's roster item, and watchers that only subscribe are never available).
        // Safe against a sign-in racing it: the user's shard marks them available before it routes the
        // sign-in's probes, so a change this shard drops is one it made before it answers that probe.
        if let Stanza::Presence {
            to: Jid::Bare(to),
            kind: PresenceKind::Available(_) | PresenceKind::Unavailable,
            ..
        } = &stanza
            && !self.siblings.available[shard].lock().contains(to)
        {
            return;
        }
        self.routed_to(shard);
        // A message is carried on this thread when that shard is idle: a chat message between users of two
        // shards then wakes no engine thread. A broadcast (many stanzas from one batch) is queued instead, for
        // the other shard to take in one batch of its own.
        let input = match stanza {
            Stanza::Message { .. } => {
                match self.siblings.run_here(shard, Input::FromRemote(stanza)) {
                    Ok(()) => return,
                    Err(input) => input,
                }
            }
            stanza => Input::FromRemote(stanza),
        };
        if let Err((error, Msg::Input(Input::FromRemote(stanza)))) =
            self.siblings.queues[shard].push_routed(Msg::Input(input))
        {
            self.refused(stanza, error);
        }
    }

    /// One queue entry per shard for a presence change's watchers there, not one per watcher.
    fn forward_broadcast(&self, broadcast: Broadcast) {
        for (shard, mut b) in self.siblings.split(broadcast) {
            // As in `forward`: presence for a user with no available session there reaches no one.
            {
                let available = self.siblings.available[shard].lock();
                b.to.retain(|to| available.contains(to));
            }
            if b.to.is_empty() {
                continue;
            }
            self.routed_to(shard);
            if let Err((error, _)) =
                self.siblings.queues[shard].push_routed(Msg::Input(Input::FromRemoteBroadcast(b)))
                && !matches!(error, SubmitError::Stopped)
            {
                // Presence answers nothing: dropped, as a refused presence stanza is.
                self.metrics.engine_busy();
                warn!("a shard's queue is full: a presence for some of its users is dropped");
            }
        }
    }

    fn forward_room(&self, traffic: RoomTraffic) -> Result<(), Box<RoomTraffic>> {
        let shard = traffic_shard(&traffic, &self.siblings.names);
        self.routed_to(shard);
        match self.siblings.queues[shard]
            .push_routed(Msg::Input(Input::FromRemoteRoom(Box::new(traffic))))
        {
            Ok(()) => Ok(()),
            Err((error, Msg::Input(Input::FromRemoteRoom(traffic)))) => {
                if let SubmitError::Busy { .. } = error {
                    self.metrics.engine_busy();
                }
                Err(traffic)
            }
            Err(_) => unreachable!("what was pushed comes back"),
        }
    }
}

/// A flush waiting for the other shards' receipts.
struct Join {
    remaining: AtomicUsize,
    durable: AtomicBool,
    session: SessionId,
    token: u64,
    home: Arc<Queue>,
}

impl Join {
    /// One shard's receipt (called on that shard's thread).
    fn arrived(&self, ok: bool) {
        if !ok {
            self.durable.store(false, Ordering::Relaxed);
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let durable = self.durable.load(Ordering::Relaxed);
            let _ = self
                .home
                .push_control(Msg::Joined(self.session, self.token, durable));
        }
    }
}

/// Where a shell's inputs go: which shard serves each session and each watch.
pub(crate) struct Router {
    siblings: Siblings,
    sessions: Stripes<SessionId, Place>,
}

/// Which way a watch's inputs go: to the target's shard, through the shards in `vias` first (relayed, see the
/// module docs). Every input of one watch takes the same way, so none overtakes another.
struct Path {
    shard: usize,
    vias: Vec<usize>,
}

/// Where a session is.
enum Place {
    /// Not opened yet: its sink, to attach on its shard when it is (boxed: one per connection, briefly).
    Pending(Box<Msg>),
    /// Served by this shard.
    Shard(usize),
}

/// Where an input goes.
pub(crate) enum Dest {
    /// To one shard's queue, after these control messages (a held attach, a replaced watch's end).
    Shard(usize, Vec<Msg>),
    /// To every shard's queue.
    All,
    /// Nowhere: it concerns a session or watch no shard holds.
    Nowhere,
    /// To shard `shard`, relayed through the shards in `vias` in order (a watch's input, see the module docs),
    /// after `ask` (an `Input::SubscribeFor`) is queued on the shard given with it.
    Via {
        vias: Vec<usize>,
        shard: usize,
        // Boxed: one per cross-shard watch, while every other input's `Dest` stays small.
        ask: Option<(usize, Box<Input>)>,
    },
}

impl Router {
    pub(crate) fn new(siblings: Siblings) -> Self {
        Router {
            siblings,
            sessions: Stripes::default(),
        }
    }

    pub(crate) fn queue(&self, shard: usize) -> &Arc<Queue> {
        &self.siblings.queues[shard]
    }

    /// A broadcast's recipients split by the shard serving each.
    pub(crate) fn split(&self, b: Broadcast) -> impl Iterator<Item = (usize, Broadcast)> {
        self.siblings.split(b)
    }

    pub(crate) fn queues(&self) -> &[Arc<Queue>] {
        &self.siblings.queues
    }

    /// The queue of the shard serving a stanza's recipient.
    pub(crate) fn stanza_queue(&self, stanza: &Stanza) -> &Arc<Queue> {
        self.queue(self.siblings.stanza_shard(stanza))
    }

    /// The queue of the shard serving a room.
    pub(crate) fn room_queue(&self, room: &BareJid) -> &Arc<Queue> {
        self.queue(room_shard(room, &self.siblings.names))
    }

    /// Ends a replaced watch on the shard it went to, by the way it went there (never refused).
    fn unwatch_at(&self, watch: WatchId, path: Path) {
        let unwatch = Input::Unwatch { watch };
        let (first, msg) = match path.vias.split_first() {
            None => (path.shard, Msg::Input(unwatch)),
            Some((first, then)) => (
                *first,
                Msg::Relay {
                    to: path.shard,
                    then: then.to_vec(),
                    input: unwatch,
                },
            ),
        };
        let _ = self.queue(first).push_control(msg);
    }

    pub(crate) fn session_shard(&self, session: SessionId) -> Option<usize> {
        self.sessions.with(&session, |map| match map.get(&session) {
            Some(Place::Shard(s)) => Some(*s),
            _ => None,
        })
    }

    /// Holds or places a session's sink: on its shard once it is open, held until then.
    pub(crate) fn attach(&self, session: SessionId, msg: Msg) -> Result<(), SubmitError> {
        let mut msg = Some(msg);
        let open = self.sessions.with(&session, |map| match map.get(&session) {
            Some(Place::Shard(s)) => Some(*s),
            _ => {
                if let Some(msg) = msg.take() {
                    map.insert(session, Place::Pending(Box::new(msg)));
                }
                None
            }
        });
        match (open, msg) {
            (Some(shard), Some(msg)) => self.queue(shard).push_control(msg).map_err(|(e, _)| e),
            _ => Ok(()),
        }
    }

    /// Where `input` goes, recording what it opens and forgetting what it closes.
    pub(crate) fn dest(&self, input: &Input) -> Dest {
        let one = |s| Dest::Shard(s, Vec::new());
        match input {
            Input::OpenSession { session, user, .. } => {
                let shard = self.siblings.user_shard(user);
                let before = self.sessions.with(session, |map| {
                    match map.insert(*session, Place::Shard(shard)) {
                        Some(Place::Pending(attach)) => vec![*attach],
                        _ => Vec::new(),
                    }
                });
                Dest::Shard(shard, before)
            }
            Input::CloseSession { session } => {
                match self.sessions.with(session, |map| map.remove(session)) {
                    Some(Place::Shard(s)) => one(s),
                    // Never opened: dropping its held sink is all there is to do.
                    Some(Place::Pending(_)) | None => Dest::Nowhere,
                }
            }
            Input::Presence { session, .. }
            | Input::Reachable { session, .. }
            | Input::Subscription { session, .. }
            | Input::Message { session, .. }
            | Input::Iq { session, .. }
            | Input::Request { session, .. }
            | Input::Interests { session, .. }
            | Input::Room { session, .. }
            | Input::Detached { session, .. }
            | Input::Reattached { session } => match self.session_shard(*session) {
                Some(s) => one(s),
                // The engine answers a session it does not know as a single engine would (by ignoring it).
                None => one(0),
            },
            Input::SetPolicy { user, .. }
            | Input::SetManualStatus { user, .. }
            | Input::PhoneLine { user, .. }
            | Input::Calendar { user, .. }
            | Input::AddContacts { user, .. }
            | Input::EditContacts { user, .. }
            | Input::SubscribeFor { watcher: user, .. }
            | Input::AccountRemoved { user }
            | Input::HoldUndelivered { user, .. }
            | Input::Loaded { user, .. }
            | Input::LoadFailed { user } => one(self.siblings.user_shard(user)),
            Input::Watch {
                watch,
                watcher,
                target,
                kind,
            } => {
                let shard = self.siblings.user_shard(target);
                let watcher_shard = self.siblings.user_shard(watcher);
                // The target's engine cannot ask on the watcher's behalf (the watcher's roster is not there):
                // the watcher's shard asks, and the watch follows its request (see the module docs).
                let asks = *kind == WatchKind::Presence && watcher_shard != shard;
                let (vias, old) = self.siblings.watches.with(watch, |map| {
                    let old = map.remove(watch);
                    // A replacement on the same shard must not overtake the registration it replaces, which may
                    // still be on its way through other shards: it takes the same way first.
                    let mut vias = match &old {
                        Some(old) if old.shard == shard => old.vias.clone(),
                        _ => Vec::new(),
                    };
                    if asks && vias.last() != Some(&watcher_shard) {
                        vias.push(watcher_shard);
                    }
                    map.insert(
                        *watch,
                        Path {
                            shard,
                            vias: vias.clone(),
                        },
                    );
                    (vias, old)
                });
                if let Some(old) = old.filter(|o| o.shard != shard) {
                    // The id now names a watch on another shard: the old one ends there, by the way it went.
                    self.unwatch_at(*watch, old);
                }
                if vias.is_empty() {
                    return one(shard);
                }
                let ask = asks.then(|| {
                    (
                        watcher_shard,
                        Box::new(Input::SubscribeFor {
                            watcher: watcher.clone(),
                            target: target.clone(),
                        }),
                    )
                });
                Dest::Via { vias, shard, ask }
            }
            Input::Unwatch { watch } => {
                match self.siblings.watches.with(watch, |map| map.remove(watch)) {
                    Some(Path { shard, vias }) if vias.is_empty() => one(shard),
                    Some(Path { shard, vias }) => Dest::Via {
                        vias,
                        shard,
                        ask: None,
                    },
                    None => Dest::Nowhere,
                }
            }
            Input::FromRemote(stanza) => one(self.siblings.stanza_shard(stanza)),
            // The handle splits it by shard before it would get here; whole, every shard would deliver to the
            // recipients it serves (no other is loaded there).
            Input::FromRemoteBroadcast(_) => Dest::All,
            Input::FromRemoteRoom(traffic) => one(traffic_shard(traffic, &self.siblings.names)),
            Input::Rehome { .. }
            | Input::RoomPlacement { .. }
            | Input::RoomsLoaded(_)
            | Input::RoomsLoadFailed => Dest::All,
        }
    }
}

/// A map split over locks so that connection tasks on different workers rarely meet on one.
struct Stripes<K, V> {
    stripes: [Mutex<HashMap<K, V>>; 16],
}

impl<K, V> Default for Stripes<K, V> {
    fn default() -> Self {
        Stripes {
            stripes: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }
}

trait StripeKey {
    fn stripe(&self) -> usize;
}

impl StripeKey for SessionId {
    fn stripe(&self) -> usize {
        (self.0 % 16) as usize
    }
}

impl StripeKey for WatchId {
    fn stripe(&self) -> usize {
        (self.0 % 16) as usize
    }
}

impl<K: StripeKey, V> Stripes<K, V> {
    fn with<T>(&self, key: &K, f: impl FnOnce(&mut HashMap<K, V>) -> T) -> T {
        f(&mut self.stripes[key.stripe()].lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_on(shard: usize, of: usize) -> BareJid {
        (0..)
            .map(|i| BareJid::new(&format!("u{i}@x")).expect("a user"))
            .find(|u| shard_of(u, of) == shard)
            .expect("some user hashes to every shard")
    }

    #[test]
    fn a_watch_the_engine_ended_leaves_no_way_behind_in_the_router() {
        let siblings = Siblings::new((0..2).map(|_| Arc::new(Queue::new(8))).collect());
        let router = Router::new(siblings.clone());
        let link = ShardLink::new(1, siblings.clone(), Arc::new(Metrics::default()));
        let watch = WatchId(7);
        let input = Input::Watch {
            watch,
            watcher: user_on(0, 2),
            target: user_on(1, 2),
            kind: WatchKind::Presence,
        };
        assert!(matches!(router.dest(&input), Dest::Via { .. }));
        let kept = |w: WatchId| siblings.watches.with(&w, |map| map.contains_key(&w));
        assert!(kept(watch), "the router keeps the way of a live watch");
        // Its shard reported it ended: the shell sends no Unwatch, and the way goes.
        link.watch_ended(watch);
        assert!(!kept(watch));
        assert!(matches!(
            router.dest(&Input::Unwatch { watch }),
            Dest::Nowhere
        ));
    }
}
