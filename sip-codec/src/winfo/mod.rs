//! Watcher-info documents (RFC 3858).
