//! Writes stream headers, elements and stanzas back as XML.
//!
//! Output always re-parses to the same values. Characters XML cannot carry at all (most C0
//! controls, U+FFFE, U+FFFF) are written as U+FFFD, since no escape exists for them.

use crate::element::{Element, Node};
use crate::error::Condition;
use crate::header::StreamHeader;
use crate::ns;
use crate::stanza::Stanza;
use crate::tree::is_xml_char;

/// Appends `s` escaped for character data.
pub fn escape_text(s: &str, out: &mut Vec<u8>) {
    escape(s, out, false);
}

/// Appends `s` escaped for an attribute value delimited by `'`.
pub fn escape_attr(s: &str, out: &mut Vec<u8>) {
    escape(s, out, true);
}

/// What a byte needs when written: nothing, a replacement in character data and attribute values alike, or
/// a replacement in attribute values only. Looked up per byte, so that the common run of plain bytes (most of
/// what a server writes: addresses, status text) is one table read and one test each.
const PLAIN: u8 = 0;
const ALWAYS: u8 = 1;
const IN_ATTR: u8 = 2;
const CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = ALWAYS;
        b += 1;
    }
    t[b'\t' as usize] = IN_ATTR;
    t[b'\n' as usize] = IN_ATTR;
    t[b'\'' as usize] = IN_ATTR;
    t[b'"' as usize] = IN_ATTR;
    t[b'&' as usize] = ALWAYS;
    t[b'<' as usize] = ALWAYS;
    t[b'>' as usize] = ALWAYS;
    // The lead byte of U+FFFE and U+FFFF (EF BF BE / EF BF BF); rare enough to check by char.
    t[0xEF] = ALWAYS;
    t
};

fn escape(s: &str, out: &mut Vec<u8>, attr: bool) {
    let bytes = s.as_bytes();
    let limit = if attr { IN_ATTR } else { ALWAYS };
    let special = |b: &u8| {
        let c = CLASS[usize::from(*b)];
        c != PLAIN && c <= limit
    };
    let mut run = 0;
    let mut i = 0;
    while let Some(k) = bytes[i..].iter().position(special) {
        i += k;
        let b = bytes[i];
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            // A raw CR would be folded into LF by the reader.
            b'\r' => b"&#xD;",
            // Attribute-value normalisation would turn raw whitespace into spaces.
            b'\n' => b"&#xA;",
            b'\t' => b"&#x9;",
            b'\'' => b"&apos;",
            b'"' => b"&quot;",
            0xEF if s[i..].chars().next().is_some_and(is_xml_char) => {
                i += 1;
                continue;
            }
            // Other control characters, U+FFFE and U+FFFF are not XML characters.
            _ => "\u{FFFD}".as_bytes(),
        };
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(rep);
        // U+FFFE and U+FFFF are three bytes.
        i += if b == 0xEF { 3 } else { 1 };
        run = i;
    }
    out.extend_from_slice(&bytes[run..]);
}

fn write_attr(out: &mut Vec<u8>, qname_prefix: Option<&str>, name: &str, value: &str) {
    out.push(b' ');
    if let Some(p) = qname_prefix {
        out.extend_from_slice(p.as_bytes());
        out.push(b':');
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"='");
    escape_attr(value, out);
    out.push(b'\'');
}

impl StreamHeader {
    /// Appends the opening `<stream:stream ...>` tag.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"<stream:stream");
        write_attr(out, None, "xmlns", &self.content_ns);
        write_attr(out, Some("xmlns"), "stream", ns::STREAMS);
        for (p, n) in &self.prefixes {
            if p != "stream" && p != "xml" {
                write_attr(out, Some("xmlns"), p, n);
            }
        }
        let plain = [
            ("to", &self.to),
            ("from", &self.from),
            ("id", &self.id),
            ("version", &self.version),
        ];
        for (name, value) in plain {
            if let Some(v) = value {
                write_attr(out, None, name, v);
            }
        }
        if let Some(lang) = &self.lang {
            write_attr(out, Some("xml"), "lang", lang);
        }
        out.push(b'>');
    }
}

