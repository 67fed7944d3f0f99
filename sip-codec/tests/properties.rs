//! Property tests: no input panics the parsers, canonical output is a fixed point, and framing
//! does not depend on how the stream is chunked.

use proptest::prelude::*;
use sip_codec::dialog_info::DialogInfo;
use sip_codec::pidf::Presence;
use sip_codec::winfo::WatcherInfo;
use sip_codec::{Frame, Framer, HeaderName, Host, Message, Uri};

fn sip_like() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just("INVITE sip:a@b SIP/2.0".to_owned()),
        Just("SIP/2.0 200 OK".to_owned()),
        "[A-Za-z-]{1,12}: [ -~]{0,40}",
        " [ -~]{0,20}",
        "[ -~]{0,30}",
        Just("Content-Length: 3".to_owned()),
        Just("v: SIP/2.0/UDP h;branch=z9hG4bKx".to_owned()),
    ];
    (
        prop::collection::vec(line, 0..12),
        prop::bool::ANY,
        "[ -~]{0,8}",
    )
        .prop_map(|(lines, lf, body)| {
            let eol = if lf { "\n" } else { "\r\n" };
            format!("{}{eol}{eol}{body}", lines.join(eol)).into_bytes()
        })
}

/// A message every rule of RFC 3261 §7 allows (header values need only be text at this layer),
/// with the body it carries.
fn valid_message() -> impl Strategy<Value = (Vec<u8>, String)> {
    let start = prop_oneof![
        (
            prop::sample::select(vec![
                "INVITE",
                "OPTIONS",
                "REGISTER",
                "SUBSCRIBE",
                "NOTIFY",
                "MESSAGE",
                "PUBLISH",
                "FOO-BAR",
            ]),
            prop::sample::select(vec![
                "sip:bob@example.com",
                "sips:alice@[2001:db8::1]:5061;transport=tcp",
                "sip:192.0.2.1;lr",
                "tel:+1-555-0100",
            ]),
        )
            .prop_map(|(m, u)| format!("{m} {u} SIP/2.0")),
        (100u16..700, "[ -~]{0,20}").prop_map(|(code, reason)| format!("SIP/2.0 {code} {reason}")),
    ];
    let header = prop_oneof![
        "[a-z0-9]{1,8}".prop_map(|b| format!("Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK{b}")),
        "[a-z0-9]{1,8}"
            .prop_map(|b| format!("v: SIP/2.0/TCP [2001:db8::9]:5060;branch=z9hG4bK{b}")),
        "[a-z0-9]{1,8}".prop_map(|t| format!("From: \"A\" <sip:a@example.com>;tag={t}")),
        Just("t: <sip:b@example.com>".to_owned()),
        "[a-z0-9]{1,10}".prop_map(|c| format!("Call-ID: {c}@example.com")),
        (0u32..100_000).prop_map(|n| format!("CSeq: {n} OPTIONS")),
        (0u8..100).prop_map(|n| format!("Max-Forwards: {n}")),
        Just("m: <sip:a@192.0.2.1:5070>;expires=60".to_owned()),
        ("[A-Za-z][A-Za-z-]{0,10}", "[!-~]([ -~]{0,30}[!-~])?")
            .prop_map(|(n, v)| format!("X-{n}: {v}")),
        // Folded onto two lines.
        ("[!-~]{1,10}", "[!-~]{1,10}").prop_map(|(a, b)| format!("Subject: {a}\n\t{b}")),
    ];
    (
        start,
        prop::collection::vec(header, 0..10),
        prop::bool::ANY,
        prop::bool::ANY,
        "[ -~]{0,20}",
    )
        .prop_map(|(start, headers, lf, with_length, body)| {
            let eol = if lf { "\n" } else { "\r\n" };
            let mut text = format!("{start}{eol}");
            for h in headers {
                text.push_str(&h.replace('\n', eol));
                text.push_str(eol);
            }
            if with_length {
                text.push_str(&format!("l: {}{eol}", body.len()));
            }
            text.push_str(eol);
            text.push_str(&body);
            (text.into_bytes(), body)
        })
}

