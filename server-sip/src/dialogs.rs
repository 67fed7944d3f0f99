//! Subscription dialogs (RFC 6665): what the notifier keeps per SUBSCRIBE dialog, and the NOTIFY it sends.

use std::time::Instant;

use presence_core::{BareJid, WatchId, WatchKind, WatchState, WatchView};
use sip_codec::header::HeaderName;
use sip_codec::{Method, Request, Uri};

use crate::core::Flow;

/// One subscription, seen from the notifier.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// The engine's watch behind it.
    pub watch: WatchId,
    /// Presence or watcher information.
    pub kind: WatchKind,
    /// Whose state is watched.
    pub target: BareJid,
    /// The dialog's Call-ID.
    pub call_id: String,
    /// Our tag (the To tag of the SUBSCRIBE's response, the From tag of our NOTIFYs).
    pub local_tag: String,
    /// The subscriber's From, with its tag, as it sent it: the To of our NOTIFYs.
    pub remote: String,
    /// The subscriber's Contact: the Request-URI of our NOTIFYs.
    pub remote_target: Uri,
    /// The Event header's `id` parameter, echoed in NOTIFYs.
    pub event_id: Option<String>,
    /// The flow NOTIFYs go over.
    pub flow: Flow,
    /// Our CSeq counter for requests in this dialog.
    pub cseq: u32,
    /// When the subscription lapses.
    pub expires: Instant,
    /// The last state the engine reported (`None` until its first report).
    pub state: Option<WatchState>,
    /// A fetch (`Expires: 0` on the initial SUBSCRIBE): one NOTIFY, then the dialog ends.
    pub fetch: bool,
    /// The watcher-info document version (RFC 3858 §4.4: increases with every document in the dialog).
    pub winfo_version: u32,
}

/// Why a NOTIFY ends the subscription (RFC 6665 §4.1.3 reason codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The subscriber let it lapse (or it was a fetch).
    Timeout,
    /// The subscriber unsubscribed (`Expires: 0`): no reason code fits, so none is given (RFC 6665 §4.1.3).
    Unsubscribed,
    /// The presentity refused.
    Rejected,
    /// No such resource.
    NoResource,
    /// The notifier is going away, or the subscriber's flow did.
    Deactivated,
    /// The notifier cannot serve the subscription now (shutting down, its store failed): subscribe again after
    /// the retry-after interval (RFC 6665 §4.1.3 `probation`), not at once, so a failure does not become a storm.
    Probation,
}

impl EndReason {
    fn as_str(self) -> Option<&'static str> {
        Some(match self {
            EndReason::Unsubscribed => return None,
            EndReason::Timeout => "timeout",
            EndReason::Rejected => "rejected",
            EndReason::NoResource => "noresource",
            EndReason::Deactivated => "deactivated",
            EndReason::Probation => "probation;retry-after=30",
        })
    }
}

/// The last presence document written, for the next NOTIFY of the same state: a presentity's change goes out
/// to each of its watchers in a row, and the document is the same for all of them (the entity is the presentity).
/// Watcher-info documents are numbered per dialog and are never shared.
#[derive(Debug, Default)]
pub struct LastDocument(Option<(String, WatchView, String)>);

impl LastDocument {
    fn get(&self, entity: &str, view: &WatchView) -> Option<&str> {
        self.0
            .as_ref()
            .filter(|(e, v, _)| e == entity && v == view)
            .map(|(_, _, doc)| doc.as_str())
    }
}

impl Dialog {
    /// The Event package name.
    pub fn package(&self) -> &'static str {
        crate::core::packages::for_watch(self.kind).name()
    }

    /// The next NOTIFY in this dialog for its current state, or a terminating one with `end`. `via` and `contact`
    /// are ours. `domain` names the presentity's address.
    pub fn notify(
        &mut self,
        now: Instant,
        end: Option<EndReason>,
        via: String,
        contact: &str,
        domain: &str,
        last: &mut LastDocument,
    ) -> Request {
        self.cseq += 1;
        let mut req = Request::new(Method::Notify, self.remote_target.clone());
        let h = &mut req.headers;
        h.push(HeaderName::Via, via);
        h.push(HeaderName::MaxForwards, "70");
        let entity = format!("sip:{}", self.target);
        let from = match self.target.local() {
            Some(_) => format!("<{entity}>;tag={}", self.local_tag),
            None => format!("<sip:{domain}>;tag={}", self.local_tag),
        };
        h.push(HeaderName::From, from);
        h.push(HeaderName::To, self.remote.clone());
        h.push(HeaderName::CallId, self.call_id.clone());
        h.push(HeaderName::CSeq, format!("{} NOTIFY", self.cseq));
        h.push(HeaderName::Contact, format!("<{contact}>"));
        let event = match &self.event_id {
            Some(id) => format!("{};id={id}", self.package()),
            None => self.package().to_owned(),
        };
        h.push(HeaderName::Event, event);
        let left = self.expires.saturating_duration_since(now).as_secs();
        // Taken out while the document is written (which borrows the dialog) and put back below: cloning it
        // would copy the status text once per watcher.
        let state = self.state.take();
        let (sub_state, body) = match (end, &state) {
            (Some(reason), state) => (
                match reason.as_str() {
                    Some(r) => format!("terminated;reason={r}"),
                    None => "terminated".to_owned(),
                },
                // A final document goes with a lapse or an unsubscribe (a fetch gets its answer that way); a
                // refusal carries nothing.
                match (reason, state) {
                    (
                        EndReason::Timeout | EndReason::Unsubscribed,
                        Some(WatchState::Active(view)),
                    ) => self.document(view, &entity, last),
                    _ => None,
                },
            ),
            (None, Some(WatchState::Active(view))) => (
                format!("active;expires={left}"),
                self.document(view, &entity, last),
            ),
            (None, Some(WatchState::Terminated(_))) => ("terminated;reason=rejected".into(), None),
            (None, Some(WatchState::Pending) | None) => (format!("pending;expires={left}"), None),
        };
        self.state = state;
        h.push(HeaderName::SubscriptionState, sub_state);
        if let Some((content_type, body)) = body {
            h.push(HeaderName::ContentType, content_type);
            req.body = body.into_bytes();
        }
        req
    }

    fn document(
        &mut self,
        view: &WatchView,
        entity: &str,
        last: &mut LastDocument,
    ) -> Option<(&'static str, String)> {
        let package = crate::core::packages::for_watch(self.kind);
        if self.kind != WatchKind::Presence {
            return package.notify_body(view, entity, &mut self.winfo_version);
        }
        if let Some(doc) = last.get(entity, view) {
            return Some((package.content_type(), doc.to_owned()));
        }
        let (content_type, doc) = package.notify_body(view, entity, &mut self.winfo_version)?;
        last.0 = Some((entity.to_owned(), view.clone(), doc.clone()));
        Some((content_type, doc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_core::compose::{Composed, PresenceState};

    fn view(status: &str) -> WatchView {
        WatchView::Presence(Composed {
            state: PresenceState::Available,
            status: Some(status.to_owned()),
            overriding: false,
        })
    }

    #[test]
    fn the_last_document_serves_only_the_same_entity_and_state() {
        let mut last = LastDocument::default();
        assert_eq!(last.get("sip:bob@example.com", &view("x")), None);
        last.0 = Some(("sip:bob@example.com".into(), view("x"), "<doc/>".into()));
        assert_eq!(last.get("sip:bob@example.com", &view("x")), Some("<doc/>"));
        assert_eq!(last.get("sip:bob@example.com", &view("y")), None);
        assert_eq!(last.get("sip:carol@example.com", &view("x")), None);
    }
}
