//! What a shell holds to reach the engine. No method blocks or awaits: work is queued or refused at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::admission::Admission;
use super::cluster::{Cluster, Location};
use super::metrics::Metrics;
use super::queue::{Msg, Queue, SubmitError};
use super::sink::{SessionSink, SharedSink, WatchSink};
use crate::Input;
use crate::jid::BareJid;
use crate::session::SessionId;
use crate::stanza::Stanza;

/// Work the engine did not take: why, and the input itself, handed back.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Rejected {
    /// Why.
    pub error: SubmitError,
    /// The input, to answer or retry.
    pub input: Box<Input>,
}

/// Closes the queue when the last handle is dropped, so the engine thread ends with its users.
#[derive(Debug)]
struct Alive(Arc<Queue>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A shell's way into a running engine. Cloning is cheap; the engine stops when every clone is gone.
#[derive(Clone)]
pub struct Handle {
    queue: Arc<Queue>,
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
        metrics: Arc<Metrics>,
        admission: Arc<Admission>,
        cluster: Option<Arc<dyn Cluster>>,
        domains: Arc<super::domains::Domains>,
    ) -> Self {
        Handle {
            cluster,
            domains,
            _alive: Arc::new(Alive(queue.clone())),
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
        let result = match input {
            Input::CloseSession { .. } | Input::Unwatch { .. } => {
                self.queue.push_control(Msg::Input(input))
            }
            _ => self.queue.push_work([Msg::Input(input)]),
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
        let result = self
            .queue
            .push_work([Msg::Input(input), Msg::Flush(session, token)]);
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
        let result = self.queue.push_work([
            Msg::Input(Input::FromRemote(stanza)),
            Msg::Receipt(Box::new(receipt)),
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
        let result = self.queue.push_work([
            Msg::Input(Input::FromRemoteRoom(Box::new(traffic))),
            Msg::Receipt(Box::new(receipt)),
        ]);
        self.count_busy(result).map_err(|(e, _)| e)
    }

    /// Queues a change of room placement (`Input::RoomPlacement`); never refused while the engine runs, as it
    /// releases state.
    pub fn room_placement(&self, nodes: Vec<String>, served: Vec<String>) {
        let _ = self
            .queue
            .push_control(Msg::Input(Input::RoomPlacement { nodes, served }));
    }

    /// Queues a placement change (`Input::Rehome`); never refused while the engine runs, as it releases state.
    pub fn rehome(&self, users: Vec<BareJid>, here: bool) {
        let _ = self
            .queue
            .push_control(Msg::Input(Input::Rehome { users, here }));
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
        self.queue
            .push_control(Msg::Attach(session, sink))
            .map_err(|(e, _)| e)
    }

    /// Deliveries for `session` go to a sink shared with other sessions of the same shell.
    pub fn attach_shared(&self, session: SessionId, sink: SharedSink) -> Result<(), SubmitError> {
        self.queue
            .push_control(Msg::AttachShared(session, sink))
            .map_err(|(e, _)| e)
    }

    /// Watch updates go to `sink` (one per engine: the shell that owns watches).
    pub fn watches(&self, sink: WatchSink) -> Result<(), SubmitError> {
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
        let _ = self.queue.push_control(Msg::Shutdown);
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
        self.queue.is_full()
    }
}