/// Documents assembled from dialog-info fragments, well-formed or not.
fn dialog_info_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:a@b">"#.to_owned()),
        Just(r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="7" state="partial" entity="x">"#.to_owned()),
        Just("</dialog-info>".to_owned()),
        "<dialog id=\"[a-z0-9&;<]{0,4}\"( call-id=\"c\")?( direction=\"(initiator|recipient|x)\")?>",
        Just("</dialog>".to_owned()),
        // Whole dialogs, so that balanced documents are common.
        "<dialog id=\"[a-z0-9]{1,3}\"><state>(early|confirmed|terminated)</state></dialog>",
        "<dialog id=\"[a-z&;]{1,3}\" local-tag=\"[ -~]{0,4}\"><state code=\"[1-6]00\">confirmed</state><local><identity display=\"[ -~]{0,4}\">[ -~]{0,6}</identity><target uri=\"[ -~]{0,4}\"/></local></dialog>",
        "<state( event=\"[a-z-]{0,8}\")?( code=\"[0-9]{0,6}\")?>(trying|early|confirmed|terminated|bogus)</state>",
        "<duration>[0-9a]{0,4}</duration>",
        Just("<local>".to_owned()),
        Just("</local>".to_owned()),
        Just("<remote>".to_owned()),
        Just("</remote>".to_owned()),
        "<identity( display=\"[ -~]{0,6}\")?>[ -~]{0,8}</identity>",
        "<target uri=\"[a-z:@]{0,6}\"/>",
        Just("<x:ext xmlns:x=\"urn:x\"><state>confirmed</state></x:ext>".to_owned()),
        "[ -~]{0,4}",
    ];
    let soup = prop::collection::vec(piece, 0..14).prop_map(|parts| parts.concat());
    // Whole dialogs inside a root element, so that many are accepted and their round trip checked.
    let whole = prop_oneof![
        "<dialog id=\"[a-z0-9]{1,3}\"( direction=\"(initiator|recipient)\")?><state>(trying|proceeding|early|confirmed|terminated)</state>(<duration>[0-9]{1,3}</duration>)?</dialog>",
        "<dialog id=\"[a-z&;]{1,3}\" local-tag=\"[ -~]{0,4}\"><state event=\"[a-z-]{1,8}\" code=\"[1-6]00\">confirmed</state><remote><identity display=\"[ -~]{0,4}\">[a-z:@ ]{0,6}</identity><target uri=\"[ -~]{0,4}\"/></remote></dialog>",
        Just("<x:ext xmlns:x=\"urn:x\"><state>confirmed</state></x:ext>".to_owned()),
        "[a-z \n]{0,4}",
    ];
    let documents = (prop::collection::vec(whole, 0..6), "(full|partial)").prop_map(|(dialogs, state)| {
        format!(
            r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="{state}" entity="e">{}</dialog-info>"#,
            dialogs.concat()
        )
    });
    prop_oneof![soup, documents].prop_map(String::into_bytes)
}

