//! Builds an [`Element`] from the text of one complete element, resolving namespaces.
//!
//! The scanner has already found where the element ends and refused what markup shape alone shows
//! (comments, PIs, DTDs, controls, mismatched end tags, limits), so this is one forward pass over
//! the element's text with no tokenizer underneath: start tags, end tags, text, references and
//! CDATA sections are read in place and only the tree's own strings are allocated. It still
//! checks every shape it relies on, so it never panics and never accepts what is not XML even if
//! handed text the scanner did not vet. It owns namespace scoping because stanzas inherit
//! bindings from a stream header that is no longer in the buffer.

use std::borrow::Cow;
use std::ops::Range;

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

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Bytes that end a name inside a tag; anything else is taken into the name and judged by
/// [`check_name`].
fn ends_name(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'>' | b'=' | b'<' | b'"' | b'\''
    )
}

/// Rough QName check: ASCII letters, digits, `-`, `.`, `_` and any non-ASCII character.
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

fn split_qname(qname: &str) -> (Option<&str>, &str) {
    match qname.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, qname),
    }
}

/// How many bytes are looked at one by one before handing a search to `memchr`: most names, values and
/// text runs in stanzas are shorter, and memchr's setup cost more than the search itself for them.
const SHORT: usize = 16;

/// The first byte of `hay` for which `hit` holds; short runs are searched inline, long ones by `long`.
#[inline(always)]
fn find(
    hay: &[u8],
    hit: impl Fn(u8) -> bool,
    long: impl Fn(&[u8]) -> Option<usize>,
) -> Option<usize> {
    let head = hay.len().min(SHORT);
    if let Some(p) = hay[..head].iter().position(|&c| hit(c)) {
        return Some(p);
    }
    long(&hay[head..]).map(|p| head + p)
}

fn has_amp(s: &str) -> bool {
    find(s.as_bytes(), |c| c == b'&', |h| memchr::memchr(b'&', h)).is_some()
}

/// `src[range]`, or a syntax error if the range does not fall on character boundaries (it always
/// does, since every cut is next to ASCII markup; this keeps the builder panic-free regardless).
fn slice(src: &str, range: Range<usize>, offset: u64) -> Result<&str, StreamError> {
    src.get(range).ok_or_else(|| StreamError::Syntax {
        offset,
        reason: "markup cut inside a character".into(),
    })
}

/// Appends `raw` with its references resolved; only the predefined entities exist. `eol` applies
/// XML end-of-line handling (CRLF and lone CR become LF) to the literal parts, as in text.
fn unescape_into(raw: &str, out: &mut String, eol: bool, offset: u64) -> Result<(), StreamError> {
    let bytes = raw.as_bytes();
    let mut rest = 0;
    while rest < bytes.len() {
        let Some(amp) =
            find(&bytes[rest..], |c| c == b'&', |h| memchr::memchr(b'&', h)).map(|p| rest + p)
        else {
            push_literal(&raw[rest..], out, eol);
            break;
        };
        push_literal(&raw[rest..amp], out, eol);
        // Reference names are a few bytes long.
        let semi = bytes[amp + 1..]
            .iter()
            .position(|&c| c == b';')
            .map(|p| amp + 1 + p)
            .ok_or_else(|| StreamError::Syntax {
                offset,
                reason: "`&` starts no reference (write `&amp;`)".into(),
            })?;
        let mut tmp = [0u8; 4];
        out.push_str(resolve_reference(&bytes[amp + 1..semi], &mut tmp, offset)?);
        rest = semi + 1;
    }
    Ok(())
}

fn push_literal(s: &str, out: &mut String, eol: bool) {
    if !eol || memchr::memchr(b'\r', s.as_bytes()).is_none() {
        out.push_str(s);
        return;
    }
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            chars.next_if_eq(&'\n');
            out.push('\n');
        } else {
            out.push(c);
        }
    }
}

