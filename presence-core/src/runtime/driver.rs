//! The engine thread: takes what the shells queued, feeds the engine, answers its loads, makes its writes durable
//! in groups, and only then lets out what depended on them.
//!
//! Store calls block, so the engine runs on its own OS thread (an I/O worker that runs it inline steps aside
//! before each, see [`Inline`]). Everything taken from the queue in one go is one batch: its writes are
//! committed in one transaction (group commit) before any delivery of the batch goes out.
//!
//! **Failing closed.** A delivery depends on every write the engine emitted before it. When a commit fails:
//! - a message that would have been delivered is not; its local sender gets a `wait`-type
//!   `<internal-server-error/>` instead, and so does the sender of a message that was to be held offline;
//! - an answer to a request (a roster result, a `Done`) becomes that error;
//! - a bind that would have succeeded ends the session instead; a flush answers `durable: false`;
//! - presence and watch updates, which acknowledge nothing, still go out: they show the engine's view.
//!
//! **Compliance records** (`Output::Comply`, see `compliance.rs`) in `required` mode belong to the commit group
//! they were emitted in, like writes: they are written before the group's store writes, and a failed write fails
//! the group as a failed commit does (its store writes are then not applied either, so a message that bounced is
//! not held offline). In `best_effort` mode they do not take part in commits: once the batch is released, the
//! records of what was let out go to the background writer.
//!
//! The engine's memory may then be ahead of the store for users who stay online. Every write carries a whole
//! record (a roster entry, a policy), so the next change of the same record rewrites it; a failed offline clear
//! makes those messages arrive again at the next sign-in, a duplicate rather than a loss. A load that fails
//! reaches the engine as `Input::LoadFailed`, never as "no such user".

use std::sync::Arc;
use std::time::Instant;

use hashbrown::HashMap;
use parking_lot::Mutex;
use tracing::{debug, error, warn};

use super::cluster::{self, Cluster};
use super::compliance::{Background, Compliance, ComplianceHook, Mode};
use super::metrics::Metrics;
use super::queue::{Msg, Popped, Queue, Receipt};
use super::sink::{Ended, Sent, SessionSink, SharedSink, ToSession, WatchSink};
use super::step_aside::may_block;
use crate::compliance::Record;
use crate::engine::Output;
use crate::jid::{BareJid, FullJid, Jid};
use crate::message::MessageKind;
use crate::session::SessionId;
use crate::stanza::{Broadcast, ErrorAbout, ErrorCondition, Stanza, StanzaError};
use crate::store::{Store, StoreWrite};
use crate::watch::{WatchEnd, WatchId, WatchState};
use crate::{Engine, Input};

/// Where one session's deliveries go.
enum Sink {
    Own(SessionSink),
    Shared(SharedSink),
}

/// The sessions the runtime delivers to, by id and by bound address.
#[derive(Default)]
struct Directory {
    sinks: HashMap<SessionId, Sink>,
    jids: HashMap<SessionId, FullJid>,
    by_jid: HashMap<FullJid, SessionId>,
    watches: Option<WatchSink>,
}

impl Directory {
    fn bound(&mut self, session: SessionId, jid: FullJid) {
        self.by_jid.insert(jid.clone(), session);
        self.jids.insert(session, jid);
    }

    fn forget(&mut self, session: SessionId) -> Option<Sink> {
        if let Some(jid) = self.jids.remove(&session)
            && self.by_jid.get(&jid) == Some(&session)
        {
            self.by_jid.remove(&jid);
        }
        self.sinks.remove(&session)
    }
}

/// When an output was emitted relative to the batch's commits: in which commit group, and whether writes of
/// that group had been emitted before it.
#[derive(Clone, Copy)]
struct Tag {
    group: u32,
    after_write: bool,
}

/// The most watch updates' room a driver keeps between batches (a fan-out to every watcher of a popular user
/// would otherwise keep its room for good).
const WATCH_UPDATES_KEPT: usize = 256;

