//! Calendar polling through the runtime's public surface: a connector's events reach the engine as the user's
//! calendar state (watchers see "In a meeting" and back), reads never exceed the concurrency bound, a read that
//! hangs or fails holds up no other user, and a failing calendar keeps the events last read, ending them on time.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use presence_core::compose::{EndpointPresence, PresenceState, Show};
use presence_core::feature::{Call, roster};
use presence_core::runtime::calendar::{CalendarError, CalendarEvent};
use presence_core::runtime::{
    self, CalendarConnector, CalendarPolling, RuntimeConfig, SessionReceiver, ToSession,
};
use presence_core::stanza::{PresenceKind, RequestId, Stanza};
use presence_core::store::{Account, AccountStore, MemoryStore};
use presence_core::{BareJid, Engine, EngineConfig, Input};

/// What the fake calendar does for one user.
#[derive(Clone)]
enum Answer {
    Events(Vec<CalendarEvent>),
    Hang,
    Fail,
}

#[derive(Default)]
struct FakeCalendar {
    answers: Mutex<HashMap<BareJid, Answer>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

impl FakeCalendar {
    fn set(&self, user: &str, answer: Answer) {
        self.answers.lock().insert(j(user), answer);
    }
}

impl CalendarConnector for FakeCalendar {
    async fn current_events(
        &self,
        user: &BareJid,
        _at: SystemTime,
    ) -> Result<Vec<CalendarEvent>, CalendarError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        // Counted out however the read ends, including dropped at the poller's timeout.
        let _out = InFlight(&self.in_flight);
        // Every read takes a moment, so reads overlap and the bound is exercised.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let answer = self.answers.lock().get(user).cloned();
        match answer {
            Some(Answer::Events(e)) => Ok(e),
            Some(Answer::Hang) => {
                std::future::pending::<()>().await;
                unreachable!()
            }
            Some(Answer::Fail) => Err(CalendarError::Unreachable("connection refused".into())),
            None => Ok(Vec::new()),
        }
    }
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn j(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn meeting(ends: Option<SystemTime>) -> CalendarEvent {
    CalendarEvent {
        summary: "Sync".into(),
        ends,
        ..CalendarEvent::default()
    }
}

/// Waits (bounded) for a presence of `from` composed as `state`.
async fn composed(rx: &mut SessionReceiver, from: &str, state: PresenceState) {
    let wait = async {
        loop {
            match rx.recv().await {
                Some(ToSession::Stanza(Stanza::Presence {
                    from: f,
                    kind: PresenceKind::Available(v),
                    ..
                })) if f.to_string() == from && v.composed == state => return,
                Some(_) => {}
                None => panic!("session ended"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("no presence of {from} composed {state:?}"));
}

#[tokio::test]
async fn calendar_states_reach_watchers_with_bounded_reads_and_survive_a_failing_calendar() {
    let store = Arc::new(MemoryStore::new());
    let mut users: Vec<String> = vec!["alice@x".into(), "bob@x".into(), "carol@x".into()];
    users.extend((0..20).map(|i| format!("user{i}@x")));
    for u in &users {
        store
            .put_account(&Account {
                jid: j(u),
                credentials: vec![],
                digest: vec![],
            })
            .unwrap();
    }
    let rt = runtime::spawn(
        Engine::new(EngineConfig::for_domain("x")),
        store.clone(),
        RuntimeConfig::default(),
    )
    .unwrap();
    let handle = rt.handle();
    // Alice on two devices: each hears the other's presence, composed.
    let mut rx = Vec::new();
    for resource in ["pc", "phone"] {
        let session = handle.new_session();
        let (sink, mut r) = runtime::session_channel(256, 1 << 20);
        handle.attach(session, sink).unwrap();
        handle
            .submit(Input::OpenSession {
                session,
                user: j("alice@x"),
                resource: Some(resource.into()),
            })
            .unwrap();
        // What a session sends before it is bound (its user loaded) is not its own yet.
        let bound = tokio::time::timeout(Duration::from_secs(5), r.recv()).await;
        assert!(matches!(bound, Ok(Some(ToSession::Bound(_)))), "{bound:?}");
        // An interested resource (RFC 6121 §2.2: it asked for the roster) hears its own account's presence.
        handle
            .submit(Input::Request {
                session,
                request: RequestId("roster".into()),
                call: Call::Roster(roster::Call::Get { known: None }),
            })
            .unwrap();
        handle
            .submit(Input::Presence {
                session,
                to: None,
                presence: Some(EndpointPresence {
                    show: Show::Available,
                    ..EndpointPresence::default()
                }),
            })
            .unwrap();
        rx.push(r);
    }
    let phone = &mut rx[1];

    let calendar = Arc::new(FakeCalendar::default());
    calendar.set("bob@x", Answer::Hang);
    calendar.set("carol@x", Answer::Fail);
    calendar.set("alice@x", Answer::Events(vec![meeting(None)]));
    let lister = store.clone();
    let poller = runtime::spawn_calendar(
        handle.clone(),
        calendar.clone(),
        move || lister.list_accounts(),
        CalendarPolling {
            interval: Duration::from_millis(50),
            concurrency: 3,
            timeout: Duration::from_millis(200),
        },
    );

    // Bob's calendar hangs and carol's fails; alice's meeting still gets through.
    composed(phone, "alice@x/pc", PresenceState::InAMeeting).await;
    calendar.set("alice@x", Answer::Events(vec![]));
    composed(phone, "alice@x/pc", PresenceState::Available).await;

    // A meeting ending soon, then the calendar fails: the meeting stays, and ends on time without a read.
    let end = SystemTime::now() + Duration::from_millis(1500);
    calendar.set("alice@x", Answer::Events(vec![meeting(Some(end))]));
    composed(phone, "alice@x/pc", PresenceState::InAMeeting).await;
    calendar.set("alice@x", Answer::Fail);
    composed(phone, "alice@x/pc", PresenceState::Available).await;
    assert!(
        SystemTime::now() >= end,
        "the meeting ended before its end: a failed read was taken as free"
    );

    let most = calendar.most_in_flight.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&most),
        "reads in flight at once: {most}, bound 3"
    );
    poller.abort();
    rt.shutdown().await;
}
