//! What goes into the SIP core ([`Event`]), what comes out of it ([`Output`]), and the two questions it asks
//! the runtime synchronously ([`Runtime`]).

use std::net::SocketAddr;

use presence_core::runtime::{Location, ToSession};
use presence_core::store::{Account, StoreError};
use presence_core::time::Timestamp;
use presence_core::{BareJid, Input, SessionId, WatchId, WatchState};
use sip_codec::{Message, ParseError};

use super::Flow;

/// Something that happened outside the core.
// Nearly every event is a message; boxing it would add an allocation per datagram to spare rare events.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Event {
    /// A message arrived on a flow, or bytes that are not one; `raw` is kept to answer a malformed request.
    Message {
        /// Where from.
        flow: Flow,
        /// The parsed message or why it is not one.
        parsed: Result<Message, ParseError>,
        /// The bytes (a bounded prefix for stream errors).
        raw: Vec<u8>,
        /// Whether the engine's queue was full when the message was taken in: requests that feed the engine
        /// are then refused with 503 before they touch any state.
        engine_busy: bool,
        /// The wall clock when it arrived (stamps a MESSAGE for offline storage, XEP-0203).
        received: Timestamp,
    },
    /// A TCP or TLS connection opened (TLS: once its handshake is done).
    FlowOpened {
        /// The connection.
        flow: Flow,
        /// The peer's address (trusted peers are recognised by it).
        peer: SocketAddr,
        /// The listed subject of the verified client certificate: a trusted call-control peer's connection.
        trusted_subject: Option<String>,
    },
    /// A TCP or TLS connection closed: its bindings and subscriptions go with it.
    FlowClosed(Flow),
    /// Bytes of an [`Output::Transmit`] could not be sent; `client` is the transaction they belonged to.
    TransmitFailed {
        /// The client transaction (branch), if the bytes were one's request.
        client: Option<String>,
    },
    /// The answer to an [`Output::LookupAccount`].
    Account {
        /// The lookup's number.
        lookup: u64,
        /// What the store said.
        result: Result<Option<Account>, StoreError>,
    },
    /// The engine refused an [`Output::SubmitAndFlush`] (its queue was full): the MESSAGE gets 503.
    FlushRefused {
        /// The sender's session.
        session: SessionId,
        /// The flush's token.
        token: u64,
    },
    /// Something the engine sent one of the SIP users' sessions.
    Delivery(SessionId, ToSession),
    /// The engine's report on a watch of a SIP subscriber.
    Watch(WatchId, WatchState),
    /// Timers may have fallen due ([`super::SipPresence::poll_timeout`]).
    Timeout,
    /// The server stops: every subscription ends with a final NOTIFY, every SIP session closes.
    Shutdown,
}

/// Something the core wants done, in order.
#[derive(Debug)]
pub enum Output {
    /// Bytes to send on a flow. A failure is reported back as [`Event::TransmitFailed`] with `client`.
    Transmit {
        /// Where.
        flow: Flow,
        /// What (shared with a transaction's copy for retransmission).
        bytes: bytes::Bytes,
        /// The client transaction these bytes are a request of (its failure ends the transaction).
        client: Option<String>,
    },
    /// A stream flow cannot go on (it sent what is not SIP): close it.
    CloseFlow(Flow),
    /// A new engine session of a SIP user: attach the shared delivery sink to it before the inputs that follow.
    OpenSession(SessionId),
    /// An input for the engine (refusals are logged: the request that caused it was checked for room).
    Submit(Input),
    /// An input for the engine whose handling is reported as `ToSession::Flushed { token }` to `session`; a
    /// refusal comes back as [`Event::FlushRefused`].
    SubmitAndFlush {
        /// The input.
        input: Box<Input>,
        /// The session the flush report goes to.
        session: SessionId,
        /// The report's token.
        token: u64,
    },
    /// An engine session of a SIP user is over.
    CloseSession(SessionId),
    /// The store's account of `user` is needed: answer with [`Event::Account`].
    LookupAccount {
        /// The lookup's number, to answer with.
        lookup: u64,
        /// Whose.
        user: BareJid,
    },
}

/// What the core asks the runtime synchronously: reads of shared state that answer at once and cannot fail,
/// so an answer-later round trip would only add a parked request per call.
pub trait Runtime {
    /// Which node serves `user` (always here outside a cluster).
    fn locate(&self, user: &BareJid) -> Location;
    /// A fresh engine session id (a counter shared with the other shells of the process).
    fn new_session(&self) -> SessionId;
}
