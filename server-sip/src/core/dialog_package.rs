//! PUBLISH for the `dialog` event package (RFC 4235 documents, RFC 3903 procedures): a phone reporting its own
//! calls, or a trusted call controller reporting any user's, drives one engine phone line per publication.
//! Who may publish was settled by `requests.rs` (the authenticated user for themself, a trusted peer for anyone),
//! as were the expiry and the SIP-If-Match header; this module holds what differs from presence publications.

use std::time::{Duration, Instant};

use presence_core::compose::LineState;
use presence_core::{BareJid, Input};
use sip_codec::Request;
use sip_codec::dialog_info::{self, DialogInfo, DialogInfoError};
use sip_codec::header::HeaderName;

use super::SipPresence;
use crate::core::Flow;
use crate::dialog_publications::LineChange;

impl SipPresence {
    /// A PUBLISH with `Event: dialog` for `user`, once the request has been authorised and its expiry read.
    pub(super) fn publish_dialog(
        &mut self,
        now: Instant,
        req: Request,
        flow: Flow,
        user: BareJid,
        lifetime: Duration,
        if_match: Option<String>,
    ) {
        // Entity tags of presence publications are unknown here: each package has its own (RFC 3903 §4).
        if let Some(tag) = &if_match
            && self.dialog_publications.get(tag, &user).is_none()
        {
            let resp = req.make_response(412, "Conditional Request Failed");
            return self.respond(now, &req, flow, resp);
        }
        let document = if req.body.is_empty() {
            None
        } else {
            match req.headers.content_type() {
                Ok(Some(t)) if t.is("application", "dialog-info+xml") => {}
                _ => {
                    let mut resp = req.make_response(415, "Unsupported Media Type");
                    resp.headers
                        .push(HeaderName::Accept, dialog_info::CONTENT_TYPE);
                    return self.respond(now, &req, flow, resp);
                }
            }
            match DialogInfo::parse(&req.body) {
                Ok(doc) => Some(doc),
                Err(e) => {
                    tracing::debug!(error = %e, "dialog-info refused");
                    let reason = match e {
                        DialogInfoError::TooManyDialogs { .. } => "Too many dialogs",
                        DialogInfoError::Document(_) => "Malformed dialog-info document",
                    };
                    let resp = req.make_response(400, reason);
                    return self.respond(now, &req, flow, resp);
                }
            }
        };
        let new_tag = format!("{:016x}", self.rng.next_u64());
        let mut resp = req.make_response(200, "OK");
        let change = match (if_match, document, lifetime.is_zero()) {
            (Some(tag), _, true) => {
                resp.headers.push(HeaderName::Expires, "0");
                resp.headers.push(HeaderName::SipETag, tag.clone());
                self.dialog_publications.remove(&tag)
            }
            (None, _, true) => {
                let resp = req.make_response(400, "Expires: 0 needs SIP-If-Match");
                return self.respond(now, &req, flow, resp);
            }
            (None, None, false) => {
                let resp = req.make_response(400, "Initial PUBLISH needs a body");
                return self.respond(now, &req, flow, resp);
            }
            (Some(tag), None, false) => {
                self.dialog_publications
                    .refresh(&tag, new_tag.clone(), now + lifetime);
                resp.headers.push(HeaderName::SipETag, new_tag);
                resp.headers
                    .push(HeaderName::Expires, lifetime.as_secs().to_string());
                None
            }
            (old, Some(doc), false) => {
                match self.dialog_publications.publish(
                    old.as_deref(),
                    new_tag.clone(),
                    &user,
                    &doc,
                    now + lifetime,
                ) {
                    Ok(change) => {
                        resp.headers.push(HeaderName::SipETag, new_tag);
                        resp.headers
                            .push(HeaderName::Expires, lifetime.as_secs().to_string());
                        Some(change)
                    }
                    // A refusal RFC 3903 leaves to policy: 403, final, so a runaway client stops.
                    Err(e) => {
                        tracing::info!(%user, error = %e, "dialog PUBLISH refused");
                        let resp =
                            req.make_response(403, &super::requests::reason_phrase(&e.to_string()));
                        return self.respond(now, &req, flow, resp);
                    }
                }
            }
        };
        self.respond(now, &req, flow, resp);
        if let Some(change) = change {
            self.line_changed(change);
        }
    }

    /// Tells the engine about a line that flipped between idle and on the phone.
    pub(super) fn line_changed(&mut self, change: LineChange) {
        if change.before == change.after {
            return;
        }
        tracing::debug!(user = %change.user, line = %change.line, on_the_phone = change.after, "phone line");
        let state = if change.after {
            LineState::OnThePhone
        } else {
            LineState::Idle
        };
        self.submit(Input::PhoneLine {
            user: change.user,
            line: change.line,
            state,
        });
    }
}
