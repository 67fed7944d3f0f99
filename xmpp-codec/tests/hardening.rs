//! Restricted XML (RFC 6120 §11), limits and malformed input.

mod common;

use common::{HEADER, condition_of, error_of, parse, parse_chunks};
use xmpp_codec::{Condition, Limits, StreamError, StreamEvent, StreamParser};

fn header_error(input: &str) -> StreamError {
    match parse(input.as_bytes()) {
        (_, Some(e)) => e,
        (events, None) => panic!("no error for {input:?}: {events:?}"),
    }
}

#[test]
fn dtd_is_restricted() {
    let e = header_error("<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY a 'b'>]><stream:stream>");
    assert_eq!(e.condition(), Condition::RestrictedXml);
    assert!(matches!(e, StreamError::Dtd { .. }));
}

#[test]
fn billion_laughs_is_rejected_before_any_expansion() {
    let lol = "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>\
        <!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]>\
        <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>\
        <message><body>&lol2;</body></message>";
    assert_eq!(header_error(lol).condition_name(), "restricted-xml");
}

#[test]
fn entity_declaration_inside_the_stream_is_restricted() {
    assert_eq!(condition_of("<!ENTITY x 'y'>"), "restricted-xml");
    assert_eq!(
        condition_of("<message><!ENTITY x 'y'></message>"),
        "restricted-xml"
    );
}

#[test]
fn comments_are_restricted_everywhere() {
    assert_eq!(condition_of("<!-- hi -->"), "restricted-xml");
    assert_eq!(
        condition_of("<message><!-- hi --></message>"),
        "restricted-xml"
    );
    let e = header_error("<!-- before --><stream:stream>");
    assert!(matches!(e, StreamError::Comment { offset: 0 }));
}

#[test]
fn processing_instructions_are_restricted() {
    assert_eq!(condition_of("<?php echo 1; ?>"), "restricted-xml");
    assert_eq!(
        condition_of("<message><?pi x?></message>"),
        "restricted-xml"
    );
    // Only one XML declaration, and only before the header.
    assert_eq!(condition_of("<?xml version='1.0'?>"), "restricted-xml");
    let e = header_error("<?xml-stylesheet href='a'?><stream:stream>");
    assert_eq!(e.condition(), Condition::RestrictedXml);
    let e = header_error("<?xml version='1.0'?><?xml version='1.0'?><stream:stream>");
    assert_eq!(e.condition(), Condition::RestrictedXml);
}

#[test]
fn undefined_entities_are_restricted_predefined_ones_allowed() {
    assert_eq!(
        condition_of("<message><body>&nbsp;</body></message>"),
        "restricted-xml"
    );
    assert_eq!(condition_of("<message to='&foo;'/>"), "restricted-xml");
    let e = error_of("<message><body>&xxe;</body></message>");
    assert!(matches!(e, StreamError::UndefinedEntity { ref name, .. } if name == "xxe"));
    let (_, err) =
        parse(format!("{HEADER}<message a='&lt;&gt;&amp;&quot;&apos;&#65;&#x42;'/>").as_bytes());
    assert_eq!(err, None);
}

#[test]
fn malformed_references_are_not_well_formed() {
    assert_eq!(
        condition_of("<message><body>&#0;</body></message>"),
        "not-well-formed"
    );
    assert_eq!(
        condition_of("<message><body>&#x1;</body></message>"),
        "not-well-formed"
    );
    assert_eq!(
        condition_of("<message><body>&#xD800;</body></message>"),
        "not-well-formed"
    );
    assert_eq!(
        condition_of("<message><body>&#xZZ;</body></message>"),
        "not-well-formed"
    );
    assert_eq!(
        condition_of("<message><body>a & b</body></message>"),
        "not-well-formed"
    );
    assert_eq!(condition_of("<message a='&#1;'/>"), "not-well-formed");
}

#[test]
fn syntax_errors_are_not_well_formed() {
    for body in [
        "<message></presence>",
        "<message><body></message></body>",
        "<message a='1' a='2'/>",
        "<message a='<'/>",
        "<message a=1/>",
        "<message a/>",
        "< message/>",
        "<1abc/>",
        "<stream:0features/>",
        "<message p:-a='1' xmlns:p='urn:p'/>",
        "<a:b:c xmlns:a='urn:a'/>",
        "<message><body>\u{1}</body></message>",
        "<message><![CDATX[x]]></message>",
        "</stream:stream2>",
        "</other>",
        "<message>\u{0}</message>",
        "<message xmlns:p=''/>",
        "<message xmlns:xmlns='urn:x'/>",
        "<message xmlns:xml='urn:x'/>",
        "<message xmlns='http://www.w3.org/XML/1998/namespace'/>",
    ] {
        assert_eq!(condition_of(body), "not-well-formed", "{body}");
    }
}

