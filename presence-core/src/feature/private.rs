//! Private XML storage (XEP-0049): a user keeps one XML element per namespace on the server, readable only by the
//! user's own sessions. Bookmarks (XEP-0048) travel this way in older clients.

/// What a session asks of its private storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// The element stored under `namespace` (an empty one if none is).
    Get {
        /// The element's namespace.
        namespace: String,
        /// The element's name, for the empty element answered when nothing is stored.
        element: String,
    },
    /// Stores `xml`, an element of `namespace`, replacing what was stored under it.
    Set {
        /// The element's namespace.
        namespace: String,
        /// The element, serialized by the shell.
        xml: String,
    },
}

/// What a get answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Answer {
    /// The namespace asked for.
    pub namespace: String,
    /// The element name asked for.
    pub element: String,
    /// The stored element, serialized; `None` when nothing is stored under the namespace.
    pub xml: Option<String>,
}

/// The document key under which the element of `namespace` is stored.
pub(crate) fn key(namespace: &str) -> Option<crate::store::DocumentKey> {
    crate::store::DocumentKey::new(format!("private/{namespace}"))
}