proptest! {
    #[test]
    fn parsing_never_panics(data in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(m) = Message::parse(&data) {
            let _ = m.validate();
        }
        let mut f = Framer::default();
        f.push(&data);
        while let Ok(Frame::Complete(_) | Frame::KeepAlive) = f.next_frame() {}
        let _ = Presence::parse(&data);
        let _ = WatcherInfo::parse(&data);
        let _ = DialogInfo::parse(&data);
    }

    #[test]
    fn dialog_info_never_panics_and_round_trips(data in dialog_info_like()) {
        // Shuffled fragments of valid documents: most are refused, none may panic, and whatever is
        // accepted writes back to a document that reads the same.
        if let Ok(d) = DialogInfo::parse(&data) {
            let again = DialogInfo::parse(d.to_xml().as_bytes());
            prop_assert_eq!(again, Ok(d));
        }
    }

    #[test]
    fn whatever_parses_has_a_fixed_point_canonical_form(data in sip_like()) {
        // Arbitrary lines mostly do not parse; `canonical_form_is_a_fixed_point` covers valid ones.
        if let Ok(m) = Message::parse(&data) {
            let wire = m.to_bytes();
            let again = Message::parse(&wire).unwrap();
            prop_assert_eq!(again.to_bytes(), wire);
            prop_assert_eq!(again.validate().is_ok(), m.validate().is_ok());
        }
    }

    #[test]
    fn canonical_form_is_a_fixed_point((data, body) in valid_message()) {
        let m = match Message::parse(&data) {
            Ok(m) => m,
            Err(e) => panic!("valid message refused: {e}\n{}", String::from_utf8_lossy(&data)),
        };
        prop_assert_eq!(m.body(), body.as_bytes());
        let wire = m.to_bytes();
        let again = Message::parse(&wire).unwrap();
        prop_assert_eq!(again.to_bytes(), wire);
        prop_assert_eq!(again.validate().is_ok(), m.validate().is_ok());
        let fields = |m: &Message| {
            let mut h = m.headers().clone();
            h.remove(&HeaderName::ContentLength);
            h
        };
        prop_assert_eq!(fields(&again), fields(&m));
    }

    #[test]
    fn framing_ignores_chunking(data in sip_like(), cut in 1usize..50) {
        let run = |chunk: usize| {
            let mut f = Framer::default();
            let mut out = Vec::new();
            for piece in data.chunks(chunk) {
                f.push(piece);
                loop {
                    match f.next_frame() {
                        Ok(Frame::Partial) => break,
                        Ok(frame) => out.push(Ok(frame)),
                        Err(e) => { out.push(Err(e)); return out; }
                    }
                }
            }
            out
        };
        prop_assert_eq!(run(cut), run(data.len().max(1)));
    }

    #[test]
    fn sip_uris_round_trip(
        // Escapes must decode to UTF-8, so they stay ASCII here.
        user in "([a-z0-9_.!~*'()&=+$,;?/-]|%[0-7][0-9A-F]){1,12}",
        host in "[a-z]([a-z0-9-]{0,6}[a-z0-9])?(\\.[a-z]{2,4})?",
        port in proptest::option::of(1u16..),
        param in "[a-z]{1,6}",
    ) {
        let text = match port {
            Some(p) => format!("sip:{user}@{host}:{p};{param}"),
            None => format!("sip:{user}@{host};{param}"),
        };
        let uri = match text.parse::<Uri>() {
            Ok(u) => u,
            Err(e) => panic!("valid URI {text} refused: {e}"),
        };
        let sip = uri.as_sip().expect("a sip: URI");
        prop_assert_eq!(&sip.host, &Host::Name(host.clone()));
        prop_assert_eq!(sip.port, port);
        prop_assert_eq!(sip.param(&param), Some(None));
        prop_assert!(sip.user.is_some());
        let again: Uri = uri.to_string().parse().unwrap();
        prop_assert_eq!(again, uri);
    }
}

#[test]
fn dialog_info_strategy_yields_accepted_documents() {
    // The round-trip property above is only worth something if the strategy reaches valid documents.
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = dialog_info_like();
    let accepted = (0..500)
        .filter(|_| {
            let doc = strategy.new_tree(&mut runner).expect("a value").current();
            DialogInfo::parse(&doc).is_ok_and(|d| !d.dialogs.is_empty())
        })
        .count();
    assert!(
        accepted > 10,
        "only {accepted} of 500 accepted with a dialog"
    );
}

/// A Via entry built from parts: sent-by, then parameters whose values may be tokens or quoted strings holding
/// the separators the fast branch reader must step over, with optional white space around `;` and `=`.
fn via_entry() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "[A-Za-z0-9.!%*_+`'~-]{1,10}",
        "\"[ -!#-\\[\\]-~,;=]{0,12}\"".prop_map(|s| s),
    ];
    let name = prop_oneof![
        Just("branch".to_owned()),
        Just("BRANCH".to_owned()),
        Just("branches".to_owned()),
        Just("rport".to_owned()),
        "[a-z]{1,8}",
    ];
    let param =
        (name, prop::option::of(value), " {0,2}", " {0,2}").prop_map(|(n, v, a, b)| match v {
            Some(v) => format!("{a};{b}{n}{a}={b}{v}"),
            None => format!("{a};{b}{n}"),
        });
    (prop::collection::vec(param, 0..5), "[a-z]{1,8}")
        .prop_map(|(params, host)| format!("SIP/2.0/UDP {host}{}", params.concat()))
}

proptest! {
    /// The response fast path reads the same branch as the full Via parser, from the first of a list.
    #[test]
    fn top_branch_agrees_with_the_via_parser(first in via_entry(), second in prop::option::of(via_entry())) {
        let value = match &second {
            Some(s) => format!("{first}, {s}"),
            None => first.clone(),
        };
        if let Ok(via) = sip_codec::header::parse_via(&first) {
            let parsed = via.branch().filter(|b| !b.starts_with('"'));
            let fast = sip_codec::header::top_branch(&value);
            if parsed.is_some() || fast.is_some() {
                prop_assert_eq!(fast, parsed, "{}", value);
            }
        }
    }
}
