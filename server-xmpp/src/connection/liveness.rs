//! Whether a bound client is still there: XEP-0199 pings from the server after silence, the dead-connection
//! close, and the idle close.

use super::*;

/// Now by tokio's clock (the same as the system's, except in tests that pause time), which the timers of
/// [`Liveness`] run on.
pub(super) fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// XEP-0199's namespace (kept here rather than shared with the stanza translation, which it is no part of).
pub(super) const NS_PING: &str = "urn:xmpp:ping";

/// What the inbound silence of a bound session calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Silence {
    /// Silent for the ping interval: ask whether the client is still there.
    PingDue,
    /// Pinged, and silent for the ping timeout since: the connection is dead (a vanished peer, a NAT that
    /// dropped the mapping), and only this tells the engine the user went offline.
    Dead,
    /// Silent for the idle timeout.
    Idle,
}

/// Watches a session's inbound traffic for XEP-0199 server pings and the idle close. Any byte from the client
/// counts as a sign of life, not only the ping's answer: a busy client need not be pinged, and whitespace
/// keepalives keep a session up as they are meant to.
pub(super) struct Liveness {
    /// When inbound bytes were last seen, and how many had been read by then.
    heard_at: Instant,
    heard_bytes: u64,
    /// When the outstanding ping was sent; cleared by any inbound traffic.
    pinged_at: Option<Instant>,
    /// The id of the last ping, so its answer is taken here and never reaches the stanza translation.
    ping_id: Option<String>,
    pings: u64,
    /// Ping answers taken here since the caller last looked (they count as handled stanzas for XEP-0198).
    pub(super) swallowed: u32,
    interval: Option<Duration>,
    timeout: Duration,
    idle: Duration,
    /// The connection's one timer, armed no later than the deadline. Traffic moves the deadline on without
    /// touching it (a timer reset per read cost a timer-wheel insert and removal per stanza): when it fires
    /// early it is re-armed at the deadline, so a busy connection re-arms it once per interval.
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Liveness {
    pub(super) fn new(
        interval: Option<Duration>,
        timeout: Duration,
        idle: Duration,
        now: Instant,
        bytes: u64,
    ) -> Self {
        let interval = interval.filter(|d| !d.is_zero());
        let mut live = Liveness {
            heard_at: now,
            heard_bytes: bytes,
            pinged_at: None,
            ping_id: None,
            pings: 0,
            swallowed: 0,
            // A zero interval would ping again the moment each answer arrives: it means no pings.
            interval,
            timeout,
            idle,
            timer: Box::pin(tokio::time::sleep_until(now.into())),
        };
        let (at, _) = live.deadline();
        live.timer.as_mut().reset(at.into());
        live
    }

    /// When the silence so far runs out, and what happens then.
    pub(super) fn deadline(&self) -> (Instant, Silence) {
        let idle = self.heard_at + self.idle;
        let (at, why) = match (self.pinged_at, self.interval) {
            (Some(sent), _) => (sent + self.timeout, Silence::Dead),
            (None, Some(every)) => (self.heard_at + every, Silence::PingDue),
            (None, None) => (idle, Silence::Idle),
        };
        if idle <= at {
            (idle, Silence::Idle)
        } else {
            (at, why)
        }
    }

    pub(super) fn heard(&mut self, now: Instant, bytes: u64) {
        self.heard_at = now;
        self.heard_bytes = bytes;
        self.pinged_at = None;
    }

    /// The next stream event, or the silence that came first. Cancel-safe like [`Wire::next`]: what was read
    /// stays in the wire, and the time of the last traffic stays here.
    pub(super) async fn next<T: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        wire: &mut Wire<T>,
    ) -> Result<Result<StreamEvent, Ended>, Silence> {
        loop {
            let (at, why) = self.deadline();
            // A deadline earlier than the timer (a ping sent: its timeout is shorter than the interval) re-arms
            // it now; a later one waits for the timer to fire.
            if at < self.timer.deadline().into_std() {
                self.timer.as_mut().reset(at.into());
            }
            let read = tokio::select! {
                biased;
                event = wire.next() => Ok(event),
                () = self.timer.as_mut() => Err(()),
            };
            match read {
                Ok(event) => {
                    self.heard(clock(), wire.bytes_read());
                    if let Ok(StreamEvent::Stanza(stanza)) = &event
                        && self.answers_ping(stanza)
                    {
                        self.ping_id = None;
                        self.swallowed = self.swallowed.saturating_add(1);
                        continue;
                    }
                    return Ok(event);
                }
                // Bytes that did not make a whole event yet (whitespace, a stanza still arriving) are traffic.
                Err(()) if wire.bytes_read() != self.heard_bytes => {
                    self.heard(clock(), wire.bytes_read());
                    self.rearm();
                }
                // Traffic since the timer was armed moved the deadline on: wait for that one.
                Err(()) if clock() < at => self.rearm(),
                Err(()) => {
                    // What follows (a ping, a close) sets the next deadline; until then the timer must not
                    // fire again at once.
                    self.rearm();
                    return Err(why);
                }
            }
        }
    }

    /// Arms the timer at the deadline.
    fn rearm(&mut self) {
        let (at, _) = self.deadline();
        self.timer.as_mut().reset(at.into());
    }

    /// Whether `stanza` is the client's answer to our last ping: a result, or an error from a client that does
    /// not do XEP-0199, which proves it alive all the same.
    pub(super) fn answers_ping(&self, stanza: &xmpp_codec::Stanza) -> bool {
        matches!(
            stanza.iq_type(),
            Some(xmpp_codec::IqType::Result | xmpp_codec::IqType::Error)
        ) && self.ping_id.is_some()
            && stanza.id() == self.ping_id.as_deref()
    }

