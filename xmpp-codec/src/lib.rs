//! Incremental, hardened XMPP stream codec (filled by the xmpp-codec issue).
#![forbid(unsafe_code)]
