//! Semantic validation of a parsed message (RFC 3261 §8.2, §16.3): mandatory and
//! single-valued headers, typed header syntax, CSeq/method agreement, URI scheme and version.
//! Each failure carries the status code a server should answer with.

use std::borrow::Cow;

use crate::header::{HeaderError, HeaderName, Headers};
use crate::message::{Message, Request, Version};
use crate::uri::Uri;

/// Whether a header value was malformed or the message as a whole breaks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationKind {
    /// A header value does not match its grammar.
    HeaderValue,
    /// The message is well-formed but not acceptable (missing header, mismatch, scheme, version).
    Semantic,
}

/// Why a parsed message must be rejected, with the suggested response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}")]
pub struct ValidationError {
    /// The suggested status code (400, 416, 505 …).
    pub status: u16,
    /// A short reason phrase.
    pub reason: Cow<'static, str>,
    /// The kind of failure.
    pub kind: ValidationKind,
}

impl ValidationError {
    fn semantic(status: u16, reason: impl Into<Cow<'static, str>>) -> Self {
        ValidationError {
            status,
            reason: reason.into(),
            kind: ValidationKind::Semantic,
        }
    }
}

impl From<HeaderError> for ValidationError {
    fn from(e: HeaderError) -> Self {
        ValidationError {
            status: 400,
            reason: format!("Malformed {} header", e.header).into(),
            kind: ValidationKind::HeaderValue,
        }
    }
}

const MANDATORY: [HeaderName; 5] = [
    HeaderName::To,
    HeaderName::From,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::Via,
];

fn check_headers(h: &Headers) -> Result<(), ValidationError> {
    for name in &MANDATORY {
        if h.get(name).is_none() {
            return Err(ValidationError::semantic(
                400,
                format!("Missing {name} header"),
            ));
        }
    }
    if let Some(dup) =
        h.0.iter()
            .map(|x| &x.name)
            .find(|n| n.is_single_valued() && h.count(n) > 1)
    {
        return Err(ValidationError::semantic(
            400,
            format!("Multiple {dup} headers"),
        ));
    }
    h.via()?;
    h.from()?;
    h.to()?;
    h.call_id()?;
    if let Some(c) = h.cseq()?
        && c.seq >= 1 << 31
    {
        return Err(HeaderError {
            header: "CSeq".into(),
            what: "sequence number not below 2^31",
        }
        .into());
    }
    h.max_forwards()?;
    h.contact()?;
    h.expires()?;
    h.content_type()?;
    h.event()?;
    h.subscription_state()?;
    h.sip_etag()?;
    h.sip_if_match()?;
    h.require()?;
    h.proxy_require()?;
    h.supported()?;
    h.allow()?;
    if let Some(d) = h.get(&HeaderName::Date)
        && !d.ends_with(" GMT")
    {
        // RFC 3261 §20.17: the only time zone allowed is GMT.
        return Err(HeaderError {
            header: "Date".into(),
            what: "time zone is not GMT",
        }
        .into());
    }
    Ok(())
}

fn check_version(v: Version) -> Result<(), ValidationError> {
    if v != Version::SIP_2_0 {
        return Err(ValidationError::semantic(505, "Version Not Supported"));
    }
    Ok(())
}

fn check_request(r: &Request) -> Result<(), ValidationError> {
    check_version(r.version)?;
    check_headers(&r.headers)?;
    if let Some(c) = r.headers.cseq()?
        && c.method != r.method
    {
        return Err(ValidationError::semantic(
            400,
            "CSeq method does not match the request method",
        ));
    }
    match &r.uri {
        Uri::Other(_) => return Err(ValidationError::semantic(416, "Unsupported URI Scheme")),
        Uri::Sip(u) if !u.headers.is_empty() => {
            return Err(ValidationError::semantic(
                400,
                "Request-URI must not contain headers",
            ));
        }
        Uri::Sip(_) => {}
    }
    Ok(())
}

impl Message {
    /// Checks the rules a parsed message must meet before a transaction or core sees it.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Message::Request(r) => check_request(r),
            Message::Response(r) => {
                check_version(r.version)?;
                check_headers(&r.headers)
            }
        }
    }
}
