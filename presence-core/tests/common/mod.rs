//! A test shell: drives an `Engine` against a `MemoryStore` and records what it emits.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use presence_core::compose::{EndpointPresence, Show};
use presence_core::feature::{Call, roster};
use presence_core::message::{Message, MessageKind};
use presence_core::roster::{Subscription, SubscriptionAction};
use presence_core::stanza::{PresenceKind, RequestId, Stanza};
use presence_core::store::{Account, AccountStore, MemoryStore, RosterStore, Store};
use presence_core::{BareJid, Engine, EngineConfig, Input, Jid, Output, SessionId};

pub mod nodes;
pub mod rooms;
#[cfg(feature = "tokio")]
pub mod shards;

pub fn j(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

pub fn jid(s: &str) -> Jid {
    Jid::new(s).unwrap()
}

pub fn req(id: &str) -> RequestId {
    RequestId(id.into())
}

pub struct Harness {
    pub engine: Engine,
    pub store: std::sync::Arc<MemoryStore>,
    pub now: Instant,
    pub delivered: Vec<(SessionId, Stanza)>,
    pub routed: Vec<Stanza>,
    /// Room traffic for the node serving its room (`Output::ToRoom`).
    pub to_room: Vec<presence_core::engine::RoomTraffic>,
    pub other: Vec<Output>,
    /// When set, load requests wait in `pending_loads` until `release_loads`.
    pub hold_loads: bool,
    pub pending_loads: Vec<BareJid>,
    next_session: u64,
}

impl Harness {
    pub fn new(config: EngineConfig) -> Self {
        Harness {
            engine: Engine::new(config),
            store: std::sync::Arc::new(MemoryStore::new()),
            now: Instant::now(),
            delivered: Vec::new(),
            routed: Vec::new(),
            to_room: Vec::new(),
            other: Vec::new(),
            hold_loads: false,
            pending_loads: Vec::new(),
            next_session: 1,
        }
    }

    /// One node of a cluster over a store shared with the other nodes, serving only `here`.
    pub fn node(config: EngineConfig, store: std::sync::Arc<MemoryStore>, here: &[&str]) -> Self {
        let mut h = Self::new(config);
        h.engine = h.engine.serving_only(here.iter().map(|u| j(u)));
        h.store = store;
        h
    }

    pub fn with_users(config: EngineConfig, users: &[&str]) -> Self {
        let h = Self::new(config);
        for u in users {
            h.account(u);
        }
        h
    }

    pub fn account(&self, user: &str) {
        self.store
            .put_account(&Account {
                jid: j(user),
                credentials: vec![],
                digest: vec![],
            })
            .unwrap();
    }

    pub fn input(&mut self, input: Input) {
        self.engine.handle(self.now, input);
        self.drain();
    }

    pub fn drain(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Load(user) if self.hold_loads => self.pending_loads.push(user),
                Output::Load(user) => {
                    let record = self.store.load_user(&user).unwrap();
                    self.engine.handle(self.now, Input::Loaded { user, record });
                }
                Output::Store(w) => self.store.apply(&[w]).unwrap(),
                Output::Deliver { session, stanza } => self.delivered.push((session, stanza)),
                Output::Route(s) => self.routed.push(s),
                Output::RouteBroadcast(b) => self.routed.extend(b.into_stanzas()),
                Output::ToRoom(t) => self.to_room.push(t),
                Output::LoadRooms => {
                    let stored = presence_core::store::RoomStore::rooms(&*self.store).unwrap();
                    self.engine.handle(self.now, Input::RoomsLoaded(stored));
                }
                other => self.other.push(other),
            }
        }
    }

    pub fn release_loads(&mut self) {
        self.hold_loads = false;
        for user in std::mem::take(&mut self.pending_loads) {
            let record = self.store.load_user(&user).unwrap();
            self.engine.handle(self.now, Input::Loaded { user, record });
            self.drain();
        }
    }

    /// Answers one held load from the store and carries out what follows.
    pub fn answer_load(&mut self, user: BareJid) {
        let record = self.store.load_user(&user).unwrap();
        self.engine.handle(self.now, Input::Loaded { user, record });
        self.drain();
    }

    /// Answers one held load with a store failure and carries out what follows.
    pub fn fail_load(&mut self, user: BareJid) {
        self.engine.handle(self.now, Input::LoadFailed { user });
        self.drain();
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.engine.poll_timeout().is_some_and(|t| t <= self.now) {
            self.engine.handle_timeout(self.now);
            self.drain();
        }
    }

    /// Binds a session without sending presence.
    pub fn bind(&mut self, user: &str, resource: &str) -> SessionId {
        let id = SessionId(self.next_session);
        self.next_session += 1;
        self.input(Input::OpenSession {
            session: id,
            user: j(user),
            resource: Some(resource.to_owned()),
        });
        id
    }

    /// Binds a session, fetches the roster and sends initial presence.
    pub fn login(&mut self, user: &str, resource: &str) -> SessionId {
        self.login_with(user, resource, 0)
    }

    pub fn login_with(&mut self, user: &str, resource: &str, priority: i8) -> SessionId {
        let id = self.bind(user, resource);
        self.input(Input::Request {
            session: id,
            request: presence_core::stanza::RequestId("roster".into()),
            call: Call::Roster(roster::Call::Get { known: None }),
        });
        self.presence(id, Show::Available, priority);
        id
    }

    pub fn presence(&mut self, id: SessionId, show: Show, priority: i8) {
        self.input(Input::Presence {
            session: id,
            to: None,
            presence: Some(EndpointPresence {
                show,
                priority,
                ..EndpointPresence::default()
            }),
        });
    }

    /// Alice and bob on domain `x`, both online (`pc`, `phone`), bob subscribed to alice; outputs cleared.
    pub fn alice_watched_by_bob() -> (Harness, SessionId, SessionId) {
        let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
        let a = h.login("alice@x", "pc");
        let b = h.login("bob@x", "phone");
        h.subscribe(b, "alice@x", SubscriptionAction::Subscribe);
        h.clear();
        (h, a, b)
    }

    /// A subscription stanza from a session.
    pub fn subscribe(&mut self, session: SessionId, to: &str, action: SubscriptionAction) {
        self.input(Input::Subscription {
            session,
            to: j(to),
            action,
        });
    }

    /// The subscription the store holds for `user`'s roster item `contact` (none when there is no item).
    pub fn stored_subscription(&self, user: &str, contact: &str) -> Subscription {
        self.store
            .roster(&j(user))
            .unwrap()
            .into_iter()
            .find(|(c, _)| *c == j(contact))
            .map_or(Subscription::NONE, |(_, e)| e.subscription())
    }

    pub fn logout(&mut self, id: SessionId) {
        self.input(Input::CloseSession { session: id });
    }

    pub fn chat(&mut self, from: SessionId, to: &str, body: &str) {
        self.input(Input::Message {
            session: from,
            to: jid(to),
            message: chat(body),
        });
    }

    /// Takes everything delivered to `id` so far.
    pub fn take(&mut self, id: SessionId) -> Vec<Stanza> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delivered)
            .into_iter()
            .partition(|(s, _)| *s == id);
        self.delivered = rest;
        mine.into_iter().map(|(_, s)| s).collect()
    }

    pub fn clear(&mut self) {
        self.delivered.clear();
        self.routed.clear();
        self.other.clear();
    }
}

