//! PUBLISH for the `dialog` event package (RFC 4235 documents, RFC 3903 procedures): a phone reporting its own
//! calls, or a trusted call controller reporting any user's, drives one engine phone line per publication.
//! Who may publish was settled by `requests.rs` (the authenticated user for themself, a trusted peer for anyone),
//! as were the expiry and the SIP-If-Match header; this module holds what differs from presence publications.

use std::time::{Duration, Instant};

use presence_core::compose::LineState;
use presence_core::{BareJid, Input};
use sip_codec::Request;
use sip_codec::dialog_info::{DialogInfo, DialogInfoError};

use super::SipPresence;
use super::publish_step::{IfMatch, Media, Step, granted};
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
        let if_match = IfMatch::check(if_match, |t| {
            self.dialog_publications.get(t, &user).is_some()
        });
        let media = Media {
            kind: ("application", "dialog-info+xml"),
            parse: |body| {
                DialogInfo::parse(body).map_err(|e| {
                    tracing::debug!(error = %e, "dialog-info refused");
                    match e {
                        DialogInfoError::TooManyDialogs { .. } => "Too many dialogs",
                        DialogInfoError::Document(_) => "Malformed dialog-info document",
                    }
                })
            },
        };
        let Some(step) = self.publish_step(now, &req, flow, if_match, lifetime, media) else {
            return;
        };
        let new_tag = format!("{:016x}", self.rng.next_u64());
        let mut resp = req.make_response(200, "OK");
        let change = match step {
            Step::Remove { tag } => {
                granted(&mut resp, tag.clone(), Duration::ZERO);
                self.dialog_publications.remove(&tag)
            }
            Step::Refresh { tag } => {
                self.dialog_publications
                    .refresh(&tag, new_tag.clone(), now + lifetime);
                granted(&mut resp, new_tag, lifetime);
                None
            }
            Step::Put { old, document } => match self.dialog_publications.publish(
                old.as_deref(),
                new_tag.clone(),
                &user,
                &document,
                now + lifetime,
            ) {
                Ok(change) => {
                    granted(&mut resp, new_tag, lifetime);
                    Some(change)
                }
                // A refusal RFC 3903 leaves to policy: 403, final, so a runaway client stops.
                Err(e) => {
                    tracing::info!(%user, error = %e, "dialog PUBLISH refused");
                    let resp =
                        req.make_response(403, &super::requests::reason_phrase(&e.to_string()));
                    return self.respond(now, &req, flow, resp);
                }
            },
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
