//! Builds an [`Element`] from the text of one complete element, resolving namespaces.
//!
//! quick-xml tokenizes; this module owns namespace scoping because stanzas inherit bindings from a
//! stream header that is no longer in the buffer.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::escape::EscapeError;
use quick_xml::events::{BytesRef, BytesStart, Event};

use crate::element::{Attribute, Element, Node};
use crate::error::StreamError;
use crate::name::Name;
use crate::ns;

/// Namespace bindings in force at stream level, taken from the stream header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NsContext {
    /// The default namespace.
    pub(crate) default_ns: Name,
    /// Prefix → namespace bindings, in declaration order.
    pub(crate) prefixes: Vec<(String, String)>,
}

impl NsContext {
    fn lookup(&self, prefix: &str) -> Option<&str> {
        self.prefixes
            .iter()
            .rev()
            .find(|(p, _)| *p == prefix)
            .map(|(_, n)| n.as_str())
    }
}

/// Whether `c` is a legal XML 1.0 `Char`.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Rough QName check: quick-xml splits names on whitespace but accepts most other garbage.
/// Prefix and local part are checked separately, since either may end up written alone.
fn check_name(name: &str, offset: u64) -> Result<(), StreamError> {
    let part_ok = |part: &str| {
        let bytes = part.as_bytes();
        !matches!(bytes.first(), None | Some(b'0'..=b'9' | b'-' | b'.'))
            && bytes.iter().all(|&b| {
                !b.is_ascii() || b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
            })
    };
    let ok = match name.split_once(':') {
        Some((prefix, local)) => part_ok(prefix) && part_ok(local),
        None => part_ok(name),
    };
    if !ok {
        return Err(StreamError::Syntax {
            offset,
            reason: format!("`{name}` is not a valid XML name"),
        });
    }
    Ok(())
}

/// `bytes` as a `&str`: a free re-slice of `src` when quick-xml borrowed it from there.
///
/// The element text was validated as UTF-8 once; re-slicing (which only checks that the ends are
/// char boundaries) avoids validating every name, value and text run a second time.
fn as_str<'s>(src: &'s str, bytes: &[u8], offset: u64) -> Result<&'s str, StreamError> {
    if bytes.is_empty() {
        return Ok("");
    }
    let start = (bytes.as_ptr() as usize).wrapping_sub(src.as_ptr() as usize);
    if let Some(s) = start
        .checked_add(bytes.len())
        .and_then(|end| src.get(start..end))
        .filter(|s| s.as_ptr() == bytes.as_ptr())
    {
        return Ok(s);
    }
    Err(StreamError::Syntax {
        offset,
        reason: "token outside the element text".into(),
    })
}

/// Resolves references in an attribute value or text run; only the predefined entities exist.
fn unescape(raw: &str, offset: u64) -> Result<Cow<'_, str>, StreamError> {
    if memchr::memchr(b'&', raw.as_bytes()).is_none() {
        return Ok(Cow::Borrowed(raw));
    }
    let value = quick_xml::escape::unescape(raw).map_err(|e| xml_error(e.into(), offset))?;
    check_chars(&value, offset)?;
    Ok(value)
}

/// XML end-of-line handling: CRLF and lone CR become LF.
fn normalize_eol(text: &str) -> Cow<'_, str> {
    if memchr::memchr(b'\r', text.as_bytes()).is_some() {
        Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(text)
    }
}

fn split_qname(qname: &str) -> (Option<&str>, &str) {
    match qname.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, qname),
    }
}

/// The first XML-illegal character in `s`, reported against the element's offset.
fn check_chars(s: &str, offset: u64) -> Result<(), StreamError> {
    match s.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(StreamError::IllegalChar {
            code: c.into(),
            offset,
        }),
        None => Ok(()),
    }
}

/// Maps a quick-xml failure to the stream error it stands for.
fn xml_error(err: quick_xml::Error, offset: u64) -> StreamError {
    match err {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            StreamError::UndefinedEntity { name, offset }
        }
        other => StreamError::Syntax {
            offset,
            reason: other.to_string(),
        },
    }
}

/// Buffers a stream's tree builders reuse, so building a stanza does not allocate them afresh.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch {
    /// Joins text that references split into pieces.
    text: String,
    frames: Vec<(usize, usize)>,
    defaults: Vec<Name>,
    stack: Vec<Element>,
}

