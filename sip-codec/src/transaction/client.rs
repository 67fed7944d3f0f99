//! Client non-INVITE transaction (RFC 3261 §17.1.2, Figure 6).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Event, Input, Output, State, Timers};
use crate::message::Request;

/// Sends one non-INVITE request, retransmits it over unreliable transports (Timer E),
/// gives up after Timer F and absorbs response retransmissions for Timer K.
#[derive(Debug)]
pub struct ClientNonInvite {
    state: State,
    timers: Timers,
    reliable: bool,
    request: Bytes,
    interval: Duration,
    timer_e: Option<Instant>,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
    out: VecDeque<Output>,
}

impl ClientNonInvite {
    /// Starts the transaction at `now`: the request is queued for sending at once.
    pub fn new(now: Instant, request: &Request, reliable: bool, timers: Timers) -> Self {
        // Written straight from the borrowed request: wrapping it in a `Message` would copy every header first.
        let mut bytes = Vec::with_capacity(512 + request.body.len());
        request.write_to(&mut bytes);
        Self::from_wire(now, bytes.into(), reliable, timers)
    }

    /// Starts the transaction at `now` for a request already in its wire form (a caller that writes its
    /// requests directly, without a [`Request`] value).
    pub fn from_wire(now: Instant, bytes: Bytes, reliable: bool, timers: Timers) -> Self {
        let mut out = VecDeque::new();
        out.push_back(Output::Transmit(bytes.clone()));
        ClientNonInvite {
            state: State::Trying,
            timers,
            reliable,
            request: bytes,
            interval: timers.t1,
            timer_e: (!reliable).then(|| now + timers.t1),
            timer_f: Some(now + timers.t1 * 64),
            timer_k: None,
            out,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Feeds an input observed at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Timer => self.fire_timers(now),
            Input::Response(resp) => match self.state {
                State::Trying | State::Proceeding if resp.status < 200 => {
                    self.state = State::Proceeding;
                    self.out.push_back(Output::Event(Event::Response(resp)));
                }
                State::Trying | State::Proceeding => {
                    self.out.push_back(Output::Event(Event::Response(resp)));
                    self.timer_e = None;
                    self.timer_f = None;
                    if self.reliable {
                        self.terminate();
                    } else {
                        self.state = State::Completed;
                        self.timer_k = Some(now + self.timers.t4);
                    }
                }
                // Retransmitted responses are absorbed (Completed) or too late (Terminated).
                State::Completed | State::Terminated => {}
            },
            Input::TransportError => {
                if matches!(self.state, State::Trying | State::Proceeding) {
                    self.out.push_back(Output::Event(Event::TransportError));
                    self.terminate();
                }
            }
            Input::Request(_) | Input::Send(_) => {}
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        if self.timer_f.is_some_and(|t| t <= now) {
            self.out.push_back(Output::Event(Event::Timeout));
            self.terminate();
            return;
        }
        if let Some(e) = self.timer_e.filter(|t| *t <= now) {
            self.out.push_back(Output::Transmit(self.request.clone()));
            // Trying doubles the interval up to T2; Proceeding retransmits every T2.
            self.interval = match self.state {
                State::Proceeding => self.timers.t2,
                _ => (self.interval * 2).min(self.timers.t2),
            };
            self.timer_e = Some(e.max(now) + self.interval);
        }
        if self.timer_k.is_some_and(|t| t <= now) {
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.timer_e = None;
        self.timer_f = None;
        self.timer_k = None;
        self.out.push_back(Output::Event(Event::Terminated));
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to call `handle(now, Input::Timer)` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.timer_e, self.timer_f, self.timer_k]
            .into_iter()
            .flatten()
            .min()
    }
}
