//! Property tests: no input panics the parsers, canonical output is a fixed point, and framing
//! does not depend on how the stream is chunked.

use proptest::prelude::*;
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
