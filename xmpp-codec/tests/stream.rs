//! Parsing realistic streams, however they are chunked.

mod common;

use common::{HEADER, parse, parse_chunks};
use xmpp_codec::{Element, IqType, Limits, Node, Nonza, StanzaKind, StreamEvent, StreamParser, ns};

/// A c2s session from header to close, touching every kind of top-level item.
fn realistic_stream() -> String {
    let mut s = String::from(HEADER);
    s.push_str("\n  <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n");
    s.push_str("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>biwsbj1qdWxpZXQscj1vTXNUQUF3QUFBQU1BQUFBTlAwVEFBQUFBQUJQVTBBQQ==</auth>");
    s.push_str("<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>");
    s.push_str("<presence><show>away</show><status>Gone to the café ☕ — back soon 🙂</status>");
    s.push_str("<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://psi-im.org' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>");
    s.push_str("<message to='romeo@example.net/orchard' type='chat' id='m1' xml:lang='fr'>");
    s.push_str(
        "<body>a &lt; b &amp;&amp; c &gt; d &quot;q&quot; &apos;a&apos; &#x1F600; &#233;</body>",
    );
    s.push_str("<body xml:lang='de'><![CDATA[<not> a tag & raw]]> tail</body></message>");
    s.push_str("<enable xmlns='urn:xmpp:sm:3' resume='true'/><r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='7'/>");
    s.push_str(" \n\t </stream:stream>");
    s
}

fn whole() -> Vec<StreamEvent> {
    let (events, err) = parse(realistic_stream().as_bytes());
    assert_eq!(err, None);
    events
}

#[test]
fn realistic_stream_yields_typed_items() {
    let events = whole();
    assert_eq!(events.len(), 10, "{events:#?}");
    let StreamEvent::Open(h) = &events[0] else {
        panic!()
    };
    assert_eq!(h.to.as_deref(), Some("example.com"));
    assert_eq!(h.version.as_deref(), Some("1.0"));
    assert_eq!(h.lang.as_deref(), Some("en"));
    assert_eq!(h.content_ns, ns::CLIENT);
    assert_eq!(h.from, None);

    let StreamEvent::Element(tls) = &events[1] else {
        panic!()
    };
    assert_eq!(Nonza::classify(tls), Some(Nonza::StartTls));
    let StreamEvent::Element(auth) = &events[2] else {
        panic!()
    };
    let Some(Nonza::SaslAuth {
        mechanism,
        initial_response,
    }) = Nonza::classify(auth)
    else {
        panic!()
    };
    assert_eq!(mechanism, "SCRAM-SHA-256");
    assert!(initial_response.starts_with("biwsbj1q"));

    let StreamEvent::Stanza(iq) = &events[3] else {
        panic!()
    };
    assert_eq!(iq.kind(), StanzaKind::Iq);
    assert_eq!(iq.iq_type(), Some(IqType::Set));
    assert_eq!(iq.id(), Some("bind_1"));
    let bind = iq.payloads().next().unwrap();
    assert!(bind.is(ns::BIND, "bind"));
    assert_eq!(bind.child(ns::BIND, "resource").unwrap().text(), "balcony");

    let StreamEvent::Stanza(pres) = &events[4] else {
        panic!()
    };
    assert_eq!(pres.kind(), StanzaKind::Presence);
    assert_eq!(pres.element().ns, ns::CLIENT);
    let status = pres.element().child(ns::CLIENT, "status").unwrap();
    assert_eq!(status.text(), "Gone to the café ☕ — back soon 🙂");
    let caps = pres
        .element()
        .child("http://jabber.org/protocol/caps", "c")
        .unwrap();
    assert_eq!(caps.attr("ver"), Some("q07IKJEyjvHSyhy//CH0CxmKi8w="));

    let StreamEvent::Stanza(msg) = &events[5] else {
        panic!()
    };
    assert_eq!(msg.to(), Some("romeo@example.net/orchard"));
    assert_eq!(msg.stanza_type(), Some("chat"));
    assert_eq!(msg.lang(), Some("fr"));
    let bodies: Vec<&Element> = msg.payloads().collect();
    assert_eq!(bodies[0].text(), "a < b && c > d \"q\" 'a' 😀 é");
    assert_eq!(bodies[1].lang(), Some("de"));
    assert_eq!(
        bodies[1].children,
        vec![Node::Text("<not> a tag & raw tail".into())]
    );

    let kinds: Vec<_> = events[6..9]
        .iter()
        .map(|e| match e {
            StreamEvent::Element(el) => Nonza::classify(el),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            Some(Nonza::SmEnable {
                resume: true,
                max: None
            }),
            Some(Nonza::SmRequest),
            Some(Nonza::SmAck { h: 7 })
        ]
    );
    assert_eq!(events[9], StreamEvent::Close);
}

