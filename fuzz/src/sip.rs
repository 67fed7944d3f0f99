//! Properties of the `sip_message`, `pidf` and `dialog_info` targets.

use sip_codec::dialog_info::{DialogInfo, DialogInfoError};
use sip_codec::pidf::Presence;
use sip_codec::winfo::WatcherInfo;
use sip_codec::{Frame, Framer, Limits, Message, Uri};

/// `Message::parse` (datagram) never panics; on success `validate()` and every typed header
/// accessor run, and the canonical form parses back to the same canonical bytes; `Framer` over
/// chunk sizes taken from the input never panics; `Uri` parse/print round-trips.
pub fn check_sip_message(data: &[u8]) {
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
        let again = match Message::parse(&wire) {
            Ok(m) => m,
            Err(e) => panic!(
                "canonical form does not parse: {e}\n{}",
                String::from_utf8_lossy(&wire)
            ),
        };
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
        && let Ok(uri) = s.parse::<Uri>()
    {
        let text = uri.to_string();
        assert_eq!(text.parse::<Uri>().expect("URI round trip"), uri);
    }
}

/// `Presence::parse` and `WatcherInfo::parse` never panic; what they accept writes back to XML
/// that reads the same.
pub fn check_pidf(data: &[u8]) {
    if let Ok(p) = Presence::parse(data) {
        let xml = p.to_xml();
        let again = Presence::parse(xml.as_bytes()).expect("written PIDF parses");
        assert_eq!(again.to_xml(), xml);
    }
    if let Ok(w) = WatcherInfo::parse(data) {
        let xml = w.to_xml();
        let again = WatcherInfo::parse(xml.as_bytes()).expect("written winfo parses");
        assert_eq!(again, w);
    }
}

/// `DialogInfo::parse` never panics and keeps its dialog limit; what it accepts writes back to XML
/// that reads the same. Returns what the parser said, so tests can assert the outcome.
pub fn check_dialog_info(data: &[u8]) -> Result<DialogInfo, DialogInfoError> {
    let parsed = DialogInfo::parse(data);
    if let Ok(d) = &parsed {
        assert!(d.dialogs.len() <= sip_codec::dialog_info::DEFAULT_MAX_DIALOGS);
        let xml = d.to_xml();
        let again = DialogInfo::parse(xml.as_bytes()).expect("written dialog-info parses");
        assert_eq!(&again, d);
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torture_messages_pass() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sip-codec/tests/torture");
        let mut n = 0;
        for sub in ["rfc4475", "rfc5118"] {
            for entry in std::fs::read_dir(dir.join(sub)).expect("torture fixtures") {
                check_sip_message(&std::fs::read(entry.expect("entry").path()).expect("readable"));
                n += 1;
            }
        }
        assert!(n > 40, "only {n} fixtures found");
    }

    /// Found by a 20-minute `sip_message` run: 128 header fields and no Content-Length were
    /// accepted, but the canonical form adds a Content-Length, and its 129 fields were refused
    /// with "Too many headers". The limit now counts the fields the canonical form writes.
    #[test]
    fn header_limit_counts_the_content_length_the_canonical_form_adds() {
        let mut at_limit = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
        at_limit.extend_from_slice(&b"a:\r\n".repeat(127));
        at_limit.extend_from_slice(b"\r\n");
        assert!(Message::parse(&at_limit).is_ok());
        check_sip_message(&at_limit);
        let mut over = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
        over.extend_from_slice(&b"a:\r\n".repeat(128));
        over.extend_from_slice(b"\r\n");
        let e = Message::parse(&over).map(drop).unwrap_err();
        assert_eq!(e.reason_phrase(), "Too many headers");
        check_sip_message(&over);
    }

    #[test]
    fn pidf_and_winfo_documents_round_trip() {
        let pidf = br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:a@example.com"><tuple id="t"><status><basic>open</basic></status></tuple><dm:person id="p"><rpid:activities><rpid:busy/></rpid:activities></dm:person></presence>"#;
        let winfo = br#"<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full"><watcher-list resource="sip:a@example.com" package="presence"><watcher id="w" status="active" event="approved">sip:b@example.com</watcher></watcher-list></watcherinfo>"#;
        assert!(Presence::parse(pidf).is_ok());
        assert!(WatcherInfo::parse(winfo).is_ok());
        check_pidf(pidf);
        check_pidf(winfo);
    }

    #[test]
    fn dialog_info_documents_round_trip_and_bad_ones_are_refused() {
        let good = br#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:a@example.com"><dialog id="d" call-id="c" local-tag="l" direction="initiator"><state code="200">confirmed</state><local><identity display="A">sip:a@example.com</identity></local></dialog></dialog-info>"#;
        let d = check_dialog_info(good).expect("valid");
        assert_eq!(d.dialogs.len(), 1);
        assert!(matches!(
            check_dialog_info(b"<dialog-info"),
            Err(DialogInfoError::Document(_))
        ));
        let many = format!(
            r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="e">{}</dialog-info>"#,
            r#"<dialog id="d"><state>early</state></dialog>"#.repeat(65)
        );
        assert!(matches!(
            check_dialog_info(many.as_bytes()),
            Err(DialogInfoError::TooManyDialogs { .. })
        ));
    }
}
