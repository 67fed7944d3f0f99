//! What a shell holds to reach the engine. No method blocks or awaits: work is queued or refused at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::admission::Admission;
use super::cluster::{Cluster, Location};
use super::driver::Inline;
use super::metrics::Metrics;
use super::queue::{Msg, Queue, SubmitError};
use super::shards::{Dest, Router};
use super::sink::{SessionSink, SharedSink, WatchSink};
use crate::Input;
use crate::jid::BareJid;
use crate::session::SessionId;
use crate::stanza::{Broadcast, Stanza};

/// Work the engine did not take: why, and the input itself, handed back.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Rejected {
    /// Why.
    pub error: SubmitError,
    /// The input, to answer or retry.
    pub input: Box<Input>,
}

/// Closes the queues when the last handle is dropped, so the engine threads end with their users.
#[derive(Debug)]
struct Alive(Vec<Arc<Queue>>);

impl Drop for Alive {
    fn drop(&mut self) {
        for queue in &self.0 {
            queue.close();
        }
    }
}

/// A shell's way into a running engine. Cloning is cheap; the engine stops when every clone is gone.
#[derive(Clone)]
pub struct Handle {
    /// The engine's queue (shard 0's when there are several).
    queue: Arc<Queue>,
    /// With several shards: which one each input goes to (see `shards.rs`).
    router: Option<Arc<Router>>,
    /// Each shard's engine, to run an input on the submitting thread ([`Handle::submit_here`]).
    inline: Arc<[Weak<dyn Inline>]>,
    _alive: Arc<Alive>,
    next_session: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    admission: Arc<Admission>,
    cluster: Option<Arc<dyn Cluster>>,
    domains: Arc<super::domains::Domains>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

impl Handle {
    pub(crate) fn new(
        queue: Arc<Queue>,
        router: Option<Arc<Router>>,
        inline: Arc<[Weak<dyn Inline>]>,
        metrics: Arc<Metrics>,
        admission: Arc<Admission>,
        cluster: Option<Arc<dyn Cluster>>,
        domains: Arc<super::domains::Domains>,
    ) -> Self {
        let queues = match &router {
            Some(r) => r.queues().to_vec(),
            None => vec![queue.clone()],
        };
        Handle {
            cluster,
            domains,
            _alive: Arc::new(Alive(queues)),
            router,
            inline,
            queue,
            next_session: Arc::new(AtomicU64::new(1)),
            metrics,
            admission,
        }
    }

    /// A session id no other session of this engine has had, whichever shell asks.
    pub fn new_session(&self) -> SessionId {
        SessionId(self.next_session.fetch_add(1, Ordering::Relaxed))
    }

    /// Queues an input. Inputs that release state (closing a session, ending a watch) are never refused while
    /// the engine runs; everything else is refused with [`SubmitError::Busy`] when the queue is at its bound,
    /// and handed back so the shell can answer it (the answer is only built then, never on the hot path).
    pub fn submit(&self, input: Input) -> Result<(), Rejected> {
        self.submit_on(input, false)
    }

    /// As [`Handle::submit`], but when the engine that serves `input` has nothing queued and is not running,
    /// the input is handled on the calling thread (and committed there), and what it emits is let out from here
    /// too, without waking the engine's thread and then the recipients' worker. Ordering is as with `submit`:
    /// nothing this thread submitted before is passed.
    ///
    /// Whatever may block in that run (a store call, a shell's full sink) steps off the thread first when it is
    /// a worker of a multi-threaded tokio runtime (`block_in_place`), so an I/O worker may call this: a client's
    /// stanza that needs no store is then read, handled, delivered and written on one thread. On any other
    /// thread (a shell's service thread, such as the SIP service's) the run blocks in place.
    ///
    /// Inputs that usually load or write (opening a session) are better queued with `submit`: the engine's
    /// thread takes many of them in one batch, one store round trip for all.
    pub fn submit_here(&self, input: Input) -> Result<(), Rejected> {
        self.submit_on(input, true)
    }

