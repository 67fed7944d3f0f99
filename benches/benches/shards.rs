//! Engine shards without the network (issue 17: "throughput at N = 1 and N = 2, and what you expect per core
//! beyond"): the runtime as a shell drives it, with 1,000 users signed in, each on a session channel drained by
//! its own task, and chat messages between random pairs submitted through the one `Handle`. One iteration is
//! 10,000 messages, submitted with at most `WINDOW` not yet received (as many clients would keep in flight), and
//! ends when the last is received. So it measures the router, the shard queues, the engines and the session
//! channels, and none of TLS, XML or sockets — the ceiling the engines put on a node, against which the
//! chat workload of `benches/compare.sh` (the whole server) can be read.
//!
//! With N shards half of the pairs (N = 2) cross between engines, as in a server. On a machine with fewer cores
//! than N + 1 (the engines plus the tokio workers that submit and drain) the figure shows contention, not
//! scaling: run it where the cores are.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use presence_core::message::{Message, MessageKind};
use presence_core::runtime::{self, Handle, Hooks, Runtime, RuntimeConfig, ToSession};
use presence_core::stanza::Stanza;
use presence_core::store::{Account, AccountStore, MemoryStore};
use presence_core::{BareJid, Engine, EngineConfig, Input, Jid, SessionId};
use tokio::sync::Notify;

const USERS: usize = 1_000;
const MESSAGES: u64 = 10_000;
/// Messages submitted and not yet received, at most.
const WINDOW: u64 = 1_000;

fn user(i: usize) -> BareJid {
    BareJid::new(&format!("u{i}@example.com")).expect("valid address")
}

/// Messages received by every session together, and a wake-up for the submitter.
struct Received {
    count: AtomicU64,
    progress: Notify,
}

/// A runtime of `shards` engines with every user signed in and drained.
struct Rig {
    rt: Runtime,
    hub: Handle,
    sessions: Vec<SessionId>,
    received: Arc<Received>,
}

async fn rig(shards: usize) -> Rig {
    let store = Arc::new(MemoryStore::new());
    for i in 0..USERS {
        store
            .put_account(&Account {
                jid: user(i),
                credentials: vec![],
                digest: vec![],
            })
            .expect("account");
    }
    let config = RuntimeConfig {
        shards,
        ..RuntimeConfig::default()
    };
    let engine = EngineConfig::for_domain("example.com");
    let rt = runtime::spawn_sharded(
        |_| Engine::new(engine.clone()),
        store,
        config,
        Hooks::default(),
    )
    .expect("the engine threads start");
    let hub = rt.handle();
    let received = Arc::new(Received {
        count: AtomicU64::new(0),
        progress: Notify::new(),
    });
    let mut sessions = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let session = hub.new_session();
        let (sink, mut rx) = runtime::session_channel(4096, 1 << 24);
        hub.attach(session, sink).expect("attached");
        hub.submit(Input::OpenSession {
            session,
            user: user(i),
            resource: Some("r".into()),
        })
        .expect("queued");
        match rx.recv().await {
            Some(ToSession::Bound(_)) => {}
            other => panic!("expected the session bound, got {other:?}"),
        }
        let received = received.clone();
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                if let ToSession::Stanza(Stanza::Message { .. }) = msg {
                    received.count.fetch_add(1, Ordering::Relaxed);
                    received.progress.notify_one();
                }
            }
        });
        sessions.push(session);
    }
    Rig {
        rt,
        hub,
        sessions,
        received,
    }
}

/// Submits `MESSAGES` chat messages between pseudo-random pairs and waits until every one is received.
async fn chat(rig: &Rig, seed: &mut u64) -> Duration {
    let start = Instant::now();
    let base = rig.received.count.load(Ordering::Relaxed);
    let mut sent = 0;
    while sent < MESSAGES {
        let received = rig.received.count.load(Ordering::Relaxed) - base;
        if sent - received >= WINDOW {
            rig.received.progress.notified().await;
            continue;
        }
        // xorshift: the same pairs every run, no dependency for it.
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let from = (*seed % USERS as u64) as usize;
        let to = (from + 1 + (*seed >> 32) as usize % (USERS - 1)) % USERS;
        let input = Input::Message {
            session: rig.sessions[from],
            to: Jid::new(&format!("u{to}@example.com/r")).expect("valid address"),
            message: Message {
                kind: MessageKind::Chat,
                body: Some(
                    "sixty-four bytes of chat, about what a short line of text weighs".into(),
                ),
                ..Message::default()
            },
        };
        match rig.hub.submit(input) {
            Ok(()) => sent += 1,
            // At the queue's bound: let the engines drain, as a shell's client would wait.
            Err(_) => tokio::task::yield_now().await,
        }
    }
    while rig.received.count.load(Ordering::Relaxed) - base < MESSAGES {
        rig.received.progress.notified().await;
    }
    start.elapsed()
}

fn shards(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut group = c.benchmark_group("runtime_chat");
    group.throughput(Throughput::Elements(MESSAGES));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    for n in [1usize, 2, 4] {
        let rig = tokio.block_on(rig(n));
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        group.bench_with_input(BenchmarkId::new("shards", n), &n, |b, _| {
            b.iter_custom(|iters| {
                tokio.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += chat(&rig, &mut seed).await;
                    }
                    total
                })
            })
        });
        tokio.block_on(rig.rt.shutdown());
    }
    group.finish();
}

criterion_group!(benches, shards);
criterion_main!(benches);
