//! PIDF presence documents (RFC 3863) with RPID activities (RFC 4480).
