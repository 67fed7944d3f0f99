//! The runtime through its public surface: failing closed on a store that fails chosen loads and commits, the
//! bounds on the engine queue and on a session's outbound queue, shutdown, and the metrics moving.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use presence_core::compose::EndpointPresence;
use presence_core::engine::BindError;
use presence_core::feature::{Call, Push, roster};
use presence_core::message::{Message, MessageKind};
use presence_core::runtime::{
    self, Ended, Handle, Runtime, RuntimeConfig, SessionReceiver, SubmitError, ToSession,
};
use presence_core::stanza::{ErrorAbout, ErrorCondition, Stanza};
use presence_core::store::{
    Account, AccountStore, Layer, MemoryStore, OfflineStore, RosterStore, Store, StoreError,
    StoreWrite, UserRecord,
};
use presence_core::{BareJid, Engine, EngineConfig, Input, Jid, SessionId};

/// A store that fails loads or commits while told to, and can hold loads until released (to keep the engine
/// thread busy while a test fills its queue).
#[derive(Default)]
struct FaultyStore {
    inner: MemoryStore,
    fail_loads: AtomicBool,
    fail_commits: AtomicBool,
    commits: AtomicUsize,
    /// The name of the thread each successful commit ran on, in order.
    commit_threads: Mutex<Vec<String>>,
    gate: Gate,
}

/// Holds loads while closed.
#[derive(Default)]
struct Gate {
    closed: Mutex<bool>,
    changed: Condvar,
    waiting: AtomicUsize,
    /// The name of the thread each load ran on, in order.
    threads: Mutex<Vec<String>>,
}

