//! Namespace names XMPP streams rely on.

/// Namespace of the stream wrapper and its top-level errors and features.
pub const STREAMS: &str = "http://etherx.jabber.org/streams";
/// Content namespace of client-to-server streams.
pub const CLIENT: &str = "jabber:client";
/// Content namespace of server-to-server streams.
pub const SERVER: &str = "jabber:server";
/// Content namespace of XEP-0114 component streams.
pub const COMPONENT_ACCEPT: &str = "jabber:component:accept";
/// Namespace the `xml:` prefix is permanently bound to.
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
/// STARTTLS negotiation (RFC 6120 §5).
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// SASL negotiation (RFC 6120 §6).
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Resource binding (RFC 6120 §7).
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// Stream error conditions inside `<stream:error>`.
pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// Stanza error conditions inside `<error>`.
pub const STANZA_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// The WebSocket framing elements `<open/>` and `<close/>` (RFC 7395).
pub const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// XEP-0198 stream management.
pub const SM: &str = "urn:xmpp:sm:3";

/// Whether `ns` may be a stream's default (content) namespace.
pub fn is_content_ns(ns: &str) -> bool {
    matches!(ns, CLIENT | SERVER | COMPONENT_ACCEPT)
}
