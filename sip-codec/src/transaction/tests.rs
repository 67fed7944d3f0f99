use std::time::{Duration, Instant};

use super::*;
use crate::message::Message;

const REQ: &[u8] = b"MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtx1\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\nCall-ID: tx1@192.0.2.1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";

fn request() -> Request {
    Message::parse(REQ).unwrap().as_request().unwrap().clone()
}

fn drain<T>(poll: &mut dyn FnMut() -> Option<T>) -> Vec<T> {
    std::iter::from_fn(poll).collect()
}

/// Advances a fake clock timer by timer until `until`, returning when each retransmission went out.
fn run_client(
    tx: &mut ClientNonInvite,
    start: Instant,
    until: Duration,
) -> (Vec<Duration>, Vec<Event>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    while let Some(t) = tx.poll_timeout() {
        if t > start + until {
            break;
        }
        tx.handle(t, Input::Timer);
        for o in drain(&mut || tx.poll_output()) {
            match o {
                Output::Transmit(_) => sent.push(t - start),
                Output::Event(e) => events.push(e),
            }
        }
    }
    (sent, events)
}

#[test]
fn client_udp_retransmits_then_times_out() {
    let start = Instant::now();
    let mut tx = ClientNonInvite::new(start, &request(), false, Timers::default());
    assert!(matches!(tx.poll_output(), Some(Output::Transmit(_))));
    let (sent, events) = run_client(&mut tx, start, Duration::from_secs(40));
    let ms: Vec<u128> = sent.iter().map(Duration::as_millis).collect();
    // Timer E: 500 ms doubling to T2 = 4 s, until Timer F at 64*T1 = 32 s.
    assert_eq!(
        ms,
        vec![
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert_eq!(events, vec![Event::Timeout, Event::Terminated]);
    assert_eq!(tx.state(), State::Terminated);
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn client_proceeding_retransmits_every_t2_and_completes() {
    let start = Instant::now();
    let mut tx = ClientNonInvite::new(start, &request(), false, Timers::default());
    tx.poll_output();
    let req = request();
    tx.handle(
        start + Duration::from_millis(100),
        Input::Response(req.make_response(100, "Trying")),
    );
    assert_eq!(tx.state(), State::Proceeding);
    let (sent, _) = run_client(&mut tx, start, Duration::from_secs(9));
    let ms: Vec<u128> = sent.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, vec![500, 4500, 8500]);
    let t = start + Duration::from_secs(9);
    tx.handle(t, Input::Response(req.make_response(200, "OK")));
    assert_eq!(tx.state(), State::Completed);
    // A retransmitted 200 is absorbed: no new event.
    tx.handle(t, Input::Response(req.make_response(200, "OK")));
    let events: Vec<Output> = drain(&mut || tx.poll_output());
    assert_eq!(
        events
            .iter()
            .filter(|o| matches!(o, Output::Event(Event::Response(r)) if r.status == 200))
            .count(),
        1
    );
    assert_eq!(tx.poll_timeout(), Some(t + Duration::from_secs(5)));
    tx.handle(t + Duration::from_secs(5), Input::Timer);
    assert_eq!(tx.state(), State::Terminated);
}

#[test]
fn client_over_tcp_never_retransmits() {
    let start = Instant::now();
    let mut tx = ClientNonInvite::new(start, &request(), true, Timers::default());
    tx.poll_output();
    assert_eq!(tx.poll_timeout(), Some(start + Duration::from_secs(32)));
    tx.handle(
        start + Duration::from_secs(1),
        Input::Response(request().make_response(200, "OK")),
    );
    assert_eq!(tx.state(), State::Terminated);
    let events = drain(&mut || tx.poll_output());
    assert!(matches!(
        events.as_slice(),
        [
            Output::Event(Event::Response(_)),
            Output::Event(Event::Terminated)
        ]
    ));
}

#[test]
fn server_replays_last_response_until_timer_j() {
    let start = Instant::now();
    let req = request();
    let mut tx = ServerNonInvite::new(false, Timers::default());
    tx.handle(start, Input::Request(req.clone()));
    assert_eq!(
        tx.poll_output(),
        None,
        "retransmission in Trying is discarded"
    );
    tx.handle(start, Input::Send(req.make_response(100, "Trying")));
    let Some(Output::Transmit(trying)) = tx.poll_output() else {
        panic!()
    };
    tx.handle(start, Input::Request(req.clone()));
    assert_eq!(tx.poll_output(), Some(Output::Transmit(trying)));
    let t = start + Duration::from_secs(1);
    tx.handle(t, Input::Send(req.make_response(200, "OK")));
    let Some(Output::Transmit(ok)) = tx.poll_output() else {
        panic!()
    };
    assert_eq!(tx.state(), State::Completed);
    tx.handle(t + Duration::from_secs(3), Input::Request(req.clone()));
    assert_eq!(tx.poll_output(), Some(Output::Transmit(ok)));
    // The TU cannot send a second final response.
    tx.handle(t, Input::Send(req.make_response(500, "Oops")));
    assert_eq!(tx.poll_output(), None);
    assert_eq!(tx.poll_timeout(), Some(t + Duration::from_secs(32)));
    tx.handle(t + Duration::from_secs(32), Input::Timer);
    assert_eq!(tx.state(), State::Terminated);
}

#[test]
fn server_over_tcp_terminates_on_final() {
    let mut tx = ServerNonInvite::new(true, Timers::default());
    tx.handle(
        Instant::now(),
        Input::Send(request().make_response(404, "Not Found")),
    );
    assert_eq!(tx.state(), State::Terminated);
}

#[test]
fn keys_match_requests_to_responses() {
    let req = request();
    let resp = req.make_response(200, "OK");
    let server = TransactionKey::for_server(&req).unwrap();
    assert_eq!(server.sent_by, "192.0.2.1:5060");
    assert_eq!(
        TransactionKey::for_outgoing(&req),
        TransactionKey::for_client(&resp)
    );
}
