//! One BOSH session's rules (XEP-0124), without I/O or clock: requests go in with the time they arrived, the
//! stream's output goes in as it is written, and answers come out to be sent on the requests' HTTP responses.
//!
//! - Requests are handled in `rid` order ([`super::rid::Window`]); each one's children become stream bytes
//!   ([`Session::take_inbound`]), and the request is then *held* until there is something to say.
//! - At most `hold` requests are held: a further one makes the oldest answer at once, empty. Output answers the
//!   oldest held request with everything waiting; a held request answers empty when its `wait` expires.
//! - Without a held request the session is idle; idle for `inactivity` (or the client's `pause`, up to
//!   `maxpause`), it ends, so a client that vanished leaves nothing behind.
//! - The stream's end (the server's `<close/>`, after a stream error or the client's `type='terminate'`)
//!   answers every held request with `type='terminate'`, carrying the stream error if there was one.
//!
//! Every queue here is bounded: the window by `requests`, held requests by `hold`, the output waiting for a
//! request by [`Params::outbox_bytes`] (the driver stops taking output when it is full, which stalls the
//! stream's writes and lets the connection's slow-consumer rule end it), and inbound bytes by one request's
//! body at a time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::body::{self, Answer, Condition, Request};
use super::rid::{Refused, Window};

/// The fixed settings of one session, as negotiated at its creation.
#[derive(Debug, Clone)]
pub struct Params {
    /// The served domain (for the stream headers of the creation and restart requests).
    pub domain: String,
    /// The longest a request is held.
    pub wait: Duration,
    /// How many requests may be held at once.
    pub hold: usize,
    /// The size of the rid window.
    pub requests: u64,
    /// How long the session may be idle.
    pub inactivity: Duration,
    /// The longest `pause` allowed.
    pub maxpause: Duration,
    /// The client predates XEP-0124 1.6 (no `ver`): errors get HTTP status codes.
    pub legacy: bool,
    /// The client's `xml:lang`, for its stream headers.
    pub lang: Option<String>,
    /// Output bytes that may wait for a request.
    pub outbox_bytes: usize,
}

/// Answers kept for retransmitted requests (XEP-0124 §14.3), in bytes at most.
const RESEND_BYTES: usize = 64 * 1024;

/// The framing writer's stream header (RFC 7395), which the stream writes when it opens or restarts.
const OPEN_PREFIX: &str = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'";

/// The framing writer's end of stream.
const CLOSE_PREFIX: &str = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'";

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The stream closed cleanly (the client's `terminate`, or the server's `<close/>`).
    Closed,
    /// Ended with a condition.
    Error(Condition),
    /// Nobody asked for anything for `inactivity`.
    Inactive,
}

/// A request that is being held.
struct Held<R> {
    rid: u64,
    responder: R,
    deadline: Instant,
}

/// A request waiting for its turn in the window.
struct Waiting<R> {
    request: Request,
    responder: R,
}

