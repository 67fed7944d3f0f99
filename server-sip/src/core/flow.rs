//! Flows: the way back to a peer.
//!
//! Requests towards an endpoint go back over the flow it last used (its UDP source address, or its TCP or TLS
//! connection) rather than to the host in its Contact: that reaches phones behind NAT and needs no DNS, the idea
//! of RFC 5626 flows without the Outbound extension.

use std::net::SocketAddr;

/// The way back to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// A UDP source address.
    Udp(SocketAddr),
    /// A TCP connection, by its number.
    Tcp(u64),
    /// A TLS connection, by its number.
    Tls(u64),
}

impl Flow {
    /// Whether the transport is reliable (no retransmissions, RFC 3261 §17).
    pub fn reliable(self) -> bool {
        matches!(self, Flow::Tcp(_) | Flow::Tls(_))
    }

    /// Whether the hop is TLS, as a `sips:` URI requires (RFC 3261 §26.2.2).
    pub fn secure(self) -> bool {
        matches!(self, Flow::Tls(_))
    }

    /// The connection's number, for stream flows.
    pub fn conn(self) -> Option<u64> {
        match self {
            Flow::Udp(_) => None,
            Flow::Tcp(c) | Flow::Tls(c) => Some(c),
        }
    }

    /// The Via transport token.
    pub fn transport(self) -> &'static str {
        match self {
            Flow::Udp(_) => "UDP",
            Flow::Tcp(_) => "TCP",
            Flow::Tls(_) => "TLS",
        }
    }
}
