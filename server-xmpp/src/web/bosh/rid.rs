//! Request ids (XEP-0124 §14): requests are handled strictly in `rid` order. A request that arrives before
//! its predecessors waits here, as long as its rid lies within the window of `requests` ids from the next one
//! expected; one beyond the window ends the session (`item-not-found`). A repeated rid is a retransmission.

use std::collections::BTreeMap;

/// Why an arriving rid was not filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Already handled recently, or already waiting: a retransmission.
    Repeated,
    /// Beyond the window (or too far behind to be a retransmission): the session ends.
    OutOfWindow,
}

/// The window of request ids and the requests waiting in it, at most `size` of them.
#[derive(Debug)]
pub struct Window<T> {
    /// The rid handled next.
    next: u64,
    /// How many rids from `next` on are accepted.
    size: u64,
    waiting: BTreeMap<u64, T>,
}

impl<T> Window<T> {
    /// A window whose first request (the session creation request) had id `first`: `first + 1` comes next.
    pub fn new(first: u64, size: u64) -> Self {
        Window {
            next: first.saturating_add(1),
            size: size.max(1),
            waiting: BTreeMap::new(),
        }
    }

    /// Files the request with id `rid`, unless it repeats or lies out of the window (then it is handed back).
    pub fn arrive(&mut self, rid: u64, request: T) -> Result<(), (Refused, T)> {
        if self.waiting.contains_key(&rid) {
            return Err((Refused::Repeated, request));
        }
        if rid < self.next {
            // XEP-0124 §14.3: a resent request is answered again only if it is recent.
            let recent = self.next - rid <= self.size;
            let why = if recent {
                Refused::Repeated
            } else {
                Refused::OutOfWindow
            };
            return Err((why, request));
        }
        if rid - self.next >= self.size {
            return Err((Refused::OutOfWindow, request));
        }
        self.waiting.insert(rid, request);
        Ok(())
    }

    /// The next request in order, if it has arrived.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        let request = self.waiting.remove(&self.next)?;
        let rid = self.next;
        self.next += 1;
        Some((rid, request))
    }

    /// Whether the next request in order has arrived.
    pub fn ready(&self) -> bool {
        self.waiting.contains_key(&self.next)
    }

    /// Empties the window (the session ends), handing back every waiting request.
    pub fn drain(&mut self) -> impl Iterator<Item = (u64, T)> + '_ {
        std::mem::take(&mut self.waiting).into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_come_out_in_order_and_the_window_is_bounded() {
        let mut w = Window::new(100, 2);
        assert_eq!(w.arrive(102, 'b'), Ok(()));
        assert!(!w.ready(), "101 has not arrived");
        assert_eq!(w.pop(), None);
        assert_eq!(w.arrive(101, 'a'), Ok(()));
        assert_eq!(w.pop(), Some((101, 'a')));
        assert_eq!(w.pop(), Some((102, 'b')));
        assert_eq!(w.pop(), None);
        // 103 is next: 103 and 104 fit, 105 does not.
        assert_eq!(w.arrive(105, 'x'), Err((Refused::OutOfWindow, 'x')));
        assert_eq!(w.arrive(104, 'd'), Ok(()));
        assert_eq!(w.arrive(104, 'e'), Err((Refused::Repeated, 'e')));
        assert_eq!(w.arrive(102, 'b'), Err((Refused::Repeated, 'b')));
        assert_eq!(w.arrive(50, 'z'), Err((Refused::OutOfWindow, 'z')));
        assert_eq!(w.drain().collect::<Vec<_>>(), vec![(104, 'd')]);
    }
}