#[test]
fn one_byte_at_a_time_matches_whole() {
    let input = realistic_stream();
    let (events, err) = parse_chunks(Limits::default(), input.as_bytes().chunks(1));
    assert_eq!(err, None);
    assert_eq!(events, whole());
}

#[test]
fn every_split_point_matches_whole() {
    // Covers splits inside tags, attribute values, entities, CDATA markers and multi-byte UTF-8.
    let input = realistic_stream();
    let bytes = input.as_bytes();
    let expected = whole();
    for cut in 0..=bytes.len() {
        let (events, err) = parse_chunks(Limits::default(), [&bytes[..cut], &bytes[cut..]]);
        assert_eq!(err, None, "split at {cut}");
        assert_eq!(events, expected, "split at {cut}");
    }
}

#[test]
fn three_way_splits_match_whole() {
    let input = realistic_stream();
    let bytes = input.as_bytes();
    let expected = whole();
    for a in (0..bytes.len()).step_by(37) {
        for b in (a..=bytes.len()).step_by(11) {
            let (events, err) =
                parse_chunks(Limits::default(), [&bytes[..a], &bytes[a..b], &bytes[b..]]);
            assert_eq!(err, None, "split at {a}/{b}");
            assert_eq!(events, expected, "split at {a}/{b}");
        }
    }
}

#[test]
fn multibyte_utf8_split_inside_a_character() {
    let body = format!("{HEADER}<message><body>𝄞é</body></message>");
    let bytes = body.as_bytes();
    let clef = body.find('𝄞').unwrap();
    for cut in clef + 1..clef + 4 {
        let (events, err) = parse_chunks(Limits::default(), [&bytes[..cut], &bytes[cut..]]);
        assert_eq!(err, None);
        let StreamEvent::Stanza(m) = &events[1] else {
            panic!()
        };
        assert_eq!(m.payloads().next().unwrap().text(), "𝄞é");
    }
}

#[test]
fn entity_split_across_chunks() {
    let input = format!("{HEADER}<message><body>x&amp;y&#x263A;</body></message>");
    let bytes = input.as_bytes();
    let amp = input.find("&amp;").unwrap();
    let mut chunks: Vec<&[u8]> = vec![&bytes[..amp + 2]];
    chunks.push(&bytes[amp + 2..amp + 4]);
    chunks.push(&bytes[amp + 4..]);
    let (events, err) = parse_chunks(Limits::default(), chunks);
    assert_eq!(err, None);
    let StreamEvent::Stanza(m) = &events[1] else {
        panic!()
    };
    assert_eq!(m.payloads().next().unwrap().text(), "x&y☺");
}

