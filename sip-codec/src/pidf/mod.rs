//! PIDF presence documents (RFC 3863) with the RPID person activities (RFC 4480),
//! as typed values. Mapping to the engine's presence model happens in the server.

mod activity;
mod parse;
mod write;

pub use activity::Activity;

/// The default largest PIDF document accepted by [`Presence::parse`].
pub const DEFAULT_MAX_DOCUMENT: usize = 64 * 1024;

/// The MIME type of PIDF bodies.
pub const CONTENT_TYPE: &str = "application/pidf+xml";

/// A `<presence>` document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Presence {
    /// The presentity URI (`entity` attribute), e.g. `pres:alice@example.com` or a SIP URI.
    pub entity: String,
    /// The tuples (one per device or service).
    pub tuples: Vec<Tuple>,
    /// Document-level notes.
    pub notes: Vec<String>,
    /// The RPID person element, if any.
    pub person: Option<Person>,
}

/// Open or closed basic status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basic {
    /// Willing and able to communicate.
    Open,
    /// Not reachable.
    Closed,
}

/// A `<tuple>`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tuple {
    /// The `id` attribute.
    pub id: String,
    /// `<status><basic>`; PIDF lets a status carry only extensions, hence optional.
    pub basic: Option<Basic>,
    /// The contact URI.
    pub contact: Option<String>,
    /// The contact priority (0.0-1.0).
    pub priority: Option<f32>,
    /// The first `<note>` of the tuple.
    pub note: Option<String>,
    /// The `<timestamp>` as written (RFC 3339).
    pub timestamp: Option<String>,
}

/// The RPID `<dm:person>` element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    /// The `id` attribute.
    pub id: Option<String>,
    /// The `<rpid:activities>`.
    pub activities: Vec<Activity>,
    /// The first `<dm:note>`.
    pub note: Option<String>,
}

impl Presence {
    /// An empty document for `entity`.
    pub fn new(entity: &str) -> Self {
        Presence {
            entity: entity.to_owned(),
            ..Presence::default()
        }
    }

    /// Parses a document no larger than [`DEFAULT_MAX_DOCUMENT`].
    pub fn parse(doc: &[u8]) -> Result<Presence, crate::DocumentError> {
        parse::parse(doc, DEFAULT_MAX_DOCUMENT)
    }

    /// Parses a document no larger than `limit` bytes.
    pub fn parse_with_limit(doc: &[u8], limit: usize) -> Result<Presence, crate::DocumentError> {
        parse::parse(doc, limit)
    }

    /// Writes the document as UTF-8 XML.
    pub fn to_xml(&self) -> String {
        write::write(self)
    }

    /// True if any tuple is open.
    pub fn is_open(&self) -> bool {
        self.tuples.iter().any(|t| t.basic == Some(Basic::Open))
    }
}

#[cfg(test)]
mod tests;
