//! The non-INVITE transaction layer (RFC 3261 §17.1.2, §17.2.2) as sans-IO state machines:
//! the caller feeds `handle(now, input)`, drains `poll_output()` and sleeps until
//! `poll_timeout()`. Time is always an argument, so tests run on a fake clock.

mod client;
mod key;
mod server;

use bytes::Bytes;
use std::time::Duration;

pub use client::ClientNonInvite;
pub use key::TransactionKey;
pub use server::ServerNonInvite;

use crate::message::{Request, Response};

/// The protocol timer base values (RFC 3261 §17.1.1.1, Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests, default 4 s.
    pub t2: Duration,
    /// Maximum duration a message stays in the network, default 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Where a transaction is in its life (RFC 3261 Figures 6 and 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Request sent (client) or received (server), no response yet.
    Trying,
    /// A provisional response was received (client) or sent (server).
    Proceeding,
    /// A final response was received or sent; absorbing retransmissions.
    Completed,
    /// Finished; the caller may drop the transaction.
    Terminated,
}

/// What the caller tells a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Time has advanced: fire every timer due at `now`.
    Timer,
    /// A response matching this (client) transaction arrived.
    Response(Response),
    /// A retransmission of the request arrived (server transaction).
    Request(Request),
    /// The transaction user sends this response (server transaction).
    Send(Response),
    /// The transport reported a failure to send.
    TransportError,
}

/// What a transaction asks of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes to the peer (a request, a retransmission or a response). Shared with the copy the
    /// transaction keeps for retransmission, so a send copies nothing.
    Transmit(Bytes),
    /// Tell the transaction user something.
    Event(Event),
}

/// Notifications for the transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A response to pass up (client transaction; retransmitted finals are absorbed).
    Response(Response),
    /// Timer F fired: no final response in time (the TU treats it as 408).
    Timeout,
    /// The transport failed (the TU treats it as 503).
    TransportError,
    /// The transaction reached Terminated.
    Terminated,
}

#[cfg(test)]
mod tests;