pub(crate) struct Driver<S> {
    engine: Engine,
    /// How many batches' commits have failed (see [`super::queue::Receipt`]).
    failed_commits: u64,
    store: Arc<S>,
    dir: Directory,
    metrics: Arc<Metrics>,
    /// Sessions the runtime ended (slow consumers, failed binds) that the engine must still be told about.
    to_close: Vec<SessionId>,
    /// The watch updates of the last batch, emptied: each batch takes them, so that a presence change with its
    /// watchers' updates allocates no list of its own.
    watch_updates: Vec<(WatchId, WatchState)>,
    /// The one message of an inline run ([`Inline::run_here`]), kept so that a run allocates no batch of its own.
    inline: Vec<Msg>,
    /// The cluster this engine is a node of, if any.
    cluster: Option<Arc<dyn Cluster>>,
    /// Domains attached by shells (components).
    domains: Arc<super::domains::Domains>,
    /// Where compliance records go, if anywhere.
    compliance: Option<Complying>,
    /// With several shards: this shard's link to the others (also its `cluster`).
    shard: Option<Arc<super::shards::ShardLink>>,
    /// What this driver last added to the process's gauges, which every shard adds to.
    reported: Reported,
}

/// A driver's share of the process-wide gauges.
#[derive(Default)]
struct Reported {
    queue_depth: i64,
    offline_held: i64,
}

/// The compliance sink as the driver uses it.
enum Complying {
    /// Written on this thread with each commit group.
    Required(Arc<dyn Compliance>),
    /// Handed to a writer thread after release.
    BestEffort(Background),
}

/// The writes and outputs of one batch, until its commit decides their fate.
#[derive(Default)]
struct Batch {
    writes: Vec<StoreWrite>,
    /// Compliance records of the current commit group (`required` mode).
    records: Vec<Record>,
    /// Compliance records for the background writer, sent if what they describe is let out (`best_effort`).
    later: Vec<(Tag, Record)>,
    group: u32,
    /// The first commit group that failed.
    failed: Option<u32>,
    outputs: Vec<(Tag, Output)>,
    /// Watch updates let out, sent after the batch's deliveries.
    watch_updates: Vec<(WatchId, WatchState)>,
    flushes: Vec<(SessionId, u64)>,
    /// Flushes that waited for other shards, answered now (see `shards.rs`).
    joined: Vec<(SessionId, u64, bool)>,
    receipts: Vec<Receipt>,
    /// Watch inputs to pass on to other shards once what came before them is let out: (to, then, input).
    relays: Vec<(usize, Vec<usize>, Input)>,
    /// Errors for senders whose messages could not be stored.
    bounces: Vec<StanzaError>,
    /// Users the engine asked to have loaded, answered together (see [`Driver::drain`]).
    loads: Vec<crate::jid::BareJid>,
    /// The engine asked for the persistent rooms.
    load_rooms: bool,
}

impl Batch {
    fn tag(&self) -> Tag {
        Tag {
            group: self.group,
            after_write: !self.writes.is_empty() || !self.records.is_empty(),
        }
    }

    /// Whether an output tagged `tag` can go out now: no commit it could depend on is pending or failed,
    /// and nothing emitted before it is still waiting (outputs leave in the order the engine emitted them).
    fn settled(&self, tag: Tag) -> bool {
        !tag.after_write && self.failed.is_none() && self.outputs.is_empty()
    }

    fn held_back(&self, tag: Tag) -> bool {
        self.failed
            .is_some_and(|f| f < tag.group || (f == tag.group && tag.after_write))
    }
}

impl<S: Store> Driver<S> {
    pub(crate) fn new(
        engine: Engine,
        store: Arc<S>,
        metrics: Arc<Metrics>,
        cluster: Option<Arc<dyn Cluster>>,
        domains: Arc<super::domains::Domains>,
        compliance: Option<ComplianceHook>,
        shard: Option<Arc<super::shards::ShardLink>>,
    ) -> std::io::Result<Self> {
        let compliance = match compliance {
            None => None,
            Some(ComplianceHook {
                sink,
                mode: Mode::Required,
            }) => Some(Complying::Required(sink)),
            Some(ComplianceHook {
                sink,
                mode: Mode::BestEffort,
            }) => Some(Complying::BestEffort(Background::start(
                sink,
                metrics.clone(),
            )?)),
        };
        Ok(Driver {
            failed_commits: 0,
            shard,
            reported: Reported::default(),
            compliance,
            cluster,
            domains,
            engine,
            store,
            dir: Directory::default(),
            metrics,
            to_close: Vec::new(),
            inline: Vec::with_capacity(1),
            watch_updates: Vec::new(),
        })
    }

