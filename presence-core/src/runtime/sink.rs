//! Where the engine's deliveries go, every one bounded, each with its decision at the bound.
//!
//! - A connection's own sink ([`session_channel`]): bounded in messages and in bytes (each message weighed by
//!   the text it carries), because one roster result can be hundreds of kilobytes. When it is full
//!   the connection is a slow consumer (its client stopped reading). The runtime ends the session rather than block the engine or grow memory: the
//!   receiver drains what was queued, then sees [`Ended::SlowConsumer`] and closes the stream. Senders are never
//!   held up by one slow reader.
//! - A sink shared by many sessions of one shell ([`shared_channel`], the SIP service) and the watch sink: these
//!   are the shell's own task, not a remote client, so at the bound the engine thread waits for it (back-pressure
//!   into the engine's input queue, which then refuses new work with a temporary error). The shell must never
//!   wait on the engine in turn; [`super::Handle`]'s methods never block. When the shell's thread runs the
//!   engine itself ([`super::Handle::submit_here`]), its own sinks take what that input emits past the bound
//!   (see `service_channel.rs`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Poll, Waker};

use parking_lot::Mutex;

use super::service_channel::{self, ServiceReceiver, ServiceSender};
use crate::engine::{BindError, CloseReason};
use crate::jid::FullJid;
use crate::session::SessionId;
use crate::stanza::{PresenceKind, Stanza};
use crate::watch::{WatchId, WatchState};

/// What the runtime tells one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToSession {
    /// The session is bound to this address.
    Bound(FullJid),
    /// The bind was refused.
    BindRefused(BindError),
    /// A stanza to write.
    Stanza(Stanza),
    /// The session is over; nothing follows.
    Closed(Ended),
    /// Everything submitted before the flush with this token has been handled; `durable` is false when a store
    /// commit it depended on failed (the shell must answer with an error, never with success).
    Flushed {
        /// The token given to the flush.
        token: u64,
        /// Whether everything it covered was committed.
        durable: bool,
    },
}

/// Why the runtime ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The engine ended it.
    Engine(CloseReason),
    /// Its outbound queue passed its bound: the client is not reading.
    SlowConsumer,
    /// The store failed while the session was being bound: nothing it was told is durable; try again.
    StoreFailed,
    /// The server is shutting down.
    Shutdown,
}

/// One queued message and its weight, boxed so that the queue's slots are a pointer each: a session's queue
/// keeps a few slots of capacity between messages, and unboxed (240 bytes each) they would cost an idle
/// session a kilobyte.
#[derive(Debug)]
struct Queued {
    msg: ToSession,
    weight: usize,
}

/// Slots a drained queue may keep; a burst's larger capacity is given back once it has been read.
const SLOTS_KEPT: usize = 16;

/// One session's queue, shared by its two ends. A lock and a deque rather than tokio's channel: that one
/// allocates its cache-padded state and a first block of 32 slots for every session, about a kilobyte per idle
/// connection (heap profile, issue 17), while this holds under a hundred bytes until messages wait.
#[derive(Debug)]
struct Shared {
    state: Mutex<QueueState>,
}

#[derive(Debug, Default)]
struct QueueState {
    items: VecDeque<Box<Queued>>,
    /// The weight of what is queued, against the sink's `max_bytes`.
    weight: usize,
    /// The sink overflowed: the session is a slow consumer.
    slow: bool,
    /// The sink was dropped: after what is queued, the receiver is told the session ended.
    sink_gone: bool,
    /// The receiver was dropped: nothing more is queued.
    receiver_gone: bool,
    /// The receiving task, while it waits.
    waker: Option<Waker>,
}

/// The engine's end of one session's channel.
#[derive(Debug)]
pub struct SessionSink {
    shared: Arc<Shared>,
    capacity: usize,
    max_bytes: usize,
}

/// The connection's end of its channel.
#[derive(Debug)]
pub struct SessionReceiver {
    shared: Arc<Shared>,
    told: bool,
}

/// A channel for one session that holds at most `capacity` undelivered messages weighing at most `max_bytes`
/// together (one message is always let through, however heavy, so a large roster never ends a session alone).
pub fn session_channel(capacity: usize, max_bytes: usize) -> (SessionSink, SessionReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(QueueState::default()),
    });
    (
        SessionSink {
            shared: shared.clone(),
            capacity: capacity.max(1),
            max_bytes,
        },
        SessionReceiver {
            shared,
            told: false,
        },
    )
}

/// About how many bytes a message stands for while queued: the text it carries and a fixed overhead for the
/// markup around it. An estimate on purpose: serializing to measure would cost what the queue exists to spare.
fn weight(msg: &ToSession) -> usize {
    const BASE: usize = 128;
    fn text(s: &Option<String>) -> usize {
        s.as_ref().map_or(0, String::len)
    }
    BASE + match msg {
        ToSession::Stanza(Stanza::Message { message, .. }) => {
            text(&message.body)
                + text(&message.subject)
                + text(&message.thread)
                + message.extensions.iter().map(String::len).sum::<usize>()
        }
        ToSession::Stanza(Stanza::Presence {
            kind: PresenceKind::Available(v),
            ..
        }) => text(&v.status),
        ToSession::Stanza(Stanza::Answer { answer, .. }) => answer.weight(),
        ToSession::Stanza(Stanza::Push(push)) => push.weight(),
        ToSession::Stanza(Stanza::Error(e)) => text(&e.text),
        ToSession::Stanza(Stanza::Room(r)) => r.weight(),
        _ => 0,
    }
}

