//! The engine's input queue: one FIFO for everything the shells send, with a bound on work.
//!
//! Order matters across kinds (a sink must be attached before the session it serves is opened; a session's last
//! stanzas must reach the engine before its close), so control messages and work share one queue. Only work
//! counts against the bound: control messages release resources (a close, an unwatch) or come one per
//! connection (an attach), so refusing them would leak state, and the connection caps already bound them.

use std::collections::VecDeque;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::sink::{SessionSink, SharedSink, WatchSink};
use crate::engine::Input;
use crate::session::SessionId;

/// A message to the engine thread.
// Nearly every message is an input; boxing it would add an allocation per stanza to spare a rare attach.
#[allow(clippy::large_enum_variant)]
/// Told whether the commit of the batch it was answered in succeeded, and how many of this engine's commits have
/// failed so far: work queued before a receipt may have been committed in an earlier batch than the receipt's
/// (the queue was popped between them), so a sender that compares the count with the one its previous receipt
/// saw knows whether anything it sent since could have been lost.
pub(crate) type Receipt = Box<dyn FnOnce(bool, u64) + Send>;

pub(crate) enum Msg {
    /// Deliveries for `session` go to its own sink.
    Attach(SessionId, SessionSink),
    /// Deliveries for `session` go to a sink shared with other sessions.
    AttachShared(SessionId, SharedSink),
    /// Watch updates go here.
    Watches(WatchSink),
    /// An input for the engine.
    Input(Input),
    /// Answer `token` to `session` once everything before has been committed and delivered.
    Flush(SessionId, u64),
    /// Call this with the outcome of its batch's commit (`true`: durable) and the count of failed commits.
    Receipt(Receipt),
    /// A flush that waited for other shards (see `shards.rs`): answer `token` to `session` with `durable`.
    Joined(SessionId, u64, bool),
    /// A watch's input on its way to shard `to` through the shards in `then` (see `shards.rs`): pushed onto
    /// the next one's queue once this shard has let out what the inputs before it emitted, so that it arrives
    /// behind them.
    Relay {
        /// The shard the input is for.
        to: usize,
        /// The shards it passes through before, in order.
        then: Vec<usize>,
        /// A `Watch` or an `Unwatch`.
        input: Input,
    },
    /// Finish what is queued, commit, end every session, stop.
    Shutdown,
}

/// Why work was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The queue holds as much work as it may; try again later.
    #[error("the engine is busy: {limit} work items are already waiting")]
    Busy {
        /// The bound.
        limit: usize,
    },
    /// The engine has stopped (shutdown).
    #[error("the engine has stopped")]
    Stopped,
}

/// How many messages' room a queue keeps once drained (see `Queue::pop`).
const ITEMS_KEPT: usize = 1024;

struct State {
    /// Each message with whether it counts as work.
    items: VecDeque<(Msg, bool)>,
    /// Work items in `items`.
    work: usize,
    /// No more messages will be taken.
    closed: bool,
    /// The engine thread is waiting for the condvar (only then is a wake-up worth a syscall).
    sleeping: bool,
    /// Until when it waits (`None`: until a message comes).
    sleeping_until: Option<Instant>,
    /// The engine ran on another thread (see `driver::Inline`) and its next deadline must be looked at again.
    rearm: bool,
}

pub(crate) struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    capacity: usize,
}