    /// Runs until shutdown or until every handle is gone. The engine is held only while a batch is handled, so
    /// that a service thread may take an input on its own thread while this one waits ([`Inline`]).
    pub(crate) fn run(this: &Mutex<Self>, queue: &Queue, max_batch: usize) {
        let mut msgs = Vec::with_capacity(max_batch);
        loop {
            let wake = this.lock().next_wake();
            queue.wait(wake);
            let mut driver = this.lock();
            let (popped, depth) = queue.take(max_batch, &mut msgs);
            if driver.step(&mut msgs, popped == Popped::Closed, depth) {
                if let Some(link) = driver.shard.clone() {
                    driver.farewells(&link, queue);
                }
                queue.close();
                driver.finish(queue);
                return;
            }
        }
    }

    /// When the engine must next run without a message: its own deadline, or now when sessions the runtime
    /// ended must still reach it.
    fn next_wake(&mut self) -> Option<Instant> {
        if self.to_close.is_empty() {
            self.engine.poll_timeout()
        } else {
            Some(Instant::now())
        }
    }

    /// Handles one batch of messages (`closed`: the queue closed behind them) and whatever timers are due,
    /// commits, and lets out what the commits allow. Returns whether this was the last batch (shutdown).
    fn step(&mut self, msgs: &mut Vec<Msg>, closed: bool, depth: usize) -> bool {
        let depth = i64::try_from(depth).unwrap_or(i64::MAX);
        self.metrics
            .engine_queue
            .inc_by(depth - std::mem::replace(&mut self.reported.queue_depth, depth));
        let now = Instant::now();
        let mut batch = self.new_batch();
        let mut stop = closed;
        for msg in msgs.drain(..) {
            match msg {
                Msg::Attach(session, sink) => {
                    self.dir.sinks.insert(session, Sink::Own(sink));
                }
                Msg::AttachShared(session, sink) => {
                    self.dir.sinks.insert(session, Sink::Shared(sink));
                }
                Msg::Watches(sink) => self.dir.watches = Some(sink),
                Msg::Flush(session, token) => batch.flushes.push((session, token)),
                Msg::Receipt(receipt) => batch.receipts.push(receipt),
                Msg::Relay { to, then, input } => batch.relays.push((to, then, input)),
                // Answered with the batch's own flushes: what the other shards sent before their receipts
                // (a bounce) is in this batch and goes out first.
                Msg::Joined(session, token, durable) => {
                    batch.joined.push((session, token, durable))
                }
                Msg::Input(input) => {
                    // The connection is gone: nothing more is delivered to it, whatever the engine says on
                    // its way out.
                    if let Input::CloseSession { session } = &input {
                        self.dir.forget(*session);
                    }
                    self.engine.handle(now, input);
                    self.take_outputs(&mut batch);
                }
                Msg::Shutdown => stop = true,
            }
        }
        for session in std::mem::take(&mut self.to_close) {
            self.engine.handle(now, Input::CloseSession { session });
        }
        if self.engine.poll_timeout().is_some_and(|at| at <= now) {
            self.engine.handle_timeout(now);
        }
        if stop {
            // Occupants hear why they leave their rooms (332) before their sessions close.
            self.engine.shutdown_rooms();
        }
        self.drain(&mut batch);
        self.release(batch);
        self.metrics
            .step_seconds
            .observe(now.elapsed().as_secs_f64());
        stop
    }

    /// An empty batch, with the room for watch updates the last batch gave back (see `watch_updates`).
    fn new_batch(&mut self) -> Batch {
        Batch {
            watch_updates: std::mem::take(&mut self.watch_updates),
            ..Batch::default()
        }
    }

