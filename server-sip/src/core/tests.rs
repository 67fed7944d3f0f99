//! The core driven without sockets: events in, outputs out, time moved by hand.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use presence_core::compose::{Composed, PresenceState};
use presence_core::runtime::{Location, Metrics, ToSession};
use presence_core::store::Account;
use presence_core::time::Timestamp;
use presence_core::{BareJid, Input, SessionId, WatchId, WatchState, WatchView};
use sip_codec::auth::{Algorithm, DigestChallenge};
use sip_codec::header::HeaderName;
use sip_codec::{Message, Request, Response};

use super::{Event, Flow, Output, Runtime, SipPresence};
use crate::SipSettings;
use crate::credentials::digest_secrets;

const DOMAIN: &str = "example.com";

/// A single node: everyone is served here; sessions are numbered from 100.
struct Single(AtomicU64);

impl Runtime for Single {
    fn locate(&self, _user: &BareJid) -> Location {
        Location::Here
    }

    fn new_session(&self) -> SessionId {
        SessionId(self.0.fetch_add(1, Ordering::Relaxed))
    }
}

/// What one event made the core do.
#[derive(Debug, Default)]
struct Done {
    sent: Vec<(Flow, Message)>,
    inputs: Vec<Input>,
    lookups: Vec<BareJid>,
    closed: Vec<SessionId>,
}

impl Done {
    fn responses(&self) -> Vec<&Response> {
        self.sent
            .iter()
            .filter_map(|(_, m)| match m {
                Message::Response(r) => Some(r),
                Message::Request(_) => None,
            })
            .collect()
    }

    fn response(&self) -> &Response {
        let r = self.responses();
        assert_eq!(r.len(), 1, "one response expected: {:?}", self.sent);
        r[0]
    }

    fn requests(&self) -> Vec<&Request> {
        self.sent
            .iter()
            .filter_map(|(_, m)| match m {
                Message::Request(r) => Some(r),
                Message::Response(_) => None,
            })
            .collect()
    }

    fn notify(&self) -> &Request {
        let r = self.requests();
        assert_eq!(r.len(), 1, "one NOTIFY expected: {:?}", self.sent);
        r[0]
    }
}

struct Harness {
    core: SipPresence,
    now: Instant,
    /// The password `authenticated` answers challenges with.
    password: String,
    accounts: Vec<Account>,
    next: u32,
}

