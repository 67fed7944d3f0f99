//! Fuzzes SIP parsing: datagram parse, validation, typed headers, canonical round trip, and
//! stream framing over arbitrary chunkings. Any panic or broken invariant is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_codec::{Frame, Framer, Limits, Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::parse(data) {
        let _ = msg.validate();
        let h = msg.headers();
        let _ = (
            h.via(),
            h.from(),
            h.to(),
            h.call_id(),
            h.cseq(),
            h.contact(),
            h.expires(),
        );
        let _ = (
            h.max_forwards(),
            h.content_type(),
            h.event(),
            h.subscription_state(),
        );
        let _ = (
            h.sip_etag(),
            h.sip_if_match(),
            h.allow(),
            h.supported(),
            h.require(),
        );
        let _ = (
            h.www_authenticate(),
            h.authorization(),
            h.route(),
            h.record_route(),
        );
        // Canonical form must parse back to the same canonical form.
        let wire = msg.to_bytes();
        let again = Message::parse(&wire).expect("canonical form parses");
        assert_eq!(again.to_bytes(), wire, "canonical form is a fixed point");
    }
    // Stream framing with chunk sizes taken from the first byte must never panic.
    let chunk = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut framer = Framer::new(Limits {
        max_message_size: 4096,
        ..Limits::default()
    });
    'outer: for piece in data.chunks(chunk) {
        framer.push(piece);
        loop {
            match framer.next_frame() {
                Ok(Frame::Partial) => break,
                Ok(_) => {}
                Err(_) => break 'outer,
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(uri) = s.parse::<sip_codec::Uri>() {
            let text = uri.to_string();
            assert_eq!(text.parse::<sip_codec::Uri>().expect("URI round trip"), uri);
        }
    }
});