    /// Carries out everything the engine asked for: loads at once (after committing what came before, which
    /// the engine relies on), writes in groups, the rest kept for [`Driver::release`].
    ///
    /// Loads are gathered: every load the engine asks for while its outputs are taken (after each input of the
    /// batch, see [`Driver::take_outputs`], and here) is answered in one store call, so a login storm costs a
    /// round trip per round rather than per user. That is safe because the engine runs nothing for a user whose
    /// load is outstanding, so no write taken after a load concerns it.
    fn drain(&mut self, batch: &mut Batch) {
        loop {
            self.take_outputs(batch);
            if batch.loads.is_empty() && !batch.load_rooms {
                break;
            }
            // What the loads must see is what the engine emitted before them.
            self.commit(batch);
            if std::mem::take(&mut batch.load_rooms) {
                self.load_rooms();
            }
            let mut loads = std::mem::take(&mut batch.loads);
            let mut results = may_block(|| self.store.load_users(&loads)).into_iter();
            let now = Instant::now();
            for user in loads.drain(..) {
                let result = results.next().unwrap_or_else(|| {
                    Err(crate::store::StoreError::Backend(
                        "the store answered fewer loads than asked".into(),
                    ))
                });
                match result {
                    Ok(record) => self.engine.handle(now, Input::Loaded { user, record }),
                    Err(e) => {
                        warn!(%user, error = %e, "loading a user failed");
                        self.metrics.store_failed("load");
                        self.engine.handle(now, Input::LoadFailed { user });
                    }
                }
            }
            batch.loads = loads;
        }
        self.commit(batch);
        let held = i64::try_from(self.engine.offline_total()).unwrap_or(i64::MAX);
        self.metrics
            .offline_held
            .inc_by(held - std::mem::replace(&mut self.reported.offline_held, held));
    }