fn flow(port: u16) -> Flow {
    Flow::Udp(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn jid(s: &str) -> BareJid {
    BareJid::new(s).expect("valid")
}

fn cseq(req: &Request) -> u32 {
    req.headers.cseq().ok().flatten().expect("CSeq").seq
}

fn header(m: &Request, name: HeaderName) -> &str {
    m.headers.get(&name).unwrap_or_default()
}

fn available(status: &str) -> WatchState {
    WatchState::Active(WatchView::Presence(Composed {
        state: PresenceState::Available,
        status: Some(status.to_owned()),
        overriding: false,
    }))
}

impl Harness {
    fn new() -> Self {
        let now = Instant::now();
        let settings = SipSettings::new(DOMAIN, SocketAddr::from(([127, 0, 0, 1], 5060)));
        let core = SipPresence::new(
            settings,
            now,
            Box::new(Single(AtomicU64::new(100))),
            Arc::new(Metrics::new()),
            [7; 32],
            42,
        );
        let accounts = ["alice@example.com", "bob@example.com"]
            .into_iter()
            .map(|u| {
                let jid = jid(u);
                Account {
                    digest: digest_secrets(&jid, "pw"),
                    jid,
                    credentials: vec![],
                }
            })
            .collect();
        Harness {
            core,
            now,
            accounts,
            password: "pw".into(),
            next: 1,
        }
    }

    /// Hands the core an event and carries out its outputs as the driver would: lookups answered from the
    /// accounts, everything else recorded.
    fn step(&mut self, event: Event) -> Done {
        let mut done = Done::default();
        self.core.handle(self.now, event);
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Transmit { flow, bytes, .. } => {
                    let m = Message::parse_datagram(&bytes, &sip_codec::Limits::default())
                        .expect("the core sends what parses");
                    done.sent.push((flow, m));
                }
                Output::Submit(input) => done.inputs.push(input),
                Output::SubmitAndFlush { input, .. } => done.inputs.push(*input),
                Output::LookupAccount { lookup, user } => {
                    let result = Ok(self.accounts.iter().find(|a| a.jid == user).cloned());
                    done.lookups.push(user);
                    self.core
                        .handle(self.now, Event::Account { lookup, result });
                }
                Output::CloseSession(s) => done.closed.push(s),
                Output::OpenSession(_) | Output::CloseFlow(_) => {}
            }
        }
        done
    }

    fn advance(&mut self, by: Duration) -> Done {
        self.now += by;
        self.step(Event::Timeout)
    }

    fn receive(&mut self, from: Flow, text: String) -> Done {
        let parsed = Message::parse_datagram(text.as_bytes(), &sip_codec::Limits::default());
        self.step(Event::Message {
            flow: from,
            parsed,
            raw: text.into_bytes(),
            engine_busy: false,
            received: Timestamp::from_millis(0),
        })
    }

    /// A request from `user` (local part) over `from`; `extra` are further header lines.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        from: Flow,
        method: &str,
        uri: &str,
        user: &str,
        call: &str,
        extra: &[String],
        body: &str,
    ) -> String {
        let n = self.next;
        self.next += 1;
        // REGISTER is to the registrar, about the user's own address; other requests are to their target. A
        // request within a dialog brings its own To (with our tag).
        let to = if extra.iter().any(|e| e.starts_with("To:")) {
            String::new()
        } else if method == "REGISTER" {
            format!("To: <sip:{user}@{DOMAIN}>\r\n")
        } else {
            format!("To: <{uri}>\r\n")
        };
        let mut text = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKt{n};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=f{user}\r\n{to}Call-ID: {call}\r\n\
             CSeq: {n} {method}\r\nContact: <sip:{user}@127.0.0.1:{port}>\r\n",
            port = match from {
                Flow::Udp(a) => a.port(),
                _ => 0,
            }
        );
        for e in extra {
            text.push_str(e);
            text.push_str("\r\n");
        }
        text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        text
    }

    /// Sends a request as `user` the way a phone does: first without credentials, then answering the 401.
    #[allow(clippy::too_many_arguments)]
    fn authenticated(
        &mut self,
        from: Flow,
        method: &str,
        uri: &str,
        user: &str,
        call: &str,
        extra: &[String],
        body: &str,
    ) -> Done {
        let first = self.request(from, method, uri, user, call, extra, body);
        let done = self.receive(from, first);
        let challenge = done.response();
        assert_eq!(challenge.status, 401, "{challenge:?}");
        assert!(done.lookups.is_empty(), "a challenge needs no account");
        let www = challenge
            .headers
            .0
            .iter()
            .filter(|h| h.name == HeaderName::WwwAuthenticate)
            .map(|h| {
                DigestChallenge::from_header(
                    &sip_codec::header::parse_auth(&h.value).expect("parses"),
                )
                .expect("digest")
            })
            .find(|c| c.algorithm == Algorithm::Md5)
            .expect("MD5 offered");
        let creds = sip_codec::auth::answer(&www, user, &self.password, method, uri, "c", 1, b"")
            .to_header()
            .to_string();
        let mut extra = extra.to_vec();
        extra.push(format!("Authorization: {creds}"));
        let second = self.request(from, method, uri, user, call, &extra, body);
        self.receive(from, second)
    }

    /// Alice subscribes to Bob's presence for `expires` seconds: the 200 and the engine's watch.
    fn subscribe(&mut self, expires: u32) -> (Done, WatchId, String) {
        let done = self.authenticated(
            flow(5071),
            "SUBSCRIBE",
            "sip:bob@example.com",
            "alice",
            "sub1",
            &["Event: presence".into(), format!("Expires: {expires}")],
            "",
        );
        let ok = done.response();
        assert_eq!(ok.status, 200, "{ok:?}");
        let to = ok.headers.get(&HeaderName::To).expect("To").to_owned();
        let watch = match done.inputs.as_slice() {
            [Input::Watch { watch, target, .. }] => {
                assert_eq!(*target, jid("bob@example.com"));
                *watch
            }
            other => panic!("one Watch input expected: {other:?}"),
        };
        (done, watch, to)
    }

    /// Answers a NOTIFY with `status`.
    fn answer(&mut self, notify: &Request, status: u16) -> Done {
        let resp = notify.make_response(status, "x");
        let text = String::from_utf8(Message::Response(resp).to_bytes()).expect("utf8");
        self.receive(flow(5071), text)
    }
}

