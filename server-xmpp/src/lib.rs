//! The tokio XMPP shell over presence-core (filled by the server-xmpp issue).
#![forbid(unsafe_code)]

pub mod sasl;
