//! The room service over engine shards, through the runtime's public surface (issue 17): disco#items of the
//! service lists every public, unlocked room of the node whichever shard is its home and whichever shard
//! answers, and follows each room's listing as it is configured, hidden, destroyed or emptied.

use std::sync::Arc;

use presence_core::cluster::{room_home, shard_of};
use presence_core::rooms::{
    ConfigChange, Destroyed, JoinOptions, OccupantIdKey, OccupantPresence, RoomAnswer, RoomCall,
    RoomConfig, RoomLimits, RoomRecord, RoomRequest, RoomStanza, RoomsConfig,
};
use presence_core::runtime::{
    self, Handle, Hooks, Runtime, RuntimeConfig, SessionReceiver, ToSession,
};
use presence_core::stanza::Stanza;
use presence_core::store::{MemoryStore, Store, StoreWrite};
use presence_core::time::Timestamp;
use presence_core::{BareJid, Engine, EngineConfig, Input, SessionId};

mod common;
use common::shards::{next, on_different_shards, sign_in, strangers, user};

const SHARDS: usize = 4;
const SERVICE: &str = "conference.example.com";

fn room(name: &str) -> BareJid {
    BareJid::new(&format!("{name}@{SERVICE}")).expect("valid address")
}

/// The shard whose engine serves `room`: the runtime names its shards `shard-<i>` as room homes.
fn home_shard(room: &BareJid) -> usize {
    let names: Vec<String> = (0..SHARDS).map(|i| format!("shard-{i}")).collect();
    let home = room_home(room, &names).expect("homes are known");
    names.iter().position(|n| n == home).expect("one of them")
}

fn start(store: Arc<MemoryStore>, stored: Vec<RoomRecord>) -> Runtime {
    let config = EngineConfig {
        rooms: Some(RoomsConfig::new(SERVICE, OccupantIdKey::new(b"k".to_vec()))),
        ..EngineConfig::for_domain("example.com")
    };
    runtime::spawn_sharded(
        // Every shard is given every stored room, as the product binary does.
        |_| Engine::new(config.clone()).with_rooms(stored.clone()),
        store,
        RuntimeConfig {
            shards: SHARDS,
            ..RuntimeConfig::default()
        },
        Hooks::default(),
    )
    .expect("the engine threads start")
}

/// A signed-in session of one user, reading the room stanzas it is given.
struct Client {
    session: SessionId,
    rx: SessionReceiver,
}

impl Client {
    async fn sign_in(hub: &Handle, i: usize) -> Client {
        let (session, rx) = sign_in(hub, i).await;
        Client { session, rx }
    }

    fn send(&self, hub: &Handle, to: &BareJid, request: RoomRequest) {
        hub.submit(Input::Room {
            session: self.session,
            room: to.clone(),
            stamp: Timestamp(1_000_000),
            request,
        })
        .expect("queued");
    }

    /// Sends an IQ to `to` and waits for its answer (an error fails the test).
    async fn ask(&mut self, hub: &Handle, to: &BareJid, call: RoomCall) -> RoomAnswer {
        self.send(
            hub,
            to,
            RoomRequest::Iq {
                id: "q".into(),
                nick: None,
                call,
            },
        );
        loop {
            match self.room_stanza().await {
                RoomStanza::Answer { answer, .. } => return answer,
                RoomStanza::Error(e) => panic!("the room refused: {e:?}"),
                _ => {}
            }
        }
    }

    /// Enters `at` (creating it, locked) and waits for its own presence back.
    async fn enter(&mut self, hub: &Handle, at: &BareJid) {
        self.send(
            hub,
            at,
            RoomRequest::Presence {
                nick: "owner".into(),
                presence: Some(OccupantPresence::default()),
                join: JoinOptions::default(),
            },
        );
        loop {
            match self.room_stanza().await {
                RoomStanza::Presence { from, .. } if from.bare() == at => return,
                RoomStanza::Error(e) => panic!("the room refused the join: {e:?}"),
                _ => {}
            }
        }
    }

    /// Creates `at` and configures it with `change` (which unlocks it).
    async fn create(&mut self, hub: &Handle, at: &BareJid, change: ConfigChange) {
        self.enter(hub, at).await;
        let done = self.ask(hub, at, RoomCall::SetConfig(change)).await;
        assert_eq!(done, RoomAnswer::Done);
    }

    /// What disco#items of the service lists.
    async fn items(&mut self, hub: &Handle) -> Vec<(BareJid, String)> {
        let service = BareJid::new(SERVICE).expect("valid address");
        match self.ask(hub, &service, RoomCall::Items).await {
            RoomAnswer::Rooms(rooms) => rooms,
            other => panic!("disco#items answered {other:?}"),
        }
    }

    async fn room_stanza(&mut self) -> RoomStanza {
        loop {
            if let ToSession::Stanza(Stanza::Room(r)) = next(&mut self.rx).await {
                return *r;
            }
        }
    }
}

fn named(name: &str) -> ConfigChange {
    ConfigChange {
        name: Some(name.into()),
        ..ConfigChange::default()
    }
}

