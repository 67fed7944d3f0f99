//! Resource limits applied while framing and parsing.

/// Caller-chosen bounds; anything larger is rejected with a [`crate::ParseError`] of layer `Limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message (head and body) in bytes.
    pub max_message_size: usize,
    /// Most header fields (after unfolding) in one message, counted as the canonical form
    /// writes them: the Content-Length it always adds counts even when none was received.
    pub max_headers: usize,
    /// Longest start line as received, and longest header line (after unfolding) as the
    /// canonical form writes it, `Full-Name: value`, in bytes.
    pub max_header_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            max_headers: 128,
            max_header_line: 8 * 1024,
        }
    }
}