/// Appends the stream close tag `</stream:stream>`.
pub fn write_stream_close(out: &mut Vec<u8>) {
    out.extend_from_slice(b"</stream:stream>");
}

/// Appends `<stream:error>` with the condition and an optional human-readable text.
pub fn write_stream_error(condition: Condition, text: Option<&str>, out: &mut Vec<u8>) {
    let mut err = Element::new(ns::STREAMS, "error")
        .with_child(Element::new(ns::STREAM_ERRORS, condition.as_str()));
    if let Some(t) = text {
        err = err.with_child(Element::new(ns::STREAM_ERRORS, "text").with_text(t));
    }
    // Written standalone: the streams prefix is declared by every header this crate writes.
    StreamWriter::new(&StreamHeader::new(ns::CLIENT)).write_element(&err, out);
}

/// Serializes top-level items in the namespace context of a stream header.
#[derive(Debug, Clone)]
pub struct StreamWriter {
    default_ns: String,
    /// Prefix bindings the header made, the streams one always included.
    prefixes: Vec<(String, String)>,
    /// Each element is a document of its own (RFC 7395): nothing is inherited from a header, and a top-level
    /// element in the streams namespace declares the `stream` prefix itself.
    framed: bool,
}

impl StreamWriter {
    /// A writer for elements inside a stream opened with `header` (as written by [`StreamHeader::write`]).
    pub fn new(header: &StreamHeader) -> Self {
        let mut prefixes = vec![("stream".to_owned(), ns::STREAMS.to_owned())];
        prefixes.extend(
            header
                .prefixes
                .iter()
                .filter(|(p, _)| p != "stream" && p != "xml")
                .cloned(),
        );
        StreamWriter {
            default_ns: header.content_ns.clone(),
            prefixes,
            framed: false,
        }
    }

    /// A writer for XMPP over WebSocket (RFC 7395), where every top-level element is a standalone document:
    /// stanzas carry `xmlns='jabber:client'`, features and stream errors `xmlns:stream`.
    pub fn framed() -> Self {
        StreamWriter {
            default_ns: String::new(),
            prefixes: vec![("stream".to_owned(), ns::STREAMS.to_owned())],
            framed: true,
        }
    }

    /// The stream's content namespace, which top-level elements in it need not declare (empty when framed).
    pub fn content_ns(&self) -> &str {
        &self.default_ns
    }

    /// Appends a stanza; its `xmlns` is omitted when it equals the stream's content namespace.
    pub fn write_stanza(&self, stanza: &Stanza, out: &mut Vec<u8>) {
        self.write_element(stanza.element(), out);
    }

    /// Appends a top-level element, using header prefixes (e.g. `stream:`) where they apply.
    pub fn write_element(&self, el: &Element, out: &mut Vec<u8>) {
        self.write_in(el, &self.default_ns, true, out);
    }

    fn prefix_for(&self, ns: &str) -> Option<&str> {
        if ns == ns::XML {
            return Some("xml");
        }
        self.prefixes
            .iter()
            .find(|(_, n)| n == ns)
            .map(|(p, _)| p.as_str())
    }

