//! The `<body/>` wrapper of XEP-0124: reading a client's request (its attributes, and its children as the raw
//! stream bytes they are) and writing the server's answers.
//!
//! The children are not parsed into elements here: their bytes go to the session's stream parser as they are, as
//! if the client had written them on a classic stream, so the codec's limits and namespace rules apply unchanged.
//! This module only checks that the whole body is well-formed XML with one `<body/>` root.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// XEP-0124's namespace.
pub const NS_HTTPBIND: &str = "http://jabber.org/protocol/httpbind";

/// XEP-0206's namespace, for `xmpp:version`, `xmpp:restart` and `xmpp:restartlogic`.
pub const NS_XBOSH: &str = "urn:xmpp:xbosh";

/// The highest protocol version served (XEP-0124 `ver`).
pub const VERSION: &str = "1.11";

/// Why a request body was refused; every one of them is answered with `bad-request`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// The request is not UTF-8.
    #[error("the request is not UTF-8")]
    NotUtf8,
    /// The request is not well-formed XML.
    #[error("the request is not well-formed XML: {0}")]
    NotXml(String),
    /// The root element is not `<body xmlns='http://jabber.org/protocol/httpbind'/>`.
    #[error("the request is not a <body/> of {NS_HTTPBIND}")]
    NotBody,
    /// An attribute is missing or unreadable.
    #[error("attribute '{0}' is missing or malformed")]
    Attribute(&'static str),
}

/// One client request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The request id (`rid`), which orders requests.
    pub rid: u64,
    /// The session (`sid`); absent on the session creation request.
    pub sid: Option<String>,
    /// The domain asked for (`to`), on the creation request.
    pub to: Option<String>,
    /// The longest the client lets a request wait (`wait`, seconds).
    pub wait: Option<u64>,
    /// How many requests the client lets the server hold (`hold`).
    pub hold: Option<u64>,
    /// The client's protocol version (`ver`); its absence means a pre-1.6 client (HTTP error codes).
    pub ver: Option<String>,
    /// `xml:lang`.
    pub lang: Option<String>,
    /// `content`, echoed in the creation response.
    pub content: Option<String>,
    /// `xmpp:version` (XEP-0206), on the creation request.
    pub xmpp_version: Option<String>,
    /// `xmpp:restart='true'`: the stream restarts (after SASL).
    pub restart: bool,
    /// `type='terminate'`: the client ends the session.
    pub terminate: bool,
    /// `pause` (seconds): the client will be away that long.
    pub pause: Option<u64>,
    /// The children, as the stream bytes they stand for.
    pub payload: Vec<u8>,
}

impl Request {
    /// Reads one request body.
    pub fn parse(bytes: &[u8]) -> Result<Request, BodyError> {
        let text = std::str::from_utf8(bytes).map_err(|_| BodyError::NotUtf8)?;
        let mut reader = Reader::from_str(text);
        let xml = |e: quick_xml::Error| BodyError::NotXml(e.to_string());
        let (start, empty) = loop {
            match reader.read_event().map_err(xml)? {
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
                Event::Start(s) => break (s, false),
                Event::Empty(s) => break (s, true),
                _ => return Err(BodyError::NotBody),
            }
        };
        let mut request = attributes(&start)?;
        if !empty {
            let from = reader.buffer_position() as usize;
            let mut depth = 0usize;
            let to = loop {
                let before = reader.buffer_position() as usize;
                match reader.read_event().map_err(xml)? {
                    Event::Start(_) => depth += 1,
                    Event::End(_) if depth == 0 => break before,
                    Event::End(_) => depth -= 1,
                    Event::Eof => return Err(BodyError::NotXml("the body is not closed".into())),
                    // A DOCTYPE could declare entities; XMPP forbids it (RFC 6120 §11.1).
                    Event::DocType(_) => {
                        return Err(BodyError::NotXml("a DOCTYPE is not allowed".into()));
                    }
                    _ => {}
                }
            };
            let children = &text.as_bytes()[from..to];
            if !children.iter().all(u8::is_ascii_whitespace) {
                request.payload = children.to_vec();
            }
        }
        loop {
            match reader.read_event().map_err(xml)? {
                Event::Eof => break,
                Event::Comment(_) => {}
                Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
                _ => return Err(BodyError::NotXml("content after the body".into())),
            }
        }
        Ok(request)
    }
}

