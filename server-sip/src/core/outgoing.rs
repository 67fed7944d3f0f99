//! Requests we send (NOTIFY, MESSAGE) through client transactions: retransmitted over UDP until answered (RFC
//! 3261 §17.1.2), and what a failure means for the subscription behind a NOTIFY.

use std::net::SocketAddr;
use std::time::Instant;

use presence_core::WatchId;
use sip_codec::transaction::{ClientNonInvite, Event, Input, Output, TransactionKey};
use sip_codec::{Request, Response};

use super::{SipPresence, Timer};
use crate::core::Flow;
use crate::dialogs::EndReason;

/// One request of ours waiting for its answer.
pub(super) struct ClientTx {
    pub(super) tx: ClientNonInvite,
    flow: Flow,
    /// The subscription a NOTIFY belongs to (its failure ends the subscription, RFC 6665 §4.2.2).
    notify_for: Option<WatchId>,
}

/// A MESSAGE from a SIP user waiting for the engine's verdict.
pub(super) struct PendingMessage {
    pub(super) req: Request,
    pub(super) flow: Flow,
    /// The id the engine knows the message by (its errors name it).
    pub(super) id: Option<String>,
    /// The engine's refusal, if one came: its condition and text.
    pub(super) error: Option<(presence_core::stanza::ErrorCondition, String)>,
}

impl SipPresence {
    /// Our address for a flow, as peers should see it in Via and Contact: over TLS, the TLS listener's.
    pub(super) fn advertised_for(&self, flow: Flow) -> &str {
        match flow {
            Flow::Tls(_) => &self.advertised.tls,
            _ => &self.advertised.plain,
        }
    }