    fn submit_on(&self, input: Input, here: bool) -> Result<(), Rejected> {
        let Some(router) = &self.router else {
            return self.submit_to(0, &self.queue, input, here);
        };
        let input = match input {
            Input::FromRemoteBroadcast(b) => return self.submit_broadcast(router, b, here),
            input => input,
        };
        match router.dest(&input) {
            Dest::Nowhere => Ok(()),
            Dest::All => {
                for queue in router.queues() {
                    let _ = queue.push_control(Msg::Input(input.clone()));
                }
                Ok(())
            }
            Dest::Shard(shard, before) => {
                let queue = router.queue(shard);
                let here = here && before.is_empty();
                for msg in before {
                    let _ = queue.push_control(msg);
                }
                self.submit_to(shard, queue, input, here)
            }
            Dest::Via { vias, shard, ask } => self.submit_via(router, vias, shard, ask, input),
        }
    }

    /// Queues each shard's part of a broadcast (its own users) on that shard; a part refused is handed back (the
    /// last, if several are).
    fn submit_broadcast(&self, router: &Router, b: Broadcast, here: bool) -> Result<(), Rejected> {
        let mut result = Ok(());
        for (shard, part) in router.split(b) {
            let part = Input::FromRemoteBroadcast(part);
            if let Err(e) = self.submit_to(shard, router.queue(shard), part, here) {
                result = Err(e);
            }
        }
        result
    }

    /// Queues a watch's input to be relayed to `shard` through the shards in `vias` (see `shards.rs`), behind
    /// `ask` on the shard given with it: the relay and the request it follows are one unit of work when the
    /// first shard of the way is the one that asks.
    fn submit_via(
        &self,
        router: &Router,
        vias: Vec<usize>,
        shard: usize,
        ask: Option<(usize, Box<Input>)>,
        input: Input,
    ) -> Result<(), Rejected> {
        let first = vias[0];
        let control = matches!(input, Input::Unwatch { .. });
        let relay = Msg::Relay {
            to: shard,
            then: vias[1..].to_vec(),
            input,
        };
        let queue = router.queue(first);
        let result = match ask {
            Some((asker, ask)) if asker == first => queue
                .push_work([Msg::Input(*ask), relay])
                .map_err(|(e, [_, relay])| (e, relay)),
            other => {
                // A replacement taking the way of the watch it replaces: the asking shard is further along it,
                // so its request is queued now, before the relay can reach it.
                if let Some((asker, ask)) = other {
                    let _ = router.queue(asker).push_control(Msg::Input(*ask));
                }
                if control {
                    queue.push_control(relay).map_err(|(e, [relay])| (e, relay))
                } else {
                    queue.push_work([relay]).map_err(|(e, [relay])| (e, relay))
                }
            }
        };
        self.count_busy(result).map_err(|(error, msg)| {
            let Msg::Relay { input, .. } = msg else {
                unreachable!("what was pushed comes back")
            };
            Rejected {
                error,
                input: Box::new(input),
            }
        })
    }

    fn submit_to(
        &self,
        shard: usize,
        queue: &Queue,
        input: Input,
        here: bool,
    ) -> Result<(), Rejected> {
        let engine = here.then(|| self.inline.get(shard).and_then(Weak::upgrade));
        let input = match engine.flatten() {
            Some(engine) => match engine.run_here(queue, input) {
                Ok(()) => return Ok(()),
                Err(input) => input,
            },
            None => input,
        };
        let result = match input {
            Input::CloseSession { .. } | Input::Unwatch { .. } => {
                queue.push_control(Msg::Input(input))
            }
            _ => queue.push_work([Msg::Input(input)]),
        };
        self.count_busy(result).map_err(|(error, msg)| {
            let [Msg::Input(input)] = msg else {
                unreachable!("what was pushed comes back")
            };
            Rejected {
                error,
                input: Box::new(input),
            }
        })
    }