/// The request's attributes, with `xmpp:` attributes taken only in the XEP-0206 namespace.
fn attributes(start: &BytesStart<'_>) -> Result<Request, BodyError> {
    if start.name().as_ref() != b"body" {
        return Err(BodyError::NotBody);
    }
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| BodyError::NotXml(e.to_string()))?;
        let key = std::str::from_utf8(attr.key.as_ref())
            .map_err(|_| BodyError::NotUtf8)?
            .to_owned();
        let value = attr
            .unescape_value()
            .map_err(|e| BodyError::NotXml(e.to_string()))?
            .into_owned();
        attrs.push((key, value));
    }
    let get = |name: &str| {
        attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if get("xmlns").as_deref() != Some(NS_HTTPBIND) {
        return Err(BodyError::NotBody);
    }
    // The prefixes bound to XEP-0206's namespace (clients write `xmpp:`, but any prefix is the same).
    let xbosh: Vec<&str> = attrs
        .iter()
        .filter(|(k, v)| k.starts_with("xmlns:") && v == NS_XBOSH)
        .map(|(k, _)| &k["xmlns:".len()..])
        .collect();
    let get_xbosh = |local: &str| {
        attrs.iter().find_map(|(k, v)| {
            let (prefix, name) = k.split_once(':')?;
            (name == local && xbosh.contains(&prefix)).then(|| v.clone())
        })
    };
    let number = |name: &'static str| -> Result<Option<u64>, BodyError> {
        get(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| BodyError::Attribute(name))
            })
            .transpose()
    };
    let rid = number("rid")?.ok_or(BodyError::Attribute("rid"))?;
    // XEP-0124 §7.1: rids stay below 2^53 so that every client language can count them.
    if rid >= 1 << 53 {
        return Err(BodyError::Attribute("rid"));
    }
    Ok(Request {
        rid,
        sid: get("sid"),
        to: get("to"),
        wait: number("wait")?,
        hold: number("hold")?,
        ver: get("ver"),
        lang: get("xml:lang"),
        content: get("content"),
        xmpp_version: get_xbosh("version"),
        restart: get_xbosh("restart").is_some_and(|v| v == "true" || v == "1"),
        terminate: get("type").as_deref() == Some("terminate"),
        pause: number("pause")?,
        payload: Vec::new(),
    })
}

/// The terminal conditions of XEP-0124 §17.2 that this server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The request was malformed.
    BadRequest,
    /// The `to` domain is not served here.
    HostUnknown,
    /// The session is unknown, or a request id is out of the window.
    ItemNotFound,
    /// The client broke a rule of the session (too many requests, a pause too long).
    PolicyViolation,
    /// The XMPP stream ended with a stream error, which the body carries.
    RemoteStreamError,
    /// The server is shutting down or refused the session (its caps).
    SystemShutdown,
    /// The server failed.
    InternalServerError,
}

impl Condition {
    /// The condition's name in a `condition` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::BadRequest => "bad-request",
            Condition::HostUnknown => "host-unknown",
            Condition::ItemNotFound => "item-not-found",
            Condition::PolicyViolation => "policy-violation",
            Condition::RemoteStreamError => "remote-stream-error",
            Condition::SystemShutdown => "system-shutdown",
            Condition::InternalServerError => "internal-server-error",
        }
    }

    /// The HTTP status a client older than XEP-0124 1.6 (no `ver`) expects for this condition (§17.3).
    pub fn legacy_status(self) -> u16 {
        match self {
            Condition::BadRequest => 400,
            Condition::ItemNotFound => 404,
            Condition::PolicyViolation => 403,
            _ => 200,
        }
    }
}

/// One answer to a request: an HTTP status (200 but for legacy errors) and a `<body/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `<body/>` document.
    pub body: String,
}

/// Writes a `<body/>` with `attrs` (escaped here) around `children` (serialized elements).
pub fn write(attrs: &[(&str, &str)], children: &[String]) -> String {
    let mut out = Vec::with_capacity(96 + children.iter().map(String::len).sum::<usize>());
    out.extend_from_slice(b"<body xmlns='");
    out.extend_from_slice(NS_HTTPBIND.as_bytes());
    out.push(b'\'');
    for (name, value) in attrs {
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"='");
        xmpp_codec::escape_attr(value, &mut out);
        out.push(b'\'');
    }
    if children.is_empty() {
        out.extend_from_slice(b"/>");
    } else {
        out.push(b'>');
        for c in children {
            out.extend_from_slice(c.as_bytes());
        }
        out.extend_from_slice(b"</body>");
    }
    // Only UTF-8 went in: the attribute values are `&str`, and so are the children.
    String::from_utf8(out).unwrap_or_default()
}

/// A plain answer carrying `children`.
pub fn data(children: &[String]) -> Answer {
    Answer {
        status: 200,
        body: write(&[], children),
    }
}