    /// Takes what the engine emitted so far: writes and loads into the batch, the rest out at once when nothing
    /// uncommitted comes before it, else kept. Called after each input of a batch, so that the engine's output
    /// queue holds one input's outputs rather than a whole batch's (a batch of presence changes is hundreds of
    /// thousands of deliveries, whose queue cost page faults and copies as it grew), and deliveries leave as
    /// soon as they may.
    fn take_outputs(&mut self, batch: &mut Batch) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Load(user) => batch.loads.push(user),
                Output::LoadRooms => batch.load_rooms = true,
                Output::Store(w) => batch.writes.push(w),
                Output::Comply(record) => match &self.compliance {
                    Some(Complying::Required(_)) => batch.records.push(record),
                    Some(Complying::BestEffort(_)) => {
                        let tag = batch.tag();
                        batch.later.push((tag, record));
                    }
                    // The engine archives but the embedder gave the runtime nowhere to write: nothing to do.
                    None => {}
                },
                other => {
                    let tag = batch.tag();
                    if batch.settled(tag) {
                        // Nothing uncommitted comes before it: out at once, rather than kept (and moved,
                        // and the batch's vector grown) until the batch ends. A presence fan-out is
                        // tens of thousands of these in one batch.
                        self.let_out(other, false, &mut batch.watch_updates);
                    } else {
                        batch.outputs.push((tag, other));
                    }
                }
            }
        }
    }

    /// Reads the persistent rooms again for an engine that started serving another node's rooms (or its own
    /// again). A store that cannot be read is reported to the engine, which fails the room work that waited
    /// (never "no such room") and asks again at the next.
    fn load_rooms(&mut self) {
        // With each room's archive head and history, as at start: a room moved here keeps numbering its archive
        // where its last node stopped.
        match may_block(|| crate::store::load_rooms(self.store.as_ref())) {
            Ok(stored) => {
                debug!(
                    rooms = stored.len(),
                    "persistent rooms read for a change of room placement"
                );
                self.engine
                    .handle(Instant::now(), Input::RoomsLoaded(stored));
            }
            Err(e) => {
                error!(error = %e, "reading the persistent rooms failed; room requests fail until a read succeeds");
                self.metrics.store_failed("rooms");
                self.engine.handle(Instant::now(), Input::RoomsLoadFailed);
            }
        }
    }

    fn commit(&mut self, batch: &mut Batch) {
        if batch.writes.is_empty() && batch.records.is_empty() {
            return;
        }
        if self.archive_required(batch) {
            self.apply_writes(batch);
        } else {
            Self::fail_group(batch);
        }
        batch.writes.clear();
        batch.records.clear();
        batch.group += 1;
    }

    /// Writes the group's compliance records (`required` mode); `false` when that failed.
    fn archive_required(&mut self, batch: &Batch) -> bool {
        let Some(Complying::Required(sink)) = &self.compliance else {
            return true;
        };
        if batch.records.is_empty() {
            return true;
        }
        match may_block(|| sink.write(&batch.records)) {
            Ok(()) => {
                self.metrics.compliance_written(batch.records.len());
                true
            }
            Err(e) => {
                error!(records = batch.records.len(), error = %e, "compliance write failed; the messages are not delivered");
                self.metrics.compliance_failed("write", batch.records.len());
                false
            }
        }
    }

    fn apply_writes(&mut self, batch: &mut Batch) {
        if batch.writes.is_empty() {
            return;
        }
        let started = Instant::now();
        let result = may_block(|| self.store.apply(&batch.writes));
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = result {
            error!(writes = batch.writes.len(), error = %e, "committing writes failed; what depended on them is held back");
            self.metrics.store_failed("commit");
            Self::fail_group(batch);
        }
    }

    /// The current group did not become durable: what depended on it is held back, and senders of messages that
    /// were to be held offline are told.
    fn fail_group(batch: &mut Batch) {
        batch.failed.get_or_insert(batch.group);
        for w in &batch.writes {
            if let StoreWrite::OfflinePush { message, .. } = w
                && message.message.kind != MessageKind::Error
            {
                batch.bounces.push(not_stored(
                    &message.from,
                    ErrorAbout::Message {
                        id: message.message.id.clone(),
                        to: message.to.clone(),
                    },
                ));
            }
        }
    }

    /// Lets out what the batch's commits allow, in order: deliveries, then watch updates, then flushes.
    fn release(&mut self, mut batch: Batch) {
        let outputs = std::mem::take(&mut batch.outputs);
        let mut watch_updates = std::mem::take(&mut batch.watch_updates);
        for (tag, out) in outputs {
            let held = batch.held_back(tag);
            self.let_out(out, held, &mut watch_updates);
        }
        if let Some(Complying::BestEffort(writer)) = &self.compliance {
            let records: Vec<Record> = std::mem::take(&mut batch.later)
                .into_iter()
                .filter(|(tag, _)| !batch.held_back(*tag))
                .map(|(_, r)| r)
                .collect();
            if !records.is_empty() {
                writer.send(records);
            }
        }
        for error in std::mem::take(&mut batch.bounces) {
            self.bounce_to_sender(error);
        }
        // Behind everything this batch routed: a watch reaches its target's shard after the subscription
        // request the inputs before it sent there (see `shards.rs`).
        for (to, then, input) in std::mem::take(&mut batch.relays) {
            let Some(link) = &self.shard else { break };
            if let Err(refused) = link.relay(to, then, input)
                && let Input::Watch { watch, .. } = *refused
            {
                // That shard is at its bound: the watch ends as one the store could not serve now, which a
                // shell answers with "come back later" (SIP `probation`).
                warn!(
                    ?watch,
                    "a shard's queue is full: a watch on one of its users is ended"
                );
                watch_updates.push((watch, WatchState::Terminated(WatchEnd::StoreUnavailable)));
            }
        }
        if let Some(link) = &self.shard {
            for (watch, state) in &watch_updates {
                if let WatchState::Terminated(_) = state {
                    link.watch_ended(*watch);
                }
            }
        }
        if let Some(sink) = &self.dir.watches {
            for (watch, state) in watch_updates.drain(..) {
                if !sink.send(watch, state) {
                    // The watching shell is gone (shutdown): nobody is left to tell.
                    break;
                }
            }
        }
        watch_updates.clear();
        if watch_updates.capacity() <= WATCH_UPDATES_KEPT {
            self.watch_updates = watch_updates;
        }
        for (session, token, durable) in batch.joined {
            if let Some(link) = &self.shard {
                link.joined();
            }
            self.deliver(session, ToSession::Flushed { token, durable });
        }
        let durable = batch.failed.is_none();
        if !durable {
            self.failed_commits += 1;
        }
        for (session, token) in batch.flushes {
            match &self.shard {
                // Something went to other shards that they may not have committed yet: answered once they have.
                Some(link) if link.must_join() => link.join(session, token, durable),
                _ => self.deliver(session, ToSession::Flushed { token, durable }),
            }
        }
        for receipt in batch.receipts {
            receipt(durable, self.failed_commits);
        }
    }

    /// Carries out one output of the engine; `held`: a commit it depended on failed. Watch updates are gathered
    /// in `watch_updates`, to go out after the batch's deliveries.
    fn let_out(&mut self, out: Output, held: bool, watch_updates: &mut Vec<(WatchId, WatchState)>) {
        match out {
            Output::Deliver { session, stanza } => {
                if held {
                    self.hold_back(Some(session), stanza);
                } else {
                    self.deliver(session, ToSession::Stanza(stanza));
                }
            }
            Output::Bound { session, jid } => {
                if held {
                    // The session exists in the engine but nothing it saw is durable: end it.
                    self.end(session, Ended::StoreFailed);
                } else {
                    self.dir.bound(session, jid.clone());
                    self.deliver(session, ToSession::Bound(jid));
                }
            }
            Output::BindRefused { session, reason } => {
                self.deliver(session, ToSession::BindRefused(reason))
            }
            Output::Close { session, reason } => {
                self.deliver(session, ToSession::Closed(Ended::Engine(reason)))
            }
            Output::Route(stanza) => self.route(stanza, held),
            Output::RouteBroadcast(b) => self.route_broadcast(b, held),
            // The engine's state, whether or not its batch committed: the sessions are there either way.
            Output::Available { user, available } => {
                if let Some(cluster) = &self.cluster {
                    cluster.user_available(&user, available);
                }
            }
            Output::ToRoom(traffic) => self.send_to_room(traffic, held),
            Output::Watch { watch, state } => watch_updates.push((watch, state)),
            Output::ContactsAdded {
                user,
                added,
                refused,
            } => {
                debug!(%user, added = added.len(), refused = refused.len(), "contacts added");
            }
            Output::Load(_) | Output::LoadRooms | Output::Store(_) | Output::Comply(_) => {
                unreachable!("loads, writes and compliance records are taken while draining")
            }
        }
    }

    /// Hands a stanza for another node to the cluster, or bounces what cannot go anywhere. A message whose
    /// batch failed to commit is held back like a local delivery.
    fn route(&mut self, stanza: Stanza, held: bool) {
        if held {
            return self.hold_back(None, stanza);
        }
        let to = match &self.shard {
            Some(_) => super::shards::recipient(&stanza),
            None => cluster::recipient(&stanza),
        };
        let in_cluster = to.is_some_and(|to| self.engine.config().is_local_domain(to.domain()));
        match &self.cluster {
            Some(cluster) if in_cluster => cluster.forward(stanza),
            _ => {
                if let Err(stanza) = self.domains.send(stanza)
                    && let Some(error) =
                        undeliverable(&stanza, ErrorCondition::RemoteServerNotFound)
                {
                    self.bounce_to_sender(error);
                }
            }
        }
    }

    /// Hands a presence for several users served elsewhere to the cluster as one, and its recipients of other
    /// domains to them one by one. Presence acknowledges nothing: a failed batch's is dropped (`hold_back`).
    fn route_broadcast(&mut self, b: Broadcast, held: bool) {
        if held {
            return;
        }
        let Some(cluster) = &self.cluster else {
            return b.into_stanzas().for_each(|s| self.route(s, false));
        };
        let config = self.engine.config();
        if b.to.iter().all(|to| config.is_local_domain(to.domain())) {
            return cluster.forward_broadcast(b);
        }
        let Broadcast { from, kind, to } = b;
        let (inside, outside): (Vec<BareJid>, Vec<BareJid>) = to
            .into_iter()
            .partition(|to| config.is_local_domain(to.domain()));
        if !inside.is_empty() {
            cluster.forward_broadcast(Broadcast {
                from: from.clone(),
                kind: kind.clone(),
                to: inside,
            });
        }
        let outside = Broadcast {
            from,
            kind,
            to: outside,
        };
        outside.into_stanzas().for_each(|s| self.route(s, false));
    }

    /// Hands room traffic to the cluster, which carries it to the node serving its room; what cannot go (no
    /// cluster, a full link, a failed commit before it) comes back to its sender as a room error.
    fn send_to_room(&mut self, traffic: crate::engine::RoomTraffic, held: bool) {
        // A leave acknowledges nothing and depends on no write: it goes even from a failed batch, or the
        // session would stay seated on the room's node.
        let held = held && matches!(traffic, crate::engine::RoomTraffic::Request { .. });
        let traffic = match (&self.cluster, held) {
            (Some(cluster), false) => match cluster.forward_room(traffic) {
                Ok(()) => return,
                Err(traffic) => *traffic,
            },
            _ => traffic,
        };
        let (condition, text) = if held {
            (
                ErrorCondition::InternalServerError,
                "the server could not store this; try again later",
            )
        } else {
            (
                ErrorCondition::ServiceUnavailable,
                "the node serving the room cannot be reached; try again shortly",
            )
        };
        if let Some(Stanza::Room(room)) = traffic.bounce(condition, text)
            && let crate::rooms::RoomStanza::Error(e) = &*room
            && let Jid::Full(to) = &e.to
            && let Some(&session) = self.dir.by_jid.get(to)
        {
            self.deliver(session, ToSession::Stanza(Stanza::Room(room)));
        }
    }

    /// What goes out instead of a delivery (to `session`, or routed: `None`) whose commit failed.
    fn hold_back(&mut self, session: Option<SessionId>, stanza: Stanza) {
        match stanza {
            Stanza::Message {
                from, to, message, ..
            } if message.kind != MessageKind::Error => {
                self.bounce_to_sender(not_stored(
                    &from,
                    ErrorAbout::Message { id: message.id, to },
                ));
            }
            Stanza::Answer { request, .. } => {
                if let Some(session) = session
                    && let Some(jid) = self.dir.jids.get(&session)
                {
                    let error = not_stored(&Jid::Full(jid.clone()), ErrorAbout::Request(request));
                    self.deliver(session, ToSession::Stanza(Stanza::Error(error)));
                }
            }
            // An error says something was not done, so no failed commit can make it untrue: it still goes out
            // (a message that waited for a load that failed must be answered even if an archive write beside it
            // failed too).
            Stanza::Error(error) => match session {
                Some(session) => self.deliver(session, ToSession::Stanza(Stanza::Error(error))),
                None => self.bounce_to_sender(error),
            },
            // Presence and pushes acknowledge nothing; they are dropped with the rest of the failed batch.
            _ => {}
        }
    }

    /// Sends an error to the local session it is addressed to, if there is one, or to the shard serving its
    /// addressee (a message from a user of another shard that could not be stored or archived here).
    fn bounce_to_sender(&mut self, error: StanzaError) {
        let Jid::Full(to) = &error.to else { return };
        if let Some(&session) = self.dir.by_jid.get(to) {
            self.deliver(session, ToSession::Stanza(Stanza::Error(error)));
        } else if let Some(link) = &self.shard
            && self.engine.config().is_local_domain(to.bare().domain())
            && !self.engine.serves(to.bare())
        {
            link.forward(Stanza::Error(error));
        }
    }

    fn deliver(&mut self, session: SessionId, msg: ToSession) {
        let ends = matches!(msg, ToSession::Closed(_) | ToSession::BindRefused(_));
        let stanza = matches!(msg, ToSession::Stanza(_));
        let sent = match self.dir.sinks.get(&session) {
            None => return,
            Some(Sink::Own(sink)) => sink.send(msg),
            Some(Sink::Shared(sink)) => {
                if sink.send(session, msg) {
                    Sent::Ok
                } else {
                    Sent::Gone
                }
            }
        };
        match sent {
            Sent::Ok if stanza => {
                self.metrics.deliveries.inc();
            }
            Sent::Ok | Sent::Gone => {}
            Sent::Overflow => {
                warn!(
                    ?session,
                    "outbound queue full: ending the session as a slow consumer"
                );
                self.metrics.slow_consumer();
                self.dir.forget(session);
                self.to_close.push(session);
                return;
            }
        }
        if ends || sent == Sent::Gone {
            self.dir.forget(session);
        }
    }

    /// Ends a session the engine still holds.
    fn end(&mut self, session: SessionId, why: Ended) {
        // Delivering `Closed` forgets the session's sink.
        self.deliver(session, ToSession::Closed(why));
        self.to_close.push(session);
    }

    /// Shutdown with several shards: once every shard has said its goodbyes (rooms tell their occupants why
    /// they leave, and occupants of other shards hear it through their own shard), what the others sent here
    /// is delivered before this shard ends its sessions.
    fn farewells(&mut self, link: &super::shards::ShardLink, queue: &Queue) {
        link.said_goodbye();
        let mut rest = Vec::new();
        let _ = queue.take(usize::MAX, &mut rest);
        let now = Instant::now();
        let mut batch = self.new_batch();
        for msg in rest {
            match msg {
                Msg::Input(input @ (Input::FromRemote(_) | Input::CloseSession { .. })) => {
                    if let Input::CloseSession { session } = &input {
                        self.dir.forget(*session);
                    }
                    self.engine.handle(now, input);
                }
                Msg::Receipt(receipt) => batch.receipts.push(receipt),
                Msg::Joined(session, token, durable) => {
                    batch.joined.push((session, token, durable))
                }
                // New work after a shutdown is not taken, as with one engine.
                _ => {}
            }
        }
        self.drain(&mut batch);
        self.release(batch);
    }

    /// Shutdown: commit what is pending (done by the last batch), tell every session, stop.
    fn finish(&mut self, queue: &Queue) {
        // Anything queued after the shutdown message is not taken; only control messages can still be there.
        let mut rest = Vec::new();
        let _ = queue.take(usize::MAX, &mut rest);
        let sessions: Vec<SessionId> = self.dir.sinks.keys().copied().collect();
        for session in sessions {
            self.deliver(session, ToSession::Closed(Ended::Shutdown));
        }
        self.dir.watches = None;
        debug!("engine stopped");
    }
}

