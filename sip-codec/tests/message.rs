//! End-to-end behaviour of the public API: parse, typed access, build, serialize.

use sip_codec::header::{Contacts, MediaType, SubState};
use sip_codec::{ErrorLayer, Frame, Framer, HeaderName, Limits, Message, Method, Request, Uri};

const SUBSCRIBE: &[u8] = b"SUBSCRIBE sip:bob@example.com SIP/2.0\r\n\
v: SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bKnashds8;rport;received=192.0.2.1\r\n\
Max-Forwards: 70\r\n\
t: \"Bob\" <sip:bob@example.com>\r\n\
f: \"Alice\" <sip:alice@example.com>;tag=xfg9\r\n\
i: 2010b@example.com\r\n\
CSeq: 17766 SUBSCRIBE\r\n\
m: <sip:alice@[2001:db8::1]:5060;transport=tcp>;expires=600;q=0.5\r\n\
o: presence;id=42\r\n\
Expires: 600\r\n\
Accept: application/pidf+xml,\r\n application/watcherinfo+xml\r\n\
X-Custom-Thing: keep me  as is\r\n\
l: 0\r\n\r\n";

#[test]
fn typed_access_to_a_subscribe() {
    let msg = Message::parse(SUBSCRIBE).unwrap();
    msg.validate().unwrap();
    let req = msg.as_request().unwrap();
    assert_eq!(req.method, Method::Subscribe);
    let h = &req.headers;
    let via = &h.via().unwrap()[0];
    assert_eq!(via.transport, "TCP");
    assert_eq!(via.port, Some(5060));
    assert_eq!(via.rport(), Some(None));
    assert_eq!(via.received(), Some("192.0.2.1".parse().unwrap()));
    assert!(via.has_rfc3261_branch());
    assert_eq!(h.from().unwrap().unwrap().tag(), Some("xfg9"));
    assert_eq!(
        h.to().unwrap().unwrap().display_name.as_deref(),
        Some("Bob")
    );
    assert_eq!(h.call_id().unwrap(), Some("2010b@example.com"));
    let Some(Contacts::List(c)) = h.contact().unwrap() else {
        panic!()
    };
    assert_eq!((c[0].expires(), c[0].q()), (Some(600), Some(500)));
    assert_eq!(h.event().unwrap().unwrap().id(), Some("42"));
    assert_eq!(h.expires().unwrap(), Some(600));
    assert_eq!(
        h.get(&HeaderName::Accept),
        Some("application/pidf+xml, application/watcherinfo+xml")
    );
    assert_eq!(
        h.get(&HeaderName::Other("x-custom-thing".into())),
        None,
        "unknown names keep their spelling"
    );
    assert_eq!(
        h.get(&HeaderName::parse("X-Custom-Thing")),
        Some("keep me  as is")
    );
}

#[test]
fn canonical_serialization() {
    let msg = Message::parse(SUBSCRIBE).unwrap();
    let text = String::from_utf8(msg.to_bytes()).unwrap();
    assert!(text.starts_with(
        "SUBSCRIBE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP [2001:db8::1]:5060;"
    ));
    assert!(text.contains("\r\nCall-ID: 2010b@example.com\r\n"));
    assert!(text.contains("\r\nEvent: presence;id=42\r\n"));
    assert!(text.contains("\r\nX-Custom-Thing: keep me  as is\r\n"));
    assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
}

