//! The embedded store's group commit: one `Store::apply` of the writes a batch of chat messages makes (each
//! archived for both parties, XEP-0313), as the engine thread runs it. Keys spread over 2,000 users, as in the
//! `chat` load workload, so inserts land all over the tree.
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use examples::store::RedbStore;
use presence_core::archive::ArchivedMessage;
use presence_core::message::{Message, MessageKind};
use presence_core::store::{Store, StoreWrite};
use presence_core::{BareJid, Jid};

const USERS: usize = 2000;
const BATCH: usize = 256;

fn batch(users: &[BareJid], next_id: &mut [u64], round: usize) -> Vec<StoreWrite> {
    let mut writes = Vec::with_capacity(BATCH * 2);
    for i in 0..BATCH {
        let a = (round * BATCH + i * 7) % USERS;
        let b = (a + 1 + i) % USERS;
        let message = Message {
            id: Some(format!("m{round}-{i}")),
            kind: MessageKind::Chat,
            body: Some("a chat message of ordinary length, about sixty bytes long".into()),
            ..Message::default()
        };
        for (owner, peer) in [(a, b), (b, a)] {
            next_id[owner] += 1;
            writes.push(StoreWrite::ArchivePut {
                user: users[owner].clone(),
                entry: ArchivedMessage {
                    id: next_id[owner],
                    with: users[peer].clone(),
                    from: Jid::Bare(users[a].clone()),
                    to: Jid::Bare(users[b].clone()),
                    message: message.clone(),
                },
            });
        }
    }
    writes
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(dir.path().join("db")).expect("open");
    let users: Vec<BareJid> = (0..USERS)
        .map(|i| BareJid::new(&format!("u{i}@localhost")).expect("jid"))
        .collect();
    let mut next_id = vec![0u64; USERS];
    // A store that already holds archives, as a running server's does.
    for round in 0..200 {
        store
            .apply(&batch(&users, &mut next_id, round))
            .expect("apply");
    }
    let mut round = 200;
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function(
        "redb apply: 256 chat messages archived for both parties",
        |b| {
            b.iter_batched(
                || {
                    round += 1;
                    batch(&users, &mut next_id, round)
                },
                |writes| store.apply(black_box(&writes)).expect("apply"),
                criterion::BatchSize::SmallInput,
            )
        },
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
