//! Why a stream was rejected, and which RFC 6120 stream error condition that maps to.

use std::fmt;

/// The RFC 6120 §4.9.3 stream error conditions this codec can detect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    /// §4.9.3.1: the XML was well-formed but not acceptable XMPP.
    BadFormat,
    /// §4.9.3.2: an element or attribute used a prefix with no namespace bound to it.
    BadNamespacePrefix,
    /// §4.9.3.10: the stream or content namespace is not the one XMPP requires.
    InvalidNamespace,
    /// §4.9.3.13: the bytes were not well-formed XML.
    NotWellFormed,
    /// §4.9.3.14: a configured limit (size, depth, attributes) was exceeded.
    PolicyViolation,
    /// §4.9.3.18: the XML used a feature XMPP forbids (DTD, comment, PI, entity).
    RestrictedXml,
    /// §4.9.3.22: the XML declaration named an encoding other than UTF-8.
    UnsupportedEncoding,
}

impl Condition {
    /// The element name the server writes inside `<stream:error>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::BadFormat => "bad-format",
            Condition::BadNamespacePrefix => "bad-namespace-prefix",
            Condition::InvalidNamespace => "invalid-namespace",
            Condition::NotWellFormed => "not-well-formed",
            Condition::PolicyViolation => "policy-violation",
            Condition::RestrictedXml => "restricted-xml",
            Condition::UnsupportedEncoding => "unsupported-encoding",
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fatal problem with the incoming stream; offsets count bytes since the last reset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// A top-level element grew past `Limits::max_stanza_size`.
    #[error("top-level element starting at byte {offset} is longer than the {limit}-byte limit")]
    StanzaTooLarge {
        /// Where the element started.
        offset: u64,
        /// The configured limit.
        limit: usize,
    },
    /// The stream header (with its XML declaration) grew past `Limits::max_header_size`.
    #[error("stream header is longer than the {limit}-byte limit")]
    HeaderTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// Elements nested deeper than `Limits::max_depth` inside a top-level element.
    #[error("element at byte {offset} is nested deeper than the limit of {limit} levels")]
    TooDeep {
        /// Where the offending start tag ended.
        offset: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A start tag carried more than `Limits::max_attributes` attributes.
    #[error("start tag at byte {offset} has more than the limit of {limit} attributes")]
    TooManyAttributes {
        /// Where the offending attribute was.
        offset: u64,
        /// The configured limit.
        limit: usize,
    },
    /// `feed` was called again while more unread bytes were buffered than any element may hold.
    #[error(
        "{buffered} unread bytes are buffered, more than the {limit}-byte limit; drain next_event before feeding"
    )]
    BufferFull {
        /// Bytes waiting to be parsed.
        buffered: usize,
        /// The largest amount that may legitimately wait.
        limit: usize,
    },
    /// A `<!DOCTYPE`, `<!ENTITY` or other markup declaration.
    #[error("markup declaration (DTD or entity declaration) at byte {offset} is forbidden in XMPP")]
    Dtd {
        /// Where `<!` was.
        offset: u64,
    },
    /// An XML comment.
    #[error("comment at byte {offset} is forbidden in XMPP")]
    Comment {
        /// Where `<!--` was.
        offset: u64,
    },
    /// A processing instruction other than the XML declaration before the stream header.
    #[error("processing instruction at byte {offset} is forbidden in XMPP")]
    ProcessingInstruction {
        /// Where `<?` was.
        offset: u64,
    },
    /// A reference to an entity other than the five predefined ones.
    #[error("reference to undefined entity `&{name};` in element starting at byte {offset}")]
    UndefinedEntity {
        /// The entity name between `&` and `;`.
        name: String,
        /// Where the enclosing top-level element started.
        offset: u64,
    },
    /// A character that XML 1.0 does not allow, written raw or as a character reference.
    #[error("character U+{code:04X} at or after byte {offset} is not allowed in XML")]
    IllegalChar {
        /// The code point.
        code: u32,
        /// Where it was (or where its element started).
        offset: u64,
    },
    /// Bytes that are not valid UTF-8.
    #[error("invalid UTF-8 at byte {offset}")]
    InvalidUtf8 {
        /// The first bad byte.
        offset: u64,
    },
    /// The XML declaration named an encoding other than UTF-8.
    #[error("XML declaration names encoding `{encoding}`, but XMPP streams are UTF-8 only")]
    UnsupportedEncoding {
        /// The encoding named.
        encoding: String,
    },
    /// Any other well-formedness error: bad syntax, mismatched tags, bad references.
    #[error("not well-formed XML at byte {offset}: {reason}")]
    Syntax {
        /// Where it was noticed (or where the enclosing element started).
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// An element or attribute name used a prefix that no `xmlns:` declaration bound.
    #[error("prefix `{prefix}` at byte {offset} is not bound to a namespace")]
    UnboundPrefix {
        /// The prefix.
        prefix: String,
        /// Where the enclosing element started.
        offset: u64,
    },
    /// An `xmlns:` declaration that XML namespaces forbid (empty value, rebinding `xml`/`xmlns`).
    #[error("invalid namespace declaration `{attr}` at byte {offset}")]
    BadNamespaceDeclaration {
        /// The declaring attribute as written.
        attr: String,
        /// Where the enclosing element started.
        offset: u64,
    },
    /// The first element was not a stream header.
    #[error("expected a stream header, found element `{found}`")]
    NotAStreamHeader {
        /// The element's local name.
        found: String,
    },
    /// The stream header was in a namespace other than `http://etherx.jabber.org/streams`.
    #[error("stream header is in namespace `{found}` instead of http://etherx.jabber.org/streams")]
    WrongStreamNamespace {
        /// The namespace found.
        found: String,
    },
    /// The stream's default namespace is not an XMPP content namespace.
    #[error(
        "stream content namespace `{found}` is not jabber:client, jabber:server or jabber:component:accept"
    )]
    UnsupportedContentNamespace {
        /// The default namespace declared (empty if none).
        found: String,
    },
    /// Character data directly inside `<stream:stream>` (whitespace keepalives are fine).
    #[error("character data at byte {offset} directly inside the stream element")]
    TextAtStreamLevel {
        /// Where it was.
        offset: u64,
    },
}