/// Rooms `r<n>` homed on each shard in turn, the first on `asker`'s shard (so both the local and the
/// announced listings are exercised).
fn rooms_on_every_shard(asker: usize) -> Vec<BareJid> {
    (0..SHARDS)
        .map(|k| {
            let shard = (asker + k) % SHARDS;
            (0..)
                .map(|n| room(&format!("r{n}")))
                .find(|r| home_shard(r) == shard)
                .expect("some name hashes to every shard")
        })
        .collect()
}

#[tokio::test]
async fn every_shard_lists_the_public_rooms_of_every_home_as_they_change() {
    let (a, b) = on_different_shards(64, SHARDS);
    let rt = start(strangers(b + 1), Vec::new());
    let hub = rt.handle();
    let mut owner = Client::sign_in(&hub, a).await;
    let mut other = Client::sign_in(&hub, b).await;
    let rooms = rooms_on_every_shard(shard_of(&user(a), SHARDS));
    for (n, r) in rooms.iter().enumerate() {
        owner.create(&hub, r, named(&format!("Room {n}"))).await;
    }
    // A locked room (never configured) and a hidden one are not listed, wherever they live.
    let locked = room("locked");
    owner.enter(&hub, &locked).await;
    let hidden = room("hidden");
    owner
        .create(
            &hub,
            &hidden,
            ConfigChange {
                public: Some(false),
                ..ConfigChange::default()
            },
        )
        .await;

    let mut expected: Vec<(BareJid, String)> = rooms
        .iter()
        .enumerate()
        .map(|(n, r)| (r.clone(), format!("Room {n}")))
        .collect();
    expected.sort();
    assert_eq!(
        owner.items(&hub).await,
        expected,
        "as the creator's shard lists them"
    );
    assert_eq!(
        other.items(&hub).await,
        expected,
        "as another shard lists them"
    );

    // Renamed, then made private: every shard follows.
    let renamed = &rooms[1];
    owner
        .ask(&hub, renamed, RoomCall::SetConfig(named("New name")))
        .await;
    for e in expected.iter_mut().filter(|(r, _)| r == renamed) {
        e.1 = "New name".into();
    }
    assert_eq!(other.items(&hub).await, expected);
    let hidden_later = &rooms[2];
    let private = ConfigChange {
        public: Some(false),
        ..ConfigChange::default()
    };
    owner
        .ask(&hub, hidden_later, RoomCall::SetConfig(private))
        .await;
    expected.retain(|(r, _)| r != hidden_later);
    assert_eq!(other.items(&hub).await, expected);

    // Destroyed: gone everywhere.
    let destroyed = &rooms[3];
    let destroy = RoomCall::Destroy(Destroyed {
        reason: None,
        alternate: None,
        password: None,
    });
    assert_eq!(owner.ask(&hub, destroyed, destroy).await, RoomAnswer::Done);
    expected.retain(|(r, _)| r != destroyed);
    assert_eq!(other.items(&hub).await, expected);

    // An ad hoc room vanishes with its last occupant: the owner leaves rooms[1] (homed on another shard).
    owner.send(
        &hub,
        renamed,
        RoomRequest::Presence {
            nick: "owner".into(),
            presence: None,
            join: JoinOptions::default(),
        },
    );
    loop {
        if let RoomStanza::Presence { from, presence, .. } = owner.room_stanza().await
            && from.bare() == renamed
            && presence.is_none()
        {
            break;
        }
    }
    expected.retain(|(r, _)| r != renamed);
    // The home announced the room gone to every other shard before it answered the leave (announcements go
    // out first), so a request sent after the answer finds it unlisted on any shard.
    assert_eq!(owner.items(&hub).await, expected);
    assert_eq!(other.items(&hub).await, expected);
    rt.shutdown().await;
}

#[tokio::test]
async fn stored_persistent_rooms_are_listed_by_every_shard_from_the_start() {
    let store = strangers(SHARDS * 8);
    let limits = RoomLimits::default();
    let records: Vec<RoomRecord> = rooms_on_every_shard(0)
        .into_iter()
        .enumerate()
        .map(|(n, jid)| RoomRecord {
            jid,
            config: RoomConfig {
                name: format!("Kept {n}"),
                persistent: true,
                // The last one is kept but hidden.
                public: n + 1 < SHARDS,
                ..RoomConfig::new(&limits)
            },
            affiliations: Vec::new(),
            subject: None,
            history: Vec::new(),
            archive_head: 0,
        })
        .collect();
    let writes: Vec<StoreWrite> = records.iter().cloned().map(StoreWrite::RoomPut).collect();
    store.apply(&writes).expect("stored");
    let mut expected: Vec<(BareJid, String)> = records
        .iter()
        .filter(|r| r.config.public)
        .map(|r| (r.jid.clone(), r.config.name.clone()))
        .collect();
    expected.sort();

    let rt = start(store, records);
    let hub = rt.handle();
    // One user on every shard asks.
    let mut seen = [false; SHARDS];
    for i in 0..SHARDS * 8 {
        let shard = shard_of(&user(i), SHARDS);
        if seen[shard] {
            continue;
        }
        seen[shard] = true;
        let mut client = Client::sign_in(&hub, i).await;
        assert_eq!(
            client.items(&hub).await,
            expected,
            "as shard {shard} lists them"
        );
    }
    assert!(seen.iter().all(|s| *s), "a user on every shard");
    rt.shutdown().await;
}