#[test]
fn build_request_and_response() {
    let uri: Uri = "sip:bob@example.com".parse().unwrap();
    let mut req = Request::new(Method::Message, uri);
    req.headers
        .push(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1");
    req.headers
        .push(HeaderName::From, "<sip:alice@example.com>;tag=1");
    req.headers.push(HeaderName::To, "<sip:bob@example.com>");
    req.headers.push(HeaderName::CallId, "c1@192.0.2.1");
    req.headers.push(HeaderName::CSeq, "1 MESSAGE");
    req.headers.push(
        HeaderName::ContentType,
        MediaType::new("text", "plain").to_string(),
    );
    req.body = b"hi".to_vec();
    let wire = Message::Request(req.clone()).to_bytes();
    let back = Message::parse(&wire).unwrap();
    back.validate().unwrap();
    assert_eq!(back.body(), b"hi");
    let resp = req.make_response(200, "OK");
    let resp = Message::Response(resp);
    resp.validate().unwrap();
    assert_eq!(resp.headers().count(&HeaderName::Via), 1);
    assert!(resp.headers().get(&HeaderName::ContentType).is_none());
}

#[test]
fn notify_subscription_state() {
    let raw = b"NOTIFY sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK2\r\nFrom: <sip:b@c>;tag=2\r\nTo: <sip:a@b>;tag=1\r\nCall-ID: x\r\nCSeq: 3 NOTIFY\r\nEvent: presence\r\nSubscription-State: terminated;reason=noresource\r\nSIP-ETag: abc123\r\nContent-Length: 0\r\n\r\n";
    let msg = Message::parse(raw).unwrap();
    msg.validate().unwrap();
    let st = msg.headers().subscription_state().unwrap().unwrap();
    assert_eq!(
        (&st.state, st.reason()),
        (&SubState::Terminated, Some("noresource"))
    );
    assert_eq!(msg.headers().sip_etag().unwrap(), Some("abc123"));
}

#[test]
fn errors_carry_status_and_reason() {
    let too_big = Message::parse_datagram(
        SUBSCRIBE,
        &Limits {
            max_message_size: 100,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        (too_big.status_code(), too_big.layer),
        (513, ErrorLayer::Limit)
    );
    let many = Message::parse_datagram(
        SUBSCRIBE,
        &Limits {
            max_headers: 3,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert_eq!(many.reason_phrase(), "Too many headers");
    let long = Message::parse_datagram(
        SUBSCRIBE,
        &Limits {
            max_header_line: 40,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert_eq!(long.reason_phrase(), "Header line too long");
    let bad = Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\nno colon here\r\n\r\n").unwrap_err();
    assert_eq!(
        (bad.status_code(), bad.layer),
        (400, ErrorLayer::HeaderSyntax)
    );
    let e = Message::parse(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:b@c>;tag=2\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 99999999999 INVITE\r\n\r\n")
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_ref()),
        (400, "Malformed CSeq header")
    );
}

/// The canonical form writes one Content-Length whether or not one was received, and full
/// header names: the limits count the same, so an accepted message's canonical form is
/// accepted again (found by the `sip_message` fuzz target: 128 fields, no Content-Length).
#[test]
fn limits_count_what_the_canonical_form_writes() {
    let with_fields = |n: usize, last: &str| {
        let mut s = String::from("OPTIONS sip:a@b SIP/2.0\r\n");
        for _ in 0..n {
            s.push_str("a:\r\n");
        }
        s.push_str(last);
        s.push_str("\r\n");
        s.into_bytes()
    };
    // 127 fields plus the Content-Length the canonical form adds: at the limit, and it stays there.
    let m = Message::parse(&with_fields(127, "")).unwrap();
    let wire = m.to_bytes();
    assert_eq!(Message::parse(&wire).unwrap().to_bytes(), wire);
    // 127 fields and a received Content-Length: the same 128 lines.
    Message::parse(&with_fields(127, "l: 0\r\n")).unwrap();
    for too_many in [with_fields(128, ""), with_fields(128, "l: 0\r\n")] {
        let e = Message::parse(&too_many).map(drop).unwrap_err();
        assert_eq!(
            (e.layer, e.reason_phrase()),
            (ErrorLayer::Limit, "Too many headers")
        );
    }

    // A compact name is written in full: `v:` + 8190 bytes fits as received but not as `Via: `.
    let limits = Limits::default();
    let line = |name: &str, len: usize| {
        let mut s = format!("OPTIONS sip:a@b SIP/2.0\r\n{name}:");
        s.push_str(&"x".repeat(len));
        s.push_str("\r\n\r\n");
        s.into_bytes()
    };
    let fits = limits.max_header_line - "Via: ".len();
    let m = Message::parse(&line("v", fits)).unwrap();
    Message::parse(&m.to_bytes()).unwrap();
    let e = Message::parse(&line("v", fits + 1)).map(drop).unwrap_err();
    assert_eq!(
        (e.layer, e.reason_phrase()),
        (ErrorLayer::Limit, "Header line too long")
    );
    // A folded value is measured with its name too.
    let mut folded = format!("OPTIONS sip:a@b SIP/2.0\r\nVia: {}\r\n", "x".repeat(100));
    folded.push_str(&format!(" {}\r\n\r\n", "y".repeat(fits - 101)));
    let m = Message::parse(folded.as_bytes()).unwrap();
    Message::parse(&m.to_bytes()).unwrap();
    folded.insert(folded.len() - 4, 'y');
    let e = Message::parse(folded.as_bytes()).map(drop).unwrap_err();
    assert_eq!(e.reason_phrase(), "Header line too long");
}

#[test]
fn framer_handles_pipelined_messages_and_pings() {
    let mut stream = Vec::new();
    for _ in 0..3 {
        stream.extend_from_slice(SUBSCRIBE);
        stream.extend_from_slice(b"\r\n\r\n");
    }
    for chunk in [1, 7, 64, stream.len()] {
        let mut f = Framer::default();
        let (mut msgs, mut pings) = (0, 0);
        for piece in stream.chunks(chunk) {
            f.push(piece);
            loop {
                match f.next_frame().unwrap() {
                    Frame::Complete(m) => {
                        m.validate().unwrap();
                        msgs += 1;
                    }
                    Frame::KeepAlive => pings += 1,
                    Frame::Partial => break,
                }
            }
        }
        assert_eq!((msgs, pings), (3, 3), "chunk {chunk}");
    }
}

#[test]
fn framer_reports_malformed_streams() {
    let mut f = Framer::default();
    f.push(b"HELLO WORLD\r\n\r\n");
    assert_eq!(f.next_frame().unwrap_err().layer, ErrorLayer::StartLine);
    let mut f = Framer::new(Limits {
        max_headers: 2,
        ..Limits::default()
    });
    f.push(SUBSCRIBE);
    assert_eq!(f.next_frame().unwrap_err().status_code(), 513);
    let mut f = Framer::default();
    f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
    assert_eq!(f.next_frame().unwrap_err().layer, ErrorLayer::Framing);
}

#[test]
fn register_star_and_compact_list_headers() {
    let raw = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK9\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: r1\r\nCSeq: 5 REGISTER\r\nContact: *\r\nExpires: 0\r\nk: path, gruu\r\nu: presence, message-summary\r\nRequire: outbound\r\nContent-Length: 0\r\n\r\n";
    let msg = Message::parse(raw).unwrap();
    msg.validate().unwrap();
    let h = msg.headers();
    assert_eq!(h.contact().unwrap(), Some(Contacts::Star));
    assert_eq!(h.expires().unwrap(), Some(0));
    assert_eq!(h.supported().unwrap(), vec!["path", "gruu"]);
    assert_eq!(h.require().unwrap(), vec!["outbound"]);
    assert_eq!(
        h.list(&HeaderName::AllowEvents),
        vec!["presence", "message-summary"]
    );
    assert!(
        String::from_utf8(msg.to_bytes())
            .unwrap()
            .contains("\r\nAllow-Events: presence, message-summary\r\n")
    );
}

#[test]
fn validation_statuses() {
    let base = "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: v1\r\n";
    let check = |start: &str, extra: &str| {
        let raw = format!("{start}\r\n{base}{extra}Content-Length: 0\r\n\r\n");
        Message::parse(raw.as_bytes())
            .unwrap()
            .validate()
            .map_err(|e| (e.status, e.reason.into_owned()))
    };
    assert_eq!(
        check("OPTIONS tel:+15551234 SIP/2.0", "CSeq: 1 OPTIONS\r\n")
            .unwrap_err()
            .0,
        416
    );
    assert_eq!(
        check("OPTIONS sip:a@b SIP/3.0", "CSeq: 1 OPTIONS\r\n")
            .unwrap_err()
            .0,
        505
    );
    assert_eq!(
        check("OPTIONS sip:a@b SIP/2.0", "CSeq: 1 INVITE\r\n")
            .unwrap_err()
            .0,
        400
    );
    assert_eq!(
        check("OPTIONS sip:a@b SIP/2.0", "").unwrap_err(),
        (400, "Missing CSeq header".to_owned())
    );
    assert_eq!(
        check(
            "OPTIONS sip:a@b SIP/2.0",
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 300\r\n"
        )
        .unwrap_err()
        .1,
        "Malformed Max-Forwards header"
    );
    assert!(check("OPTIONS sip:a@b SIP/2.0", "CSeq: 1 OPTIONS\r\n").is_ok());
}

#[test]
fn folded_values_are_joined_and_plain_values_kept_as_received() {
    // concat! because a `\` line continuation would eat the folding white space.
    let raw = concat!(
        "OPTIONS sip:a@example.com SIP/2.0\r\n",
        "Subject: first\r\n \t second  \r\n\t\r\n   third\r\n",
        "Call-ID:   abc@host \t\r\n",
        "X-Empty:\r\n",
        "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n",
        " , SIP/2.0/TCP g;branch=z9hG4bK2\r\n",
        "Content-Length: 0\r\n\r\n",
    )
    .as_bytes();
    let m = Message::parse(raw).unwrap();
    let h = m.headers();
    assert_eq!(h.get(&HeaderName::Subject), Some("first second third"));
    assert_eq!(h.get(&HeaderName::CallId), Some("abc@host"));
    assert_eq!(h.get(&HeaderName::Other("X-Empty".into())), Some(""));
    assert_eq!(h.via().unwrap().len(), 2);
    // A clone of the message owns nothing more than the original: values stay equal.
    let copy = m.clone();
    drop(m);
    assert_eq!(
        copy.headers().get(&HeaderName::Subject),
        Some("first second third")
    );
    let mut edited = copy.clone();
    edited
        .headers_mut()
        .set(HeaderName::Subject, String::from("changed"));
    assert_eq!(edited.headers().get(&HeaderName::Subject), Some("changed"));
    assert_eq!(
        copy.headers().get(&HeaderName::Subject),
        Some("first second third")
    );
}
