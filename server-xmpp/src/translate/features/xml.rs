//! Elements kept as text: what the features that store client XML (private storage, vCards) write and read back.
//! The text is written by the codec's serializer and parsed back by its parser, in a `jabber:client` stream, so
//! namespaces come back exactly as the client sent them.

use xmpp_codec::{Element, StreamEvent, StreamHeader, StreamParser, StreamWriter, ns};

/// Writes elements as text, each as it would stand in a `jabber:client` stream; one serves every child of a
/// stanza (building the writer allocates).
pub struct Texts(StreamWriter);

impl Texts {
    /// A writer for `jabber:client` streams.
    pub fn new() -> Self {
        Texts(StreamWriter::new(&StreamHeader::new(ns::CLIENT)))
    }

    /// The element as text.
    pub fn text(&self, el: &Element) -> String {
        let mut out = Vec::new();
        self.0.write_element(el, &mut out);
        String::from_utf8(out).expect("the writer emits UTF-8")
    }
}

impl Default for Texts {
    fn default() -> Self {
        Self::new()
    }
}

/// The element as text.
pub fn to_text(el: &Element) -> String {
    Texts::new().text(el)
}

/// The element that [`to_text`] wrote; `None` if the text is not one element (a damaged record).
pub fn from_text(text: &str) -> Option<Element> {
    let mut parser = StreamParser::new();
    parser.feed(
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    parser.feed(text.as_bytes());
    // A top-level element arrives as a stanza only when it is named like one; anything else is an element event.
    loop {
        match parser.next_event() {
            Ok(Some(StreamEvent::Open(_))) => continue,
            Ok(Some(StreamEvent::Element(el))) => return Some(el),
            Ok(Some(StreamEvent::Stanza(s))) => return Some(s.into_element()),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_survives_text_with_its_namespaces() {
        let el = Element::new("storage:bookmarks", "storage").with_child(
            Element::new("storage:bookmarks", "conference")
                .with_attr("jid", "room@conference.x")
                .with_child(Element::new("urn:other", "extra").with_text("a < b & c")),
        );
        assert_eq!(from_text(&to_text(&el)), Some(el));
        assert_eq!(from_text("<unclosed xmlns='a'>"), None);
        assert_eq!(from_text("not xml"), None);
    }
}
