//! Incremental, hardened XMPP stream codec (RFC 6120), with no I/O.
//!
//! [`StreamParser`] takes bytes in chunks of any size and yields [`StreamEvent`]s once whole
//! top-level elements have arrived. It enforces the restricted XML profile of RFC 6120 §11 and the
//! [`Limits`], and every [`StreamError`] names the stream error [`Condition`] to send back.
//! [`StreamWriter`] and [`StreamHeader::write`] serialize the same values. [`framing`] carries the same stream
//! over WebSocket messages (RFC 7395).
//!
//! ```
//! use xmpp_codec::{StreamEvent, StreamParser};
//!
//! let mut parser = StreamParser::new();
//! parser.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
//! parser.feed(b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
//! assert!(matches!(parser.next_event(), Ok(Some(StreamEvent::Open(_)))));
//! let Ok(Some(StreamEvent::Stanza(iq))) = parser.next_event() else { panic!() };
//! assert_eq!(iq.id(), Some("b1"));
//! assert!(iq.payloads().next().unwrap().is(xmpp_codec::ns::BIND, "bind"));
//! assert_eq!(parser.next_event(), Ok(None));
//! ```
#![forbid(unsafe_code)]

mod element;
mod error;
pub mod framing;
mod header;
mod limits;
mod name;
mod nonza;
pub mod ns;
mod parser;
mod scanner;
mod serialize;
mod stanza;
mod tree;

pub use element::{Attribute, Element, Node};
pub use error::{Condition, StreamError};
pub use header::StreamHeader;
pub use limits::Limits;
pub use name::Name;
pub use nonza::Nonza;
pub use parser::{StreamEvent, StreamParser};
pub use serialize::{
    StreamWriter, escape_attr, escape_text, write_stream_close, write_stream_error,
};
pub use stanza::{IqType, Stanza, StanzaKind};
