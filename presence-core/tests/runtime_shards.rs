//! Engine shards through the runtime's public surface: whatever the shard count, every message and presence
//! update between users reaches its recipient exactly once and in the order its sender sent it, and a flush
//! after a message to a user of another shard means that shard has made it durable.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use presence_core::compose::EndpointPresence;
use presence_core::message::{Message, MessageKind};
use presence_core::roster::{ItemDetails, Link, RosterEntry, Subscription};
use presence_core::runtime::{
    self, Handle, Hooks, Runtime, RuntimeConfig, SessionReceiver, ToSession,
};
use presence_core::stanza::{ErrorAbout, ErrorCondition};
use presence_core::stanza::{PresenceKind, Stanza};
use presence_core::store::{
    Layer, MemoryStore, OfflineStore, RosterStore, Store, StoreError, StoreWrite,
};
use presence_core::{Engine, EngineConfig, Input, Jid, SessionId};
use proptest::prelude::*;

mod common;
use common::shards::{next, on_different_shards, sign_in, strangers, user};

const USERS: usize = 6;

fn full(i: usize) -> Jid {
    Jid::new(&format!("u{i}@example.com/r")).expect("valid address")
}

/// A store where every user has an account and every two users are subscribed to each other both ways.
fn store(users: usize) -> Arc<MemoryStore> {
    let store = strangers(users);
    for i in 0..users {
        for j in (0..users).filter(|j| *j != i) {
            let both = RosterEntry::Listed {
                details: ItemDetails::default(),
                subscription: Subscription {
                    outbound: Link::On,
                    inbound: Link::On,
                },
            };
            store
                .put_roster_entry(&user(i), &user(j), &both)
                .expect("roster");
        }
    }
    store
}

fn start<S: Store + Send + Sync + 'static>(store: Arc<S>, shards: usize) -> Runtime {
    start_with(store, shards, EngineConfig::for_domain("example.com"))
}

fn start_with<S: Store + Send + Sync + 'static>(
    store: Arc<S>,
    shards: usize,
    engine: EngineConfig,
) -> Runtime {
    let config = RuntimeConfig {
        shards,
        ..RuntimeConfig::default()
    };
    runtime::spawn_sharded(
        |_| Engine::new(engine.clone()),
        store,
        config,
        Hooks::default(),
    )
    .expect("the engine threads start")
}

fn presence(session: SessionId, to: Option<Jid>, status: Option<String>) -> Input {
    Input::Presence {
        session,
        to,
        presence: Some(EndpointPresence {
            status,
            ..EndpointPresence::default()
        }),
    }
}

fn message(session: SessionId, to: usize, body: String) -> Input {
    Input::Message {
        session,
        to: full(to),
        message: Message {
            id: Some(body.clone()),
            kind: MessageKind::Chat,
            body: Some(body),
            ..Message::default()
        },
    }
}

/// What a session was given, as the test's tokens: (sender's index, token) for messages and for presence with
/// a status; everything else (pushes, the status-less presence of signing in) is no token.
fn token(msg: &ToSession) -> Option<(usize, String)> {
    let sender = |from: &Jid| {
        from.bare()
            .local()
            .and_then(|l| l.strip_prefix('u'))
            .and_then(|n| n.parse().ok())
    };
    match msg {
        ToSession::Stanza(Stanza::Message { from, message, .. }) => {
            Some((sender(from)?, message.body.clone()?))
        }
        ToSession::Stanza(Stanza::Presence {
            from,
            kind: PresenceKind::Available(view),
            ..
        }) => Some((sender(from)?, view.status.clone()?)),
        _ => None,
    }
}

/// One user's session, with what it was given so far (by sender).
struct Client {
    session: SessionId,
    rx: SessionReceiver,
    got: HashMap<usize, Vec<String>>,
    available_from: Vec<bool>,
}