/// Resolves the body of `&name;` or `&#N;`, allowing only the five predefined entities.
fn resolve_reference<'t>(
    raw: &[u8],
    tmp: &'t mut [u8; 4],
    offset: u64,
) -> Result<&'t str, StreamError> {
    let syntax = |reason: &str| StreamError::Syntax {
        offset,
        reason: reason.into(),
    };
    if let Some(num) = raw.strip_prefix(b"#") {
        let (digits, radix) = match num.strip_prefix(b"x") {
            Some(hex) => (hex, 16),
            None => (num, 10),
        };
        // Eight digits hold every code point; more (leading zeros included) is refused rather
        // than risking overflow.
        if digits.is_empty() || digits.len() > 8 {
            return Err(syntax("bad character reference"));
        }
        let mut code: u32 = 0;
        for &d in digits {
            let v = (d as char)
                .to_digit(radix)
                .ok_or_else(|| syntax("bad character reference"))?;
            code = code * radix + v;
        }
        let c = char::from_u32(code).ok_or_else(|| syntax("bad character reference"))?;
        if !is_xml_char(c) {
            return Err(StreamError::IllegalChar {
                code: c.into(),
                offset,
            });
        }
        return Ok(c.encode_utf8(tmp));
    }
    Ok(match raw {
        b"lt" => "<",
        b"gt" => ">",
        b"amp" => "&",
        b"apos" => "'",
        b"quot" => "\"",
        _ if raw.is_empty()
            || raw
                .iter()
                .any(|&b| is_ws(b) || matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'')) =>
        {
            return Err(syntax("`&` starts no reference (write `&amp;`)"));
        }
        _ => {
            return Err(StreamError::UndefinedEntity {
                name: String::from_utf8_lossy(raw).into_owned(),
                offset,
            });
        }
    })
}

/// Buffers the tree builders of one thread reuse, so building a stanza does not allocate them afresh.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch {
    /// Joins text that references or CDATA sections split into pieces.
    text: String,
    frames: Vec<Frame>,
    defaults: Vec<Name>,
    stack: Vec<Element>,
    /// Key and value ranges of the start tag being read.
    attrs: Vec<(Range<usize>, Range<usize>)>,
}

impl Scratch {
    /// Drops a text buffer grown past `keep` bytes (the rest is bounded by the depth and
    /// attribute limits).
    pub(crate) fn trim(&mut self, keep: usize) {
        if self.text.capacity() > keep {
            self.text = String::new();
        }
    }
}

/// What the builder remembers about an open element.
#[derive(Debug, Clone)]
struct Frame {
    /// Bindings and declared defaults that existed before it.
    bindings: usize,
    defaults: usize,
    /// Its qualified name in the source, which its end tag must repeat.
    qname: Range<usize>,
}

/// A start tag read in place: its name and where its attributes' ranges are.
pub(crate) struct StartTag {
    pub(crate) qname: Range<usize>,
    /// Index of the byte after the tag's `>`.
    pub(crate) end: usize,
    pub(crate) self_closing: bool,
}