#[test]
fn invalid_utf8_is_not_well_formed() {
    let mut input = HEADER.as_bytes().to_vec();
    input.extend_from_slice(b"<message><body>\xC3\x28</body></message>");
    let (_, err) = parse(&input);
    assert!(
        matches!(err, Some(StreamError::InvalidUtf8 { .. })),
        "{err:?}"
    );
}

#[test]
fn text_at_stream_level_is_bad_format() {
    assert_eq!(condition_of("hello"), "bad-format");
    assert_eq!(condition_of("<![CDATA[x]]>"), "bad-format");
    assert_eq!(condition_of("&amp;"), "bad-format");
}

#[test]
fn unbound_prefixes_are_bad_namespace_prefix() {
    assert_eq!(condition_of("<foo:message/>"), "bad-namespace-prefix");
    assert_eq!(condition_of("<message foo:a='1'/>"), "bad-namespace-prefix");
    // A binding ends with the element that made it.
    assert_eq!(
        condition_of("<iq><a xmlns:p='urn:p'/><p:b/></iq>"),
        "bad-namespace-prefix"
    );
}

#[test]
fn wrong_header_namespaces_are_invalid_namespace() {
    let e = header_error("<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong'>");
    assert!(matches!(e, StreamError::WrongStreamNamespace { .. }));
    assert_eq!(e.condition_name(), "invalid-namespace");
    let e = header_error(
        "<stream:stream xmlns='urn:other' xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    assert_eq!(e.condition_name(), "invalid-namespace");
    let e = header_error("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>");
    assert!(
        matches!(e, StreamError::UnsupportedContentNamespace { ref found } if found.is_empty())
    );
    let e = header_error("<stream xmlns='jabber:client'>");
    assert_eq!(e.condition_name(), "invalid-namespace");
}

#[test]
fn wrong_root_is_bad_format_and_unbound_stream_prefix_is_bad_prefix() {
    let e = header_error("<message xmlns='jabber:client'/>");
    assert!(matches!(e, StreamError::NotAStreamHeader { .. }));
    assert_eq!(e.condition_name(), "bad-format");
    assert_eq!(
        header_error("<stream:stream xmlns='jabber:client'>").condition_name(),
        "bad-namespace-prefix"
    );
    assert_eq!(header_error("hello").condition_name(), "not-well-formed");
    assert_eq!(
        header_error("</stream:stream>").condition_name(),
        "not-well-formed"
    );
}

#[test]
fn non_utf8_declaration_is_unsupported_encoding() {
    let e = header_error(
        "<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    assert_eq!(e.condition_name(), "unsupported-encoding");
    let (_, err) = parse(
        b"<?xml version='1.0' encoding='utf-8'?><stream:stream xmlns='jabber:client' \
          xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    assert_eq!(err, None);
}

fn small() -> Limits {
    Limits {
        max_stanza_size: 1024,
        max_depth: 4,
        max_attributes: 5,
        max_header_size: 512,
    }
}

fn error_with(limits: Limits, body: &str) -> StreamError {
    let input = format!("{HEADER}{body}");
    parse_chunks(limits, [input.as_bytes()])
        .1
        .expect("an error")
}

#[test]
fn stanza_size_limit() {
    let fits = format!("<message><body>{}</body></message>", "x".repeat(1024 - 32));
    assert_eq!(fits.len(), 1024);
    let (_, err) = parse_chunks(small(), [format!("{HEADER}{fits}").as_bytes()]);
    assert_eq!(err, None);
    let too_big = format!("<message><body>{}</body></message>", "x".repeat(1024 - 31));
    let e = error_with(small(), &too_big);
    assert!(matches!(e, StreamError::StanzaTooLarge { limit: 1024, .. }));
    assert_eq!(e.condition_name(), "policy-violation");
}

#[test]
fn endless_element_fails_as_soon_as_the_limit_passes_with_bounded_buffer() {
    for open in [
        "<message><body>",
        "<message a='",
        "<message><![CDATA[",
        "<message",
    ] {
        let mut p = StreamParser::with_limits(small());
        p.feed(HEADER.as_bytes());
        assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
        p.feed(open.as_bytes());
        let chunk = [b'y'; 100];
        let mut fed = open.len();
        let err = loop {
            p.feed(&chunk);
            fed += chunk.len();
            match p.next_event() {
                Ok(None) => assert!(fed <= 1024, "{open}: no error after {fed} bytes"),
                Ok(Some(ev)) => panic!("{open}: unexpected {ev:?}"),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, StreamError::StanzaTooLarge { .. }),
            "{open}: {err:?}"
        );
        assert!(fed <= 1024 + chunk.len());
        assert!(p.buffered() <= 1024 + chunk.len());
    }
}

#[test]
fn feeding_without_draining_trips_the_buffer_limit() {
    let mut p = StreamParser::with_limits(small());
    for _ in 0..20 {
        p.feed(&[b' '; 100]);
    }
    let e = p.next_event().unwrap_err();
    assert!(matches!(e, StreamError::BufferFull { .. }), "{e:?}");
    assert_eq!(e.condition(), Condition::PolicyViolation);
    assert!(p.buffered() <= 1024 + 100);
}

#[test]
fn depth_limit() {
    let ok = "<iq><a><b><c/></b></a></iq>";
    let (_, err) = parse_chunks(small(), [format!("{HEADER}{ok}").as_bytes()]);
    assert_eq!(err, None);
    let e = error_with(small(), "<iq><a><b><c><d/></c></b></a></iq>");
    assert!(matches!(e, StreamError::TooDeep { limit: 4, .. }), "{e:?}");
    assert_eq!(e.condition_name(), "policy-violation");
    // An unclosed tower fails as soon as it is too deep, without waiting for the end.
    let e = error_with(small(), "<a><a><a><a><a>");
    assert!(matches!(e, StreamError::TooDeep { .. }));
}

#[test]
fn default_depth_limit_stops_deep_nesting() {
    let deep = "<a>".repeat(10_000);
    let e = error_of(&deep);
    assert!(matches!(e, StreamError::TooDeep { limit: 32, .. }));
}

#[test]
fn attribute_limit_counts_declarations_too() {
    let (_, err) = parse_chunks(
        small(),
        [format!("{HEADER}<iq a='1' b='2' c='3' d='4' e='5'/>").as_bytes()],
    );
    assert_eq!(err, None);
    let e = error_with(small(), "<iq a='1' b='2' c='3' d='4' e='5' f='6'/>");
    assert!(matches!(e, StreamError::TooManyAttributes { limit: 5, .. }));
    let e = error_with(
        small(),
        "<iq xmlns:a='x' xmlns:b='y' xmlns:c='z' d='4' e='5' f='6'/>",
    );
    assert_eq!(e.condition_name(), "policy-violation");
    // `=` inside a value is not an attribute.
    let (_, err) = parse_chunks(
        small(),
        [format!("{HEADER}<iq a='=====' b='='/>").as_bytes()],
    );
    assert_eq!(err, None);
}

#[test]
fn header_size_limit() {
    let long = format!(
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{}'>",
        "a".repeat(600)
    );
    let e = parse_chunks(small(), [long.as_bytes()]).1.unwrap();
    assert!(matches!(e, StreamError::HeaderTooLarge { limit: 512 }));
    assert_eq!(e.condition_name(), "policy-violation");
    let e = parse_chunks(small(), [" ".repeat(600).as_bytes()])
        .1
        .unwrap();
    assert_eq!(e.condition_name(), "policy-violation");
}

#[test]
fn errors_are_sticky() {
    let mut p = StreamParser::new();
    p.feed(format!("{HEADER}<!-- x -->").as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    let first = p.next_event().unwrap_err();
    p.feed(b"<presence/>");
    assert_eq!(p.next_event().unwrap_err(), first);
}

#[test]
fn error_messages_name_the_input() {
    let e = error_of("<message><body>&xxe;</body></message>");
    let msg = e.to_string();
    assert!(
        msg.contains("&xxe;") && msg.contains(&HEADER.len().to_string()),
        "{msg}"
    );
}

#[test]
fn unlimited_limits_do_not_overflow() {
    let limits = Limits {
        max_stanza_size: usize::MAX,
        max_depth: usize::MAX,
        max_attributes: usize::MAX,
        max_header_size: usize::MAX,
    };
    let input = format!("{HEADER}<message a='1'><body>hi</body></message>");
    let (events, err) = parse_chunks(limits, input.as_bytes().chunks(3));
    assert_eq!(err, None);
    assert_eq!(events.len(), 2);
}

/// A mismatched end tag is refused when it arrives, not when (never) the stanza would be complete: a client that
/// sends `<message><x></message>` and waits must get its stream error at once.
#[test]
fn mismatched_end_tag_is_refused_as_soon_as_it_arrives() {
    for tail in [
        "<message><unclosed></message>",
        "<message><body>x</bod></message>",
        "<a:b xmlns:a='u'><c></a:b>",
    ] {
        let mut p = StreamParser::new();
        p.feed(HEADER.as_bytes());
        assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
        for b in tail.as_bytes() {
            p.feed(std::slice::from_ref(b));
            match p.next_event() {
                Ok(None) => continue,
                Err(e) => {
                    assert_eq!(e.condition(), Condition::NotWellFormed, "{tail}: {e}");
                    break;
                }
                Ok(Some(ev)) => panic!("{tail}: unexpected {ev:?}"),
            }
        }
        assert!(
            p.next_event().is_err(),
            "{tail}: error reported before the input ended"
        );
    }
    // Matching end tags with whitespace before `>` still close normally.
    let (events, error) = parse(format!("{HEADER}<message><body>x</body ></message\n>").as_bytes());
    assert_eq!(error, None);
    assert!(
        events.iter().any(|e| matches!(e, StreamEvent::Stanza(_))),
        "{events:?}"
    );
}