impl Client {
    async fn take(&mut self) {
        let msg = next(&mut self.rx).await;
        if let ToSession::Stanza(Stanza::Presence {
            from,
            kind: PresenceKind::Available(_),
            ..
        }) = &msg
            && let Some(i) = from
                .bare()
                .local()
                .and_then(|l| l.strip_prefix('u'))
                .and_then(|n| n.parse::<usize>().ok())
        {
            self.available_from[i] = true;
        }
        if let Some((from, token)) = token(&msg) {
            self.got.entry(from).or_default().push(token);
        }
    }
}

/// Every user signed in with one available session, and every session has seen every other user available
/// (so no probe is still being answered when the test starts: an answer would repeat a presence legitimately).
async fn sign_in_all(hub: &Handle, users: usize) -> Vec<Client> {
    let mut clients = Vec::new();
    for i in 0..users {
        let (session, rx) = sign_in(hub, i).await;
        clients.push(Client {
            session,
            rx,
            got: HashMap::new(),
            available_from: vec![false; users],
        });
    }
    for c in &clients {
        hub.submit(presence(c.session, None, None)).expect("queued");
    }
    for (i, c) in clients.iter_mut().enumerate() {
        while (0..users).any(|j| j != i && !c.available_from[j]) {
            c.take().await;
        }
    }
    clients
}

/// What the test does: a message to a user, a directed presence to a user, or a broadcast presence.
#[derive(Debug, Clone)]
enum Op {
    Say { from: usize, to: usize },
    Direct { from: usize, to: usize },
    Broadcast { from: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let pair = (0..USERS, 1..USERS).prop_map(|(from, d)| (from, (from + d) % USERS));
    prop_oneof![
        pair.clone().prop_map(|(from, to)| Op::Say { from, to }),
        pair.prop_map(|(from, to)| Op::Direct { from, to }),
        (0..USERS).prop_map(|from| Op::Broadcast { from }),
    ]
}

/// Runs `ops` against a runtime of `shards` shards; what each recipient got from each sender must be exactly
/// what was sent to it, in order.
async fn check(ops: Vec<Op>, shards: usize) {
    let rt = start(store(USERS), shards);
    let hub = rt.handle();
    let mut clients = sign_in_all(&hub, USERS).await;
    let mut expected: HashMap<(usize, usize), Vec<String>> = HashMap::new();
    for (n, op) in ops.iter().enumerate() {
        match *op {
            Op::Say { from, to } => {
                let body = format!("m{n}");
                hub.submit(message(clients[from].session, to, body.clone()))
                    .expect("queued");
                expected.entry((from, to)).or_default().push(body);
            }
            Op::Direct { from, to } => {
                let status = format!("d{n}");
                hub.submit(presence(
                    clients[from].session,
                    Some(full(to)),
                    Some(status.clone()),
                ))
                .expect("queued");
                expected.entry((from, to)).or_default().push(status);
            }
            Op::Broadcast { from } => {
                let status = format!("b{n}");
                hub.submit(presence(clients[from].session, None, Some(status.clone())))
                    .expect("queued");
                for to in (0..USERS).filter(|to| *to != from) {
                    expected.entry((from, to)).or_default().push(status.clone());
                }
            }
        }
    }
    // Last, a message from every user to every other: each pair's is its last, so once every recipient has all
    // of them, anything lost is missing and anything duplicated came before.
    for (from, sender) in clients.iter().enumerate() {
        for to in (0..USERS).filter(|to| *to != from) {
            hub.submit(message(sender.session, to, "end".into()))
                .expect("queued");
            expected.entry((from, to)).or_default().push("end".into());
        }
    }
    for (to, c) in clients.iter_mut().enumerate() {
        let done = |c: &Client| {
            (0..USERS).filter(|from| *from != to).all(|from| {
                c.got
                    .get(&from)
                    .and_then(|g| g.last())
                    .is_some_and(|t| t == "end")
            })
        };
        while !done(c) {
            c.take().await;
        }
        for from in (0..USERS).filter(|from| *from != to) {
            let got = c.got.remove(&from).unwrap_or_default();
            assert_eq!(
                got,
                expected[&(from, to)],
                "u{from} -> u{to} with {shards} shards: got (left) is not what was sent (right)"
            );
        }
    }
    rt.shutdown().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn nothing_between_users_is_lost_duplicated_or_reordered_across_shards(
        ops in proptest::collection::vec(op(), 1..60),
        shards in prop_oneof![Just(1usize), Just(2), Just(4)],
    ) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(check(ops, shards));
    }
}

