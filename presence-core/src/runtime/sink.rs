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
//!   wait on the engine in turn; [`super::Handle`]'s methods never block.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

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

const ENDED_SHUTDOWN: u8 = 0;
const ENDED_SLOW: u8 = 1;

/// One queued message and its weight, boxed: tokio's channel allocates its slots 32 at a time, so an unboxed
/// `ToSession` (240 bytes) cost every session 8 KiB of slots from its first message on, idle or not — a
/// quarter of an idle connection's memory (heap profile, issue 17). Boxed, the slots take 256 bytes, and each
/// message one small allocation.
#[derive(Debug)]
struct Queued {
    msg: ToSession,
    weight: usize,
}

/// The engine's end of one session's channel.
#[derive(Debug)]
pub struct SessionSink {
    tx: mpsc::Sender<Box<Queued>>,
    ended: Arc<AtomicU8>,
    /// The weight of what is queued, against `max_bytes`.
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The connection's end of its channel.
#[derive(Debug)]
pub struct SessionReceiver {
    rx: mpsc::Receiver<Box<Queued>>,
    ended: Arc<AtomicU8>,
    queued: Arc<AtomicUsize>,
    told: bool,
}

/// A channel for one session that holds at most `capacity` undelivered messages weighing at most `max_bytes`
/// together (one message is always let through, however heavy, so a large roster never ends a session alone).
pub fn session_channel(capacity: usize, max_bytes: usize) -> (SessionSink, SessionReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let ended = Arc::new(AtomicU8::new(ENDED_SHUTDOWN));
    let queued = Arc::new(AtomicUsize::new(0));
    (
        SessionSink {
            tx,
            ended: ended.clone(),
            queued: queued.clone(),
            max_bytes,
        },
        SessionReceiver {
            rx,
            ended,
            queued,
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
        let queued = self.queued.load(Ordering::Acquire);
        if queued > 0 && queued + w > self.max_bytes {
            self.ended.store(ENDED_SLOW, Ordering::Release);
            return Sent::Overflow;
        }
        match self.tx.try_send(Box::new(Queued { msg, weight: w })) {
            Ok(()) => {
                self.queued.fetch_add(w, Ordering::AcqRel);
                Sent::Ok
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Sent::Gone,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.ended.store(ENDED_SLOW, Ordering::Release);
                Sent::Overflow
            }
        }
    }
}

impl SessionReceiver {
    fn end(&mut self) -> Option<ToSession> {
        if self.told {
            return None;
        }
        self.told = true;
        Some(ToSession::Closed(
            match self.ended.load(Ordering::Acquire) {
                ENDED_SLOW => Ended::SlowConsumer,
                _ => Ended::Shutdown,
            },
        ))
    }

    fn took(&self, queued: Box<Queued>) -> ToSession {
        self.queued.fetch_sub(queued.weight, Ordering::AcqRel);
        queued.msg
    }

    /// The next message; once the runtime drops the sink, a final [`ToSession::Closed`] says why, then `None`.
    pub async fn recv(&mut self) -> Option<ToSession> {
        match self.rx.recv().await {
            Some(m) => Some(self.took(m)),
            None => self.end(),
        }
    }

    /// Like [`SessionReceiver::recv`] without waiting: `None` when nothing is queued right now.
    pub fn try_recv(&mut self) -> Option<ToSession> {
        match self.rx.try_recv() {
            Ok(m) => Some(self.took(m)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => self.end(),
        }
    }
}

/// The engine's end of a channel shared by many sessions (deliveries arrive tagged with their session).
#[derive(Debug, Clone)]
pub struct SharedSink {
    tx: mpsc::Sender<(SessionId, ToSession)>,
}

/// A channel for many sessions of one shell, bounded at `capacity`; see the module docs for the bound.
pub fn shared_channel(capacity: usize) -> (SharedSink, mpsc::Receiver<(SessionId, ToSession)>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (SharedSink { tx }, rx)
}

impl SharedSink {
    /// Waits for room (the engine thread is not a tokio worker); `false` when the receiver is gone.
    pub(crate) fn send(&self, session: SessionId, msg: ToSession) -> bool {
        self.tx.blocking_send((session, msg)).is_ok()
    }
}

/// The engine's end of the watch-update channel.
#[derive(Debug, Clone)]
pub struct WatchSink {
    tx: mpsc::Sender<(WatchId, WatchState)>,
}

/// The channel watch updates go to, bounded at `capacity`; see the module docs for the bound.
pub fn watch_channel(capacity: usize) -> (WatchSink, mpsc::Receiver<(WatchId, WatchState)>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (WatchSink { tx }, rx)
}

impl WatchSink {
    pub(crate) fn send(&self, watch: WatchId, state: WatchState) -> bool {
        self.tx.blocking_send((watch, state)).is_ok()
    }
}
