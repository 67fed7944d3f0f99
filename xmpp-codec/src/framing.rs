//! The WebSocket framing of XMPP (RFC 7395), translated to and from the classic stream.
//!
//! Over a WebSocket there is no `<stream:stream>` document: each text message is one complete XML document, the
//! stream is opened with `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' .../>` and closed with `<close/>` in
//! the same namespace, and every top-level element declares its own namespaces. Rather than a second parser,
//! [`message_to_stream`] turns each inbound message into the bytes the classic stream would carry (an `<open/>`
//! becomes a stream header, a `<close/>` the end tag, anything else passes as it is), so [`crate::StreamParser`]
//! and its limits apply unchanged; [`write_open`], [`write_close`] and [`crate::StreamWriter::framed`] write the
//! server's side as standalone documents.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::header::StreamHeader;
use crate::ns;
use crate::serialize::{escape_attr, write_stream_close};

/// What one inbound WebSocket message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `<open/>`: the stream (re)starts with this header (content namespace `jabber:client`).
    Open(StreamHeader),
    /// `<close/>`: the peer ends the stream.
    Close,
    /// Anything else: a stanza or nonza, left to the stream parser (which also rejects what is not XML).
    Other,
}

/// Classifies one inbound message. Only a message holding exactly one `open` or `close` element in the framing
/// namespace (optionally after an XML declaration and white space) is a framing element.
pub fn classify(message: &str) -> Frame {
    let mut reader = Reader::from_str(message);
    let tag = loop {
        match reader.read_event() {
            Ok(Event::Decl(_) | Event::Comment(_)) => continue,
            Ok(Event::Text(t)) if t.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(Event::Empty(tag)) => break tag,
            _ => return Frame::Other,
        }
    };
    // Nothing but white space may follow the one element.
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Text(t)) if t.iter().all(u8::is_ascii_whitespace) => continue,
            _ => return Frame::Other,
        }
    }
    let Some(attrs) = framing_attrs(&tag) else {
        return Frame::Other;
    };
    match tag.local_name().as_ref() {
        b"close" => Frame::Close,
        b"open" => {
            let get = |name: &str| {
                attrs
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            };
            Frame::Open(StreamHeader {
                to: get("to"),
                from: get("from"),
                id: get("id"),
                version: get("version"),
                lang: get("xml:lang"),
                content_ns: ns::CLIENT.to_owned(),
                prefixes: Vec::new(),
            })
        }
        _ => Frame::Other,
    }
}

/// The attributes of `tag` (names as written, values unescaped) when it is in the framing namespace; `None`
/// otherwise or when an attribute is malformed.
fn framing_attrs(tag: &BytesStart<'_>) -> Option<Vec<(String, String)>> {
    let name = tag.name();
    let decl = match name.prefix() {
        Some(p) => format!("xmlns:{}", String::from_utf8_lossy(p.as_ref())),
        None => "xmlns".to_owned(),
    };
    let mut attrs = Vec::new();
    for attr in tag.attributes() {
        let attr = attr.ok()?;
        let key = String::from_utf8(attr.key.as_ref().to_vec()).ok()?;
        let value = attr.unescape_value().ok()?.into_owned();
        attrs.push((key, value));
    }
    attrs
        .iter()
        .any(|(k, v)| *k == decl && v == ns::FRAMING)
        .then_some(attrs)
}

/// Appends the classic-stream bytes that stand for `message`: a stream header for `<open/>`, the stream's end
/// tag for `<close/>`, the message itself otherwise.
pub fn message_to_stream(message: &str, out: &mut Vec<u8>) {
    match classify(message) {
        Frame::Open(header) => header.write(out),
        Frame::Close => write_stream_close(out),
        Frame::Other => out.extend_from_slice(message.as_bytes()),
    }
}

/// Appends the server's `<open/>` (RFC 7395 §3.3.2) with the header's addressing, id, version and language.
pub fn write_open(header: &StreamHeader, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<open xmlns='");
    out.extend_from_slice(ns::FRAMING.as_bytes());
    out.push(b'\'');
    let plain = [
        ("to", &header.to),
        ("from", &header.from),
        ("id", &header.id),
        ("version", &header.version),
        ("xml:lang", &header.lang),
    ];
    for (name, value) in plain {
        if let Some(v) = value {
            out.push(b' ');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"='");
            escape_attr(v, out);
            out.push(b'\'');
        }
    }
    out.extend_from_slice(b"/>");
}

