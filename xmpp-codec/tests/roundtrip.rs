//! parse(serialize(x)) == x for arbitrary headers and element trees.

mod common;

use common::parse_chunks;
use proptest::prelude::*;
use xmpp_codec::{
    Attribute, Condition, Element, Limits, Name, Node, StreamEvent, StreamHeader, StreamWriter, ns,
    write_stream_close, write_stream_error,
};

fn name() -> impl Strategy<Value = String> {
    "[a-zé_][a-z0-9é_.-]{0,6}".prop_filter("xmlns is reserved", |n| !n.starts_with("xmlns"))
}

fn element_ns() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(ns::CLIENT.to_owned()),
        Just(ns::SERVER.to_owned()),
        Just(ns::STREAMS.to_owned()),
        Just("jabber:server:dialback".to_owned()),
        Just("urn:a".to_owned()),
        Just("urn:q&'\"<>ü".to_owned()),
    ]
}

fn attr_ns() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(ns::XML.to_owned())),
        1 => Just(Some("urn:attr".to_owned())),
        1 => Just(Some("urn:attr2".to_owned())),
        1 => Just(Some(ns::STREAMS.to_owned())),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z <>&'\"\r\n\t\\]é😀\u{FFFD}\u{10FFFF}]{1,12}",
        "\\PC{1,8}",
        Just("]]>".to_owned()),
        Just("&amp;".to_owned()),
    ]
}

fn attrs() -> impl Strategy<Value = Vec<Attribute>> {
    prop::collection::vec(
        (attr_ns(), name(), prop_oneof![text(), Just(String::new())]),
        0..4,
    )
    .prop_map(|raw| {
        let mut out: Vec<Attribute> = Vec::new();
        for (ns, name, value) in raw {
            let ns: Option<Name> = ns.map(Name::from);
            if !out.iter().any(|a| a.ns == ns && a.name == name) {
                out.push(Attribute {
                    ns,
                    name: name.into(),
                    value,
                });
            }
        }
        out
    })
}

fn element() -> impl Strategy<Value = Element> {
    let leaf = (element_ns(), name(), attrs()).prop_map(|(ns, name, attrs)| Element {
        name: name.into(),
        ns: ns.into(),
        attrs,
        children: Vec::new(),
    });
    leaf.prop_recursive(4, 40, 5, |inner| {
        (
            element_ns(),
            name(),
            attrs(),
            prop::collection::vec(
                prop_oneof![inner.prop_map(Node::Element), text().prop_map(Node::Text)],
                0..5,
            ),
        )
            .prop_map(|(ns, name, attrs, kids)| {
                let mut el = Element {
                    name: name.into(),
                    ns: ns.into(),
                    attrs,
                    children: Vec::new(),
                };
                // Keep the parser's invariant: text nodes are merged and never empty.
                for kid in kids {
                    match kid {
                        Node::Text(t) => el.push_text(&t),
                        other => el.children.push(other),
                    }
                }
                el
            })
    })
}

fn header() -> impl Strategy<Value = StreamHeader> {
    let opt = || prop::option::of(text());
    (
        (opt(), opt(), opt(), opt(), opt()),
        prop_oneof![
            Just(ns::CLIENT),
            Just(ns::SERVER),
            Just(ns::COMPONENT_ACCEPT)
        ],
        any::<bool>(),
    )
        .prop_map(
            |((to, from, id, version, lang), content, db)| StreamHeader {
                to,
                from,
                id,
                version,
                lang,
                content_ns: content.to_owned(),
                prefixes: if db {
                    vec![("db".to_owned(), "jabber:server:dialback".to_owned())]
                } else {
                    Vec::new()
                },
            },
        )
}

fn element_of(ev: &StreamEvent) -> Option<&Element> {
    match ev {
        StreamEvent::Stanza(s) => Some(s.element()),
        StreamEvent::Element(e) => Some(e),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn serialized_streams_parse_back_to_the_same_values(
        header in header(),
        elements in prop::collection::vec(element(), 0..4),
        split in any::<prop::sample::Index>(),
    ) {
        let mut out = Vec::new();
        header.write(&mut out);
        let writer = StreamWriter::new(&header);
        for el in &elements {
            writer.write_element(el, &mut out);
            out.extend_from_slice(b"\n ");
        }
        write_stream_close(&mut out);
        let cut = split.index(out.len() + 1);
        let (events, err) = parse_chunks(Limits::default(), [&out[..cut], &out[cut..]]);
        let text = String::from_utf8_lossy(&out);
        prop_assert_eq!(err, None, "{}", text);
        prop_assert_eq!(events.len(), elements.len() + 2, "{}", text);
        prop_assert_eq!(&events[0], &StreamEvent::Open(header.clone()));
        for (ev, el) in events[1..].iter().zip(&elements) {
            prop_assert_eq!(element_of(ev), Some(el), "{}", text);
        }
        prop_assert_eq!(events.last(), Some(&StreamEvent::Close));
    }
}

#[test]
fn stanzas_omit_the_stream_default_namespace() {
    let header = StreamHeader::new(ns::CLIENT);
    let msg = Element::new(ns::CLIENT, "message")
        .with_attr("to", "a@b")
        .with_child(Element::new(ns::CLIENT, "body").with_text("x < y"))
        .with_child(Element::new("urn:x", "ext").with_child(Element::new("urn:x", "in")));
    let mut out = Vec::new();
    StreamWriter::new(&header).write_element(&msg, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<message to='a@b'><body>x &lt; y</body><ext xmlns='urn:x'><in/></ext></message>"
    );
}

#[test]
fn stream_header_and_error_serialize_as_expected() {
    let mut header = StreamHeader::new(ns::CLIENT);
    header.from = Some("example.com".into());
    header.id = Some("abc'd".into());
    header.lang = Some("en".into());
    let mut out = Vec::new();
    header.write(&mut out);
    write_stream_error(Condition::PolicyViolation, Some("too big"), &mut out);
    write_stream_close(&mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
         from='example.com' id='abc&apos;d' version='1.0' xml:lang='en'>\
         <stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too big</text></stream:error>\
         </stream:stream>"
    );
}

#[test]
fn unrepresentable_characters_become_replacement_characters() {
    let el = Element::new(ns::CLIENT, "a")
        .with_attr("v", "x\u{1}y\u{FFFF}")
        .with_text("\u{0}z\u{FFFE}");
    let mut out = Vec::new();
    StreamWriter::new(&StreamHeader::new(ns::CLIENT)).write_element(&el, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<a v='x\u{FFFD}y\u{FFFD}'>\u{FFFD}z\u{FFFD}</a>"
    );
}
