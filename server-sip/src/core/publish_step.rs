//! The RFC 3903 procedure every event package's PUBLISH shares (§6): a SIP-If-Match that names no state of the
//! package gets 412, a body of another media type 415, one that does not parse 400; then the request is one of
//! four things — remove, refresh, new or modified state — or a 400 for the combinations §6 rules out. What
//! differs between packages (the media type, the parser, what the state means) is passed in; the packages apply
//! the step to their own store.

use std::time::{Duration, Instant};

use sip_codec::header::HeaderName;
use sip_codec::{Request, Response};

use super::SipPresence;
use crate::core::Flow;

/// What a PUBLISH asks of a package's store once its preconditions hold.
pub(super) enum Step<D> {
    /// `Expires: 0` with SIP-If-Match: the state goes.
    Remove {
        /// Its entity tag.
        tag: String,
    },
    /// SIP-If-Match and no body: the same state under a new tag and expiry.
    Refresh {
        /// Its entity tag.
        tag: String,
    },
    /// A document: new state (`old` is `None`) or a modification of `old`.
    Put {
        /// The entity tag of the state it modifies.
        old: Option<String>,
        /// The parsed body.
        document: D,
    },
}

/// A PUBLISH's SIP-If-Match, checked against the package's state for the user.
pub(super) enum IfMatch {
    /// No SIP-If-Match: new state.
    Absent,
    /// It names state the package holds for this user.
    Held(String),
    /// It names nothing the package holds for this user (another user's tag is as unknown as no tag): 412.
    Unknown,
}

impl IfMatch {
    /// Reads the header's value with `held` saying whether a tag names the user's state.
    pub(super) fn check(tag: Option<String>, held: impl FnOnce(&str) -> bool) -> Self {
        match tag {
            None => IfMatch::Absent,
            Some(t) if held(&t) => IfMatch::Held(t),
            Some(_) => IfMatch::Unknown,
        }
    }
}

/// How a package's body is read.
pub(super) struct Media<D> {
    /// Its type and subtype, e.g. `("application", "pidf+xml")`.
    pub(super) kind: (&'static str, &'static str),
    /// Its parser; `Err` is the reason phrase of the 400.
    pub(super) parse: fn(&[u8]) -> Result<D, &'static str>,
}

impl SipPresence {
    /// Checks a PUBLISH against RFC 3903 §6 and says what it asks for, or answers it (`None`).
    pub(super) fn publish_step<D>(
        &mut self,
        now: Instant,
        req: &Request,
        flow: Flow,
        if_match: IfMatch,
        lifetime: Duration,
        media: Media<D>,
    ) -> Option<Step<D>> {
        let refuse = |this: &mut Self, status: u16, reason: &str| {
            let resp = req.make_response(status, reason);
            this.respond(now, req, flow, resp);
            None
        };
        let if_match = match if_match {
            IfMatch::Absent => None,
            IfMatch::Held(tag) => Some(tag),
            IfMatch::Unknown => return refuse(self, 412, "Conditional Request Failed"),
        };
        let document = if req.body.is_empty() {
            None
        } else {
            let (kind, sub) = media.kind;
            if !matches!(req.headers.content_type(), Ok(Some(t)) if t.is(kind, sub)) {
                let mut resp = req.make_response(415, "Unsupported Media Type");
                resp.headers
                    .push(HeaderName::Accept, format!("{kind}/{sub}"));
                self.respond(now, req, flow, resp);
                return None;
            }
            match (media.parse)(&req.body) {
                Ok(doc) => Some(doc),
                Err(reason) => return refuse(self, 400, reason),
            }
        };
        match (if_match, document, lifetime.is_zero()) {
            (Some(tag), _, true) => Some(Step::Remove { tag }),
            (None, _, true) => refuse(self, 400, "Expires: 0 needs SIP-If-Match"),
            (None, None, false) => refuse(self, 400, "Initial PUBLISH needs a body"),
            (Some(tag), None, false) => Some(Step::Refresh { tag }),
            (old, Some(document), false) => Some(Step::Put { old, document }),
        }
    }
}

/// The headers of a PUBLISH's 200: the entity tag the state now has and how long it lives (RFC 3903 §6).
pub(super) fn granted(resp: &mut Response, tag: String, lifetime: Duration) {
    resp.headers.push(HeaderName::SipETag, tag);
    resp.headers
        .push(HeaderName::Expires, lifetime.as_secs().to_string());
}
