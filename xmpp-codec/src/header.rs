//! The `<stream:stream>` header that opens every XMPP stream.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::error::StreamError;
use crate::ns;
use crate::tree::{NsContext, TreeBuilder, read_start_tag};

/// The attributes and namespace bindings of a stream header (RFC 6120 §4.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHeader {
    /// The `to` attribute.
    pub to: Option<String>,
    /// The `from` attribute.
    pub from: Option<String>,
    /// The `id` attribute (set by the receiving entity).
    pub id: Option<String>,
    /// The `version` attribute, normally `1.0`.
    pub version: Option<String>,
    /// The `xml:lang` attribute.
    pub lang: Option<String>,
    /// The default namespace, e.g. [`ns::CLIENT`] or [`ns::SERVER`]; stanzas inherit it.
    pub content_ns: String,
    /// Prefixes declared on the header besides the streams one (e.g. `db` for dialback).
    pub prefixes: Vec<(String, String)>,
}

impl StreamHeader {
    /// A version 1.0 header with the given content namespace and no addressing.
    pub fn new(content_ns: impl Into<String>) -> Self {
        StreamHeader {
            to: None,
            from: None,
            id: None,
            version: Some("1.0".into()),
            lang: None,
            content_ns: content_ns.into(),
            prefixes: Vec::new(),
        }
    }
}

/// What the parser keeps about an open stream.
#[derive(Debug, Clone)]
pub(crate) struct OpenStream {
    /// Bindings stanzas inherit.
    pub(crate) ctx: NsContext,
    /// The header's qualified name as written, which the close tag must repeat.
    pub(crate) qname: String,
}

/// Parses the header's start tag text (`<stream:stream ...>` or its self-closing form).
pub(crate) fn parse_header(
    tag: &str,
    offset: u64,
) -> Result<(StreamHeader, OpenStream), StreamError> {
    let mut spans = Vec::new();
    let start = read_start_tag(tag, 0, &mut spans, offset)?;
    if start.end != tag.len() {
        return Err(StreamError::Syntax {
            offset,
            reason: "content after the stream header's start tag".into(),
        });
    }
    let empty = NsContext::default();
    let mut builder = TreeBuilder::new(&empty, offset);
    let el = builder.open(tag, &start, &spans)?;
    let ctx = builder.into_context();
    if el.name != "stream" {
        return Err(StreamError::NotAStreamHeader {
            found: el.name.into(),
        });
    }
    if el.ns != ns::STREAMS {
        return Err(StreamError::WrongStreamNamespace {
            found: el.ns.into(),
        });
    }
    if !ns::is_content_ns(&ctx.default_ns) {
        return Err(StreamError::UnsupportedContentNamespace {
            found: ctx.default_ns.into(),
        });
    }
    let qname = tag.get(start.qname).unwrap_or_default().to_owned();
    let attr = |name: &str| el.attr(name).map(str::to_owned);
    let header = StreamHeader {
        to: attr("to"),
        from: attr("from"),
        id: attr("id"),
        version: attr("version"),
        lang: el.lang().map(str::to_owned),
        content_ns: ctx.default_ns.to_string(),
        prefixes: ctx
            .prefixes
            .iter()
            // The writer always binds `stream` to the streams namespace and `xml` is implicit.
            .filter(|(p, n)| n != ns::STREAMS && p != "stream" && p != "xml")
            .cloned()
            .collect(),
    };
    Ok((header, OpenStream { ctx, qname }))
}

/// Checks the optional XML declaration: it may only announce UTF-8.
pub(crate) fn check_declaration(decl: &str, offset: u64) -> Result<(), StreamError> {
    let syntax = |reason: String| StreamError::Syntax { offset, reason };
    let mut reader = Reader::from_str(decl);
    match reader.read_event() {
        Ok(Event::Decl(d)) => match d.encoding() {
            None => Ok(()),
            Some(Ok(enc)) if enc.eq_ignore_ascii_case(b"utf-8") => Ok(()),
            Some(Ok(enc)) => Err(StreamError::UnsupportedEncoding {
                encoding: String::from_utf8_lossy(&enc).into_owned(),
            }),
            Some(Err(e)) => Err(syntax(e.to_string())),
        },
        Ok(_) => Err(StreamError::ProcessingInstruction { offset }),
        Err(e) => Err(syntax(e.to_string())),
    }
}