impl Scratch {
    /// Drops a text buffer grown past `keep` bytes (the rest is bounded by the depth limit).
    pub(crate) fn trim(&mut self, keep: usize) {
        if self.text.capacity() > keep {
            self.text = String::new();
        }
    }
}

/// Builds trees; one per element parsed, borrowing the element's text.
pub(crate) struct TreeBuilder<'s, 'c> {
    ctx: &'c NsContext,
    offset: u64,
    /// Prefix bindings declared inside the element being built.
    bindings: Vec<(&'s str, Cow<'s, str>)>,
    /// Default namespaces declared by open elements, innermost last.
    defaults: Vec<Name>,
    /// Per open element: how many bindings and declared defaults existed before it.
    frames: Vec<(usize, usize)>,
}

impl<'s, 'c> TreeBuilder<'s, 'c> {
    /// A builder resolving against `ctx`; `offset` is where the element starts in the stream.
    pub(crate) fn new(ctx: &'c NsContext, offset: u64) -> Self {
        TreeBuilder {
            ctx,
            offset,
            bindings: Vec::new(),
            defaults: Vec::new(),
            frames: Vec::new(),
        }
    }

    fn current_default(&self) -> &Name {
        match self.defaults.last() {
            Some(d) => d,
            None => &self.ctx.default_ns,
        }
    }

    fn resolve_prefix(&self, prefix: &str) -> Result<&str, StreamError> {
        if prefix == "xml" {
            return Ok(ns::XML);
        }
        if let Some((_, n)) = self.bindings.iter().rev().find(|(p, _)| *p == prefix) {
            return Ok(n);
        }
        self.ctx
            .lookup(prefix)
            .ok_or_else(|| StreamError::UnboundPrefix {
                prefix: prefix.to_owned(),
                offset: self.offset,
            })
    }

    /// Opens a start tag: records its declarations (kept until [`TreeBuilder::close`]) and
    /// returns the element with its name and attributes resolved.
    pub(crate) fn open(
        &mut self,
        src: &'s str,
        start: &BytesStart<'_>,
    ) -> Result<Element, StreamError> {
        let offset = self.offset;
        let syntax = |reason: String| StreamError::Syntax { offset, reason };
        self.frames.push((self.bindings.len(), self.defaults.len()));
        // Declarations apply to the element's own name and attributes, so ordinary attributes
        // wait (on the stack, for the usual few) until every declaration is in scope.
        const INLINE: usize = 8;
        let mut held: [(&str, &str); INLINE] = [("", ""); INLINE];
        let mut plain = 0;
        for attr in start.attributes() {
            let attr = attr.map_err(|e| syntax(e.to_string()))?;
            let key = as_str(src, attr.key.into_inner(), offset)?;
            let is_default = key == "xmlns";
            let Some(prefix) = key.strip_prefix("xmlns:").or(is_default.then_some("")) else {
                if plain < INLINE {
                    held[plain] = (key, as_str(src, &attr.value, offset)?);
                }
                plain += 1;
                continue;
            };
            let value = unescape(as_str(src, &attr.value, offset)?, offset)?;
            let bad_decl = || StreamError::BadNamespaceDeclaration {
                attr: key.to_owned(),
                offset,
            };
            if is_default {
                if value == ns::XML {
                    return Err(bad_decl());
                }
                self.defaults.push(Name::from(value.as_ref()));
            } else {
                check_name(prefix, offset)?;
                let xml_mismatch = (prefix == "xml") != (value == ns::XML);
                if prefix == "xmlns" || value.is_empty() || xml_mismatch {
                    return Err(bad_decl());
                }
                self.bindings.push((prefix, value));
            }
        }
        let qname = as_str(src, start.name().into_inner(), offset)?;
        check_name(qname, offset)?;
        let (prefix, local) = split_qname(qname);
        let ns = match prefix {
            Some(p) => Name::new(self.resolve_prefix(p)?),
            None => self.current_default().clone(),
        };
        let mut attrs: Vec<Attribute> = Vec::with_capacity(plain);
        if plain <= INLINE {
            for &(key, raw) in &held[..plain] {
                self.push_attr(&mut attrs, key, raw)?;
            }
        } else {
            for attr in start.attributes() {
                let attr = attr.map_err(|e| syntax(e.to_string()))?;
                let key = as_str(src, attr.key.into_inner(), offset)?;
                if key != "xmlns" && !key.starts_with("xmlns:") {
                    self.push_attr(&mut attrs, key, as_str(src, &attr.value, offset)?)?;
                }
            }
        }
        Ok(Element {
            name: Name::new(local),
            ns,
            attrs,
            children: Vec::new(),
        })
    }

