//! Configurable bounds on what a peer may make the parser hold in memory.

/// Hard limits enforced while bytes are scanned, before any tree is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest top-level element (stanza or nonza), in bytes of its XML text.
    pub max_stanza_size: usize,
    /// Deepest element nesting inside a top-level element, counting it as level 1.
    pub max_depth: usize,
    /// Most attributes (namespace declarations included) on one start tag.
    pub max_attributes: usize,
    /// Largest stream header, including the XML declaration and leading whitespace.
    pub max_header_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_size: 256 * 1024,
            max_depth: 32,
            max_attributes: 64,
            max_header_size: 4096,
        }
    }
}

impl Limits {
    /// The most unread bytes a well-behaved caller can ever leave buffered between feeds.
    pub(crate) fn max_pending(&self) -> usize {
        self.max_stanza_size.max(self.max_header_size)
    }
}