/// Watches `b`'s presence for `a` as `watch` on `hub`, whose watch reports arrive on `watches`.
fn watch(hub: &Handle, watch: u64, a: usize, b: usize) {
    hub.submit(Input::Watch {
        watch: presence_core::WatchId(watch),
        watcher: user(a),
        target: user(b),
        kind: presence_core::WatchKind::Presence,
    })
    .expect("queued");
}

/// The next report on `watch`, as text.
async fn next_report(
    watches: &mut runtime::ServiceReceiver<(presence_core::WatchId, presence_core::WatchState)>,
    watch: u64,
) -> String {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (id, state) = watches.recv().await.expect("the watch channel is open");
            if id == presence_core::WatchId(watch) {
                return format!("{state:?}");
            }
        }
    })
    .await
    .expect("the watch reports within 10 s")
}

/// Signs `b` in with the status "here": its session, open while its receiver lives.
async fn sign_in_here(hub: &Handle, b: usize) -> (SessionId, SessionReceiver) {
    let (session, rx) = sign_in(hub, b).await;
    hub.submit(presence(session, None, Some("here".into())))
        .expect("queued");
    (session, rx)
}

/// Watches `b`'s presence for `a`, then signs `b` in with the status "here"; the watch's reports, as text, up to
/// the first that shows "here" or ends the watch.
async fn watch_while_target_signs_in(hub: &Handle, a: usize, b: usize) -> Vec<String> {
    let (watch_sink, mut watches) = runtime::watch_channel(64);
    hub.watches(watch_sink).expect("watch sink");
    watch(hub, 1, a, b);
    let _b = sign_in_here(hub, b).await;
    let mut seen = Vec::new();
    loop {
        let text = next_report(&mut watches, 1).await;
        seen.push(text.clone());
        if text.contains("here") || text.contains("Terminated") {
            return seen;
        }
    }
}