    /// Resolves one ordinary attribute and appends it, rejecting expanded-name duplicates.
    fn push_attr(
        &self,
        attrs: &mut Vec<Attribute>,
        key: &str,
        raw: &str,
    ) -> Result<(), StreamError> {
        let offset = self.offset;
        check_name(key, offset)?;
        let value = unescape(raw, offset)?;
        let (prefix, local) = split_qname(key);
        let ans = match prefix {
            Some(p) => Some(Name::new(self.resolve_prefix(p)?)),
            None => None,
        };
        if attrs.iter().any(|a| a.name == local && a.ns == ans) {
            return Err(StreamError::Syntax {
                offset,
                reason: format!("attribute `{key}` appears twice"),
            });
        }
        attrs.push(Attribute {
            ns: ans,
            name: Name::new(local),
            value: value.into_owned(),
        });
        Ok(())
    }

    /// Leaves the innermost open element, dropping its declarations.
    pub(crate) fn close(&mut self) {
        if let Some((bindings, defaults)) = self.frames.pop() {
            self.bindings.truncate(bindings);
            self.defaults.truncate(defaults);
        }
    }

    /// The declarations made on the outermost open tag (used for the stream header).
    pub(crate) fn into_context(self) -> NsContext {
        NsContext {
            default_ns: self.current_default().clone(),
            prefixes: self
                .bindings
                .into_iter()
                .map(|(p, n)| (p.to_owned(), n.into_owned()))
                .collect(),
        }
    }

    /// Parses `src`, which must hold exactly one complete element, using (and handing back)
    /// the buffers in `scratch`.
    pub(crate) fn build(
        mut self,
        src: &'s str,
        scratch: &mut Scratch,
    ) -> Result<Element, StreamError> {
        self.frames = std::mem::take(&mut scratch.frames);
        self.defaults = std::mem::take(&mut scratch.defaults);
        let mut stack = std::mem::take(&mut scratch.stack);
        let result = self.build_in(src, &mut scratch.text, &mut stack);
        stack.clear();
        self.frames.clear();
        self.defaults.clear();
        scratch.stack = stack;
        scratch.frames = self.frames;
        scratch.defaults = self.defaults;
        result
    }

    fn build_in(
        &mut self,
        src: &'s str,
        scratch: &mut String,
        stack: &mut Vec<Element>,
    ) -> Result<Element, StreamError> {
        let offset = self.offset;
        let mut reader = Reader::from_str(src);
        reader.config_mut().check_end_names = true;
        let mut text = TextRun {
            one: None,
            scratch,
            many: false,
        };
        loop {
            let event = reader.read_event().map_err(|e| xml_error(e, offset))?;
            let done = match event {
                Event::Start(start) => {
                    text.flush(stack);
                    let el = self.open(src, &start)?;
                    stack.push(el);
                    None
                }
                Event::Empty(start) => {
                    text.flush(stack);
                    let el = self.open(src, &start)?;
                    self.close();
                    attach(stack, el)
                }
                Event::End(_) => {
                    text.flush(stack);
                    self.close();
                    match stack.pop() {
                        Some(el) => attach(stack, el),
                        None => {
                            return Err(StreamError::Syntax {
                                offset,
                                reason: "unmatched end tag".into(),
                            });
                        }
                    }
                }
                Event::Text(t) => {
                    let t = normalize_eol(as_str(src, &t, offset)?);
                    check_placement(stack, &t, offset)?;
                    text.add(t);
                    None
                }
                Event::CData(cdata) => {
                    let t = normalize_eol(as_str(src, &cdata, offset)?);
                    check_placement(stack, &t, offset)?;
                    text.add(t);
                    None
                }
                Event::GeneralRef(reference) => {
                    let mut tmp = [0u8; 4];
                    let t = resolve_reference(&reference, &mut tmp, offset)?;
                    check_placement(stack, t, offset)?;
                    text.add_str(t);
                    None
                }
                Event::Comment(_) => return Err(StreamError::Comment { offset }),
                Event::PI(_) | Event::Decl(_) => {
                    return Err(StreamError::ProcessingInstruction { offset });
                }
                Event::DocType(_) => return Err(StreamError::Dtd { offset }),
                Event::Eof => {
                    return Err(StreamError::Syntax {
                        offset,
                        reason: "element ended early".into(),
                    });
                }
            };
            if let Some(root) = done {
                return Ok(root);
            }
        }
    }
}

