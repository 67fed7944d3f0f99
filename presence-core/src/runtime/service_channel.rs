//! The channel from the engine into a shell's own service thread (the SIP service's deliveries and watch
//! updates): bounded, and at the bound a sender waits for room — except on the receiving thread itself.
//!
//! That exception exists because the service thread may run the engine itself ([`super::Handle::submit_here`]):
//! a sender that waited there would wait for itself. What it adds past the bound is what one input emitted
//! (bounded by the engine's own limits: watchers per user, sessions per user), and the service drains it as soon
//! as the input returns. Every other sender (an engine thread) is held at the bound, which is back-pressure into
//! the engine's input queue as before.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::ThreadId;

use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use super::step_aside::may_block;

/// Room a drained channel keeps.
const SLOTS_KEPT: usize = 1024;

struct State<T> {
    items: VecDeque<T>,
    /// Senders still alive; at none (and nothing queued) the receiver sees the end.
    senders: usize,
    /// The receiver was dropped: sends fail.
    receiver_gone: bool,
    /// The thread that last took from the channel: a sender on it never waits.
    receiving_thread: Option<ThreadId>,
    /// A sender waits for room (only then is a wake-up worth a syscall).
    waiting: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    /// Signalled when room is made or the receiver goes.
    room: Condvar,
    /// Wakes the receiving task.
    ready: Notify,
}

/// The sending end (cloned for each sender).
pub(crate) struct ServiceSender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving end, for one task.
pub struct ServiceReceiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> std::fmt::Debug for ServiceSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSender").finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for ServiceReceiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceReceiver").finish_non_exhaustive()
    }
}

/// A channel holding up to `capacity` items for senders that may wait; made on the thread that will receive.
pub(crate) fn channel<T>(capacity: usize) -> (ServiceSender<T>, ServiceReceiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            senders: 1,
            receiver_gone: false,
            // Until the receiver takes, the thread that made the channel: a service makes its channels on its
            // own thread.
            receiving_thread: Some(std::thread::current().id()),
            waiting: false,
        }),
        capacity: capacity.max(1),
        room: Condvar::new(),
        ready: Notify::new(),
    });
    (
        ServiceSender {
            shared: shared.clone(),
        },
        ServiceReceiver { shared },
    )
}

impl<T> ServiceSender<T> {
    /// Queues `item`, waiting for room at the bound unless called on the receiving thread; `false` when the
    /// receiver is gone.
    pub(crate) fn send(&self, item: T) -> bool {
        let mut st = self.shared.state.lock();
        let here = st.receiving_thread == Some(std::thread::current().id());
        if !here && !st.receiver_gone && st.items.len() >= self.shared.capacity {
            // An I/O worker running the engine inline steps aside before it waits.
            st = may_block(|| {
                while !st.receiver_gone && st.items.len() >= self.shared.capacity {
                    st.waiting = true;
                    self.shared.room.wait(&mut st);
                }
                st
            });
        }
        if st.receiver_gone {
            return false;
        }
        st.items.push_back(item);
        drop(st);
        self.shared.ready.notify_one();
        true
    }
}

impl<T> Clone for ServiceSender<T> {
    fn clone(&self) -> Self {
        self.shared.state.lock().senders += 1;
        ServiceSender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for ServiceSender<T> {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock();
        st.senders -= 1;
        let last = st.senders == 0;
        drop(st);
        if last {
            self.shared.ready.notify_one();
        }
    }
}

impl<T> ServiceReceiver<T> {
    /// Waits for items and moves up to `max` of them into `out`; 0 once every sender is gone and nothing is
    /// left.
    pub async fn recv_many(&mut self, out: &mut Vec<T>, max: usize) -> usize {
        loop {
            // A notification given between the look below and the wait is kept as a permit by `Notify`.
            let notified = self.shared.ready.notified();
            let (n, closed) = self.take(out, max);
            if n > 0 || closed {
                return n;
            }
            notified.await;
        }
    }

    /// Waits for the next item; `None` once every sender is gone and nothing is left.
    pub async fn recv(&mut self) -> Option<T> {
        let mut one = Vec::with_capacity(1);
        self.recv_many(&mut one, 1).await;
        one.pop()
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Option<T> {
        let mut one = Vec::with_capacity(1);
        self.take(&mut one, 1);
        one.pop()
    }

    /// Whether every sender is gone and nothing is left.
    pub fn is_closed(&self) -> bool {
        let st = self.shared.state.lock();
        st.senders == 0 && st.items.is_empty()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.shared.state.lock().items.is_empty()
    }

    /// Moves up to `max` items into `out`: how many, and whether the channel is closed (every sender gone and
    /// nothing left), both read under the one lock.
    fn take(&self, out: &mut Vec<T>, max: usize) -> (usize, bool) {
        let mut st = self.shared.state.lock();
        st.receiving_thread = Some(std::thread::current().id());
        let n = st.items.len().min(max);
        out.extend(st.items.drain(..n));
        if st.items.is_empty() && st.items.capacity() > SLOTS_KEPT {
            // A burst (a fan-out to every watcher) would otherwise keep its room for good.
            st.items.shrink_to(SLOTS_KEPT);
        }
        let closed = st.senders == 0 && st.items.is_empty();
        if n > 0 && std::mem::take(&mut st.waiting) {
            drop(st);
            self.shared.room.notify_all();
        }
        (n, closed)
    }
}

impl<T> Drop for ServiceReceiver<T> {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock();
        st.receiver_gone = true;
        st.items.clear();
        drop(st);
        self.shared.room.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn items_arrive_in_order_and_the_end_is_seen_once_senders_are_gone() {
        let (tx, mut rx) = channel(4);
        let tx2 = tx.clone();
        assert!(tx.send(1));
        assert!(tx2.send(2));
        drop(tx);
        assert!(tx2.send(3));
        drop(tx2);
        let mut out = Vec::new();
        assert_eq!(rx.recv_many(&mut out, 2).await, 2);
        assert_eq!(rx.recv().await, Some(3));
        assert!(rx.is_closed());
        assert_eq!(rx.recv_many(&mut out, 8).await, 0);
        assert_eq!(out, vec![1, 2]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn another_thread_waits_at_the_bound_until_room_is_made() {
        let (tx, mut rx) = channel(2);
        let sender = std::thread::spawn(move || (0..5).all(|i| tx.send(i)));
        let mut got = Vec::new();
        while got.len() < 5 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(rx.shared.state.lock().items.len() <= 2, "held at the bound");
            rx.recv_many(&mut got, 8).await;
        }
        assert!(sender.join().expect("the sender ends"));
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_receiving_thread_is_never_held_at_the_bound() {
        let (tx, mut rx) = channel(2);
        // Past the bound on the receiving thread (as when it ran the engine itself): nothing waits.
        assert!((0..5).all(|i| tx.send(i)));
        let mut got = Vec::new();
        assert_eq!(rx.recv_many(&mut got, 8).await, 5);
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_waiting_sender_fails_once_the_receiver_is_gone() {
        let (tx, rx) = channel(1);
        assert!(tx.send(0));
        let sender = std::thread::spawn(move || tx.send(1));
        std::thread::sleep(Duration::from_millis(20));
        drop(rx);
        assert!(!sender.join().expect("the sender ends"));
    }
}
