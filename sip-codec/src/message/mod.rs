//! SIP requests and responses (RFC 3261 §7): types, parsing entry points and serialization.

mod parse;
mod serialize;

pub(crate) use parse::{find_head_end, parse_head};

use crate::error::ParseError;
use crate::header::{HeaderName, Headers};
use crate::limits::Limits;
use crate::method::Method;
use crate::uri::Uri;

/// The protocol version of a start line (`SIP/2.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// Major number.
    pub major: u8,
    /// Minor number.
    pub minor: u8,
}

impl Version {
    /// SIP/2.0, the only version this crate serves.
    pub const SIP_2_0: Version = Version { major: 2, minor: 0 };
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
    /// The protocol version.
    pub version: Version,
    /// Header fields in order.
    pub headers: Headers,
    /// The body (exactly Content-Length bytes when that header is present).
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The protocol version.
    pub version: Version,
    /// The status code (100-699).
    pub status: u16,
    /// The reason phrase (may be empty).
    pub reason: String,
    /// Header fields in order.
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

/// A SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// The parsed start line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartLine {
    Request {
        method: Method,
        uri: Uri,
        version: Version,
    },
    Response {
        version: Version,
        status: u16,
        reason: String,
    },
}

impl Message {
    /// Parses one message from a datagram with default [`Limits`] (see [`Message::parse_datagram`]).
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        Self::parse_datagram(bytes, &Limits::default())
    }

    /// Parses one message from a datagram: a missing Content-Length means the rest of the
    /// datagram; bytes beyond Content-Length are ignored (RFC 3261 §18.3).
    pub fn parse_datagram(bytes: &[u8], limits: &Limits) -> Result<Message, ParseError> {
        crate::framing::parse_datagram(bytes, limits)
    }

    pub(crate) fn from_parts(start: StartLine, headers: Headers, body: Vec<u8>) -> Message {
        match start {
            StartLine::Request {
                method,
                uri,
                version,
            } => Message::Request(Request {
                method,
                uri,
                version,
                headers,
                body,
            }),
            StartLine::Response {
                version,
                status,
                reason,
            } => Message::Response(Response {
                version,
                status,
                reason,
                headers,
                body,
            }),
        }
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// The header fields, mutably.
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    /// The request, if this is one.
    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }

    /// The response, if this is one.
    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Response(r) => Some(r),
            Message::Request(_) => None,
        }
    }
}

impl Request {
    /// A request with the given method and URI, SIP/2.0, no headers and no body.
    pub fn new(method: Method, uri: Uri) -> Self {
        Request {
            method,
            uri,
            version: Version::SIP_2_0,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A response to this request carrying Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6.2).
    /// The caller adds a To tag where the response needs one.
    pub fn make_response(&self, status: u16, reason: &str) -> Response {
        let mut headers = Headers::new();
        for h in &self.headers.0 {
            if matches!(
                h.name,
                HeaderName::Via
                    | HeaderName::From
                    | HeaderName::To
                    | HeaderName::CallId
                    | HeaderName::CSeq
            ) {
                headers.0.push(h.clone());
            }
        }
        Response {
            version: Version::SIP_2_0,
            status,
            reason: reason.to_owned(),
            headers,
            body: Vec::new(),
        }
    }
}

impl Response {
    /// A response with the given status and reason, SIP/2.0, no headers and no body.
    pub fn new(status: u16, reason: &str) -> Self {
        Response {
            version: Version::SIP_2_0,
            status,
            reason: reason.to_owned(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }
}