/// Character data collected between two tags, so text split by references becomes one node
/// allocated once at its final size.
struct TextRun<'s, 'b> {
    /// The only piece so far, kept as it came (usually borrowed from the element text).
    one: Option<Cow<'s, str>>,
    /// Where pieces are joined once there is more than one.
    scratch: &'b mut String,
    /// Whether the run is in `scratch`.
    many: bool,
}

impl<'s> TextRun<'s, '_> {
    fn add(&mut self, piece: Cow<'s, str>) {
        if piece.is_empty() {
            return;
        }
        if self.many || self.one.is_some() {
            self.add_str(&piece);
        } else {
            self.one = Some(piece);
        }
    }

    fn add_str(&mut self, piece: &str) {
        if !self.many {
            self.scratch.clear();
            if let Some(one) = self.one.take() {
                self.scratch.push_str(&one);
            }
            self.many = true;
        }
        self.scratch.push_str(piece);
    }

    /// Appends the run, if any, to the innermost open element.
    fn flush(&mut self, stack: &mut [Element]) {
        let run = if self.many {
            self.many = false;
            (!self.scratch.is_empty()).then(|| self.scratch.as_str().to_owned())
        } else {
            self.one.take().map(Cow::into_owned)
        };
        if let (Some(run), Some(parent)) = (run, stack.last_mut()) {
            if let Some(Node::Text(last)) = parent.children.last_mut() {
                last.push_str(&run);
            } else {
                if parent.children.capacity() == 0 {
                    parent.children.reserve_exact(1);
                }
                parent.children.push(Node::Text(run));
            }
        }
    }
}

/// Puts a finished element under its parent, or returns it when it is the root.
fn attach(stack: &mut [Element], el: Element) -> Option<Element> {
    match stack.last_mut() {
        Some(parent) => {
            // Most payload elements have a single child; the default first growth to four
            // nodes would triple a large roster's footprint.
            if parent.children.capacity() == 0 {
                parent.children.reserve_exact(1);
            }
            parent.children.push(Node::Element(el));
            None
        }
        None => Some(el),
    }
}

/// Only whitespace may sit outside the element (it is then dropped).
fn check_placement(stack: &[Element], text: &str, offset: u64) -> Result<(), StreamError> {
    if stack.is_empty()
        && !text
            .bytes()
            .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Err(StreamError::TextAtStreamLevel { offset });
    }
    Ok(())
}

/// Resolves `&name;` or `&#N;`, allowing only the five predefined entities.
fn resolve_reference<'r>(
    reference: &'r BytesRef<'_>,
    tmp: &'r mut [u8; 4],
    offset: u64,
) -> Result<&'r str, StreamError> {
    let syntax = |reason: String| StreamError::Syntax { offset, reason };
    if reference.is_char_ref() {
        let c = reference
            .resolve_char_ref()
            .map_err(|e| syntax(e.to_string()))?
            .ok_or_else(|| syntax("bad character reference".into()))?;
        if !is_xml_char(c) {
            return Err(StreamError::IllegalChar {
                code: c.into(),
                offset,
            });
        }
        return Ok(c.encode_utf8(tmp));
    }
    // Matched on the raw bytes: the element text is already known to be UTF-8, and decoding
    // each of a message body's many references again showed up in profiles.
    let raw: &[u8] = reference;
    Ok(match raw {
        b"lt" => "<",
        b"gt" => ">",
        b"amp" => "&",
        b"apos" => "'",
        b"quot" => "\"",
        _ => {
            return Err(StreamError::UndefinedEntity {
                name: String::from_utf8_lossy(raw).into_owned(),
                offset,
            });
        }
    })
}