#[test]
fn digest_challenge_then_lookup_then_200() {
    let mut h = Harness::new();
    let done = h.authenticated(
        flow(5071),
        "REGISTER",
        "sip:example.com",
        "alice",
        "reg1",
        &["Expires: 600".into()],
        "",
    );
    assert_eq!(done.lookups, [jid("alice@example.com")]);
    let ok = done.response();
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(
        ok.headers
            .get(&HeaderName::Contact)
            .is_some_and(|c| c.contains("expires=600")),
        "{ok:?}"
    );
    // The engine session is opened for the user; its presence waits for the bind.
    assert!(
        matches!(done.inputs.as_slice(), [Input::OpenSession { user, .. }] if *user == jid("alice@example.com")),
        "{:?}",
        done.inputs
    );
}

#[test]
fn a_wrong_password_is_refused_after_the_lookup() {
    let mut h = Harness::new();
    let first = h.request(
        flow(5071),
        "REGISTER",
        "sip:example.com",
        "alice",
        "r",
        &[],
        "",
    );
    let challenge = h.receive(flow(5071), first);
    let value = challenge
        .response()
        .headers
        .get(&HeaderName::WwwAuthenticate)
        .expect("challenge")
        .to_owned();
    let www = DigestChallenge::from_header(&sip_codec::header::parse_auth(&value).expect("parses"))
        .expect("digest");
    let creds = sip_codec::auth::answer(
        &www,
        "alice",
        "guess",
        "REGISTER",
        "sip:example.com",
        "c",
        1,
        b"",
    )
    .to_header()
    .to_string();
    let second = h.request(
        flow(5071),
        "REGISTER",
        "sip:example.com",
        "alice",
        "r",
        &[format!("Authorization: {creds}")],
        "",
    );
    let done = h.receive(flow(5071), second);
    assert_eq!(done.lookups.len(), 1);
    assert_eq!(done.response().status, 403);
    assert!(done.inputs.is_empty());
}

#[test]
fn subscribe_gets_200_then_a_notify_when_the_engine_reports_state() {
    let mut h = Harness::new();
    let (done, watch, to) = h.subscribe(600);
    // The target's account is looked up too (404 for no such user).
    assert_eq!(
        done.lookups,
        [jid("alice@example.com"), jid("bob@example.com")]
    );
    assert!(
        done.requests().is_empty(),
        "no NOTIFY before the engine's state"
    );
    let local_tag = to.rsplit_once("tag=").expect("our tag").1.to_owned();
    let done = h.step(Event::Watch(watch, available("here")));
    let notify = done.notify();
    assert_eq!(cseq(notify), 1);
    assert_eq!(header(notify, HeaderName::Event), "presence");
    assert!(header(notify, HeaderName::SubscriptionState).starts_with("active;expires="));
    assert!(header(notify, HeaderName::From).contains(&local_tag));
    let body = String::from_utf8_lossy(&notify.body);
    assert!(
        body.contains("<basic>open</basic>") && body.contains("here"),
        "{body}"
    );
}

#[test]
fn notify_cseq_increases_in_order_across_state_changes() {
    let mut h = Harness::new();
    let (_, watch, _) = h.subscribe(600);
    let states = [
        available("one"),
        WatchState::Active(WatchView::Presence(Composed::UNAVAILABLE)),
        available("three"),
        available("four"),
    ];
    let mut seen = Vec::new();
    for state in states {
        let done = h.step(Event::Watch(watch, state));
        let notify = done.notify().clone();
        seen.push(cseq(&notify));
        h.answer(&notify, 200);
    }
    assert_eq!(seen, [1, 2, 3, 4]);
}