#[test]
fn nothing_is_emitted_before_an_element_is_complete() {
    let mut p = StreamParser::new();
    p.feed(HEADER.as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    p.feed(b"<message><body>hi</body>");
    assert_eq!(p.next_event(), Ok(None));
    p.feed(b"</message");
    assert_eq!(p.next_event(), Ok(None));
    p.feed(b">");
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
    assert_eq!(p.next_event(), Ok(None));
}

#[test]
fn whitespace_keepalives_produce_nothing_and_are_not_buffered() {
    let mut p = StreamParser::new();
    p.feed(HEADER.as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    for _ in 0..1000 {
        p.feed(b" \n");
        assert_eq!(p.next_event(), Ok(None));
    }
    assert_eq!(p.buffered(), 0);
}

#[test]
fn stream_header_without_declaration_and_with_other_prefix() {
    let (events, err) = parse(
        b"<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server' \
          xmlns:db='jabber:server:dialback' from='a.example' to='b.example' id='x1'>\
          <db:result from='a.example' to='b.example'>abc</db:result></s:stream>",
    );
    assert_eq!(err, None);
    let StreamEvent::Open(h) = &events[0] else {
        panic!()
    };
    assert_eq!(h.content_ns, ns::SERVER);
    assert_eq!(h.id.as_deref(), Some("x1"));
    assert_eq!(
        h.prefixes,
        vec![("db".to_owned(), "jabber:server:dialback".to_owned())]
    );
    let StreamEvent::Element(r) = &events[1] else {
        panic!()
    };
    assert!(r.is("jabber:server:dialback", "result"));
    assert_eq!(events[2], StreamEvent::Close);
}

#[test]
fn namespaces_resolve_through_prefixes_and_defaults() {
    let (events, err) = parse(
        format!(
            "{HEADER}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
             <mechanism>PLAIN</mechanism></mechanisms></stream:features>\
             <iq type='get' xmlns:r='jabber:iq:roster'><r:query><item xmlns='' jid='a@b'/>\
             <r:item r:name='n' xml:lang='en'/></r:query></iq>\
             <message xmlns='jabber:server'/>"
        )
        .as_bytes(),
    );
    assert_eq!(err, None);
    let StreamEvent::Element(f) = &events[1] else {
        panic!()
    };
    assert!(f.is(ns::STREAMS, "features"));
    assert!(matches!(Nonza::classify(f), Some(Nonza::Features(_))));
    let mech = f.child(ns::SASL, "mechanisms").unwrap();
    // A child without a prefix inherits its parent's default namespace.
    assert_eq!(mech.child(ns::SASL, "mechanism").unwrap().text(), "PLAIN");

    let StreamEvent::Stanza(iq) = &events[2] else {
        panic!()
    };
    let query = iq.payloads().next().unwrap();
    assert!(query.is("jabber:iq:roster", "query"));
    let items: Vec<&Element> = query.elements().collect();
    assert!(items[0].is("", "item"));
    assert_eq!(items[0].attr("jid"), Some("a@b"));
    // An unprefixed child of a prefixed element still takes the default namespace (jabber:client).
    assert!(items[1].is("jabber:iq:roster", "item"));
    assert_eq!(items[1].attr_ns("jabber:iq:roster", "name"), Some("n"));
    assert_eq!(items[1].attr("name"), None);
    assert_eq!(items[1].lang(), Some("en"));

    // Same name, other namespace: not a stanza of this stream.
    let StreamEvent::Element(m) = &events[3] else {
        panic!()
    };
    assert!(m.is(ns::SERVER, "message"));
}

#[test]
fn unprefixed_child_of_prefixed_element_uses_default_namespace() {
    let (events, err) =
        parse(format!("{HEADER}<iq xmlns:q='urn:x'><q:a><b/></q:a></iq>").as_bytes());
    assert_eq!(err, None);
    let StreamEvent::Stanza(iq) = &events[1] else {
        panic!()
    };
    let a = iq.payloads().next().unwrap();
    assert!(a.is("urn:x", "a"));
    assert!(a.elements().next().unwrap().is(ns::CLIENT, "b"));
}

#[test]
fn self_closing_stream_header_opens_and_closes() {
    let (events, err) = parse(
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'/>",
    );
    assert_eq!(err, None);
    assert!(matches!(events[0], StreamEvent::Open(_)));
    assert_eq!(events[1], StreamEvent::Close);
}

#[test]
fn data_after_close_is_ignored() {
    let (events, err) = parse(format!("{HEADER}</stream:stream><garbage").as_bytes());
    assert_eq!(err, None);
    assert_eq!(events.len(), 2);
}

#[test]
fn reset_expects_a_new_header_and_drops_buffered_bytes() {
    let mut p = StreamParser::new();
    p.feed(HEADER.as_bytes());
    p.feed(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message>injected");
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Element(_)))));
    assert_eq!(p.next_event(), Ok(None));
    p.reset();
    assert_eq!(p.buffered(), 0);
    p.feed(HEADER.as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    p.feed(b"<presence/>");
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
}

#[test]
fn reset_keep_buffered_parses_a_pipelined_header() {
    let mut p = StreamParser::new();
    p.feed(HEADER.as_bytes());
    p.feed(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>");
    p.feed(HEADER.as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Element(_)))));
    p.reset_keep_buffered();
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    assert_eq!(p.next_event(), Ok(None));
}

#[test]
fn reset_clears_a_previous_error() {
    let mut p = StreamParser::new();
    p.feed(b"<!DOCTYPE x>");
    assert!(p.next_event().is_err());
    assert!(p.next_event().is_err());
    p.reset();
    p.feed(HEADER.as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
}

#[test]
fn crlf_in_text_is_normalised() {
    let (events, err) =
        parse(format!("{HEADER}<message><body>a\r\nb&#xD;c</body></message>").as_bytes());
    assert_eq!(err, None);
    let StreamEvent::Stanza(m) = &events[1] else {
        panic!()
    };
    assert_eq!(m.payloads().next().unwrap().text(), "a\nb\rc");
}
