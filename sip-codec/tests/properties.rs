//! Property tests: no input panics the parsers, canonical output is a fixed point, and framing
//! does not depend on how the stream is chunked.

use proptest::prelude::*;
use sip_codec::pidf::Presence;
use sip_codec::winfo::WatcherInfo;
use sip_codec::{Frame, Framer, Message, Uri};

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
    fn canonical_form_is_a_fixed_point(data in sip_like()) {
        if let Ok(m) = Message::parse(&data) {
            let wire = m.to_bytes();
            let again = Message::parse(&wire).unwrap();
            prop_assert_eq!(again.to_bytes(), wire);
            prop_assert_eq!(again.validate().is_ok(), m.validate().is_ok());
        }
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
    fn sip_uris_round_trip(user in "[a-z0-9%+.!~*'()&=$,;?/-]{1,12}", host in "[a-z][a-z0-9-]{0,8}(\\.[a-z]{2,4})?", port in proptest::option::of(1u16..), param in "[a-z]{1,6}") {
        let text = match port {
            Some(p) => format!("sip:{user}@{host}:{p};{param}"),
            None => format!("sip:{user}@{host};{param}"),
        };
        if let Ok(uri) = text.parse::<Uri>() {
            let again: Uri = uri.to_string().parse().unwrap();
            prop_assert_eq!(again, uri);
        }
    }
}