#[test]
fn notify_is_retransmitted_over_udp_until_answered() {
    let mut h = Harness::new();
    let (_, watch, _) = h.subscribe(600);
    let first = h.step(Event::Watch(watch, available("x"))).notify().clone();
    let branch = |r: &Request| header(r, HeaderName::Via).to_owned();
    // RFC 3261 §17.1.2.2: Timer E, T1 = 500 ms, doubling.
    let mut gaps = Vec::new();
    let mut last = h.now;
    for _ in 0..3 {
        let at = h.core.poll_timeout().expect("a retransmission is due");
        gaps.push(at - last);
        last = at;
        h.now = at;
        let done = h.step(Event::Timeout);
        let again = done.notify();
        assert_eq!(branch(again), branch(&first));
        assert_eq!(cseq(again), 1);
    }
    assert_eq!(
        gaps,
        [
            Duration::from_millis(500),
            Duration::from_millis(1000),
            Duration::from_millis(2000)
        ]
    );
    let done = h.answer(&first, 200);
    assert!(done.sent.is_empty() && done.inputs.is_empty());
    // Answered: nothing more is sent (timers of the finished transaction fire and find nothing to do).
    for _ in 0..20 {
        let done = h.advance(Duration::from_secs(4));
        assert!(done.sent.is_empty(), "{:?}", done.sent);
    }
}

#[test]
fn refresh_gets_200_and_a_notify_with_the_current_state() {
    let mut h = Harness::new();
    let (_, watch, to) = h.subscribe(600);
    let n1 = h
        .step(Event::Watch(watch, available("current")))
        .notify()
        .clone();
    h.answer(&n1, 200);
    h.now += Duration::from_secs(100);
    let done = h.authenticated(
        flow(5071),
        "SUBSCRIBE",
        "sip:bob@example.com",
        "alice",
        "sub1",
        &[
            "Event: presence".into(),
            "Expires: 600".into(),
            format!("To: {to}"),
        ],
        "",
    );
    let ok = done.response();
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.headers.get(&HeaderName::Expires), Some("600"));
    assert!(done.inputs.is_empty(), "a refresh opens no new watch");
    let notify = done.notify();
    assert_eq!(cseq(notify), 2);
    assert!(String::from_utf8_lossy(&notify.body).contains("current"));
    h.answer(notify, 200);
    // The refresh moved the expiry: nothing ends at the first expiry.
    let done = h.advance(Duration::from_secs(550));
    assert!(done.requests().is_empty(), "{:?}", done.sent);
}

#[test]
fn expiry_sends_a_final_notify_with_timeout_and_unwatches() {
    let mut h = Harness::new();
    let (_, watch, _) = h.subscribe(60);
    let n1 = h.step(Event::Watch(watch, available("x"))).notify().clone();
    h.answer(&n1, 200);
    let early = h.advance(Duration::from_secs(59));
    assert!(early.sent.is_empty() && early.inputs.is_empty());
    let done = h.advance(Duration::from_secs(1));
    let last = done.notify();
    assert_eq!(cseq(last), 2);
    assert_eq!(
        header(last, HeaderName::SubscriptionState),
        "terminated;reason=timeout"
    );
    assert!(
        matches!(done.inputs.as_slice(), [Input::Unwatch { watch: w }] if *w == watch),
        "{:?}",
        done.inputs
    );
    // The dialog is gone: a later state from the engine sends nothing.
    let after = h.step(Event::Watch(watch, available("y")));
    assert!(after.sent.is_empty());
}

#[test]
fn a_481_to_a_notify_ends_the_dialog() {
    let mut h = Harness::new();
    let (_, watch, _) = h.subscribe(600);
    let n1 = h.step(Event::Watch(watch, available("x"))).notify().clone();
    let done = h.answer(&n1, 481);
    assert!(
        matches!(done.inputs.as_slice(), [Input::Unwatch { watch: w }] if *w == watch),
        "{:?}",
        done.inputs
    );
    let after = h.step(Event::Watch(watch, available("y")));
    assert!(after.sent.is_empty(), "{:?}", after.sent);
}

