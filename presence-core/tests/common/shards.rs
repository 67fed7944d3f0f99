//! What the runtime's shard tests share: numbered users of `example.com`, a store of their accounts, two of
//! them on different shards, and the next thing a session is told.

use std::sync::Arc;
use std::time::Duration;

use presence_core::cluster::shard_of;
use presence_core::runtime::{self, Handle, SessionReceiver, ToSession};
use presence_core::store::{Account, AccountStore, MemoryStore};
use presence_core::{BareJid, Input, SessionId};

pub fn user(i: usize) -> BareJid {
    BareJid::new(&format!("u{i}@example.com")).expect("valid address")
}

/// Accounts `0..users` with empty rosters: nobody is subscribed to anybody.
pub fn strangers(users: usize) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    for i in 0..users {
        store
            .put_account(&Account {
                jid: user(i),
                credentials: vec![],
                digest: vec![],
            })
            .expect("account");
    }
    store
}

/// User 0 and the first user among `1..users` that `shards` shards serve elsewhere.
pub fn on_different_shards(users: usize, shards: usize) -> (usize, usize) {
    let a = 0;
    let b = (1..users)
        .find(|b| shard_of(&user(*b), shards) != shard_of(&user(a), shards))
        .expect("the users spread over the shards");
    (a, b)
}

pub async fn next(rx: &mut SessionReceiver) -> ToSession {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the runtime answers within 10 s")
        .expect("the channel is open")
}

/// Signs user `i` in with resource `r` on `hub`; returns once the session is bound.
pub async fn sign_in(hub: &Handle, i: usize) -> (SessionId, SessionReceiver) {
    let session = hub.new_session();
    let (sink, mut rx) = runtime::session_channel(4096, 1 << 24);
    hub.attach(session, sink).expect("attached");
    hub.submit(Input::OpenSession {
        session,
        user: user(i),
        resource: Some("r".into()),
    })
    .expect("queued");
    assert!(matches!(next(&mut rx).await, ToSession::Bound(_)));
    (session, rx)
}
