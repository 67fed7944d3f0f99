//! Fuzzes SIP parsing: datagram parse, validation, typed headers, canonical round trip, and
//! stream framing over arbitrary chunkings. Any panic or broken invariant is a finding.
//!
//! Built by cargo-fuzz (`--cfg fuzzing`) this is a libFuzzer target. Built any other way
//! (`cargo build`, `cargo test --all-targets`) it is a plain program that runs the same checks
//! once over the files named on the command line, or over the RFC 4475/5118 fixtures, so that
//! workspace builds and tests never start an endless fuzzing loop.
#![cfg_attr(fuzzing, no_main)]

use sip_codec::{Frame, Framer, Limits, Message};

fn check(data: &[u8]) {
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
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(uri) = s.parse::<sip_codec::Uri>()
    {
        let text = uri.to_string();
        assert_eq!(text.parse::<sip_codec::Uri>().expect("URI round trip"), uri);
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));

#[cfg(not(fuzzing))]
fn main() {
    let mut files: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    if files.is_empty() {
        let torture =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sip-codec/tests/torture");
        for dir in ["rfc4475", "rfc5118"] {
            if let Ok(entries) = std::fs::read_dir(torture.join(dir)) {
                files.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    for f in &files {
        check(&std::fs::read(f).expect("readable input"));
    }
    println!("sip_message: checked {} inputs", files.len());
}