/// Appends `<close/>` (RFC 7395 §3.6), which ends the stream.
pub fn write_close(out: &mut Vec<u8>) {
    out.extend_from_slice(b"<close xmlns='");
    out.extend_from_slice(ns::FRAMING.as_bytes());
    out.extend_from_slice(b"'/>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Element, StreamEvent, StreamParser, StreamWriter};

    const OPEN: &str = "<open xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\" to=\"example.com\" version=\"1.0\" xml:lang=\"en\"/>";

    #[test]
    fn open_and_close_are_recognised_with_their_attributes() {
        let Frame::Open(h) = classify(OPEN) else {
            panic!("not an open")
        };
        assert_eq!(h.to.as_deref(), Some("example.com"));
        assert_eq!(h.version.as_deref(), Some("1.0"));
        assert_eq!(h.lang.as_deref(), Some("en"));
        assert_eq!(h.content_ns, ns::CLIENT);
        let prefixed =
            "<?xml version='1.0'?> <f:close xmlns:f='urn:ietf:params:xml:ns:xmpp-framing'/>\n";
        assert_eq!(classify(prefixed), Frame::Close);
    }

    #[test]
    fn anything_else_is_left_to_the_stream_parser() {
        for other in [
            "<open to='example.com' version='1.0'/>",
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/><message/>",
            "<close xmlns='jabber:client'/>",
            "<message xmlns='jabber:client'><body>hi</body></message>",
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='a&bad;'/>",
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'",
            "",
            "\u{0}garbage",
        ] {
            assert_eq!(classify(other), Frame::Other, "{other}");
        }
    }

    proptest::proptest! {
        /// Whatever a client sends, classifying it neither panics nor turns a non-framing message into one.
        #[test]
        fn any_message_is_classified_without_panicking(
            message in "(<open|<close|<message| xmlns='urn:ietf:params:xml:ns:xmpp-framing'| to='a'|/>|>|&amp;|&bad;|\\PC){0,12}"
        ) {
            let mut out = Vec::new();
            message_to_stream(&message, &mut out);
            if classify(&message) == Frame::Other {
                proptest::prop_assert_eq!(out, message.as_bytes());
            }
        }
    }

    #[test]
    fn translated_messages_parse_as_a_classic_stream() {
        let mut bytes = Vec::new();
        for message in [
            OPEN,
            "<message xmlns='jabber:client' to='bob@example.com'><body>hi</body></message>",
            "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
        ] {
            message_to_stream(message, &mut bytes);
        }
        let mut parser = StreamParser::new();
        parser.feed(&bytes);
        let Ok(Some(StreamEvent::Open(h))) = parser.next_event() else {
            panic!("no header")
        };
        assert_eq!(h.to.as_deref(), Some("example.com"));
        let Ok(Some(StreamEvent::Stanza(s))) = parser.next_event() else {
            panic!("no stanza")
        };
        assert_eq!(s.kind().as_str(), "message");
        assert_eq!(parser.next_event(), Ok(Some(StreamEvent::Close)));
    }

    #[test]
    fn the_servers_side_is_standalone_documents() {
        let mut header = StreamHeader::new(ns::CLIENT);
        header.from = Some("example.com".into());
        header.id = Some("a'b".into());
        let mut out = Vec::new();
        write_open(&header, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='example.com' id='a&apos;b' version='1.0'/>"
        );

        let w = StreamWriter::framed();
        let mut out = Vec::new();
        let features = Element::new(ns::STREAMS, "features")
            .with_child(Element::new(ns::BIND, "bind"))
            .with_child(Element::new(ns::STREAMS, "x"));
        w.write_element(&features, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><x xmlns='http://etherx.jabber.org/streams'/></stream:features>"
        );
        let mut out = Vec::new();
        let msg = Element::new(ns::CLIENT, "message")
            .with_child(Element::new(ns::CLIENT, "body").with_text("hi"));
        w.write_element(&msg, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<message xmlns='jabber:client'><body>hi</body></message>"
        );
        let mut out = Vec::new();
        write_close(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
        );
    }
}