pub fn chat(body: &str) -> Message {
    Message {
        id: Some(format!("id-{body}")),
        kind: MessageKind::Chat,
        body: Some(body.to_owned()),
        ..Message::default()
    }
}

/// The bodies of the messages among `stanzas`.
pub fn bodies(stanzas: &[Stanza]) -> Vec<String> {
    stanzas
        .iter()
        .filter_map(|s| match s {
            Stanza::Message { message, .. } => message.body.clone(),
            _ => None,
        })
        .collect()
}

/// The (from, kind) of the presence stanzas among `stanzas`.
pub fn presences(stanzas: &[Stanza]) -> Vec<(String, PresenceKind)> {
    stanzas
        .iter()
        .filter_map(|s| match s {
            Stanza::Presence { from, kind, .. } => Some((from.to_string(), kind.clone())),
            _ => None,
        })
        .collect()
}

/// Whether a presence from `from` that is available is among `stanzas`.
pub fn saw_available(stanzas: &[Stanza], from: &str) -> bool {
    presences(stanzas)
        .iter()
        .any(|(f, k)| f == from && matches!(k, PresenceKind::Available(_)))
}

pub fn saw_unavailable(stanzas: &[Stanza], from: &str) -> bool {
    presences(stanzas)
        .iter()
        .any(|(f, k)| f == from && *k == PresenceKind::Unavailable)
}

/// The PEP notifications among `stanzas`, in order.
pub fn pep_events(stanzas: &[Stanza]) -> Vec<presence_core::feature::pep::Event> {
    stanzas
        .iter()
        .filter_map(|s| match s {
            Stanza::Push(presence_core::feature::Push::Pep(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}