/// One session; `R` answers one HTTP request (a oneshot sender in the server, anything in tests).
pub struct Session<R> {
    params: Params,
    window: Window<Waiting<R>>,
    held: VecDeque<Held<R>>,
    outbox: Vec<String>,
    outbox_len: usize,
    inbound: Option<Vec<u8>>,
    /// Recent answers by rid, for retransmissions.
    resend: VecDeque<(u64, Answer)>,
    resend_len: usize,
    /// When the session last became idle.
    idle_from: Instant,
    /// No request is held.
    idle: bool,
    /// The end of the client's pause.
    paused_until: Option<Instant>,
    /// The creation response's attributes, added to the first answer.
    creation: Option<Vec<(&'static str, String)>>,
    stream_error: bool,
    end: Option<End>,
    /// The client has been told the session ended.
    end_told: bool,
    answers: Vec<(R, Answer)>,
}

impl<R> Session<R> {
    /// A session from its creation request `first` (answered later, with `creation`'s attributes first).
    pub fn new(
        now: Instant,
        params: Params,
        first: Request,
        responder: R,
        creation: Vec<(&'static str, String)>,
    ) -> Self {
        let mut s = Session {
            window: Window::new(first.rid, params.requests),
            held: VecDeque::new(),
            outbox: Vec::new(),
            outbox_len: 0,
            inbound: None,
            resend: VecDeque::new(),
            resend_len: 0,
            idle_from: now,
            idle: false,
            paused_until: None,
            creation: Some(creation),
            stream_error: false,
            end: None,
            end_told: false,
            answers: Vec::new(),
            params,
        };
        s.inbound = Some(s.header());
        s.held.push_back(Held {
            rid: first.rid,
            responder,
            deadline: now + s.params.wait,
        });
        s
    }

    /// The stream header the creation and restart requests stand for.
    fn header(&self) -> Vec<u8> {
        let mut h = xmpp_codec::StreamHeader::new(xmpp_codec::ns::CLIENT);
        h.to = Some(self.params.domain.clone());
        h.lang = self.params.lang.clone();
        let mut out = Vec::new();
        h.write(&mut out);
        out
    }

    /// A request arrives.
    pub fn arrive(&mut self, now: Instant, request: Request, responder: R) {
        if let Some(end) = self.end {
            let answer = self.end_answer(end, Vec::new());
            self.end_told = true;
            self.answers.push((responder, answer));
            return;
        }
        let rid = request.rid;
        match self.window.arrive(rid, Waiting { request, responder }) {
            Ok(()) => self.process(now),
            Err((Refused::Repeated, w)) => {
                if let Some((_, a)) = self.resend.iter().find(|(r, _)| *r == rid) {
                    let a = a.clone();
                    self.answers.push((w.responder, a));
                } else if let Some(h) = self.held.iter_mut().find(|h| h.rid == rid) {
                    // The client gave up on the first copy's connection: the new one waits instead.
                    let old = std::mem::replace(&mut h.responder, w.responder);
                    self.answers.push((old, body::data(&[])));
                } else {
                    self.answers.push((w.responder, body::data(&[])));
                }
            }
            Err((Refused::OutOfWindow, w)) => {
                tracing::debug!(rid, "BOSH request id out of the window");
                self.fail(Condition::ItemNotFound);
                let answer = self.end_answer(End::Error(Condition::ItemNotFound), Vec::new());
                self.answers.push((w.responder, answer));
            }
        }
    }

    /// Handles the requests whose turn has come, as long as the stream has taken the previous one's bytes.
    fn process(&mut self, now: Instant) {
        while self.end.is_none() && self.inbound.is_none() {
            let Some((rid, Waiting { request, responder })) = self.window.pop() else {
                break;
            };
            if let Some(pause) = request.pause {
                let pause = Duration::from_secs(pause);
                if pause > self.params.maxpause {
                    self.fail(Condition::PolicyViolation);
                    let answer =
                        self.end_answer(End::Error(Condition::PolicyViolation), Vec::new());
                    self.answers.push((responder, answer));
                    return;
                }
                // XEP-0124 §12: every held request is answered now; the session waits for the pause.
                self.held.push_back(Held {
                    rid,
                    responder,
                    deadline: now,
                });
                self.answer_all_held();
                self.paused_until = Some(now + pause);
                self.idle = true;
                self.idle_from = now;
                continue;
            }
            self.paused_until = None;
            let mut bytes = request.payload;
            if request.restart {
                bytes = self.header();
            } else if request.terminate {
                xmpp_codec::write_stream_close(&mut bytes);
            }
            if !bytes.is_empty() {
                self.inbound = Some(bytes);
            }
            self.held.push_back(Held {
                rid,
                responder,
                deadline: now + self.params.wait,
            });
            self.settle(now);
        }
    }

    /// The stream bytes of the next request, for the stream to read.
    pub fn take_inbound(&mut self, now: Instant) -> Option<Vec<u8>> {
        let bytes = self.inbound.take();
        self.process(now);
        bytes
    }

    /// Whether stream bytes wait to be taken.
    pub fn has_inbound(&self) -> bool {
        self.inbound.is_some()
    }

    /// One message the stream wrote (an element, or the framing writer's `<open/>` or `<close/>`).
    pub fn output(&mut self, now: Instant, message: String) {
        self.outputs(now, [message]);
    }

    /// Messages the stream wrote, in order: they go out together.
    pub fn outputs(&mut self, now: Instant, messages: impl IntoIterator<Item = String>) {
        for message in messages {
            if message.starts_with(OPEN_PREFIX) {
                continue;
            }
            if message.starts_with(CLOSE_PREFIX) {
                if self.end.is_none() {
                    self.end = Some(if self.stream_error {
                        End::Error(Condition::RemoteStreamError)
                    } else {
                        End::Closed
                    });
                }
                continue;
            }
            if message.starts_with("<stream:error") {
                self.stream_error = true;
            }
            self.outbox_len += message.len();
            self.outbox.push(message);
        }
        self.settle(now);
    }

    /// Whether the output waiting for a request has reached its bound.
    pub fn outbox_full(&self) -> bool {
        self.outbox_len >= self.params.outbox_bytes
    }

    /// The stream is gone (its connection ended) without closing.
    pub fn stream_gone(&mut self, now: Instant) {
        if self.end.is_none() {
            let condition = if self.stream_error {
                Condition::RemoteStreamError
            } else if self.outbox_full() {
                // The client did not collect its output: the connection's slow-consumer rule ended it.
                Condition::PolicyViolation
            } else {
                Condition::InternalServerError
            };
            self.end = Some(End::Error(condition));
        }
        self.settle(now);
    }

    /// Ends the session with `condition`, answering everything held or waiting.
    pub fn fail(&mut self, condition: Condition) {
        if self.end.is_none() {
            self.end = Some(End::Error(condition));
        }
        let end = self.end.unwrap_or(End::Error(condition));
        for (_, w) in self.window.drain().collect::<Vec<_>>() {
            let answer = self.end_answer(end, Vec::new());
            self.answers.push((w.responder, answer));
        }
        self.answer_all_held();
    }

    /// Time passed: held requests whose wait expired answer empty; an idle session past its inactivity ends.
    pub fn timeout(&mut self, now: Instant) {
        while self.held.front().is_some_and(|h| h.deadline <= now) {
            self.answer_oldest(Vec::new());
        }
        self.note_idle(now);
        if self.held.is_empty() && now >= self.idle_deadline() {
            if self.end.is_none() {
                tracing::debug!("BOSH session inactive: ended");
                self.end = Some(End::Inactive);
            }
            // Nobody came to hear how it ended.
            self.end_told = true;
        }
        self.settle(now);
    }

    /// When [`Session::timeout`] must next run.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.held.front() {
            Some(h) => Some(h.deadline),
            None if self.is_over() => None,
            None => Some(self.idle_deadline()),
        }
    }

