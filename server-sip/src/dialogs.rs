//! Subscription dialogs (RFC 6665): what the notifier keeps per SUBSCRIBE dialog, and the NOTIFY it sends.

use std::io::Write as _;
use std::time::Instant;

use presence_core::{BareJid, WatchId, WatchKind, WatchState, WatchView};
use sip_codec::Uri;
use sip_codec::header::HeaderName;

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
pub struct LastDocument(Option<(BareJid, WatchView, String)>);

impl LastDocument {
    fn get(&self, entity: &BareJid, view: &WatchView) -> Option<&str> {
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

    /// The next NOTIFY in this dialog for its current state, or a terminating one with `end`, in its wire form.
    /// `via` and `contact` are ours. `domain` names the presentity's address.
    ///
    /// Written straight into bytes rather than built as a [`sip_codec::Request`] and serialized: a presentity's
    /// change goes out as one NOTIFY per watcher, and the header list (a string per header, the document
    /// copied into the body, then all of it copied again into the wire form) was most of the allocations and
    /// copies of a PUBLISH's fan-out (benches/sip). The header names and order are the serializer's.
    pub fn notify(
        &mut self,
        now: Instant,
        end: Option<EndReason>,
        via: &str,
        contact: &str,
        domain: &str,
        last: &mut LastDocument,
    ) -> Vec<u8> {
        self.cseq += 1;
        let mut out = Vec::with_capacity(1024);
        // Writing into a `Vec` cannot fail: the results of `write!` below are ignored for that reason.
        let _ = write!(out, "NOTIFY {} SIP/2.0\r\n", self.remote_target);
        header(&mut out, HeaderName::Via, &[via]);
        header(&mut out, HeaderName::MaxForwards, &["70"]);
        match self.target.local() {
            Some(_) => {
                let _ = write!(
                    out,
                    "{}: <sip:{}>;tag=",
                    HeaderName::From.as_str(),
                    self.target
                );
                out.extend_from_slice(self.local_tag.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            None => header(
                &mut out,
                HeaderName::From,
                &["<sip:", domain, ">;tag=", &self.local_tag],
            ),
        }
        header(&mut out, HeaderName::To, &[&self.remote]);
        header(&mut out, HeaderName::CallId, &[&self.call_id]);
        let _ = write!(
            out,
            "{}: {} NOTIFY\r\n",
            HeaderName::CSeq.as_str(),
            self.cseq
        );
        header(&mut out, HeaderName::Contact, &["<", contact, ">"]);
        match &self.event_id {
            Some(id) => header(&mut out, HeaderName::Event, &[self.package(), ";id=", id]),
            None => header(&mut out, HeaderName::Event, &[self.package()]),
        }
        let left = self.expires.saturating_duration_since(now).as_secs();
        let sub_state = HeaderName::SubscriptionState;
        // Taken out while the document is written (which borrows the dialog) and put back below: cloning it
        // would copy the status text once per watcher.
        let state = self.state.take();
        let document = match (end, &state) {
            (Some(reason), state) => {
                match reason.as_str() {
                    Some(r) => header(&mut out, sub_state, &["terminated;reason=", r]),
                    None => header(&mut out, sub_state, &["terminated"]),
                }
                // A final document goes with a lapse or an unsubscribe (a fetch gets its answer that way); a
                // refusal carries nothing.
                match (reason, state) {
                    (
                        EndReason::Timeout | EndReason::Unsubscribed,
                        Some(WatchState::Active(view)),
                    ) => Some(view),
                    _ => None,
                }
            }
            (None, Some(WatchState::Active(view))) => {
                let _ = write!(out, "{}: active;expires={left}\r\n", sub_state.as_str());
                Some(view)
            }
            (None, Some(WatchState::Terminated(_))) => {
                header(&mut out, sub_state, &["terminated;reason=rejected"]);
                None
            }
            (None, Some(WatchState::Pending) | None) => {
                let _ = write!(out, "{}: pending;expires={left}\r\n", sub_state.as_str());
                None
            }
        };
        match document.and_then(|view| self.document(view, last)) {
            Some((content_type, body)) => {
                header(&mut out, HeaderName::ContentType, &[content_type]);
                let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
                out.extend_from_slice(body.as_bytes());
            }
            None => out.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
        }
        self.state = state;
        out
    }

    /// The document for `view`: the presence document of the presentity's last change when it is the same
    /// state (shared by every watcher of it, borrowed from `last`), otherwise written now.
    fn document<'a>(
        &mut self,
        view: &WatchView,
        last: &'a mut LastDocument,
    ) -> Option<(&'static str, std::borrow::Cow<'a, str>)> {
        let package = crate::core::packages::for_watch(self.kind);
        if self.kind != WatchKind::Presence {
            return package
                .notify_body(view, &self.entity(), &mut self.winfo_version)
                .map(|(ct, doc)| (ct, doc.into()));
        }
        if last.get(&self.target, view).is_none() {
            let (_, doc) = package.notify_body(view, &self.entity(), &mut self.winfo_version)?;
            last.0 = Some((self.target.clone(), view.clone(), doc));
        }
        last.0
            .as_ref()
            .map(|(_, _, doc)| (package.content_type(), doc.as_str().into()))
    }

    /// The watched resource's address, as documents name it.
    fn entity(&self) -> String {
        format!("sip:{}", self.target)
    }
}

/// Writes one header line whose value is `parts` joined.
fn header(out: &mut Vec<u8>, name: HeaderName, parts: &[&str]) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    for part in parts {
        out.extend_from_slice(part.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
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
        let bob = BareJid::new("bob@example.com").unwrap();
        let carol = BareJid::new("carol@example.com").unwrap();
        let mut last = LastDocument::default();
        assert_eq!(last.get(&bob, &view("x")), None);
        last.0 = Some((bob.clone(), view("x"), "<doc/>".into()));
        assert_eq!(last.get(&bob, &view("x")), Some("<doc/>"));
        assert_eq!(last.get(&bob, &view("y")), None);
        assert_eq!(last.get(&carol, &view("x")), None);
    }
}