#[test]
fn registration_and_publication_lapses_reach_the_engine() {
    let mut h = Harness::new();
    let reg = h.authenticated(
        flow(5071),
        "REGISTER",
        "sip:example.com",
        "alice",
        "reg1",
        &["Expires: 600".into()],
        "",
    );
    assert_eq!(reg.response().status, 200);
    let session = match reg.inputs.as_slice() {
        [Input::OpenSession { session, .. }] => *session,
        other => panic!("{other:?}"),
    };
    let bound = h.step(Event::Delivery(session, ToSession::Bound(jid_full())));
    assert!(
        matches!(
            bound.inputs.as_slice(),
            [
                Input::Presence {
                    presence: Some(_),
                    ..
                },
                Input::Reachable {
                    reachable: true,
                    ..
                }
            ]
        ),
        "{:?}",
        bound.inputs
    );
    let pidf = "<?xml version=\"1.0\"?><presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
                entity=\"sip:alice@example.com\"><tuple id=\"t\"><status><basic>open</basic></status>\
                <note>at lunch</note></tuple></presence>";
    let publish = h.authenticated(
        flow(5071),
        "PUBLISH",
        "sip:alice@example.com",
        "alice",
        "pub1",
        &[
            "Event: presence".into(),
            "Expires: 120".into(),
            "Content-Type: application/pidf+xml".into(),
        ],
        pidf,
    );
    assert_eq!(publish.response().status, 200, "{:?}", publish.response());
    assert!(
        matches!(publish.inputs.as_slice(), [Input::Presence { presence: Some(p), .. }, ..] if p.status.as_deref() == Some("at lunch")),
        "{:?}",
        publish.inputs
    );
    // The publication lapses first: the registered phone is plainly available again.
    let lapsed = h.advance(Duration::from_secs(120));
    assert!(
        matches!(lapsed.inputs.as_slice(), [Input::Presence { presence: Some(p), .. }, ..] if p.status.is_none()),
        "{:?}",
        lapsed.inputs
    );
    // Then the registration: nothing is left on SIP, so the session closes (the engine sees it unavailable).
    let gone = h.advance(Duration::from_secs(480));
    assert_eq!(gone.closed, [session]);
}

fn jid_full() -> presence_core::FullJid {
    presence_core::FullJid::new("alice@example.com/sip").expect("valid")
}

#[test]
fn an_unknown_event_package_is_refused_before_authentication() {
    let mut h = Harness::new();
    let req = h.request(
        flow(5071),
        "SUBSCRIBE",
        "sip:bob@example.com",
        "alice",
        "s",
        &["Event: message-summary".into()],
        "",
    );
    let done = h.receive(flow(5071), req);
    let resp = done.response();
    assert_eq!(resp.status, 489);
    assert_eq!(
        resp.headers.get(&HeaderName::AllowEvents),
        Some("presence, presence.winfo")
    );
    assert!(done.lookups.is_empty());
}