/// The first report of a watch of `b`'s presence for `a` (b offline), with `shards` shards over `store`.
async fn first_report(store: Arc<MemoryStore>, shards: usize, engine: EngineConfig) -> String {
    let rt = start_with(store, shards, engine);
    let hub = rt.handle();
    let (a, b) = on_different_shards(USERS, 4);
    let (watch_sink, mut watches) = runtime::watch_channel(64);
    hub.watches(watch_sink).expect("watch sink");
    watch(&hub, 1, a, b);
    let first = next_report(&mut watches, 1).await;
    rt.shutdown().await;
    first
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flush_after_a_message_to_another_shard_comes_once_that_shard_has_stored_it() {
    let store = store(USERS);
    let rt = start(store.clone(), 4);
    let hub = rt.handle();
    let (a, b) = on_different_shards(USERS, 4);
    let (session, mut rx) = sign_in(&hub, a).await;
    // b is offline: the message is held by b's shard, which must have committed it before the flush answers.
    for token in 1..=20u64 {
        let to_bare = Input::Message {
            session,
            to: Jid::Bare(user(b)),
            message: Message {
                id: Some(format!("m{token}")),
                kind: MessageKind::Chat,
                body: Some(format!("held {token}")),
                ..Message::default()
            },
        };
        hub.submit_and_flush(to_bare, session, token)
            .expect("queued");
        loop {
            if let ToSession::Flushed { token: t, durable } = next(&mut rx).await
                && t == token
            {
                assert!(durable);
                break;
            }
        }
        let held = store.offline(&user(b)).expect("offline");
        assert_eq!(
            held.len(),
            token as usize,
            "held when flush {token} answered"
        );
    }
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_on_a_user_of_another_shard_follows_that_users_presence() {
    let rt = start(store(USERS), 4);
    let hub = rt.handle();
    let (a, b) = on_different_shards(USERS, 4);
    let states = watch_while_target_signs_in(&hub, a, b).await;
    assert!(
        states.iter().all(|s| s.starts_with("Active")),
        "a subscribed watcher's watch is active from its first report: {states:?}"
    );
    assert!(
        states.last().is_some_and(|s| s.contains("here")),
        "the watcher saw b's presence: {states:?}"
    );
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_without_a_subscription_is_active_first_once_the_watchers_shard_asked_and_the_target_approved()
 {
    // As one engine does for a SIP SUBSCRIBE, the watcher asks the target for a subscription; the target's
    // shard cannot (the watcher's roster is on another shard), so the watcher's shard asks, and the watch
    // reaches the target's shard behind the request. Local requests are approved automatically by default, so
    // the first report is the approved watch, as with one engine: never `Pending`, never refused.
    let memory = strangers(USERS);
    let rt = start(memory.clone(), 4);
    let hub = rt.handle();
    let (a, b) = on_different_shards(USERS, 4);
    let states = watch_while_target_signs_in(&hub, a, b).await;
    assert!(
        states.iter().all(|s| s.starts_with("Active")),
        "the first report is the approved watch, and it follows b: {states:?}"
    );
    assert!(
        states.last().is_some_and(|s| s.contains("here")),
        "{states:?}"
    );
    rt.shutdown().await;
    let link = |owner: usize, contact: usize| {
        let roster = memory.roster(&user(owner)).expect("roster");
        roster.iter().find_map(|(jid, entry)| match entry {
            RosterEntry::Listed { subscription, .. } if *jid == user(contact) => {
                Some(*subscription)
            }
            _ => None,
        })
    };
    assert_eq!(
        link(a, b).map(|s| s.outbound),
        Some(Link::On),
        "the watcher's own roster holds the subscription it asked for"
    );
    assert_eq!(link(b, a).map(|s| s.inbound), Some(Link::On));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cross_shard_watch_reports_first_what_one_engine_reports_first() {
    // Approved automatically: active (b is offline, so it shows unavailable), with one engine and with four.
    for shards in [1, 4] {
        let first = first_report(
            strangers(USERS),
            shards,
            EngineConfig::for_domain("example.com"),
        )
        .await;
        assert!(
            first.starts_with("Active"),
            "{shards} shards, auto-approved: {first}"
        );
    }
    // Without automatic authorization the target is asked and has not answered: pending, with both.
    let mut asking = EngineConfig::for_domain("example.com");
    asking.auto_authorize = false;
    for shards in [1, 4] {
        let first = first_report(strangers(USERS), shards, asking.clone()).await;
        assert_eq!(first, "Pending", "{shards} shards, target asked");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cross_shard_watch_the_target_asked_about_stays_pending_until_approved() {
    let mut asking = EngineConfig::for_domain("example.com");
    asking.auto_authorize = false;
    let rt = start_with(strangers(USERS), 4, asking);
    let hub = rt.handle();
    let (a, b) = on_different_shards(USERS, 4);
    let (watch_sink, mut watches) = runtime::watch_channel(64);
    hub.watches(watch_sink).expect("watch sink");
    watch(&hub, 1, a, b);
    assert_eq!(next_report(&mut watches, 1).await, "Pending");
    // b's shard holds the request (the report says so): b approves it from its own client, and the watch turns
    // active with b's presence.
    let (b_session, _b_rx) = sign_in_here(&hub, b).await;
    hub.submit(Input::Subscription {
        session: b_session,
        to: user(a),
        action: presence_core::roster::SubscriptionAction::Subscribed,
    })
    .expect("queued");
    let mut after = next_report(&mut watches, 1).await;
    while !after.contains("here") {
        assert!(after.starts_with("Active"), "after approval: {after}");
        after = next_report(&mut watches, 1).await;
    }
    rt.shutdown().await;
}

/// Takes every watch's reports into `reports` until `watch` reports something containing `text`.
async fn reports_until(
    watches: &mut runtime::ServiceReceiver<(presence_core::WatchId, presence_core::WatchState)>,
    reports: &mut Vec<(u64, String)>,
    watch: u64,
    text: &str,
) {
    loop {
        let (id, state) = tokio::time::timeout(Duration::from_secs(10), watches.recv())
            .await
            .expect("the watch reports within 10 s")
            .expect("the watch channel is open");
        let report = format!("{state:?}");
        reports.push((id.0, report.clone()));
        if id.0 == watch && report.contains(text) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unwatch_follows_its_watch_across_shards() {
    // Watch 1 is ended right away; watch 2, opened after it, follows b. All three inputs go the same way to b's
    // shard, so by the time watch 2 shows a status b set after both watches were handed in, watch 1 is gone
    // from b's shard: it may have made its first report, but it never shows that later status.
    let rt = start(strangers(USERS), 4);
    let hub = rt.handle();
    let (a, b) = on_different_shards(USERS, 4);
    let (watch_sink, mut watches) = runtime::watch_channel(64);
    hub.watches(watch_sink).expect("watch sink");
    watch(&hub, 1, a, b);
    hub.submit(Input::Unwatch {
        watch: presence_core::WatchId(1),
    })
    .expect("queued");
    watch(&hub, 2, a, b);
    let (b_session, _b_rx) = sign_in_here(&hub, b).await;
    let mut reports = Vec::new();
    reports_until(&mut watches, &mut reports, 2, "here").await;
    hub.submit(presence(b_session, None, Some("away now".into())))
        .expect("queued");
    reports_until(&mut watches, &mut reports, 2, "away now").await;
    while let Some((id, state)) = watches.try_recv() {
        reports.push((id.0, format!("{state:?}")));
    }
    assert!(
        !reports
            .iter()
            .any(|(id, s)| *id == 1 && s.contains("away now")),
        "the ended watch showed nothing after its end: {reports:?}"
    );
    assert!(
        reports.iter().filter(|(id, _)| *id == 1).count() <= 1,
        "at most the ended watch's first report: {reports:?}"
    );
    rt.shutdown().await;
}

/// A store whose commits fail while told to.
struct Failing {
    inner: Arc<MemoryStore>,
    fail: AtomicBool,
}

impl Layer for Failing {
    type Inner = MemoryStore;

    fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    fn commit(&self, writes: &[StoreWrite]) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("injected fault".into()));
        }
        self.inner.apply(writes)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_another_shard_could_not_store_bounces_to_its_sender_and_the_flush_says_not_durable()
 {
    let memory = store(USERS);
    let failing = Arc::new(Failing {
        inner: memory.clone(),
        fail: AtomicBool::new(false),
    });
    // No archive: the sender's shard writes nothing, so only the recipient's shard can fail.
    let mut config = EngineConfig::for_domain("example.com");
    config.limits.max_archive_per_user = 0;
    let rt = start_with(failing.clone(), 4, config);
    let hub = rt.handle();
    let (a, b) = on_different_shards(USERS, 4);
    let (session, mut rx) = sign_in(&hub, a).await;
    failing.fail.store(true, Ordering::SeqCst);
    let to_offline = Input::Message {
        session,
        to: Jid::Bare(user(b)),
        message: Message {
            id: Some("m1".into()),
            kind: MessageKind::Chat,
            body: Some("are you there?".into()),
            ..Message::default()
        },
    };
    hub.submit_and_flush(to_offline, session, 7)
        .expect("queued");
    let mut bounced = false;
    loop {
        match next(&mut rx).await {
            ToSession::Stanza(Stanza::Error(e)) => {
                assert_eq!(e.condition, ErrorCondition::InternalServerError);
                assert!(
                    matches!(e.about, ErrorAbout::Message { id: Some(ref id), .. } if id == "m1")
                );
                bounced = true;
            }
            ToSession::Flushed { token: 7, durable } => {
                assert!(bounced, "the bounce comes before the flush");
                assert!(!durable, "the other shard's commit failed");
                break;
            }
            _ => {}
        }
    }
    assert!(memory.offline(&user(b)).expect("offline").is_empty());
    rt.shutdown().await;
}

/// A shard does not carry broadcast presence to a user of another shard who has no available session (it would
/// reach no one there). Whatever the interleaving of a contact's changes with that user's sign-in, the signed-in
/// session must still end up seeing the contact's latest presence: a change left behind because the user was not
/// available yet is one the answer to the sign-in's probe already carries.
#[tokio::test(flavor = "multi_thread")]
async fn a_contact_signing_in_on_another_shard_sees_the_latest_presence_whatever_the_race() {
    let rt = start(store(USERS), 2);
    let hub = rt.handle();
    let (a, b) = on_different_shards(USERS, 2);
    let (sa, _rx_a) = sign_in(&hub, a).await;
    for round in 0..40 {
        let last = format!("r{round}-19");
        let changes = {
            let hub = hub.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    hub.submit(presence(sa, None, Some(format!("r{round}-{i}"))))
                        .expect("queued");
                    tokio::task::yield_now().await;
                }
            })
        };
        let (sb, mut rx_b) = sign_in(&hub, b).await;
        hub.submit(presence(sb, None, None)).expect("queued");
        changes.await.expect("the changes were all submitted");
        let mut seen = None;
        while seen.as_deref() != Some(last.as_str()) {
            if let ToSession::Stanza(Stanza::Presence {
                from,
                kind: PresenceKind::Available(view),
                ..
            }) = next(&mut rx_b).await
                && from.bare() == &user(a)
            {
                seen = view.status.clone();
            }
        }
        hub.submit(Input::CloseSession { session: sb })
            .expect("queued");
    }
    rt.shutdown().await;
}

/// A presence for several users that another node hands in as one (`Input::FromRemoteBroadcast`) reaches each
/// of them once, whichever shard serves them, and before what the same sender sends them next; with a flush
/// behind it too.
#[tokio::test(flavor = "multi_thread")]
async fn a_broadcast_handed_in_reaches_each_recipient_on_every_shard_once() {
    use presence_core::stanza::{Broadcast, PresenceView};
    let rt = start(store(USERS), 4);
    let hub = rt.handle();
    let mut clients = sign_in_all(&hub, USERS).await;
    let view = PresenceView {
        show: presence_core::compose::Show::Away,
        status: Some("from afar".into()),
        priority: 0,
        composed: presence_core::compose::PresenceState::Idle,
        extensions: Default::default(),
        avatar: None,
    };
    let broadcast = |status: &str| {
        let mut view = view.clone();
        view.status = Some(status.into());
        Input::FromRemoteBroadcast(Broadcast {
            from: full(0),
            kind: PresenceKind::Available(Arc::new(view)),
            to: (1..USERS).map(user).collect(),
        })
    };
    hub.submit(broadcast("from afar")).expect("queued");
    // With a flush behind it, each shard takes it whole and delivers to its own users.
    hub.submit_and_flush(broadcast("and again"), clients[0].session, 7)
        .expect("queued");
    for to in 1..USERS {
        hub.submit(message(clients[0].session, to, "end".into()))
            .expect("queued");
    }
    for c in clients.iter_mut().skip(1) {
        while c.got.get(&0).and_then(|g| g.last()).map(String::as_str) != Some("end") {
            c.take().await;
        }
        assert_eq!(c.got[&0], ["from afar", "and again", "end"]);
    }
    rt.shutdown().await;
}
