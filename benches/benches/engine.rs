//! The engine alone, no network: the floor the servers build on.
//!
//! - `login_200_contacts`: a user with 200 contacts (all online, all mutual) signs in — load from the in-memory
//!   store, bind, initial presence with 200 probes answered from memory and 200 broadcasts — and signs out again
//!   (200 unavailable broadcasts). One iteration is the whole cycle.
//! - `presence_fanout_200`: a presence change of a user with 200 online watchers.
//! - `message_fork_3`: a chat message to a bare address forked to 3 sessions.
//! - `room_broadcast_50`, `room_broadcast_500`: a groupchat message of 200 bytes to a room of 50 (500) occupants,
//!   through the engine to its 50 (500) `Output::Deliver`s (the engine's share of a room delivery; the shell's
//!   rendering and writing are not in it).
//!
//! Besides criterion's times, the bench prints allocations per operation, counted by a wrapping global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use presence_core::compose::{EndpointPresence, Show};
use presence_core::message::{Message, MessageKind};
use presence_core::rooms::{
    ConfigChange, HistoryRequest, JoinOptions, OccupantIdKey, OccupantPresence, RoomCall,
    RoomRequest, RoomsConfig,
};
use presence_core::roster::{ItemDetails, Link, RosterEntry, Subscription};
use presence_core::store::{Account, AccountStore, MemoryStore, RosterStore, Store};
use presence_core::time::Timestamp;
use presence_core::{BareJid, Engine, EngineConfig, Input, Jid, Output, SessionId};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// An engine with its store, driven the way a shell drives it.
struct Rig {
    engine: Engine,
    store: MemoryStore,
    now: Instant,
    next: u64,
}

impl Rig {
    fn new() -> Self {
        Self::with_config(EngineConfig::for_domain("bench"))
    }

    fn with_config(config: EngineConfig) -> Self {
        Rig {
            engine: Engine::new(config),
            store: MemoryStore::new(),
            now: Instant::now(),
            next: 1,
        }
    }

    fn user(&self, name: &str) -> BareJid {
        let jid = BareJid::new(&format!("{name}@bench")).unwrap();
        self.store
            .put_account(&Account {
                jid: jid.clone(),
                credentials: vec![],
                digest: vec![],
            })
            .unwrap();
        jid
    }

    fn mutual(&self, a: &BareJid, b: &BareJid) {
        let both = RosterEntry::Listed {
            details: ItemDetails::default(),
            subscription: Subscription {
                outbound: Link::On,
                inbound: Link::On,
            },
        };
        self.store.put_roster_entry(a, b, &both).unwrap();
        self.store.put_roster_entry(b, a, &both).unwrap();
    }

    /// Feeds one input and carries out every output; returns how many outputs there were.
    fn run(&mut self, input: Input) -> usize {
        self.engine.handle(self.now, input);
        let mut n = 0;
        while let Some(out) = self.engine.poll_output() {
            n += 1;
            match out {
                Output::Load(user) => {
                    let record = self.store.load_user(&user).unwrap();
                    self.engine.handle(self.now, Input::Loaded { user, record });
                }
                Output::Store(w) => self.store.apply(&[w]).unwrap(),
                other => {
                    black_box(other);
                }
            }
        }
        n
    }

    fn login(&mut self, user: &BareJid, priority: i8) -> SessionId {
        let id = SessionId(self.next);
        self.next += 1;
        self.run(Input::OpenSession {
            session: id,
            user: user.clone(),
            resource: Some(format!("r{}", id.0)),
        });
        self.run(Input::Presence {
            session: id,
            to: None,
            presence: Some(EndpointPresence {
                priority,
                ..Default::default()
            }),
        });
        id
    }
}

fn star_with_contacts(n: usize) -> (Rig, BareJid) {
    let mut rig = Rig::new();
    let star = rig.user("star");
    let contacts: Vec<BareJid> = (0..n).map(|i| rig.user(&format!("c{i}"))).collect();
    for c in &contacts {
        rig.mutual(&star, c);
    }
    for c in &contacts {
        rig.login(c, 0);
    }
    (rig, star)
}

const ROOM: &str = "room@conference.bench";