    fn idle_deadline(&self) -> Instant {
        let idle = self.idle_from + self.params.inactivity;
        match self.paused_until {
            Some(p) => idle.max(p),
            None => idle,
        }
    }

    /// Whether the session is over: ended, and the client told (or gone).
    pub fn is_over(&self) -> bool {
        self.end.is_some() && self.end_told && self.held.is_empty()
    }

    /// How the session ended, once it has.
    pub fn end(&self) -> Option<End> {
        self.end
    }

    /// The answers ready to be sent.
    pub fn answers(&mut self) -> std::vec::Drain<'_, (R, Answer)> {
        self.answers.drain(..)
    }

    /// Applies the holding rules after something changed.
    fn settle(&mut self, now: Instant) {
        if self.end.is_some() {
            self.answer_all_held();
        } else {
            if !self.outbox.is_empty() && !self.held.is_empty() {
                let out = self.take_outbox();
                self.answer_oldest(out);
            }
            while self.held.len() > self.params.hold {
                self.answer_oldest(Vec::new());
            }
        }
        self.note_idle(now);
    }

    /// Starts the inactivity clock when the last held request has been answered.
    fn note_idle(&mut self, now: Instant) {
        match (self.held.is_empty(), self.idle) {
            (true, false) => {
                self.idle = true;
                self.idle_from = now;
            }
            (false, true) => self.idle = false,
            _ => {}
        }
    }

    fn take_outbox(&mut self) -> Vec<String> {
        self.outbox_len = 0;
        std::mem::take(&mut self.outbox)
    }

    /// Answers every held request, oldest first: the first one carries the waiting output; after the end,
    /// each says the session ended.
    fn answer_all_held(&mut self) {
        while !self.held.is_empty() {
            let out = self.take_outbox();
            match self.end {
                Some(end) => {
                    let Some(h) = self.held.pop_front() else {
                        break;
                    };
                    let answer = self.end_answer(end, out);
                    self.end_told = true;
                    self.answers.push((h.responder, answer));
                }
                None => self.answer_oldest(out),
            }
        }
    }

    /// Answers the oldest held request with `children`.
    fn answer_oldest(&mut self, children: Vec<String>) {
        let Some(h) = self.held.pop_front() else {
            return;
        };
        let attrs = self.creation.take().unwrap_or_default();
        let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = Answer {
            status: 200,
            body: body::write(&attrs, &children),
        };
        self.resend_len += answer.body.len();
        self.resend.push_back((h.rid, answer.clone()));
        while self.resend_len > RESEND_BYTES || self.resend.len() as u64 > self.params.requests {
            let Some((_, old)) = self.resend.pop_front() else {
                break;
            };
            self.resend_len -= old.body.len();
        }
        self.answers.push((h.responder, answer));
    }

    /// The answer that tells the client the session ended.
    fn end_answer(&mut self, end: End, mut children: Vec<String>) -> Answer {
        let condition = match end {
            End::Closed => None,
            End::Error(c) => Some(c),
            End::Inactive => Some(Condition::ItemNotFound),
        };
        if condition != Some(Condition::RemoteStreamError) {
            // Only a stream error's body declares the stream prefix; without one, nothing else is said.
            children.retain(|c| !c.starts_with("<stream:error"));
        }
        let mut a = body::terminate(condition, &children, self.params.legacy);
        if let Some(attrs) = self.creation.take() {
            // The session ended before its creation was answered: the client still learns its attributes.
            let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let mut all = vec![("type", "terminate")];
            if let Some(c) = condition {
                all.push(("condition", c.as_str()));
            }
            if condition == Some(Condition::RemoteStreamError) {
                all.push(("xmlns:stream", xmpp_codec::ns::STREAMS));
            }
            all.extend(attrs);
            a.body = body::write(&all, &children);
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            domain: "example.com".into(),
            wait: Duration::from_secs(60),
            hold: 1,
            requests: 2,
            inactivity: Duration::from_secs(30),
            maxpause: Duration::from_secs(120),
            legacy: false,
            lang: None,
            outbox_bytes: 1024,
        }
    }

    fn req(rid: u64) -> Request {
        Request {
            rid,
            sid: Some("s".into()),
            ..Request::default()
        }
    }

    fn new(now: Instant) -> Session<u64> {
        let first = Request {
            rid: 10,
            ..Request::default()
        };
        Session::new(now, params(), first, 10, vec![("sid", "s".into())])
    }

    fn answers(s: &mut Session<u64>) -> Vec<(u64, String)> {
        s.answers().map(|(r, a)| (r, a.body)).collect()
    }

    const FEATURES: &str = "<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>";

    #[test]
    fn creation_is_answered_with_the_features_and_its_attributes() {
        let t = Instant::now();
        let mut s = new(t);
        let header = String::from_utf8(s.take_inbound(t).expect("header")).unwrap();
        assert!(header.starts_with("<stream:stream") && header.contains("to='example.com'"));
        s.output(
            t,
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='example.com'/>".into(),
        );
        assert!(answers(&mut s).is_empty(), "the framing open is not output");
        s.output(t, FEATURES.into());
        assert_eq!(
            answers(&mut s),
            vec![(
                10,
                format!(
                    "<body xmlns='http://jabber.org/protocol/httpbind' sid='s'>{FEATURES}</body>"
                )
            )]
        );
    }

    #[test]
    fn requests_are_held_up_to_hold_and_answered_by_output_or_wait() {
        let t = Instant::now();
        let mut s = new(t);
        s.take_inbound(t);
        s.output(t, FEATURES.into());
        answers(&mut s);
        // Out of order: 12 waits for 11.
        s.arrive(t, req(12), 12);
        assert!(answers(&mut s).is_empty());
        s.arrive(t, req(11), 11);
        // 11 and 12 handled in order; hold = 1, so 11 is answered empty and 12 is held.
        assert_eq!(
            answers(&mut s),
            vec![(
                11,
                "<body xmlns='http://jabber.org/protocol/httpbind'/>".into()
            )]
        );
        s.output(t, "<message xmlns='jabber:client'/>".into());
        assert_eq!(
            answers(&mut s),
            vec![(12, "<body xmlns='http://jabber.org/protocol/httpbind'><message xmlns='jabber:client'/></body>".into())]
        );
        // Output with nobody to carry it waits; the next request takes it at once.
        s.output(t, "<presence xmlns='jabber:client'/>".into());
        s.arrive(t, req(13), 13);
        assert_eq!(answers(&mut s)[0].0, 13);
        // Held until wait expires.
        s.arrive(t, req(14), 14);
        assert!(answers(&mut s).is_empty());
        assert_eq!(s.next_deadline(), Some(t + Duration::from_secs(60)));
        s.timeout(t + Duration::from_secs(60));
        assert_eq!(
            answers(&mut s),
            vec![(
                14,
                "<body xmlns='http://jabber.org/protocol/httpbind'/>".into()
            )]
        );
        // A retransmitted 14 gets the same answer.
        s.arrive(t, req(14), 99);
        assert_eq!(
            answers(&mut s),
            vec![(
                99,
                "<body xmlns='http://jabber.org/protocol/httpbind'/>".into()
            )]
        );
    }

    #[test]
    fn payloads_reach_the_stream_one_request_at_a_time() {
        let t = Instant::now();
        let mut s = new(t);
        s.take_inbound(t);
        let mut a = req(11);
        a.payload = b"<a/>".to_vec();
        let mut b = req(12);
        b.payload = b"<b/>".to_vec();
        s.arrive(t, a, 11);
        s.arrive(t, b, 12);
        assert_eq!(s.take_inbound(t).as_deref(), Some(&b"<a/>"[..]));
        assert_eq!(s.take_inbound(t).as_deref(), Some(&b"<b/>"[..]));
        assert_eq!(s.take_inbound(t), None);
        let mut r = req(13);
        r.restart = true;
        s.arrive(t, r, 13);
        assert!(
            String::from_utf8(s.take_inbound(t).unwrap())
                .unwrap()
                .starts_with("<stream:stream")
        );
    }

    #[test]
    fn a_rid_beyond_the_window_ends_the_session_with_item_not_found() {
        let t = Instant::now();
        let mut s = new(t);
        s.arrive(t, req(13), 13);
        let got = answers(&mut s);
        assert_eq!(
            got.len(),
            2,
            "the held creation request and the offender: {got:?}"
        );
        for (_, body) in &got {
            assert!(
                body.contains("type='terminate' condition='item-not-found'"),
                "{body}"
            );
        }
        assert!(s.is_over());
    }

    #[test]
    fn terminate_closes_the_stream_and_is_answered_when_it_has_closed() {
        let t = Instant::now();
        let mut s = new(t);
        s.take_inbound(t);
        s.output(t, FEATURES.into());
        answers(&mut s);
        let mut r = req(11);
        r.terminate = true;
        r.payload = b"<presence type='unavailable'/>".to_vec();
        s.arrive(t, r, 11);
        let bytes = String::from_utf8(s.take_inbound(t).unwrap()).unwrap();
        assert_eq!(bytes, "<presence type='unavailable'/></stream:stream>");
        s.output(
            t,
            "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>".into(),
        );
        assert_eq!(
            answers(&mut s),
            vec![(
                11,
                "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate'/>".into()
            )]
        );
        assert!(s.is_over());
        assert_eq!(s.end(), Some(End::Closed));
    }

    #[test]
    fn a_stream_error_is_a_remote_stream_error_carrying_it() {
        let t = Instant::now();
        let mut s = new(t);
        s.take_inbound(t);
        let err = "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";
        s.output(t, err.into());
        // The creation request took the error; the close then ends the session for the next request.
        let first = answers(&mut s);
        assert!(first[0].1.contains(err));
        s.output(
            t,
            "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>".into(),
        );
        assert!(!s.is_over(), "the client has not been told");
        s.arrive(t, req(11), 11);
        let got = answers(&mut s);
        assert!(
            got[0].1.contains("condition='remote-stream-error'"),
            "{got:?}"
        );
        assert!(s.is_over());
    }

    #[test]
    fn an_idle_session_ends_after_inactivity_and_pause_stretches_it() {
        let t = Instant::now();
        let mut s = new(t);
        s.take_inbound(t);
        s.timeout(t + Duration::from_secs(60));
        answers(&mut s);
        assert_eq!(s.next_deadline(), Some(t + Duration::from_secs(90)));
        let mut p = req(11);
        p.pause = Some(100);
        let at = t + Duration::from_secs(61);
        s.arrive(at, p, 11);
        assert_eq!(answers(&mut s).len(), 1, "a pause is answered at once");
        s.timeout(at + Duration::from_secs(99));
        assert!(!s.is_over(), "paused");
        s.timeout(at + Duration::from_secs(100));
        assert!(s.is_over());
        assert_eq!(s.end(), Some(End::Inactive));
        // A pause beyond maxpause is a policy violation.
        let mut s = new(t);
        s.take_inbound(t);
        let mut p = req(11);
        p.pause = Some(1000);
        s.arrive(t, p, 11);
        assert!(
            answers(&mut s)
                .iter()
                .any(|(_, b)| b.contains("policy-violation"))
        );
    }

    #[test]
    fn the_outbox_is_bounded() {
        let t = Instant::now();
        let mut s = new(t);
        s.timeout(t + Duration::from_secs(60));
        for _ in 0..40 {
            s.output(t, "<message xmlns='jabber:client'/>".into());
        }
        assert!(s.outbox_full());
        s.stream_gone(t);
        s.arrive(t, req(11), 11);
        assert!(
            answers(&mut s)
                .iter()
                .any(|(_, b)| b.contains("policy-violation"))
        );
    }
}