    /// Queues an input and, right behind it, a flush: `session` gets
    /// [`super::ToSession::Flushed`]`{ token, .. }` once the input and everything before it have been handled,
    /// committed and delivered. Both are queued or neither.
    pub fn submit_and_flush(
        &self,
        input: Input,
        session: SessionId,
        token: u64,
    ) -> Result<(), SubmitError> {
        let input = match (input, &self.router) {
            // Split by shard as `submit` does; the flush then covers what the session's shard took.
            (Input::FromRemoteBroadcast(b), Some(router)) => {
                self.submit_broadcast(router, b, false)
                    .map_err(|r| r.error)?;
                let shard = router.session_shard(session).unwrap_or(0);
                return router
                    .queue(shard)
                    .push_control(Msg::Flush(session, token))
                    .map_err(|(e, _)| e);
            }
            (input, _) => input,
        };
        let queue = match &self.router {
            None => &self.queue,
            Some(router) => {
                let shard = match router.dest(&input) {
                    Dest::Shard(shard, before) => {
                        for msg in before {
                            let _ = router.queue(shard).push_control(msg);
                        }
                        shard
                    }
                    // Not an input of one shard: the flush goes where the session's deliveries go.
                    Dest::All | Dest::Nowhere => router.session_shard(session).unwrap_or(0),
                    // A relayed watch input: the flush follows it onto the first shard of its way, which
                    // joins the shards it relays to before answering. Queued as a control message once the
                    // relay was taken, so both are queued or neither.
                    Dest::Via { vias, shard, ask } => {
                        let first = vias[0];
                        self.submit_via(router, vias, shard, ask, input)
                            .map_err(|r| r.error)?;
                        return router
                            .queue(first)
                            .push_control(Msg::Flush(session, token))
                            .map_err(|(e, _)| e);
                    }
                };
                router.queue(shard)
            }
        };
        let result = queue.push_work([Msg::Input(input), Msg::Flush(session, token)]);
        self.count_busy(result).map_err(|(e, _)| e)
    }

    fn count_busy<T>(&self, result: Result<(), (SubmitError, T)>) -> Result<(), (SubmitError, T)> {
        if let Err((SubmitError::Busy { .. }, _)) = result {
            self.metrics.engine_busy();
        }
        result
    }

    /// Queues a stanza another node sent here (`Input::FromRemote`) and, right behind it, `receipt`, called on
    /// the engine thread with whether the stanza and everything before it were committed (`true`) or not. A
    /// refused stanza's receipt is never called: the caller answers the sender itself.
    pub fn submit_remote(
        &self,
        stanza: Stanza,
        receipt: impl FnOnce(bool) + Send + 'static,
    ) -> Result<(), SubmitError> {
        let queue = match &self.router {
            None => &self.queue,
            Some(router) => router.stanza_queue(&stanza),
        };
        let result = queue.push_work([
            Msg::Input(Input::FromRemote(stanza)),
            // Answered with the outcome of the batch it lands in, which is its stanza's: a batch never ends
            // between the two (`Queue::pop`).
            Msg::Receipt(Box::new(move |durable, _| receipt(durable))),
        ]);
        self.count_busy(result).map_err(|(e, _)| e)
    }

    /// Queues room traffic another node sent here (`Input::FromRemoteRoom`) and, right behind it, `receipt`,
    /// as [`Handle::submit_remote`] does for stanzas.
    pub fn submit_remote_room(
        &self,
        traffic: crate::engine::RoomTraffic,
        receipt: impl FnOnce(bool) + Send + 'static,
    ) -> Result<(), SubmitError> {
        let queue = match &self.router {
            None => &self.queue,
            Some(router) => router.room_queue(traffic.room()),
        };
        let result = queue.push_work([
            Msg::Input(Input::FromRemoteRoom(Box::new(traffic))),
            // Answered with the outcome of the batch it lands in, which is its stanza's: a batch never ends
            // between the two (`Queue::pop`).
            Msg::Receipt(Box::new(move |durable, _| receipt(durable))),
        ]);
        self.count_busy(result).map_err(|(e, _)| e)
    }

