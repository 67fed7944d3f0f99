//! A small namespace-resolving event walk over quick-xml, shared by the PIDF, watcher-info and
//! dialog-info codecs.

use quick_xml::NsReader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// Why an XML body could not be read as the expected document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// The document is larger than the configured limit.
    #[error("document of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Elements nest deeper than allowed.
    #[error("elements nest deeper than {0}")]
    TooDeep(usize),
    /// The bytes are not well-formed XML.
    #[error("malformed XML: {0}")]
    Xml(String),
    /// Well-formed XML that is not the expected document.
    #[error("invalid document: {0}")]
    Invalid(&'static str),
}

/// Namespaces this crate understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ns {
    Pidf,
    DataModel,
    Rpid,
    Watcherinfo,
    DialogInfo,
    Other,
}

pub(crate) const NS_PIDF: &str = "urn:ietf:params:xml:ns:pidf";
pub(crate) const NS_DM: &str = "urn:ietf:params:xml:ns:pidf:data-model";
pub(crate) const NS_RPID: &str = "urn:ietf:params:xml:ns:pidf:rpid";
pub(crate) const NS_WINFO: &str = "urn:ietf:params:xml:ns:watcherinfo";
pub(crate) const NS_DIALOG_INFO: &str = "urn:ietf:params:xml:ns:dialog-info";

/// A simplified XML event: entity references already resolved, empty elements expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum XmlEvent {
    Start {
        ns: Ns,
        name: String,
        attrs: Vec<(String, String)>,
    },
    End,
    Text(String),
}

const MAX_DEPTH: usize = 32;

fn xml_err(e: impl std::fmt::Display) -> DocumentError {
    DocumentError::Xml(e.to_string())
}

/// Reads a whole document into simplified events, enforcing the size and depth limits.
pub(crate) fn read_events(doc: &[u8], limit: usize) -> Result<Vec<XmlEvent>, DocumentError> {
    if doc.len() > limit {
        return Err(DocumentError::TooLarge {
            size: doc.len(),
            limit,
        });
    }
    let text = std::str::from_utf8(doc).map_err(|_| DocumentError::Xml("not UTF-8".into()))?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    let mut out = Vec::new();
    let mut depth = 0usize;
    loop {
        let (res, event) = reader.read_resolved_event().map_err(xml_err)?;
        match event {
            Event::Start(e) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(DocumentError::TooDeep(MAX_DEPTH));
                }
                let ns = match res {
                    ResolveResult::Bound(ns) => match ns.as_ref() {
                        b if b == NS_PIDF.as_bytes() => Ns::Pidf,
                        b if b == NS_DM.as_bytes() => Ns::DataModel,
                        b if b == NS_RPID.as_bytes() => Ns::Rpid,
                        b if b == NS_WINFO.as_bytes() => Ns::Watcherinfo,
                        b if b == NS_DIALOG_INFO.as_bytes() => Ns::DialogInfo,
                        _ => Ns::Other,
                    },
                    _ => Ns::Other,
                };
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(xml_err)?;
                    let key = a.key.as_ref();
                    if key == b"xmlns" || key.starts_with(b"xmlns:") {
                        continue;
                    }
                    let local = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
                    attrs.push((local, a.unescape_value().map_err(xml_err)?.into_owned()));
                }
                out.push(XmlEvent::Start { ns, name, attrs });
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                out.push(XmlEvent::End);
            }
            Event::Text(t) => out.push(XmlEvent::Text(
                t.xml_content().map_err(xml_err)?.into_owned(),
            )),
            Event::CData(t) => out.push(XmlEvent::Text(t.decode().map_err(xml_err)?.into_owned())),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(xml_err)? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(xml_err)?;
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| DocumentError::Xml("unknown entity".into()))?
                            .to_owned()
                    }
                };
                out.push(XmlEvent::Text(resolved));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err(DocumentError::Xml("unclosed element".into()));
    }
    Ok(out)
}

/// Escapes text or an attribute value for output.
pub(crate) fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// The value of attribute `name`, if the element has it.
pub(crate) fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The value of attribute `name`, which the schema requires: `Invalid(what)` when it is missing.
pub(crate) fn required<'a>(
    attrs: &'a [(String, String)],
    name: &str,
    what: &'static str,
) -> Result<&'a str, DocumentError> {
    attr(attrs, name).ok_or(DocumentError::Invalid(what))
}