    /// A Via for a new request of ours over `flow`, with the branch that names its client transaction.
    pub(super) fn via(&mut self, flow: Flow) -> OurVia {
        let branch = format!("z9hG4bK{:x}{:08x}", self.id(), self.rng.next_u32());
        let header = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            flow.transport(),
            self.advertised_for(flow)
        );
        OurVia { header, branch }
    }

    /// Our Contact URI.
    pub(super) fn contact_uri(&self) -> String {
        format!("sip:{}", self.advertised.plain)
    }

    /// Our Contact URI for a dialog over `flow`. Over TLS it names the TLS listener: as `sips:` when the peer's
    /// side of the dialog is `sips:` (RFC 3261 §12.1.1: a SIPS request gets a SIPS Contact), otherwise as
    /// `sip:` with `transport=tls`, so the peer's requests in the dialog stay on TLS either way.
    pub(super) fn contact_for(&self, flow: Flow, sips: bool) -> String {
        match flow {
            Flow::Tls(_) if sips => format!("sips:{}", self.advertised_for(flow)),
            Flow::Tls(_) => format!("sip:{};transport=tls", self.advertised_for(flow)),
            _ => self.contact_uri(),
        }
    }

    /// Starts a client transaction for `req` over `flow`; `branch` is the one in the Via [`Self::via`] made for
    /// it (known here, so the request's Via need not be parsed back).
    pub(super) fn start_client(
        &mut self,
        now: Instant,
        req: Request,
        branch: String,
        flow: Flow,
        notify_for: Option<WatchId>,
    ) {
        self.metrics.sip_request_out(req.method.as_str());
        let tx = ClientNonInvite::new(now, &req, flow.reliable(), self.timers);
        self.run_client(tx, branch, flow, notify_for);
    }

    /// Keeps a new client transaction under its branch and sends its request.
    fn run_client(
        &mut self,
        tx: ClientNonInvite,
        branch: String,
        flow: Flow,
        notify_for: Option<WatchId>,
    ) {
        self.client_txs.insert(
            branch.clone(),
            ClientTx {
                tx,
                flow,
                notify_for,
            },
        );
        self.drive_client(&branch);
    }

    pub(super) fn drive_client(&mut self, branch: &str) {
        let Some(c) = self.client_txs.get_mut(branch) else {
            return;
        };
        let flow = c.flow;
        let notify_for = c.notify_for;
        let mut sends = Vec::new();
        let mut outcome: Option<Result<u16, ()>> = None;
        let mut done = false;
        while let Some(out) = c.tx.poll_output() {
            match out {
                Output::Transmit(b) => sends.push(b),
                Output::Event(Event::Response(r)) if r.status >= 200 => {
                    outcome = Some(Ok(r.status))
                }
                Output::Event(Event::Response(_)) => {}
                Output::Event(Event::Timeout | Event::TransportError) => outcome = Some(Err(())),
                Output::Event(Event::Terminated) => done = true,
            }
        }
        // Once the final response is in, the transaction is forgotten rather than kept Completed for T4 (RFC 3261
        // §17.1.2.2): that state only absorbs retransmissions of the response, and a response to no transaction
        // is dropped as stray anyway (§18.1.2). Keeping it held the request's bytes and a timer for 5 s per
        // NOTIFY over UDP: at 20,000 NOTIFYs/s, 100,000 transactions and their memory for nothing.
        let answered = matches!(outcome, Some(Ok(_)));
        let wake = c.tx.poll_timeout();
        if done || answered {
            self.client_txs.remove(branch);
        } else if let Some(at) = wake {
            self.arm(at, Timer::Client(branch.to_owned()));
        }
        // A send that fails comes back as `Event::TransmitFailed` naming this transaction.
        for b in sends {
            self.transmit(flow, b, Some(branch.to_owned()));
        }
        // A NOTIFY that failed (no answer, 481, any error) ends the subscription (RFC 6665 §4.2.2).
        let failed = match outcome {
            Some(Ok(status)) => status >= 300,
            Some(Err(())) => true,
            None => false,
        };
        if failed && let Some(watch) = notify_for {
            self.drop_dialog(watch);
        }
    }

    pub(super) fn client_timer(&mut self, now: Instant, branch: &str) {
        if let Some(c) = self.client_txs.get_mut(branch) {
            if c.tx.poll_timeout().is_some_and(|at| at > now) {
                return;
            }
            c.tx.handle(now, Input::Timer);
        }
        self.drive_client(branch);
    }

    /// A response from a peer: to one of our client transactions, or stray (dropped, RFC 3261 §18.1.2).
    pub(super) fn response(&mut self, now: Instant, resp: Response) {
        let Some(key) = TransactionKey::for_client(&resp) else {
            return;
        };
        if let Some(c) = self.client_txs.get_mut(&key.branch) {
            c.tx.handle(now, Input::Response(resp));
            self.drive_client(&key.branch);
        }
    }

    /// Sends the NOTIFY for a dialog's current state, or its last one with `end`.
    pub(super) fn send_notify(&mut self, now: Instant, watch: WatchId, end: Option<EndReason>) {
        let Some((flow, sips)) = self
            .dialogs
            .get(&watch)
            .map(|d| (d.flow, is_sips(&d.remote_target)))
        else {
            return;
        };
        let OurVia {
            header: via,
            branch,
        } = self.via(flow);
        let contact = self.contact_for(flow, sips);
        let Some(d) = self.dialogs.get_mut(&watch) else {
            return;
        };
        let wire = d.notify(
            now,
            end,
            &via,
            &contact,
            &self.settings.domain,
            &mut self.last_document,
        );
        // The final NOTIFY's fate no longer matters to a subscription that is already gone.
        let notify_for = end.is_none().then_some(watch);
        self.metrics
            .sip_request_out(sip_codec::Method::Notify.as_str());
        let tx = ClientNonInvite::from_wire(now, wire.into(), flow.reliable(), self.timers);
        self.run_client(tx, branch, flow, notify_for);
    }
}

/// The Via of a request we send, and its branch.
pub(super) struct OurVia {
    /// The header value.
    pub(super) header: String,
    /// Its branch parameter: the client transaction's name.
    pub(super) branch: String,
}

/// Whether a URI is `sips:`.
pub(super) fn is_sips(uri: &sip_codec::Uri) -> bool {
    uri.as_sip().is_some_and(|u| u.secure)
}

/// Our addresses as peers should see them, written once: every NOTIFY carries one in its Via and Contact.
pub(super) struct Advertised {
    plain: String,
    tls: String,
}

impl Advertised {
    pub(super) fn new(settings: &crate::SipSettings) -> Self {
        let plain = advertise(settings.bind, &settings.domain);
        let tls = settings
            .tls
            .as_ref()
            .map(|t| advertise(t.bind, &settings.domain))
            .unwrap_or_else(|| plain.clone());
        Advertised { plain, tls }
    }
}

fn advertise(addr: SocketAddr, domain: &str) -> String {
    if addr.ip().is_unspecified() {
        format!("{domain}:{}", addr.port())
    } else {
        addr.to_string()
    }
}