/// Reads the start tag at `src[at]` (which must be `<`), putting its attributes' key and raw value
/// ranges in `attrs`.
pub(crate) fn read_start_tag(
    src: &str,
    at: usize,
    attrs: &mut Vec<(Range<usize>, Range<usize>)>,
    offset: u64,
) -> Result<StartTag, StreamError> {
    let b = src.as_bytes();
    let syntax = |reason: &str| StreamError::Syntax {
        offset,
        reason: reason.into(),
    };
    let early = || syntax("element ended early");
    attrs.clear();
    if b.get(at) != Some(&b'<') {
        return Err(syntax("expected a start tag"));
    }
    let name_end = |mut i: usize| {
        while i < b.len() && !ends_name(b[i]) {
            i += 1;
        }
        i
    };
    let skip_ws = |mut i: usize| {
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        i
    };
    let mut i = name_end(at + 1);
    let qname = at + 1..i;
    if qname.is_empty() {
        return Err(syntax("start tag without a name"));
    }
    check_name(slice(src, qname.clone(), offset)?, offset)?;
    loop {
        let after_ws = skip_ws(i);
        let spaced = after_ws > i;
        i = after_ws;
        match *b.get(i).ok_or_else(early)? {
            b'>' => {
                return Ok(StartTag {
                    qname,
                    end: i + 1,
                    self_closing: false,
                });
            }
            b'/' => {
                if b.get(i + 1) != Some(&b'>') {
                    return Err(syntax("`/` not followed by `>` in a start tag"));
                }
                return Ok(StartTag {
                    qname,
                    end: i + 2,
                    self_closing: true,
                });
            }
            _ if !spaced => return Err(syntax("attributes must be separated by white space")),
            _ => {}
        }
        let key_end = name_end(i);
        if key_end == i {
            return Err(syntax("attribute without a name"));
        }
        let key = i..key_end;
        // Names must be unique as written (namespace declarations too); `push_attr` also refuses two
        // prefixes that resolve to the same expanded name.
        if attrs.iter().any(|(k, _)| b[k.clone()] == b[key.clone()]) {
            return Err(StreamError::Syntax {
                offset,
                reason: format!(
                    "attribute `{}` appears twice",
                    String::from_utf8_lossy(&b[key])
                ),
            });
        }
        i = skip_ws(key_end);
        if b.get(i) != Some(&b'=') {
            return Err(syntax("attribute without `=` and a value"));
        }
        i = skip_ws(i + 1);
        let quote = *b.get(i).ok_or_else(early)?;
        if quote != b'"' && quote != b'\'' {
            return Err(syntax("attribute value not in quotes"));
        }
        let close = find(
            &b[i + 1..],
            |c| c == quote || c == b'<',
            |h| memchr::memchr2(quote, b'<', h),
        )
        .map(|p| i + 1 + p)
        .ok_or_else(early)?;
        if b[close] == b'<' {
            return Err(syntax("`<` in an attribute value"));
        }
        attrs.push((key, i + 1..close));
        i = close + 1;
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
    /// The open elements, outermost first.
    frames: Vec<Frame>,
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

    /// Opens a start tag read by [`read_start_tag`]: records its declarations (kept until
    /// [`TreeBuilder::close`]) and returns the element with its name and attributes resolved.
    pub(crate) fn open(
        &mut self,
        src: &'s str,
        tag: &StartTag,
        spans: &[(Range<usize>, Range<usize>)],
    ) -> Result<Element, StreamError> {
        let offset = self.offset;
        self.frames.push(Frame {
            bindings: self.bindings.len(),
            defaults: self.defaults.len(),
            qname: tag.qname.clone(),
        });
        // Declarations apply to the element's own name and attributes, so they are taken first.
        let mut plain = 0;
        for (key, value) in spans {
            let key = slice(src, key.clone(), offset)?;
            let is_default = key == "xmlns";
            let Some(prefix) = key.strip_prefix("xmlns:").or(is_default.then_some("")) else {
                plain += 1;
                continue;
            };
            let raw = slice(src, value.clone(), offset)?;
            let value = if !has_amp(raw) {
                Cow::Borrowed(raw)
            } else {
                let mut s = String::new();
                unescape_into(raw, &mut s, false, offset)?;
                Cow::Owned(s)
            };
            let bad_decl = || StreamError::BadNamespaceDeclaration {
                attr: key.to_owned(),
                offset,
            };
            if is_default {
                if value == ns::XML {
                    return Err(bad_decl());
                }
                self.defaults.push(Name::new(&value));
            } else {
                check_name(prefix, offset)?;
                let xml_mismatch = (prefix == "xml") != (value == ns::XML);
                if prefix == "xmlns" || value.is_empty() || xml_mismatch {
                    return Err(bad_decl());
                }
                self.bindings.push((prefix, value));
            }
        }
        // `read_start_tag` checked the name.
        let qname = slice(src, tag.qname.clone(), offset)?;
        let (prefix, local) = split_qname(qname);
        let ns = match prefix {
            Some(p) => Name::new(self.resolve_prefix(p)?),
            None => self.current_default().clone(),
        };
        let mut attrs: Vec<Attribute> = Vec::with_capacity(plain);
        if plain > 0 {
            for (key, value) in spans {
                let key = slice(src, key.clone(), offset)?;
                if key != "xmlns" && !key.starts_with("xmlns:") {
                    self.push_attr(&mut attrs, key, slice(src, value.clone(), offset)?)?;
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
        let value = if !has_amp(raw) {
            raw.to_owned()
        } else {
            let mut s = String::with_capacity(raw.len());
            unescape_into(raw, &mut s, false, offset)?;
            s
        };
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
            value,
        });
        Ok(())
    }

    /// Leaves the innermost open element, dropping its declarations.
    pub(crate) fn close(&mut self) {
        if let Some(frame) = self.frames.pop() {
            self.bindings.truncate(frame.bindings);
            self.defaults.truncate(frame.defaults);
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
        let mut spans = std::mem::take(&mut scratch.attrs);
        let result = self.build_in(src, &mut scratch.text, &mut stack, &mut spans);
        stack.clear();
        spans.clear();
        self.frames.clear();
        self.defaults.clear();
        scratch.stack = stack;
        scratch.attrs = spans;
        scratch.frames = self.frames;
        scratch.defaults = self.defaults;
        result
    }

    fn build_in(
        &mut self,
        src: &'s str,
        scratch: &mut String,
        stack: &mut Vec<Element>,
        spans: &mut Vec<(Range<usize>, Range<usize>)>,
    ) -> Result<Element, StreamError> {
        let offset = self.offset;
        let syntax = |reason: &str| StreamError::Syntax {
            offset,
            reason: reason.into(),
        };
        let b = src.as_bytes();
        let mut text = TextRun {
            one: None,
            scratch,
            many: false,
        };
        let mut i = 0;
        loop {
            // Character data up to the next markup.
            let lt = find(&b[i..], |c| c == b'<', |h| memchr::memchr(b'<', h))
                .map(|p| i + p)
                .ok_or_else(|| syntax("element ended early"))?;
            if lt > i {
                if stack.is_empty() {
                    return Err(StreamError::TextAtStreamLevel { offset });
                }
                let piece = slice(src, i..lt, offset)?;
                let plain = find(
                    piece.as_bytes(),
                    |c| c == b'&' || c == b'\r',
                    |h| memchr::memchr2(b'&', b'\r', h),
                )
                .is_none();
                if plain {
                    text.add(piece);
                } else {
                    text.add_escaped(piece, offset)?;
                }
            }
            i = lt;
            match b.get(i + 1) {
                Some(b'/') => {
                    let name_start = i + 2;
                    let mut j = name_start;
                    while j < b.len() && !ends_name(b[j]) {
                        j += 1;
                    }
                    let name = &b[name_start..j];
                    while j < b.len() && is_ws(b[j]) {
                        j += 1;
                    }
                    if b.get(j) != Some(&b'>') {
                        return Err(syntax("malformed end tag"));
                    }
                    i = j + 1;
                    let open = self.frames.last().map(|f| f.qname.clone());
                    if open.is_none_or(|open| b.get(open) != Some(name)) {
                        return Err(syntax("end tag does not match the start tag"));
                    }
                    text.flush(stack);
                    self.close();
                    let el = stack.pop().ok_or_else(|| syntax("unmatched end tag"))?;
                    if let Some(root) = attach(stack, el) {
                        return if i == b.len() {
                            Ok(root)
                        } else {
                            Err(syntax("content after the element"))
                        };
                    }
                }
                Some(b'!') => {
                    const OPEN: &[u8] = b"<![CDATA[";
                    if b[i..].starts_with(b"<!-") {
                        return Err(StreamError::Comment { offset });
                    }
                    if b.get(i + 2).is_some_and(u8::is_ascii_alphabetic) {
                        return Err(StreamError::Dtd { offset });
                    }
                    if !b[i..].starts_with(OPEN) {
                        return Err(syntax("malformed `<!` markup"));
                    }
                    if stack.is_empty() {
                        return Err(StreamError::TextAtStreamLevel { offset });
                    }
                    let start = i + OPEN.len();
                    let end = memchr::memmem::find(&b[start..], b"]]>")
                        .map(|p| start + p)
                        .ok_or_else(|| syntax("CDATA section ended early"))?;
                    let piece = slice(src, start..end, offset)?;
                    if memchr::memchr(b'\r', piece.as_bytes()).is_none() {
                        text.add(piece);
                    } else {
                        push_literal(piece, text.joined(), true);
                    }
                    i = end + 3;
                }
                Some(b'?') => return Err(StreamError::ProcessingInstruction { offset }),
                _ => {
                    text.flush(stack);
                    let tag = read_start_tag(src, i, spans, offset)?;
                    let el = self.open(src, &tag, spans)?;
                    i = tag.end;
                    if tag.self_closing {
                        self.close();
                        if let Some(root) = attach(stack, el) {
                            return if i == b.len() {
                                Ok(root)
                            } else {
                                Err(syntax("content after the element"))
                            };
                        }
                    } else {
                        stack.push(el);
                    }
                }
            }
        }
    }
}

/// Character data collected between two tags, so text split by CDATA sections becomes one node
/// allocated once at its final size.
struct TextRun<'s, 'b> {
    /// The only piece so far, borrowed from the element text.
    one: Option<&'s str>,
    /// Where pieces are joined once there is more than one or one needed resolving.
    scratch: &'b mut String,
    /// Whether the run is in `scratch`.
    many: bool,
}

impl<'s> TextRun<'s, '_> {
    /// Adds literal text with nothing to resolve.
    fn add(&mut self, piece: &'s str) {
        if piece.is_empty() {
            return;
        }
        if self.many || self.one.is_some() {
            self.joined().push_str(piece);
        } else {
            self.one = Some(piece);
        }
    }

    /// Adds text whose references and line ends need resolving.
    fn add_escaped(&mut self, piece: &'s str, offset: u64) -> Result<(), StreamError> {
        let eol = memchr::memchr(b'\r', piece.as_bytes()).is_some();
        unescape_into(piece, self.joined(), eol, offset)
    }

    /// Moves the run into `scratch` and returns it for appending.
    fn joined(&mut self) -> &mut String {
        if !self.many {
            self.scratch.clear();
            if let Some(one) = self.one.take() {
                self.scratch.push_str(one);
            }
            self.many = true;
        }
        self.scratch
    }

    /// Appends the run, if any, to the innermost open element.
    fn flush(&mut self, stack: &mut [Element]) {
        let run = if self.many {
            self.many = false;
            (!self.scratch.is_empty()).then(|| self.scratch.as_str().to_owned())
        } else {
            self.one.take().map(str::to_owned)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> NsContext {
        NsContext {
            default_ns: Name::new(ns::CLIENT),
            prefixes: vec![("stream".into(), ns::STREAMS.into())],
        }
    }

    fn build(src: &str) -> Result<Element, StreamError> {
        TreeBuilder::new(&ctx(), 0).build(src, &mut Scratch::default())
    }

    #[test]
    fn text_pieces_join_into_one_node() {
        let el = build("<a>x&amp;y<![CDATA[<z>&amp;]]>\r\nw&#x41;&#66;</a>").unwrap();
        assert_eq!(el.children, vec![Node::Text("x&y<z>&amp;\nwAB".into())]);
        let el = build("<a>1\r2\r\n3<b/>4</a>").unwrap();
        assert_eq!(el.children.len(), 3);
        assert_eq!(el.text(), "1\n2\n34");
    }

    #[test]
    fn attributes_resolve_references_but_keep_line_ends() {
        let el = build("<a x='&lt;&#10;\r' y = \"'\"/>").unwrap();
        assert_eq!(el.attr("x"), Some("<\n\r"));
        assert_eq!(el.attr("y"), Some("'"));
    }

    #[test]
    fn malformed_markup_is_refused() {
        for bad in [
            "<a x='1'y='2'/>",
            "<a x='1' x='1'/>",
            "<a xmlns:p='u' xmlns:p='u'/>",
            "<a xmlns='u' xmlns='u'/>",
            "<a x/>",
            "<a x=1/>",
            "<a x='1/>",
            "<a / >",
            "<a></b>",
            "<a></a x>",
            "<a>&amp</a>",
            "<a>a & b;</a>",
            "<a>&#;</a>",
            "<a>&#x;</a>",
            "<a>&#xD800;</a>",
            "<a>&#123456789;</a>",
            "<a><![CDATA[x]]</a>",
            "<a><!-- x --></a>",
            "<a><?x?></a>",
            "<a/>b",
            "x<a/>",
            "<a>",
            "<a",
            "",
        ] {
            assert!(build(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            build("<a>&nbsp;</a>"),
            Err(StreamError::UndefinedEntity { ref name, .. }) if name == "nbsp"
        ));
        assert!(matches!(
            build("<a>&#xFFFE;</a>"),
            Err(StreamError::IllegalChar { code: 0xFFFE, .. })
        ));
    }

    proptest::proptest! {
        /// The builder never panics, whatever text it is handed (the scanner normally vets it first).
        #[test]
        fn any_text_builds_or_fails_without_panicking(
            src in "(<a|<b:c|</a>|</b:c>|>|/>| x='1'| xmlns='u'| xmlns:b='v'|&amp;|&#x41;|&#|&|;|<!\\[CDATA\\[|]]>|\r|\\PC){0,16}"
        ) {
            let _ = build(&src);
        }
    }
}