/// A room of `n` occupants, one session each, joined without history; returns the rig and the first occupant.
fn room_of(n: usize) -> (Rig, SessionId) {
    let mut rooms = RoomsConfig::new("conference.bench", OccupantIdKey::new(b"bench".to_vec()));
    rooms.limits.default_max_occupants = n.max(rooms.limits.default_max_occupants);
    rooms.limits.max_occupants = rooms.limits.max_occupants.max(n);
    let mut rig = Rig::with_config(EngineConfig {
        rooms: Some(rooms),
        ..EngineConfig::for_domain("bench")
    });
    let room = BareJid::new(ROOM).unwrap();
    let mut first = None;
    for i in 0..n {
        let user = rig.user(&format!("o{i}"));
        let session = rig.login(&user, 0);
        first.get_or_insert(session);
        rig.run(Input::Room {
            session,
            room: room.clone(),
            stamp: Timestamp(1_000_000),
            request: RoomRequest::Presence {
                nick: format!("o{i}"),
                presence: Some(OccupantPresence::default()),
                join: JoinOptions {
                    history: HistoryRequest {
                        max_stanzas: Some(0),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            },
        });
        if i == 0 {
            // The creator accepts the defaults (an instant room): a new room is locked until configured.
            rig.run(Input::Room {
                session,
                room: room.clone(),
                stamp: Timestamp(1_000_000),
                request: RoomRequest::Iq {
                    id: "instant".into(),
                    nick: None,
                    call: RoomCall::SetConfig(ConfigChange::default()),
                },
            });
        }
    }
    (rig, first.expect("n > 0"))
}

fn login_cycle(rig: &mut Rig, star: &BareJid) {
    let id = rig.login(star, 0);
    rig.run(Input::CloseSession { session: id });
}

fn allocations_per_op(name: &str, iterations: u64, mut op: impl FnMut()) {
    op();
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..iterations {
        op();
    }
    let per = (ALLOCS.load(Ordering::Relaxed) - before) as f64 / iterations as f64;
    println!("allocations/op {name}: {per:.1}");
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));

    let (mut rig, star) = star_with_contacts(200);
    allocations_per_op("login_200_contacts", 200, || login_cycle(&mut rig, &star));
    g.bench_function("login_200_contacts", |b| {
        b.iter(|| login_cycle(&mut rig, &star))
    });

    let (mut rig, star) = star_with_contacts(200);
    let id = rig.login(&star, 0);
    let mut flip = false;
    let mut change = |rig: &mut Rig| {
        flip = !flip;
        let show = if flip { Show::Away } else { Show::Available };
        rig.run(Input::Presence {
            session: id,
            to: None,
            presence: Some(EndpointPresence {
                show,
                ..Default::default()
            }),
        })
    };
    allocations_per_op("presence_fanout_200", 1000, || {
        change(&mut rig);
    });
    g.bench_function("presence_fanout_200", |b| b.iter(|| change(&mut rig)));

    let mut rig = Rig::new();
    let alice = rig.user("alice");
    let bob = rig.user("bob");
    let from = rig.login(&alice, 0);
    for _ in 0..3 {
        rig.login(&bob, 1);
    }
    let to = Jid::Bare(bob.clone());
    let message = Message {
        kind: MessageKind::Chat,
        body: Some("x".repeat(200)),
        ..Message::default()
    };
    let send = |rig: &mut Rig| {
        rig.run(Input::Message {
            session: from,
            to: to.clone(),
            message: message.clone(),
        })
    };
    allocations_per_op("message_fork_3", 10_000, || {
        send(&mut rig);
    });
    g.bench_function("message_fork_3", |b| b.iter(|| send(&mut rig)));
    g.finish();

    // Throughput in deliveries: criterion's per-element time is the engine's cost of one room delivery.
    let mut g = c.benchmark_group("rooms");
    for n in [50usize, 500] {
        let (mut rig, speaker) = room_of(n);
        let room = BareJid::new(ROOM).unwrap();
        let message = Message {
            kind: MessageKind::Groupchat,
            body: Some("x".repeat(200)),
            ..Message::default()
        };
        let say = |rig: &mut Rig| {
            let delivered = rig.run(Input::Room {
                session: speaker,
                room: room.clone(),
                stamp: Timestamp(2_000_000),
                request: RoomRequest::Message {
                    nick: None,
                    message: message.clone(),
                },
            });
            assert!(delivered >= n, "{delivered} outputs for {n} occupants");
        };
        let name = format!("room_broadcast_{n}");
        allocations_per_op(&name, 200, || say(&mut rig));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(&name, |b| b.iter(|| say(&mut rig)));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
