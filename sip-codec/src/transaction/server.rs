//! Server non-INVITE transaction (RFC 3261 §17.2.2, Figure 8).

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::{Event, Input, Output, State, Timers};

/// Answers one received non-INVITE request: sends the TU's responses and replays the last one
/// when the request is retransmitted, until Timer J ends the transaction.
#[derive(Debug)]
pub struct ServerNonInvite {
    state: State,
    timers: Timers,
    reliable: bool,
    last_response: Option<Bytes>,
    timer_j: Option<Instant>,
    out: VecDeque<Output>,
}

impl ServerNonInvite {
    /// A transaction for a request that just arrived.
    pub fn new(reliable: bool, timers: Timers) -> Self {
        ServerNonInvite {
            state: State::Trying,
            timers,
            reliable,
            last_response: None,
            timer_j: None,
            out: VecDeque::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Feeds an input observed at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Timer => {
                if self.timer_j.is_some_and(|t| t <= now) {
                    self.terminate();
                }
            }
            // A retransmitted request: silent in Trying, replay the last response after that.
            Input::Request(_) => {
                if matches!(self.state, State::Proceeding | State::Completed)
                    && let Some(r) = &self.last_response
                {
                    self.out.push_back(Output::Transmit(r.clone()));
                }
            }
            Input::Send(resp) => {
                if !matches!(self.state, State::Trying | State::Proceeding) {
                    return;
                }
                // Written from the borrowed response: wrapping it in a `Message` would copy every header.
                let mut bytes = Vec::with_capacity(512 + resp.body.len());
                resp.write_to(&mut bytes);
                let bytes = Bytes::from(bytes);
                self.out.push_back(Output::Transmit(bytes.clone()));
                self.last_response = Some(bytes);
                if resp.status < 200 {
                    self.state = State::Proceeding;
                } else if self.reliable {
                    self.terminate();
                } else {
                    self.state = State::Completed;
                    self.timer_j = Some(now + self.timers.t1 * 64);
                }
            }
            Input::TransportError => {
                if self.state != State::Terminated {
                    self.out.push_back(Output::Event(Event::TransportError));
                    self.terminate();
                }
            }
            Input::Response(_) => {}
        }
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.timer_j = None;
        self.out.push_back(Output::Event(Event::Terminated));
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to call `handle(now, Input::Timer)` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer_j
    }
}