/// An engine that a submitting thread may run an input on, on its own thread, while the engine's thread has
/// nothing to do: the input's effects (a SIP PUBLISH's NOTIFYs, a chat message's delivery) then go out from the
/// submitting thread without waking the engine's thread and then the recipient's, two of the three thread
/// wake-ups such an input cost. The submitting thread then also carries out the input's commit; on an I/O worker
/// that and every other call that may block step aside first (`step_aside.rs`).
pub(crate) trait Inline: Send + Sync {
    /// Handles `input` on the calling thread when the engine is free and nothing is queued before it (so it
    /// passes nothing submitted earlier); hands it back otherwise, to be queued.
    // Handed back by value, as `Queue`'s pushes do: boxing it would allocate on every SIP PUBLISH's path.
    #[allow(clippy::result_large_err)]
    fn run_here(&self, queue: &Queue, input: Input) -> Result<(), Input>;
}

impl<S: Store + Send + Sync> Inline for Mutex<Driver<S>> {
    #[allow(clippy::result_large_err)]
    fn run_here(&self, queue: &Queue, input: Input) -> Result<(), Input> {
        let Some(mut driver) = self.try_lock() else {
            return Err(input);
        };
        // Checked while the engine is held: the engine thread takes messages only while it holds it, so what
        // is queued now is what was submitted before this input and not yet handled.
        if !queue.is_idle() {
            return Err(input);
        }
        let mut msgs = std::mem::take(&mut driver.inline);
        msgs.push(Msg::Input(input));
        driver.step(&mut msgs, false, 0);
        driver.inline = msgs;
        // The engine's thread waits for a deadline it read before this ran.
        queue.rearm(driver.next_wake());
        Ok(())
    }
}

/// The `wait`-type error for something that depended on a write the store refused.
fn not_stored(to: &Jid, about: ErrorAbout) -> StanzaError {
    StanzaError {
        to: to.clone(),
        about,
        condition: ErrorCondition::InternalServerError,
        text: Some("the server could not store this; try again later".into()),
    }
}

/// The error bouncing a stanza that could not be carried to another domain back to its local sender with
/// `condition`: `remote-server-not-found` for a domain no shell attached or no route reaches (RFC 6120 §8.3.3.17),
/// `remote-server-timeout` for one whose server could not be reached in time (§8.3.3.16, from the federation
/// shell). Only what needs an answer gets one, so nothing is lost silently: messages (never errors: no error
/// loops) from a full address and IQ requests. Presence and subscriptions are dropped (`None`), as a server whose
/// peer is unreachable would.
pub fn undeliverable(stanza: &Stanza, condition: ErrorCondition) -> Option<StanzaError> {
    let text = match condition {
        ErrorCondition::RemoteServerTimeout => {
            "the recipient's server could not be reached in time"
        }
        _ => "the recipient's domain cannot be reached from this server",
    };
    stanza.undelivered(condition, text)
}