    /// The ping to send now (XEP-0199 §4.2), marked outstanding.
    pub(super) fn ping(&mut self, domain: &str, to: &FullJid) -> Element {
        self.pings += 1;
        let id = format!("ping{}", self.pings);
        self.ping_id = Some(id.clone());
        self.pinged_at = Some(clock());
        Element::new(ns::CLIENT, "iq")
            .with_attr("type", "get")
            .with_attr("id", id)
            .with_attr("from", domain)
            .with_attr("to", to.to_string())
            .with_child(Element::new(NS_PING, "ping"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn me() -> FullJid {
        FullJid::new("alice@example.com/phone").expect("a full JID")
    }

    // A runtime: the timer of `Liveness` belongs to one.
    #[tokio::test]
    async fn silence_brings_a_ping_then_death_and_traffic_starts_over() {
        let t0 = Instant::now();
        let mut live = Liveness::new(Some(60 * S), 30 * S, 600 * S, t0, 0);
        assert_eq!(live.deadline(), (t0 + 60 * S, Silence::PingDue));

        let ping = live.ping("example.com", &me());
        assert_eq!(ping.attr("type"), Some("get"));
        assert_eq!(ping.attr("from"), Some("example.com"));
        assert_eq!(ping.attr("to"), Some("alice@example.com/phone"));
        assert!(ping.child(NS_PING, "ping").is_some());
        let sent = live.pinged_at.expect("a ping is outstanding");
        assert_eq!(live.deadline(), (sent + 30 * S, Silence::Dead));

        // Any traffic, not only the answer, ends the wait and restarts the interval.
        let later = sent + 5 * S;
        live.heard(later, 10);
        assert_eq!(live.deadline(), (later + 60 * S, Silence::PingDue));
    }

    // A runtime: the timer of `Liveness` belongs to one.
    #[tokio::test]
    async fn idle_comes_first_when_it_is_shorter_and_is_all_there_is_without_pings() {
        let t0 = Instant::now();
        let live = Liveness::new(Some(60 * S), 30 * S, 45 * S, t0, 0);
        assert_eq!(live.deadline(), (t0 + 45 * S, Silence::Idle));
        for off in [None, Some(Duration::ZERO)] {
            let live = Liveness::new(off, 30 * S, 600 * S, t0, 0);
            assert_eq!(live.deadline(), (t0 + 600 * S, Silence::Idle), "{off:?}");
        }
    }

    // A runtime: the timer of `Liveness` belongs to one.
    #[tokio::test]
    async fn only_a_result_or_error_with_the_last_ping_id_is_taken_as_the_answer() {
        let stanza = |xml: &str| {
            let mut p = xmpp_codec::StreamParser::with_limits(xmpp_codec::Limits::default());
            p.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>");
            p.feed(xml.as_bytes());
            let _header = p.next_event().expect("header");
            match p.next_event().expect("parses") {
                Some(StreamEvent::Stanza(s)) => s,
                other => panic!("not a stanza: {other:?}"),
            }
        };
        let mut live = Liveness::new(Some(S), S, 10 * S, Instant::now(), 0);
        let result = stanza("<iq type='result' id='ping1'/>");
        assert!(!live.answers_ping(&result), "no ping sent yet");
        let _ = live.ping("example.com", &me());
        assert!(live.answers_ping(&result));
        assert!(live.answers_ping(&stanza(
            "<iq type='error' id='ping1'><error type='cancel'/></iq>"
        )));
        assert!(!live.answers_ping(&stanza("<iq type='result' id='push1'/>")));
        assert!(!live.answers_ping(&stanza(
            "<iq type='get' id='ping1'><ping xmlns='urn:xmpp:ping'/></iq>"
        )));
        assert!(!live.answers_ping(&stanza("<message id='ping1'/>")));
    }

    /// The whole read path over an in-memory pipe, in paused time: a silent peer is pinged after the
    /// interval, its answer is swallowed, other traffic is passed on, and silence after a ping is death.
    #[tokio::test(start_paused = true)]
    async fn the_read_path_pings_swallows_the_answer_and_declares_the_silent_dead() {
        use tokio::io::AsyncWriteExt;
        let (server, mut client) = tokio::io::duplex(4096);
        let mut wire = Wire::new(server, xmpp_codec::Limits::default());
        client
            .write_all(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>")
            .await
            .expect("write");
        assert!(matches!(wire.next().await, Ok(StreamEvent::Open(_))));
        let mut live = Liveness::new(Some(S), S, 100 * S, clock(), wire.bytes_read());

        assert_eq!(live.next(&mut wire).await.err(), Some(Silence::PingDue));
        let _ = live.ping("example.com", &me());
        client
            .write_all(b"<iq type='result' id='ping1'/><message to='bob@example.com'><body>hi</body></message>")
            .await
            .expect("write");
        match live.next(&mut wire).await {
            Ok(Ok(StreamEvent::Stanza(s))) => assert_eq!(s.kind().as_str(), "message"),
            other => panic!("the answer was not swallowed: {other:?}"),
        }
        assert_eq!(live.next(&mut wire).await.err(), Some(Silence::PingDue));
        let _ = live.ping("example.com", &me());
        // Whitespace is traffic too, though it makes no event.
        client.write_all(b"  ").await.expect("write");
        tokio::time::sleep(S / 2).await;
        assert_eq!(live.next(&mut wire).await.err(), Some(Silence::PingDue));
        let _ = live.ping("example.com", &me());
        assert_eq!(live.next(&mut wire).await.err(), Some(Silence::Dead));
    }
}
