//! Digest authentication helpers (RFC 3261 §22.4, RFC 2617, RFC 7616 / RFC 8760 algorithms).