#[test]
fn a_lapsed_dialog_publication_ends_the_call() {
    use presence_core::compose::LineState;
    let mut h = Harness::new();
    let doc = "<?xml version=\"1.0\"?><dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" \
               version=\"0\" state=\"full\" entity=\"sip:alice@example.com\">\
               <dialog id=\"d1\"><state>confirmed</state></dialog></dialog-info>";
    let done = h.authenticated(
        flow(5071),
        "PUBLISH",
        "sip:alice@example.com",
        "alice",
        "dlg1",
        &[
            "Event: dialog".into(),
            "Expires: 60".into(),
            "Content-Type: application/dialog-info+xml".into(),
        ],
        doc,
    );
    assert_eq!(done.response().status, 200, "{:?}", done.response());
    assert!(
        matches!(
            done.inputs.as_slice(),
            [Input::PhoneLine {
                state: LineState::OnThePhone,
                ..
            }]
        ),
        "{:?}",
        done.inputs
    );
    let early = h.advance(Duration::from_secs(59));
    assert!(early.inputs.is_empty(), "{:?}", early.inputs);
    let lapsed = h.advance(Duration::from_secs(1));
    assert!(
        matches!(
            lapsed.inputs.as_slice(),
            [Input::PhoneLine {
                state: LineState::Idle,
                ..
            }]
        ),
        "{:?}",
        lapsed.inputs
    );
    // Nothing is left to wake for: no busy loop.
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn a_request_waits_parked_for_its_lookup_and_its_retransmission_is_absorbed() {
    let mut h = Harness::new();
    let first = h.request(
        flow(5071),
        "REGISTER",
        "sip:example.com",
        "alice",
        "p",
        &[],
        "",
    );
    let challenge = h.receive(flow(5071), first);
    let value = challenge
        .response()
        .headers
        .get(&HeaderName::WwwAuthenticate)
        .expect("challenge")
        .to_owned();
    let www = DigestChallenge::from_header(&sip_codec::header::parse_auth(&value).expect("parses"))
        .expect("digest");
    let creds = sip_codec::auth::answer(
        &www,
        "alice",
        "pw",
        "REGISTER",
        "sip:example.com",
        "c",
        1,
        b"",
    )
    .to_header()
    .to_string();
    let second = h.request(
        flow(5071),
        "REGISTER",
        "sip:example.com",
        "alice",
        "p",
        &[format!("Authorization: {creds}")],
        "",
    );
    // The driver has not answered the lookup yet (the store is slow): nothing is sent, nothing is asked again
    // for the retransmission.
    let event = |text: &str| Event::Message {
        flow: flow(5071),
        parsed: Message::parse_datagram(text.as_bytes(), &sip_codec::Limits::default()),
        raw: text.as_bytes().to_vec(),
        engine_busy: false,
        received: Timestamp::from_millis(0),
    };
    h.core.handle(h.now, event(&second));
    let lookup = match h.core.poll_output() {
        Some(Output::LookupAccount { lookup, user }) => {
            assert_eq!(user, jid("alice@example.com"));
            lookup
        }
        other => panic!("a lookup expected: {other:?}"),
    };
    assert!(h.core.poll_output().is_none());
    h.core.handle(h.now, event(&second));
    assert!(
        h.core.poll_output().is_none(),
        "the retransmission waits too"
    );
    let account = h.accounts[0].clone();
    let done = h.step(Event::Account {
        lookup,
        result: Ok(Some(account)),
    });
    assert_eq!(done.response().status, 200);
    // The account is kept a while (core/accounts.rs): the next request needs no lookup.
    let again = h.request(
        flow(5073),
        "REGISTER",
        "sip:example.com",
        "alice",
        "p3",
        &[format!("Authorization: {creds}")],
        "",
    );
    let again = h.receive(flow(5073), again);
    assert_eq!(again.response().status, 200);
    assert!(again.lookups.is_empty(), "{:?}", again.lookups);
    // Once it has aged out the store is asked again, and a store failure is not "no such user": 500 with
    // Retry-After.
    h.now += super::accounts::TTL;
    let third = h.request(
        flow(5072),
        "REGISTER",
        "sip:example.com",
        "alice",
        "p2",
        &[format!("Authorization: {creds}")],
        "",
    );
    h.core.handle(h.now, event(&third));
    let Some(Output::LookupAccount { lookup, .. }) = h.core.poll_output() else {
        panic!("a lookup expected");
    };
    let done = h.step(Event::Account {
        lookup,
        result: Err(presence_core::store::StoreError::Backend("down".into())),
    });
    let refused = done.response();
    assert_eq!(refused.status, 500);
    assert!(refused.headers.get(&HeaderName::RetryAfter).is_some());
}

#[test]
fn a_kept_account_spares_the_lookup_and_a_changed_password_is_read_again() {
    let mut h = Harness::new();
    let register = |h: &mut Harness, call: &str| {
        h.authenticated(
            flow(5071),
            "REGISTER",
            "sip:example.com",
            "alice",
            call,
            &[],
            "",
        )
    };
    let first = register(&mut h, "r1");
    assert_eq!(first.response().status, 200);
    assert_eq!(first.lookups, vec![jid("alice@example.com")]);
    let second = register(&mut h, "r2");
    assert_eq!(second.response().status, 200);
    assert!(second.lookups.is_empty(), "kept: {:?}", second.lookups);
    // The password changes in the store: the new one works at once (the kept copy fails, the store is asked).
    h.accounts[0].digest = digest_secrets(&jid("alice@example.com"), "new");
    h.password = "new".into();
    let third = register(&mut h, "r3");
    assert_eq!(third.response().status, 200);
    assert_eq!(third.lookups, vec![jid("alice@example.com")]);
    // And the old one no longer does.
    h.password = "pw".into();
    let fourth = register(&mut h, "r4");
    assert_eq!(fourth.response().status, 403);
}