impl Gate {
    fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }
    fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.changed.notify_all();
    }
    fn pass(&self) {
        let thread = std::thread::current().name().unwrap_or("").to_owned();
        self.threads.lock().unwrap().push(thread);
        let mut closed = self.closed.lock().unwrap();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        while *closed {
            closed = self.changed.wait(closed).unwrap();
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

fn injected() -> StoreError {
    StoreError::Backend("injected fault".into())
}

impl Layer for FaultyStore {
    type Inner = MemoryStore;

    fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    fn commit(&self, writes: &[StoreWrite]) -> Result<(), StoreError> {
        if self.fail_commits.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.commits.fetch_add(1, Ordering::SeqCst);
        let thread = std::thread::current().name().unwrap_or("").to_owned();
        self.commit_threads.lock().unwrap().push(thread);
        self.inner.apply(writes)
    }

    fn load(&self, users: &[BareJid]) -> Vec<Result<Option<UserRecord>, StoreError>> {
        self.gate.pass();
        if self.fail_loads.load(Ordering::SeqCst) {
            return users.iter().map(|_| Err(injected())).collect();
        }
        self.inner.load_users(users)
    }
}

struct Rig {
    store: Arc<FaultyStore>,
    runtime: Runtime,
    hub: Handle,
}

fn jid(s: &str) -> BareJid {
    BareJid::new(s).expect("valid address")
}

fn rig(config: RuntimeConfig) -> Rig {
    let store = Arc::new(FaultyStore::default());
    for u in ["alice@example.com", "bob@example.com", "carol@example.com"] {
        store
            .put_account(&Account {
                jid: jid(u),
                credentials: vec![],
                digest: vec![],
            })
            .unwrap();
    }
    let engine = Engine::new(EngineConfig::for_domain("example.com"));
    let runtime = runtime::spawn(engine, store.clone(), config).expect("engine thread starts");
    let hub = runtime.handle();
    Rig {
        store,
        runtime,
        hub,
    }
}

async fn next(rx: &mut SessionReceiver) -> ToSession {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the runtime answers within 5 s")
        .expect("the channel is open")
}

/// Attaches a new session of `user` with room for `capacity` messages or `max_bytes`, and asks to bind it.
fn open(
    hub: &Handle,
    user: &str,
    capacity: usize,
    max_bytes: usize,
) -> (SessionId, SessionReceiver) {
    let session = hub.new_session();
    let (sink, rx) = runtime::session_channel(capacity, max_bytes);
    hub.attach(session, sink).unwrap();
    hub.submit(Input::OpenSession {
        session,
        user: jid(user),
        resource: Some("r".into()),
    })
    .unwrap();
    (session, rx)
}

/// Plain available presence from `session`.
fn available(session: SessionId) -> Input {
    Input::Presence {
        session,
        to: None,
        presence: Some(EndpointPresence::default()),
    }
}

/// Opens an available session of `user` with room for `capacity` undelivered messages.
async fn online(hub: &Handle, user: &str, capacity: usize) -> (SessionId, SessionReceiver) {
    online_within(hub, user, capacity, 1 << 20).await
}

/// Like [`online`], with room for `max_bytes` too.
async fn online_within(
    hub: &Handle,
    user: &str,
    capacity: usize,
    max_bytes: usize,
) -> (SessionId, SessionReceiver) {
    let (session, mut rx) = open(hub, user, capacity, max_bytes);
    assert!(matches!(next(&mut rx).await, ToSession::Bound(_)));
    hub.submit(available(session)).unwrap();
    (session, rx)
}

/// A chat message from `session` to the bare address `to`.
fn say(session: SessionId, to: &str, id: &str, body: &str) -> Input {
    Input::Message {
        session,
        to: Jid::Bare(jid(to)),
        message: chat(id, body),
    }
}

/// The next error, skipping presence and pushes; anything else fails the test.
async fn next_error(rx: &mut SessionReceiver) -> presence_core::stanza::StanzaError {
    match next_significant(rx).await {
        ToSession::Stanza(Stanza::Error(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Waits for the flush with `token`, skipping everything before it; whether it was durable.
async fn flushed(rx: &mut SessionReceiver, token: u64) -> bool {
    loop {
        if let ToSession::Flushed { token: t, durable } = next(rx).await
            && t == token
        {
            return durable;
        }
    }
}

fn chat(id: &str, body: &str) -> Message {
    Message {
        id: Some(id.into()),
        kind: MessageKind::Chat,
        body: Some(body.into()),
        ..Message::default()
    }
}

/// Skips presence and pushes until the next message, error or flush.
async fn next_significant(rx: &mut SessionReceiver) -> ToSession {
    loop {
        match next(rx).await {
            ToSession::Stanza(
                Stanza::Presence { .. } | Stanza::Push(Push::Roster(roster::Push { .. })),
            ) => continue,
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_commit_bounces_the_offline_message_and_its_flush_is_not_durable() {
    let rig = rig(RuntimeConfig::default());
    let (alice, mut rx) = online(&rig.hub, "alice@example.com", 64).await;
    rig.store.fail_commits.store(true, Ordering::SeqCst);
    rig.hub
        .submit_and_flush(
            say(alice, "bob@example.com", "m1", "are you there?"),
            alice,
            7,
        )
        .unwrap();
    let e = next_error(&mut rx).await;
    assert_eq!(e.condition, ErrorCondition::InternalServerError);
    assert!(matches!(e.about, ErrorAbout::Message { id: Some(ref id), .. } if id == "m1"));
    assert_eq!(
        next_significant(&mut rx).await,
        ToSession::Flushed {
            token: 7,
            durable: false
        }
    );
    assert!(
        rig.store
            .offline(&jid("bob@example.com"))
            .unwrap()
            .is_empty()
    );

    // The store recovers: the same message is held and the flush says so.
    rig.store.fail_commits.store(false, Ordering::SeqCst);
    rig.hub
        .submit_and_flush(
            say(alice, "bob@example.com", "m2", "are you there?"),
            alice,
            8,
        )
        .unwrap();
    assert_eq!(
        next_significant(&mut rx).await,
        ToSession::Flushed {
            token: 8,
            durable: true
        }
    );
    assert_eq!(rig.store.offline(&jid("bob@example.com")).unwrap().len(), 1);
    let text = rig.hub.metrics().encode();
    assert!(
        text.contains("presenced_store_failures_total{operation=\"commit\"}"),
        "{text}"
    );
    rig.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_commit_turns_a_request_answer_into_a_wait_error() {
    let rig = rig(RuntimeConfig::default());
    let (alice, mut rx) = online(&rig.hub, "alice@example.com", 64).await;
    rig.store.fail_commits.store(true, Ordering::SeqCst);
    rig.hub
        .submit(Input::Request {
            session: alice,
            request: presence_core::stanza::RequestId("r1".into()),
            call: Call::Roster(roster::Call::Set {
                jid: jid("carol@example.com"),
                details: Default::default(),
            }),
        })
        .unwrap();
    // A roster set whose write failed must not be acknowledged.
    let e = next_error(&mut rx).await;
    assert_eq!(e.condition, ErrorCondition::InternalServerError);
    assert!(
        rig.store
            .roster(&jid("alice@example.com"))
            .unwrap()
            .is_empty()
    );
    rig.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_load_refuses_the_bind_temporarily_and_a_retry_binds() {
    let rig = rig(RuntimeConfig::default());
    rig.store.fail_loads.store(true, Ordering::SeqCst);
    let (_, mut rx) = open(&rig.hub, "alice@example.com", 8, 1 << 20);
    assert_eq!(
        next(&mut rx).await,
        ToSession::BindRefused(BindError::StoreUnavailable(jid("alice@example.com"))),
        "a store failure is not 'no such user'"
    );
    rig.store.fail_loads.store(false, Ordering::SeqCst);
    let (_, _rx) = online(&rig.hub, "alice@example.com", 8).await;
    rig.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_for_a_user_whose_load_fails_gets_a_wait_error() {
    let rig = rig(RuntimeConfig::default());
    let (alice, mut rx) = online(&rig.hub, "alice@example.com", 64).await;
    rig.store.fail_loads.store(true, Ordering::SeqCst);
    rig.hub
        .submit(say(alice, "bob@example.com", "m1", "hello"))
        .unwrap();
    let e = next_error(&mut rx).await;
    assert_eq!(e.condition, ErrorCondition::InternalServerError);
    assert!(
        rig.store
            .offline(&jid("bob@example.com"))
            .unwrap()
            .is_empty()
    );
    rig.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_is_ended_and_the_sender_is_not_held_up() {
    let rig = rig(RuntimeConfig::default());
    let (alice, mut alice_rx) = online(&rig.hub, "alice@example.com", 1000).await;
    // Bob's client never reads: room for 4 undelivered messages.
    let (_bob, mut bob_rx) = online(&rig.hub, "bob@example.com", 4).await;
    for n in 0..50 {
        rig.hub
            .submit(say(alice, "bob@example.com", &format!("m{n}"), "flood"))
            .unwrap();
    }
    // Alice is answered at once: nothing waits for Bob.
    rig.hub
        .submit_and_flush(available(alice), alice, 1)
        .unwrap();
    assert!(flushed(&mut alice_rx, 1).await);
    // Bob's channel holds what fit, then says why it ended.
    let mut got = 0;
    let end = loop {
        match next(&mut bob_rx).await {
            ToSession::Stanza(_) => got += 1,
            other => break other,
        }
    };
    assert_eq!(end, ToSession::Closed(Ended::SlowConsumer));
    assert!(got <= 4, "at most the bound was queued, got {got}");
    assert!(
        rig.hub
            .metrics()
            .encode()
            .contains("presenced_slow_consumers_total 1")
    );
    rig.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_queue_refuses_work_past_its_bound_but_never_a_close() {
    let rig = rig(RuntimeConfig {
        engine_queue: 2,
        ..RuntimeConfig::default()
    });
    // Keep the engine thread inside a load so nothing is taken from the queue.
    rig.store.gate.close();
    let (session, mut rx) = open(&rig.hub, "alice@example.com", 8, 1 << 20);
    while rig.store.gate.waiting.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let presence = available;
    rig.hub.submit(presence(session)).unwrap();
    rig.hub.submit(presence(session)).unwrap();
    let refused = rig
        .hub
        .submit(presence(session))
        .expect_err("the queue is full");
    assert_eq!(refused.error, SubmitError::Busy { limit: 2 });
    assert_eq!(
        *refused.input,
        presence(session),
        "the refused input is handed back to answer"
    );
    assert!(rig.hub.is_busy());
    // A close releases state: it is always taken.
    rig.hub.close(SessionId(999));
    rig.store.gate.open();
    assert!(matches!(next(&mut rx).await, ToSession::Bound(_)));
    // Once drained, work is taken again.
    tokio::time::timeout(Duration::from_secs(5), async {
        while rig.hub.submit(presence(session)).is_err() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the queue drains");
    assert!(
        rig.hub
            .metrics()
            .encode()
            .contains("presenced_engine_busy_total")
    );
    rig.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_commits_what_is_queued_and_ends_every_session() {
    let rig = rig(RuntimeConfig::default());
    let (alice, mut rx) = online(&rig.hub, "alice@example.com", 64).await;
    rig.hub
        .submit(say(alice, "bob@example.com", "m1", "before the shutdown"))
        .unwrap();
    let hub = rig.hub.clone();
    rig.runtime.shutdown().await;
    assert_eq!(
        rig.store.offline(&jid("bob@example.com")).unwrap().len(),
        1,
        "the queued message was committed before the engine stopped"
    );
    loop {
        match next(&mut rx).await {
            ToSession::Closed(why) => {
                assert_eq!(why, Ended::Shutdown);
                break;
            }
            _ => continue,
        }
    }
    assert_eq!(
        hub.submit(Input::CloseSession { session: alice })
            .map_err(|r| r.error),
        Err(SubmitError::Stopped)
    );
    assert!(rig.store.commits.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn session_ids_are_unique_across_shells() {
    let rig = rig(RuntimeConfig::default());
    let other = rig.hub.clone();
    let mut ids: Vec<SessionId> = (0..100)
        .flat_map(|_| [rig.hub.new_session(), other.new_session()])
        .collect();
    ids.sort_by_key(|s| s.0);
    ids.dedup();
    assert_eq!(ids.len(), 200);
    rig.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_and_the_queue_show_in_the_metrics() {
    let rig = rig(RuntimeConfig::default());
    let (alice, _arx) = online(&rig.hub, "alice@example.com", 64).await;
    let (_bob, mut brx) = online(&rig.hub, "bob@example.com", 64).await;
    rig.hub
        .submit(say(alice, "bob@example.com", "m1", "hi"))
        .unwrap();
    assert!(matches!(
        next_significant(&mut brx).await,
        ToSession::Stanza(Stanza::Message { .. })
    ));
    let text = rig.hub.metrics().encode();
    // The value of the unlabelled series `name` in the exposition.
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} is exported: {text}"))
    };
    let deliveries = value("presenced_deliveries_total");
    assert!(deliveries >= 1, "{text}");
    assert!(text.contains("presenced_engine_queue_depth"));
    assert!(text.contains("presenced_store_commit_seconds_count"));
    let steps = value("presenced_engine_step_seconds_count");
    assert!(steps >= 1, "the message was handled in a step: {text}");
    rig.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_outbound_queue_is_bounded_in_bytes_too() {
    let rig = rig(RuntimeConfig::default());
    let (alice, mut arx) = online(&rig.hub, "alice@example.com", 1000).await;
    // Room for 1000 messages but only 16 KiB: ten 4 KiB messages cannot all wait.
    let (_bob, mut rx) = online_within(&rig.hub, "bob@example.com", 1000, 16 * 1024).await;
    let big = "x".repeat(4096);
    for n in 0..10 {
        rig.hub
            .submit(say(alice, "bob@example.com", &format!("m{n}"), &big))
            .unwrap();
    }
    // Bob reads only once all ten have been handed out (Alice's flush comes after them).
    rig.hub
        .submit_and_flush(available(alice), alice, 1)
        .unwrap();
    flushed(&mut arx, 1).await;
    let mut messages = 0;
    let end = loop {
        match next(&mut rx).await {
            ToSession::Stanza(Stanza::Message { .. }) => messages += 1,
            ToSession::Stanza(_) => {}
            other => break other,
        }
    };
    assert_eq!(end, ToSession::Closed(Ended::SlowConsumer));
    assert!(
        (3..10).contains(&messages),
        "got {messages} of 10 before the byte bound"
    );
    rig.runtime.shutdown().await;
}

/// A cluster of two nodes for the runtime: alice is served here, bob by node "b"; what is forwarded is kept.
struct TwoNodes {
    forwarded: Mutex<Vec<Stanza>>,
}

impl runtime::Cluster for TwoNodes {
    fn locate(&self, user: &BareJid) -> runtime::Location {
        match user.as_str() {
            "alice@example.com" => runtime::Location::Here,
            "bob@example.com" => runtime::Location::Node(Arc::new(runtime::NodeAddress {
                name: "b".into(),
                xmpp: Some("b.example.com:5222".into()),
                sip: None,
            })),
            _ => runtime::Location::Nowhere,
        }
    }

    fn forward(&self, stanza: Stanza) {
        self.forwarded.lock().unwrap().push(stanza);
    }
}

/// A node of a cluster: a message for a user served elsewhere goes to the cluster after its batch committed,
/// a stanza from another node comes in with a receipt once committed, and shells can locate users.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_forwards_to_the_cluster_and_acknowledges_remote_stanzas_after_commit() {
    let store = Arc::new(FaultyStore::default());
    for u in ["alice@example.com", "bob@example.com"] {
        store
            .put_account(&Account {
                jid: jid(u),
                credentials: vec![],
                digest: vec![],
            })
            .unwrap();
    }
    let cluster = Arc::new(TwoNodes {
        forwarded: Mutex::new(Vec::new()),
    });
    let engine = Engine::new(EngineConfig::for_domain("example.com"))
        .serving_only([jid("alice@example.com")]);
    let rt = runtime::spawn_node(
        engine,
        store.clone(),
        RuntimeConfig::default(),
        cluster.clone(),
    )
    .expect("engine thread starts");
    let hub = rt.handle();
    assert_eq!(
        hub.locate(&jid("alice@example.com")),
        runtime::Location::Here
    );
    assert!(
        matches!(hub.locate(&jid("bob@example.com")), runtime::Location::Node(n) if n.name == "b")
    );

    // Bob cannot bind here: he is served by node b.
    let (_, mut rx) = open(&hub, "bob@example.com", 8, 1 << 20);
    assert!(matches!(
        next(&mut rx).await,
        ToSession::BindRefused(BindError::ServedElsewhere(_))
    ));

    let (alice, mut rx) = online(&hub, "alice@example.com", 64).await;
    hub.submit_and_flush(say(alice, "bob@example.com", "m1", "to node b"), alice, 1)
        .unwrap();
    assert!(flushed(&mut rx, 1).await);
    let forwarded = cluster.forwarded.lock().unwrap().clone();
    assert!(
        forwarded.iter().any(
            |s| matches!(s, Stanza::Message { to, .. } if to.bare() == &jid("bob@example.com"))
        ),
        "{forwarded:?}"
    );

    // Bob writes from node b while alice is offline: the receipt comes after the message is held durably.
    hub.close(alice);
    let (tx, rx_receipt) = tokio::sync::oneshot::channel();
    hub.submit_remote(
        Stanza::Message {
            from: Jid::new("bob@example.com/phone").unwrap(),
            to: Jid::Bare(jid("alice@example.com")),
            message: chat("m2", "held for alice"),
            delayed: None,
        },
        move |durable| {
            let _ = tx.send(durable);
        },
    )
    .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), rx_receipt)
            .await
            .unwrap()
            .unwrap()
    );
    assert_eq!(store.offline(&jid("alice@example.com")).unwrap().len(), 1);

    // The same with the store failing: the receipt says not durable, so node b bounces it to bob.
    store.fail_commits.store(true, Ordering::SeqCst);
    let (tx, rx_receipt) = tokio::sync::oneshot::channel();
    hub.submit_remote(
        Stanza::Message {
            from: Jid::new("bob@example.com/phone").unwrap(),
            to: Jid::Bare(jid("alice@example.com")),
            message: chat("m3", "not stored"),
            delayed: None,
        },
        move |durable| {
            let _ = tx.send(durable);
        },
    )
    .unwrap();
    assert!(
        !tokio::time::timeout(Duration::from_secs(5), rx_receipt)
            .await
            .unwrap()
            .unwrap()
    );
    rt.shutdown().await;
}

/// Rooms on a node of a cluster (issue 15): a room request the cluster does not carry is answered to its sender
/// (an IQ always gets its answer), and a node that starts serving a home reads its persistent rooms from the
/// store at that moment.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_answers_room_requests_it_cannot_carry_and_reads_rooms_it_takes_over() {
    use presence_core::rooms::{
        OccupantIdKey, RoomAnswer, RoomCall, RoomConfig, RoomLimits, RoomRecord, RoomRequest,
        RoomStanza, RoomsConfig,
    };
    use presence_core::store::StoreWrite;

    let store = Arc::new(FaultyStore::default());
    store
        .put_account(&Account {
            jid: jid("alice@example.com"),
            credentials: vec![],
            digest: vec![],
        })
        .unwrap();
    let room = jid("kept@conference.example.com");
    let mut config = RoomConfig::new(&RoomLimits::default());
    config.persistent = true;
    config.name = "Kept".into();
    store
        .apply(&[StoreWrite::RoomPut(RoomRecord {
            jid: room.clone(),
            config,
            affiliations: vec![(
                jid("alice@example.com"),
                presence_core::rooms::Affiliation::Owner,
            )],
            subject: None,
            history: vec![],
            archive_head: 0,
        })])
        .unwrap();
    let cluster = Arc::new(TwoNodes {
        forwarded: Mutex::new(Vec::new()),
    });
    let engine = Engine::new(EngineConfig {
        rooms: Some(RoomsConfig::new(
            "conference.example.com",
            OccupantIdKey::new(b"k".to_vec()),
        )),
        ..EngineConfig::for_domain("example.com")
    })
    .serving_only([jid("alice@example.com")]);
    let rt = runtime::spawn_node(engine, store.clone(), RuntimeConfig::default(), cluster)
        .expect("engine thread starts");
    let hub = rt.handle();
    let nodes = vec!["a".to_owned(), "b".to_owned()];
    // This node serves nobody's rooms: every room is elsewhere, and this cluster carries none.
    hub.room_placement(nodes.clone(), vec![]);
    let (alice, mut rx) = online(&hub, "alice@example.com", 64).await;
    let info = |id: &str| Input::Room {
        session: alice,
        room: room.clone(),
        stamp: presence_core::time::Timestamp(1),
        request: RoomRequest::Iq {
            id: id.into(),
            nick: None,
            call: RoomCall::Info,
        },
    };
    hub.submit(info("q1")).unwrap();
    let answer = loop {
        if let ToSession::Stanza(Stanza::Room(r)) = next(&mut rx).await {
            break *r;
        }
    };
    assert!(
        matches!(&answer, RoomStanza::Error(e) if e.condition == ErrorCondition::ServiceUnavailable),
        "{answer:?}"
    );

    // Now it serves both homes (its peer failed): the kept room is read from the store and answers.
    hub.room_placement(nodes, vec!["a".into(), "b".into()]);
    hub.submit(info("q2")).unwrap();
    let answer = loop {
        if let ToSession::Stanza(Stanza::Room(r)) = next(&mut rx).await {
            break *r;
        }
    };
    assert!(
        matches!(&answer, RoomStanza::Answer { answer: RoomAnswer::Info(i), .. } if i.name == "Kept" && i.persistent),
        "{answer:?}"
    );
    rt.shutdown().await;
}

/// Submits `count` messages from `alice` to offline bob with `submit_here` from a thread named `service` (as the
/// SIP service submits), pausing between them so the engine is idle for most; returns when all were submitted.
fn submit_here_from_service_thread(hub: &Handle, alice: SessionId, ids: std::ops::Range<usize>) {
    let hub = hub.clone();
    std::thread::Builder::new()
        .name("service".into())
        .spawn(move || {
            for i in ids {
                hub.submit_here(say(alice, "bob@example.com", &format!("m{i}"), "hello"))
                    .expect("taken");
                std::thread::sleep(Duration::from_millis(2));
            }
        })
        .expect("thread starts")
        .join()
        .expect("the submitting thread ends");
}

fn offline_ids(store: &FaultyStore) -> Vec<String> {
    store
        .offline(&jid("bob@example.com"))
        .unwrap()
        .into_iter()
        .filter_map(|m| m.message.id)
        .collect()
}

/// alice signed in and available, her flush (token 1) answered.
async fn alice_available(hub: &Handle) -> (SessionId, SessionReceiver) {
    let (alice, mut rx) = online(hub, "alice@example.com", 64).await;
    hub.submit_and_flush(available(alice), alice, 1).unwrap();
    assert!(flushed(&mut rx, 1).await);
    (alice, rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_here_runs_an_idle_engine_on_the_calling_thread_in_order() {
    let rig = rig(RuntimeConfig::default());
    let (alice, mut rx) = alice_available(&rig.hub).await;
    submit_here_from_service_thread(&rig.hub, alice, 0..20);
    // Everything submitted is handled (on one thread or the other) before a later flush is answered.
    rig.hub
        .submit_and_flush(available(alice), alice, 2)
        .unwrap();
    assert!(flushed(&mut rx, 2).await);
    let expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(
        offline_ids(&rig.store),
        expected,
        "none lost, none reordered"
    );
    let threads = rig.store.commit_threads.lock().unwrap().clone();
    assert!(
        threads.iter().any(|t| t == "service"),
        "an idle engine took an input on the submitting thread: commits ran on {threads:?}"
    );
    rig.runtime.shutdown().await;
}

/// An I/O worker that runs the engine inline steps aside before the store: with a single worker, held inside
/// a load its input needed, other tasks still run; the input is then handled and committed in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn submit_here_on_an_io_worker_steps_aside_while_the_store_blocks() {
    let rig = rig(RuntimeConfig::default());
    let (alice, mut rx) = alice_available(&rig.hub).await;
    // A message to a user not loaded yet needs a load, which the closed gate holds. The engine's thread may still
    // hold the engine for a moment after answering a flush, and then takes the message itself: another user is
    // tried then (each attempt's user is new, so each message needs its load). Waited for on this thread (not a
    // worker, and without tokio's timers, which the worker drives), so that a worker that did not step aside
    // fails the test rather than hangs it.
    let mut attempt = 0;
    let (inline, user, worker) = loop {
        attempt += 1;
        let user = format!("user{attempt}@example.com");
        rig.store
            .put_account(&Account {
                jid: jid(&user),
                credentials: vec![],
                digest: vec![],
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        rig.store.gate.close();
        let hub = rig.hub.clone();
        let to = user.clone();
        let inline = tokio::spawn(async move {
            hub.submit_here(say(alice, &to, "w1", "hello"))
                .expect("taken");
        });
        while rig.store.gate.waiting.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let loader = rig.store.gate.threads.lock().unwrap().last().cloned();
        let loader = loader.unwrap_or_default();
        if loader != "presence-engine" || attempt == 5 {
            break (inline, user, loader);
        }
        rig.store.gate.open();
        inline.await.expect("the submitting task ends");
        rig.hub
            .submit_and_flush(available(alice), alice, 100 + attempt)
            .unwrap();
        assert!(flushed(&mut rx, 100 + attempt).await);
    };
    assert_ne!(
        worker, "presence-engine",
        "an idle engine ran on the worker within 5 tries"
    );
    // The one worker is inside the store call; another task still runs because it stepped aside.
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let _other = tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ran.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let ran_while_held = ran.load(Ordering::SeqCst);
    rig.store.gate.open();
    assert!(
        ran_while_held,
        "a task ran while the worker was held by the store"
    );
    inline.await.expect("the submitting task ends");
    rig.hub
        .submit_and_flush(available(alice), alice, 2)
        .unwrap();
    assert!(flushed(&mut rx, 2).await);
    let held: Vec<_> = rig
        .store
        .offline(&jid(&user))
        .unwrap()
        .into_iter()
        .filter_map(|m| m.message.id)
        .collect();
    assert_eq!(held, vec!["w1".to_owned()], "the message is held");
    let threads = rig.store.commit_threads.lock().unwrap().clone();
    assert!(
        threads.contains(&worker),
        "the commit ran on the worker that ran the engine ({worker}): commits ran on {threads:?}"
    );
    rig.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_here_never_waits_for_a_busy_engine_nor_passes_what_it_queued() {
    let rig = rig(RuntimeConfig::default());
    let (alice, mut rx) = online(&rig.hub, "alice@example.com", 64).await;
    submit_here_from_service_thread(&rig.hub, alice, 0..3);
    // The engine thread is kept inside a load: submit_here neither runs the engine nor waits for it.
    rig.store.gate.close();
    let (_carol, mut carol_rx) = open(&rig.hub, "carol@example.com", 8, 1 << 20);
    while rig.store.gate.waiting.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = rig.store.commit_threads.lock().unwrap().len();
    submit_here_from_service_thread(&rig.hub, alice, 3..6);
    assert_eq!(
        rig.store.commit_threads.lock().unwrap().len(),
        before,
        "nothing was committed while the engine was held"
    );
    rig.store.gate.open();
    assert!(matches!(next(&mut carol_rx).await, ToSession::Bound(_)));
    // Queued behind the load, then taken on the calling thread again once the engine is idle.
    submit_here_from_service_thread(&rig.hub, alice, 6..9);
    rig.hub
        .submit_and_flush(available(alice), alice, 1)
        .unwrap();
    assert!(flushed(&mut rx, 1).await);
    let expected: Vec<String> = (0..9).map(|i| format!("m{i}")).collect();
    assert_eq!(
        offline_ids(&rig.store),
        expected,
        "none lost, none reordered"
    );
    rig.runtime.shutdown().await;
}