/// What happened to a message handed to a session sink.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Queued.
    Ok,
    /// The receiver is gone.
    Gone,
    /// The queue was full: the sink has been ended as a slow consumer.
    Overflow,
}

impl SessionSink {
    pub(crate) fn send(&self, msg: ToSession) -> Sent {
        let w = weight(&msg);
        let mut st = self.shared.state.lock();
        if st.receiver_gone {
            return Sent::Gone;
        }
        if st.items.len() >= self.capacity || (st.weight > 0 && st.weight + w > self.max_bytes) {
            st.slow = true;
            return Sent::Overflow;
        }
        st.items.push_back(Box::new(Queued { msg, weight: w }));
        st.weight += w;
        let waker = st.waker.take();
        drop(st);
        if let Some(waker) = waker {
            waker.wake();
        }
        Sent::Ok
    }
}

impl Drop for SessionSink {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock();
        st.sink_gone = true;
        let waker = st.waker.take();
        drop(st);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// What the receiver found.
enum Took {
    Message(Box<Queued>),
    Empty,
    Ended,
}

impl SessionReceiver {
    fn end(&mut self) -> Option<ToSession> {
        if self.told {
            return None;
        }
        self.told = true;
        let slow = self.shared.state.lock().slow;
        Some(ToSession::Closed(if slow {
            Ended::SlowConsumer
        } else {
            Ended::Shutdown
        }))
    }

    /// Takes the next message; with `waker`, registers it to be woken when the queue is empty.
    fn take(&mut self, waker: Option<&Waker>) -> Took {
        let mut st = self.shared.state.lock();
        if let Some(queued) = st.items.pop_front() {
            st.weight -= queued.weight;
            if st.items.is_empty() && st.items.capacity() > SLOTS_KEPT {
                st.items = VecDeque::new();
            }
            return Took::Message(queued);
        }
        if st.sink_gone {
            return Took::Ended;
        }
        if let Some(waker) = waker
            && !st.waker.as_ref().is_some_and(|w| w.will_wake(waker))
        {
            st.waker = Some(waker.clone());
        }
        Took::Empty
    }

    /// The next message; once the runtime drops the sink, a final [`ToSession::Closed`] says why, then `None`.
    pub async fn recv(&mut self) -> Option<ToSession> {
        let took = std::future::poll_fn(|cx| match self.take(Some(cx.waker())) {
            Took::Empty => Poll::Pending,
            other => Poll::Ready(other),
        })
        .await;
        match took {
            Took::Message(m) => Some(m.msg),
            _ => self.end(),
        }
    }

    /// Like [`SessionReceiver::recv`] without waiting: `None` when nothing is queued right now.
    pub fn try_recv(&mut self) -> Option<ToSession> {
        match self.take(None) {
            Took::Message(m) => Some(m.msg),
            Took::Empty => None,
            Took::Ended => self.end(),
        }
    }
}

impl Drop for SessionReceiver {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock();
        st.receiver_gone = true;
        st.items = VecDeque::new();
        st.waker = None;
    }
}

/// The engine's end of a channel shared by many sessions (deliveries arrive tagged with their session).
#[derive(Debug, Clone)]
pub struct SharedSink {
    tx: ServiceSender<(SessionId, ToSession)>,
}

/// A channel for many sessions of one shell, bounded at `capacity`; see the module docs for the bound.
pub fn shared_channel(capacity: usize) -> (SharedSink, ServiceReceiver<(SessionId, ToSession)>) {
    let (tx, rx) = service_channel::channel(capacity);
    (SharedSink { tx }, rx)
}

impl SharedSink {
    /// Waits for room (the engine thread is not a tokio worker); `false` when the receiver is gone.
    pub(crate) fn send(&self, session: SessionId, msg: ToSession) -> bool {
        self.tx.send((session, msg))
    }
}

/// The engine's end of the watch-update channel.
#[derive(Debug, Clone)]
pub struct WatchSink {
    tx: ServiceSender<(WatchId, WatchState)>,
}

/// The channel watch updates go to, bounded at `capacity`; see the module docs for the bound.
pub fn watch_channel(capacity: usize) -> (WatchSink, ServiceReceiver<(WatchId, WatchState)>) {
    let (tx, rx) = service_channel::channel(capacity);
    (WatchSink { tx }, rx)
}

impl WatchSink {
    pub(crate) fn send(&self, watch: WatchId, state: WatchState) -> bool {
        self.tx.send((watch, state))
    }
}