impl StreamError {
    /// The RFC 6120 stream error condition the server should send for this error.
    pub fn condition(&self) -> Condition {
        use StreamError::*;
        match self {
            StanzaTooLarge { .. }
            | HeaderTooLarge { .. }
            | TooDeep { .. }
            | TooManyAttributes { .. }
            | BufferFull { .. } => Condition::PolicyViolation,
            Dtd { .. } | Comment { .. } | ProcessingInstruction { .. } | UndefinedEntity { .. } => {
                Condition::RestrictedXml
            }
            IllegalChar { .. }
            | InvalidUtf8 { .. }
            | Syntax { .. }
            | BadNamespaceDeclaration { .. } => Condition::NotWellFormed,
            UnsupportedEncoding { .. } => Condition::UnsupportedEncoding,
            UnboundPrefix { .. } => Condition::BadNamespacePrefix,
            WrongStreamNamespace { .. } | UnsupportedContentNamespace { .. } => {
                Condition::InvalidNamespace
            }
            NotAStreamHeader { .. } | TextAtStreamLevel { .. } => Condition::BadFormat,
        }
    }

    /// Shorthand for `self.condition().as_str()`.
    pub fn condition_name(&self) -> &'static str {
        self.condition().as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_use_rfc_6120_names() {
        let cases = [
            (StreamError::HeaderTooLarge { limit: 1 }, "policy-violation"),
            (StreamError::Comment { offset: 0 }, "restricted-xml"),
            (StreamError::InvalidUtf8 { offset: 0 }, "not-well-formed"),
            (
                StreamError::UnboundPrefix {
                    prefix: "p".into(),
                    offset: 0,
                },
                "bad-namespace-prefix",
            ),
            (
                StreamError::WrongStreamNamespace { found: "x".into() },
                "invalid-namespace",
            ),
            (StreamError::TextAtStreamLevel { offset: 0 }, "bad-format"),
            (
                StreamError::UnsupportedEncoding {
                    encoding: "x".into(),
                },
                "unsupported-encoding",
            ),
        ];
        for (err, name) in cases {
            assert_eq!(err.condition_name(), name, "{err}");
            assert_eq!(err.condition().to_string(), name);
        }
    }
}