/// What [`Queue::pop`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Popped {
    /// Messages were taken, or none were queued.
    Open,
    /// The queue is closed and empty.
    Closed,
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                work: 0,
                closed: false,
                sleeping: false,
                sleeping_until: None,
                rearm: false,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    /// Queues `msgs` as one unit of work (an input and its flush), or refuses them all.
    pub(crate) fn push_work<const N: usize>(
        &self,
        msgs: [Msg; N],
    ) -> Result<(), (SubmitError, [Msg; N])> {
        let mut st = self.state.lock();
        if st.closed {
            return Err((SubmitError::Stopped, msgs));
        }
        if st.work >= self.capacity {
            return Err((
                SubmitError::Busy {
                    limit: self.capacity,
                },
                msgs,
            ));
        }
        st.work += 1;
        st.items
            .extend(msgs.into_iter().enumerate().map(|(i, m)| (m, i == 0)));
        self.wake(st);
        Ok(())
    }

    /// Queues a stanza another shard of this node routed here, as one unit of work. Such work is already
    /// under way (a shell's input was taken and depends on it), so it may fill the queue to twice the bound
    /// shells are held to: a shard finishes what was started before it takes new work, and a burst of
    /// cross-shard fan-out does not turn into losses while shells are being refused.
    // The refused message comes back by value, as from `push_control`: this is every cross-shard stanza's path.
    #[allow(clippy::result_large_err)]
    pub(crate) fn push_routed(&self, msg: Msg) -> Result<(), (SubmitError, Msg)> {
        let mut st = self.state.lock();
        if st.closed {
            return Err((SubmitError::Stopped, msg));
        }
        if st.work >= self.capacity.saturating_mul(2) {
            return Err((
                SubmitError::Busy {
                    limit: self.capacity.saturating_mul(2),
                },
                msg,
            ));
        }
        st.work += 1;
        st.items.push_back((msg, true));
        self.wake(st);
        Ok(())
    }

    /// Queues a control message; it is never refused while the engine runs.
    // The refused message comes back by value: boxing it would allocate on a path that must stay cheap.
    #[allow(clippy::result_large_err)]
    pub(crate) fn push_control(&self, msg: Msg) -> Result<(), (SubmitError, [Msg; 1])> {
        let mut st = self.state.lock();
        if st.closed {
            return Err((SubmitError::Stopped, [msg]));
        }
        st.items.push_back((msg, false));
        self.wake(st);
        Ok(())
    }

    fn wake(&self, mut st: parking_lot::MutexGuard<'_, State>) {
        if st.sleeping {
            st.sleeping = false;
            drop(st);
            self.ready.notify_one();
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.state.lock().work >= self.capacity
    }

    /// Stops taking messages; what is queued is still handed out.
    pub(crate) fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        st.sleeping = false;
        drop(st);
        self.ready.notify_one();
    }

    /// Whether nothing is queued and messages are still taken: the engine may then take an input on the
    /// submitting thread without passing anything queued before it (see `driver::Inline`).
    pub(crate) fn is_idle(&self) -> bool {
        let st = self.state.lock();
        st.items.is_empty() && !st.closed
    }

    /// The engine ran on another thread and its next deadline is now `at` (`None`: no deadline): the engine
    /// thread looks at it again if it waits for a later one (or is about to wait).
    pub(crate) fn rearm(&self, at: Option<Instant>) {
        let Some(at) = at else { return };
        let mut st = self.state.lock();
        if st.sleeping && st.sleeping_until.is_some_and(|until| until <= at) {
            return;
        }
        st.rearm = true;
        self.wake(st);
    }

    /// Waits until a message is queued, the queue closes, `deadline` passes (never with `None`) or the
    /// engine's deadline moved ([`Queue::rearm`]). Takes nothing: the engine thread takes the batch once it
    /// holds the engine ([`Queue::take`]).
    pub(crate) fn wait(&self, deadline: Option<Instant>) {
        let mut st = self.state.lock();
        while st.items.is_empty() && !st.closed && !st.rearm {
            st.sleeping = true;
            st.sleeping_until = deadline;
            match deadline {
                Some(at) => {
                    if self.ready.wait_until(&mut st, at).timed_out() {
                        st.sleeping = false;
                        break;
                    }
                }
                None => self.ready.wait(&mut st),
            }
        }
        st.rearm = false;
    }

    /// Takes up to `max` messages into `out` without waiting, and past `max` any receipts right behind the
    /// last one taken: a receipt is answered with the outcome of the batch it lands in, so it must land in the
    /// batch of what was pushed with it (`push_work`). Returns the depth left behind with the outcome.
    pub(crate) fn take(&self, max: usize, out: &mut Vec<Msg>) -> (Popped, usize) {
        let mut st = self.state.lock();
        if st.items.is_empty() {
            let popped = if st.closed {
                Popped::Closed
            } else {
                Popped::Open
            };
            return (popped, st.work);
        }
        let mut n = st.items.len().min(max);
        while n < st.items.len() && matches!(st.items[n].0, Msg::Receipt(_)) {
            n += 1;
        }
        let mut taken_work = 0;
        for (msg, work) in st.items.drain(..n) {
            taken_work += usize::from(work);
            out.push(msg);
        }
        st.work -= taken_work;
        if st.items.is_empty() && st.items.capacity() > ITEMS_KEPT {
            // A burst (sign-ins broadcasting presence across shards) grows the queue to megabytes that would
            // otherwise stay allocated for good; the next burst grows it again.
            st.items.shrink_to(ITEMS_KEPT);
        }
        (Popped::Open, st.work)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::Input;

    fn tick() -> Msg {
        Msg::Input(Input::RoomsLoadFailed)
    }

    #[test]
    fn a_batch_never_parts_a_receipt_from_what_was_pushed_with_it() {
        let queue = Queue::new(16);
        assert!(queue.push_work([tick()]).is_ok());
        assert!(
            queue
                .push_work([tick(), Msg::Receipt(Box::new(|_, _| {}))])
                .is_ok()
        );
        assert!(queue.push_work([tick()]).is_ok());
        let mut out = Vec::new();
        // A limit of two would end the batch between the second input and its receipt.
        queue.wait(None);
        let (_, left) = queue.take(2, &mut out);
        assert_eq!(out.len(), 3);
        assert!(matches!(out[2], Msg::Receipt(_)));
        assert_eq!(
            left, 1,
            "the input behind the receipt waits for the next batch"
        );
    }

    #[test]
    fn a_deadline_moved_by_another_thread_ends_the_wait() {
        let queue = Arc::new(Queue::new(16));
        // Moved before the engine thread waits: it does not wait at all.
        queue.rearm(Some(Instant::now()));
        queue.wait(None);
        // Moved while it waits for nothing: it wakes to look at the new deadline.
        let waiter = {
            let queue = queue.clone();
            std::thread::spawn(move || queue.wait(None))
        };
        while !queue.state.lock().sleeping {
            std::thread::yield_now();
        }
        queue.rearm(Some(Instant::now()));
        waiter.join().expect("the wait ends");
    }

    #[test]
    fn a_later_deadline_does_not_wake_a_waiting_engine() {
        let queue = Arc::new(Queue::new(16));
        let soon = Instant::now() + std::time::Duration::from_millis(50);
        let waiter = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                queue.wait(Some(soon));
                Instant::now()
            })
        };
        while !queue.state.lock().sleeping {
            std::thread::yield_now();
        }
        queue.rearm(Some(soon + std::time::Duration::from_secs(60)));
        assert!(!queue.state.lock().rearm, "nothing to look at again");
        assert!(waiter.join().expect("the wait ends") >= soon);
    }

    #[test]
    fn a_queue_with_messages_or_closed_is_not_idle() {
        let queue = Queue::new(16);
        assert!(queue.is_idle());
        assert!(queue.push_work([tick()]).is_ok());
        assert!(!queue.is_idle());
        let mut out = Vec::new();
        assert_eq!(queue.take(16, &mut out), (Popped::Open, 0));
        assert!(queue.is_idle());
        queue.close();
        assert!(!queue.is_idle());
        assert_eq!(queue.take(16, &mut out).0, Popped::Closed);
    }
}