    /// Queues a change of room placement (`Input::RoomPlacement`); never refused while the engine runs, as it
    /// releases state.
    pub fn room_placement(&self, nodes: Vec<String>, served: Vec<String>) {
        self.to_every_shard(|| {
            Msg::Input(Input::RoomPlacement {
                nodes: nodes.clone(),
                served: served.clone(),
            })
        });
    }

    /// Queues a control message on every shard's queue (the one engine's, without shards).
    fn to_every_shard(&self, msg: impl Fn() -> Msg) {
        match &self.router {
            None => {
                let _ = self.queue.push_control(msg());
            }
            Some(router) => {
                for queue in router.queues() {
                    let _ = queue.push_control(msg());
                }
            }
        }
    }

    /// Queues a placement change (`Input::Rehome`); never refused while the engine runs, as it releases state.
    pub fn rehome(&self, users: Vec<BareJid>, here: bool) {
        self.to_every_shard(|| {
            Msg::Input(Input::Rehome {
                users: users.clone(),
                here,
            })
        });
    }

    /// Carries stanzas for `domain` (not a local one) to `sink` until the returned guard drops: how an XMPP
    /// component (XEP-0114) receives what is addressed to it. A domain has one sink at a time.
    pub fn attach_domain(
        &self,
        domain: &str,
        sink: Arc<dyn super::domains::DomainSink>,
    ) -> Result<super::domains::Attached, super::domains::DomainTaken> {
        self.domains.attach(domain, sink)
    }

    /// Carries stanzas for every domain that is neither local nor attached by name to `sink`, until the returned
    /// guard drops: how federation takes what is for servers it finds by DNS.
    pub fn attach_other_domains(
        &self,
        sink: Arc<dyn super::domains::DomainSink>,
    ) -> Result<super::domains::Attached, super::domains::DomainTaken> {
        self.domains.attach_others(sink)
    }

    /// Where `user` is served: always [`Location::Here`] outside a cluster.
    pub fn locate(&self, user: &BareJid) -> Location {
        match &self.cluster {
            Some(c) => c.locate(user),
            None => Location::Here,
        }
    }

    /// Deliveries for `session` go to `sink` (attach before opening the session).
    pub fn attach(&self, session: SessionId, sink: SessionSink) -> Result<(), SubmitError> {
        if let Some(router) = &self.router {
            return router.attach(session, Msg::Attach(session, sink));
        }
        self.queue
            .push_control(Msg::Attach(session, sink))
            .map_err(|(e, _)| e)
    }

    /// Deliveries for `session` go to a sink shared with other sessions of the same shell.
    pub fn attach_shared(&self, session: SessionId, sink: SharedSink) -> Result<(), SubmitError> {
        if let Some(router) = &self.router {
            return router.attach(session, Msg::AttachShared(session, sink));
        }
        self.queue
            .push_control(Msg::AttachShared(session, sink))
            .map_err(|(e, _)| e)
    }

    /// Watch updates go to `sink` (one per engine: the shell that owns watches; every shard gets a clone).
    pub fn watches(&self, sink: WatchSink) -> Result<(), SubmitError> {
        if let Some(router) = &self.router {
            for queue in router.queues() {
                queue
                    .push_control(Msg::Watches(sink.clone()))
                    .map_err(|(e, _)| e)?;
            }
            return Ok(());
        }
        self.queue
            .push_control(Msg::Watches(sink))
            .map_err(|(e, _)| e)
    }

    /// Tells the engine a session's connection is gone; never refused while the engine runs.
    pub fn close(&self, session: SessionId) {
        let _ = self.submit(Input::CloseSession { session });
    }

    /// Asks the engine to finish what is queued, commit, end every session and stop.
    pub fn shutdown(&self) {
        self.to_every_shard(|| Msg::Shutdown);
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The process's connection caps.
    pub fn admission(&self) -> &Arc<Admission> {
        &self.admission
    }

    /// Whether the engine's queue holds as much work as it may (a shell can refuse a request before starting
    /// work that would need several inputs).
    pub fn is_busy(&self) -> bool {
        match &self.router {
            None => self.queue.is_full(),
            Some(router) => router.queues().iter().any(|q| q.is_full()),
        }
    }
}