    fn write_in(&self, el: &Element, default_ns: &str, top: bool, out: &mut Vec<u8>) {
        out.push(b'<');
        let mut child_default = default_ns;
        // A framed writer's `stream` prefix is declared by the top-level element that uses it, so only there.
        let bound = self
            .prefix_for(&el.ns)
            .filter(|_| !el.ns.is_empty() && (top || !self.framed));
        let prefix = if el.ns == default_ns {
            None
        } else if let Some(p) = bound {
            Some(p)
        } else {
            child_default = &el.ns;
            None
        };
        if let Some(p) = prefix {
            out.extend_from_slice(p.as_bytes());
            out.push(b':');
        }
        out.extend_from_slice(el.name.as_bytes());
        if child_default != default_ns {
            write_attr(out, None, "xmlns", &el.ns);
        }
        if let (true, Some(p)) = (self.framed && top, prefix) {
            write_attr(out, Some("xmlns"), p, &el.ns);
        }
        // Namespaced attributes outside the header's bindings get prefixes declared here.
        let mut local: Vec<(String, &str)> = Vec::new();
        for a in &el.attrs {
            let prefix: Option<String> = match a.ns.as_deref() {
                None | Some("") => None,
                Some(n) => match self.prefix_for(n) {
                    Some(p) => Some(p.to_owned()),
                    None => match local.iter().find(|(_, ln)| *ln == n) {
                        Some((p, _)) => Some(p.clone()),
                        None => {
                            let p = self.fresh_prefix(local.len());
                            write_attr(out, Some("xmlns"), &p, n);
                            local.push((p.clone(), n));
                            Some(p)
                        }
                    },
                },
            };
            write_attr(out, prefix.as_deref(), &a.name, &a.value);
        }
        if el.children.is_empty() {
            out.extend_from_slice(b"/>");
            return;
        }
        out.push(b'>');
        for child in &el.children {
            match child {
                Node::Text(t) => escape_text(t, out),
                Node::Element(c) => self.write_in(c, child_default, false, out),
            }
        }
        out.extend_from_slice(b"</");
        if let Some(p) = prefix {
            out.extend_from_slice(p.as_bytes());
            out.push(b':');
        }
        out.extend_from_slice(el.name.as_bytes());
        out.push(b'>');
    }

    /// A prefix no header binding uses.
    fn fresh_prefix(&self, mut n: usize) -> String {
        loop {
            let p = format!("ns{n}");
            if self.prefixes.iter().all(|(q, _)| *q != p) {
                return p;
            }
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        let mut out = Vec::new();
        escape_text(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn attr(s: &str) -> String {
        let mut out = Vec::new();
        escape_attr(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_escaping() {
        assert_eq!(text("plain é 😀"), "plain é 😀");
        assert_eq!(text("a<b>&c\r\n\t'\""), "a&lt;b&gt;&amp;c&#xD;\n\t'\"");
        assert_eq!(text("]]>"), "]]&gt;");
    }

    #[test]
    fn attribute_escaping() {
        assert_eq!(
            attr("it's \"q\"\t\n\r<&>"),
            "it&apos;s &quot;q&quot;&#x9;&#xA;&#xD;&lt;&amp;&gt;"
        );
    }

    #[test]
    fn unrepresentable_characters() {
        assert_eq!(text("\u{0}\u{8}\u{1F}"), "\u{FFFD}\u{FFFD}\u{FFFD}");
        assert_eq!(
            text("a\u{FFFE}b\u{FFFF}c\u{FFFD}\u{F8FF}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}\u{F8FF}"
        );
    }

    /// The escaping, char by char, as the XML spec reads it: what the byte table must agree with.
    fn reference(s: &str, attr: bool) -> String {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '\r' => out.push_str("&#xD;"),
                '\n' if attr => out.push_str("&#xA;"),
                '\t' if attr => out.push_str("&#x9;"),
                '\'' if attr => out.push_str("&apos;"),
                '"' if attr => out.push_str("&quot;"),
                c if !is_xml_char(c) => out.push('\u{FFFD}'),
                c => out.push(c),
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn escaping_agrees_with_the_spec_char_by_char(
            s in "([a-z@./]|[&<>'\"\t\n\r\u{0}-\u{1f}]|\u{FFFE}|\u{FFFF}|\u{FFFD}|\u{E000}|\u{EFFF}|\u{F000}|é|😀){0,40}"
        ) {
            proptest::prop_assert_eq!(text(&s), reference(&s, false));
            proptest::prop_assert_eq!(attr(&s), reference(&s, true));
        }
    }

    #[test]
    fn prefixed_and_unqualified_elements() {
        let mut header = StreamHeader::new(ns::SERVER);
        header
            .prefixes
            .push(("db".into(), "jabber:server:dialback".into()));
        let w = StreamWriter::new(&header);
        let el = Element::new("jabber:server:dialback", "result")
            .with_child(Element::new("", "plain"))
            .with_child(Element::new(ns::SERVER, "x"));
        let mut out = Vec::new();
        w.write_element(&el, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<db:result><plain xmlns=''/><x/></db:result>"
        );
    }
}