/// The end of a session: `type='terminate'`, with `condition` when it is an error, and what is left to say.
pub fn terminate(condition: Option<Condition>, children: &[String], legacy: bool) -> Answer {
    let mut attrs = vec![("type", "terminate")];
    if let Some(c) = condition {
        attrs.push(("condition", c.as_str()));
    }
    if condition == Some(Condition::RemoteStreamError) {
        attrs.push(("xmlns:stream", xmpp_codec::ns::STREAMS));
    }
    let status = match condition {
        Some(c) if legacy => c.legacy_status(),
        _ => 200,
    };
    Answer {
        status,
        body: write(&attrs, children),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_creation_request_is_read_with_its_xbosh_attributes() {
        let r = Request::parse(
            b"<body content='text/xml; charset=utf-8' hold='1' rid='1573741820' to='example.com' \
              ver='1.6' wait='60' xml:lang='en' xmpp:version='1.0' \
              xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>",
        )
        .expect("valid");
        assert_eq!(r.rid, 1573741820);
        assert_eq!(r.sid, None);
        assert_eq!(r.to.as_deref(), Some("example.com"));
        assert_eq!((r.wait, r.hold), (Some(60), Some(1)));
        assert_eq!(r.xmpp_version.as_deref(), Some("1.0"));
        assert_eq!(r.lang.as_deref(), Some("en"));
        assert!(!r.restart && !r.terminate && r.payload.is_empty());
    }

    #[test]
    fn children_pass_as_raw_bytes_and_flags_are_read() {
        let r = Request::parse(
            b"<?xml version='1.0'?><body rid='7' sid='s' xmlns='http://jabber.org/protocol/httpbind'>\
              <message xmlns='jabber:client' to='a@b'><body>x &amp; y</body></message><presence/></body>\n",
        )
        .expect("valid");
        assert_eq!(
            String::from_utf8(r.payload).unwrap(),
            "<message xmlns='jabber:client' to='a@b'><body>x &amp; y</body></message><presence/>"
        );
        let r = Request::parse(
            b"<body rid='8' sid='s' b:restart='true' xmlns:b='urn:xmpp:xbosh' xmlns='http://jabber.org/protocol/httpbind'/>",
        )
        .unwrap();
        assert!(r.restart);
        // `restart` in another namespace is not XEP-0206's.
        let r = Request::parse(
            b"<body rid='8' sid='s' x:restart='true' xmlns:x='urn:other' xmlns='http://jabber.org/protocol/httpbind'/>",
        )
        .unwrap();
        assert!(!r.restart);
        let r = Request::parse(
            b"<body rid='9' sid='s' type='terminate' pause='30' xmlns='http://jabber.org/protocol/httpbind'/>",
        )
        .unwrap();
        assert!(r.terminate);
        assert_eq!(r.pause, Some(30));
    }

    #[test]
    fn malformed_requests_are_refused_without_panicking() {
        for (bad, why) in [
            (&b"\xff\xfe"[..], BodyError::NotUtf8),
            (b"", BodyError::NotBody),
            (b"hello", BodyError::NotBody),
            (b"<body rid='1' xmlns='urn:other'/>", BodyError::NotBody),
            (
                b"<stream rid='1' xmlns='http://jabber.org/protocol/httpbind'/>",
                BodyError::NotBody,
            ),
            (
                b"<body xmlns='http://jabber.org/protocol/httpbind'/>",
                BodyError::Attribute("rid"),
            ),
            (
                b"<body rid='x' xmlns='http://jabber.org/protocol/httpbind'/>",
                BodyError::Attribute("rid"),
            ),
            (
                b"<body rid='9007199254740992' xmlns='http://jabber.org/protocol/httpbind'/>",
                BodyError::Attribute("rid"),
            ),
        ] {
            assert_eq!(
                Request::parse(bad),
                Err(why),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        for bad in [
            &b"<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><message></body>"[..],
            b"<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><message/>",
            b"<body rid='1' xmlns='http://jabber.org/protocol/httpbind'/><body/>",
            b"<body rid='1' rid='2' xmlns='http://jabber.org/protocol/httpbind'/>",
        ] {
            assert!(
                matches!(Request::parse(bad), Err(BodyError::NotXml(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest::proptest! {
        /// Whatever a client posts, reading it never panics.
        #[test]
        fn any_request_is_read_without_panicking(
            text in "(<body|</body>| rid='1'| xmlns='http://jabber.org/protocol/httpbind'|<message>|</message>|/>|>|&amp;|&bad;|\\PC){0,14}"
        ) {
            let _ = Request::parse(text.as_bytes());
        }
    }

    #[test]
    fn answers_are_escaped_bodies() {
        assert_eq!(
            write(&[("sid", "a'b")], &[]),
            "<body xmlns='http://jabber.org/protocol/httpbind' sid='a&apos;b'/>"
        );
        assert_eq!(
            data(&["<presence xmlns='jabber:client'/>".into()]).body,
            "<body xmlns='http://jabber.org/protocol/httpbind'><presence xmlns='jabber:client'/></body>"
        );
        let t = terminate(Some(Condition::ItemNotFound), &[], true);
        assert_eq!(t.status, 404);
        assert_eq!(
            t.body,
            "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' condition='item-not-found'/>"
        );
        assert_eq!(
            terminate(Some(Condition::BadRequest), &[], false).status,
            200
        );
    }
}
