//! SIP and SIMPLE codec: messages, URIs, typed headers, framing, validation, PIDF/RPID, dialog-info,
//! watcher-info and digest helpers. Pure functions over bytes; no I/O, no clocks.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod dialog_info;
pub mod error;
pub mod framing;
mod grammar;
pub mod header;
pub mod limits;
pub mod message;
pub mod method;
pub mod pidf;
pub mod transaction;
pub mod uri;
pub mod validate;
pub mod winfo;
mod xml;

pub use error::{ErrorLayer, ParseError};
pub use framing::{Frame, Framer};
pub use header::{Header, HeaderError, HeaderName, HeaderValue, Headers};
pub use limits::Limits;
pub use message::{Message, Request, Response, Version};
pub use method::Method;
pub use uri::{Host, SipUri, Uri};
pub use validate::{ValidationError, ValidationKind};
pub use xml::DocumentError;
