//! Fuzz targets live in `fuzz_targets/`; see the README for how to run them.
//!
//! The properties they check live here so that crashes found by the fuzzer become ordinary
//! regression tests that run on stable.
#![forbid(unsafe_code)]

pub mod sasl;
pub mod sip;
pub mod sip_digest;
pub mod xmpp_translate;

use xmpp_codec::{
    Element, Limits, StreamError, StreamEvent, StreamHeader, StreamParser, StreamWriter,
    write_stream_close,
};

/// Small limits so the fuzzer reaches every limit quickly.
fn fuzz_limits() -> Limits {
    Limits {
        max_stanza_size: 4096,
        max_depth: 8,
        max_attributes: 8,
        max_header_size: 1024,
    }
}

/// Feeds `chunks` in order, draining after each, and stops at the first error.
fn parse_chunks<'a>(
    chunks: impl Iterator<Item = &'a [u8]>,
) -> (Vec<StreamEvent>, Option<StreamError>) {
    let mut parser = StreamParser::with_limits(fuzz_limits());
    let mut events = Vec::new();
    for chunk in chunks {
        parser.feed(chunk);
        loop {
            match parser.next_event() {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
        // Whatever a caller that drains does, the buffer stays bounded.
        assert!(parser.buffered() <= fuzz_limits().max_stanza_size + chunk.len());
    }
    (events, None)
}

/// The element a top-level event carries, if any.
fn element_of(ev: &StreamEvent) -> Option<&Element> {
    match ev {
        StreamEvent::Stanza(s) => Some(s.element()),
        StreamEvent::Element(e) => Some(e),
        _ => None,
    }
}

/// Serializes the events of one stream (up to its close) and checks they parse back unchanged.
fn check_round_trip(header: &StreamHeader, elements: &[&Element]) {
    let mut out = Vec::new();
    header.write(&mut out);
    let writer = StreamWriter::new(header);
    for el in elements {
        writer.write_element(el, &mut out);
    }
    write_stream_close(&mut out);
    let mut parser = StreamParser::new();
    parser.feed(&out);
    let text = String::from_utf8_lossy(&out);
    let mut again = Vec::new();
    loop {
        match parser.next_event() {
            Ok(Some(ev)) => again.push(ev),
            Ok(None) => break,
            Err(e) => panic!("re-parse failed: {e}\n{text}"),
        }
    }
    assert_eq!(
        again.first(),
        Some(&StreamEvent::Open(header.clone())),
        "{text}"
    );
    let reparsed: Vec<&Element> = again.iter().filter_map(element_of).collect();
    assert_eq!(reparsed, elements, "{text}");
}

/// The fuzzed properties: no panic; chunking never changes the result; the buffer stays bounded;
/// and everything parsed serializes back to XML that parses to the same values. Returns what
/// parsing the input whole gave, so tests can assert on it.
pub fn check_xmpp_stream(data: &[u8]) -> (Vec<StreamEvent>, Option<StreamError>) {
    let Some((&selector, input)) = data.split_first() else {
        return (Vec::new(), None);
    };
    let whole = parse_chunks(std::iter::once(input));
    let chunk = usize::from(selector % 16) + 1;
    let chunked = parse_chunks(input.chunks(chunk));
    assert_eq!(
        whole, chunked,
        "feeding {chunk}-byte chunks changed the result"
    );

    if let Some(StreamEvent::Open(header)) = whole.0.first() {
        let elements: Vec<&Element> = whole.0.iter().filter_map(element_of).collect();
        check_round_trip(header, &elements);
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::check_xmpp_stream;
    use xmpp_codec::{Element, StreamError, StreamEvent};

    const HEADER: &[u8] = b"\x00<stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

    fn with_header(body: &[u8]) -> Vec<u8> {
        let mut v = HEADER.to_vec();
        v.extend_from_slice(body);
        v
    }

    /// The top-level elements parsed, after checking that the stream opened without error.
    fn parsed_elements(input: &[u8]) -> Vec<Element> {
        let (events, error) = check_xmpp_stream(input);
        assert_eq!(error, None, "{events:?}");
        assert!(
            matches!(events.first(), Some(StreamEvent::Open(_))),
            "{events:?}"
        );
        events
            .iter()
            .filter_map(super::element_of)
            .cloned()
            .collect()
    }

    /// The error parsing gave, after checking that no element was parsed before it.
    fn rejection(input: &[u8]) -> StreamError {
        let (events, error) = check_xmpp_stream(input);
        assert!(
            events.iter().all(|e| super::element_of(e).is_none()),
            "{events:?}"
        );
        error.expect("the input is rejected")
    }

    #[test]
    fn smoke() {
        assert_eq!(check_xmpp_stream(b""), (Vec::new(), None));
        assert_eq!(check_xmpp_stream(b"\x05<stream:stream"), (Vec::new(), None));
        let els = parsed_elements(&with_header(
            b"<message><body>hi &amp; bye</body></message></stream:stream>",
        ));
        assert_eq!(els.len(), 1);
        assert_eq!(
            els[0]
                .child("jabber:client", "body")
                .map(Element::text)
                .as_deref(),
            Some("hi & bye")
        );
    }

    #[test]
    fn element_in_the_xml_namespace_round_trips() {
        let els = parsed_elements(&with_header(b"<xml:a/>"));
        assert_eq!(els.len(), 1);
        assert!(els[0].is(xmpp_codec::ns::XML, "a"), "{els:?}");
    }

    #[test]
    fn header_rebinding_stream_or_xml_prefix_round_trips() {
        let els = parsed_elements(
            b"\x00<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' \
              xmlns:stream='urn:x' xmlns:xml='http://www.w3.org/XML/1998/namespace'><stream:a/>",
        );
        assert_eq!(els.len(), 1);
        assert!(els[0].is("urn:x", "a"), "{els:?}");
    }

    #[test]
    fn noncharacters_are_rejected_not_mangled() {
        for (text, code) in [("<a>\u{FFFF}</a>", 0xFFFF), ("<b>\u{FFFE}</b>", 0xFFFE)] {
            let e = rejection(&with_header(text.as_bytes()));
            assert!(
                matches!(e, StreamError::IllegalChar { code: c, .. } if c == code),
                "{text}: {e:?}"
            );
        }
    }

    fn assert_invalid_name(e: &StreamError, name: &str) {
        assert!(
            matches!(e, StreamError::Syntax { reason, .. }
                if *reason == format!("`{name}` is not a valid XML name")),
            "{e:?}"
        );
    }

    /// Found by the fuzzer: a prefixed name whose local part starts with a digit was accepted,
    /// then written unprefixed and rejected on re-parse.
    #[test]
    fn local_part_starting_with_a_digit_is_rejected() {
        let e = rejection(&with_header(b"<stream:0features/>"));
        assert_invalid_name(&e, "stream:0features");
        let e = rejection(&[
            7, 60, 63, 120, 109, 108, 32, 118, 101, 114, 110, 61, 39, 49, 46, 48, 39, 63, 62, 60,
            115, 116, 114, 101, 97, 109, 58, 115, 116, 114, 101, 97, 109, 32, 120, 109, 108, 110,
            115, 61, 39, 106, 97, 98, 98, 101, 114, 58, 99, 108, 105, 101, 110, 116, 39, 32, 120,
            109, 108, 110, 115, 58, 115, 116, 114, 101, 97, 109, 61, 39, 104, 116, 116, 112, 58,
            47, 47, 101, 116, 104, 101, 114, 120, 46, 106, 97, 98, 98, 101, 114, 46, 111, 114, 103,
            47, 115, 116, 114, 101, 97, 109, 115, 39, 32, 116, 111, 61, 39, 101, 120, 97, 109, 112,
            109, 39, 32, 118, 101, 114, 115, 105, 111, 110, 61, 39, 50, 46, 48, 39, 32, 120, 109,
            108, 58, 108, 65, 110, 103, 61, 39, 101, 110, 39, 62, 60, 115, 116, 114, 101, 97, 109,
            58, 48, 102, 101, 97, 116, 117, 114, 101, 115, 116, 114, 101, 97, 109, 32, 120, 109,
            108, 110, 99, 61, 39, 106, 97, 98, 98, 101, 114, 58, 99, 108, 105, 101, 110, 116, 39,
            32, 120, 109, 108, 110, 115, 58, 115, 116, 114, 101, 97, 109, 61, 39, 104, 116, 116,
            112, 58, 47, 47, 101, 116, 104, 101, 114, 120, 46, 106, 97, 98, 98, 101, 114, 46, 111,
            114, 103, 74, 115, 116, 114, 101, 97, 109, 115, 39, 32, 116, 111, 61, 39, 101, 120, 97,
            109, 112, 108, 101, 46, 99, 111, 109, 39, 32, 118, 101, 114, 115, 105, 111, 110, 61,
            39, 49, 51, 48, 39, 32, 120, 109, 108, 58, 108, 97, 110, 103, 61, 39, 101, 110, 39,
            110, 115, 61, 39, 114, 117, 114, 110, 58, 120, 39, 32, 120, 109, 108, 110, 115, 58,
            112, 61, 39, 117, 114, 110, 58, 112, 39, 32, 112, 58, 97, 61, 39, 49, 39, 47, 62, 60,
            47, 109, 108, 115, 101, 120, 97, 109, 112, 108, 101, 110, 58, 120, 109, 112, 99, 108,
            105, 32, 104, 61, 39, 51, 39, 47, 62,
        ]);
        assert_invalid_name(&e, "stream:0featurestream");
    }
}
