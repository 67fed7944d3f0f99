//! # presence-core: a sans-IO presence and instant-messaging engine
//!
//! All behaviour of the product lives here — sessions, rosters and subscription states, privacy policy, presence
//! composition, message forking and offline storage — as a deterministic state machine. It reads no clock, opens
//! no socket or file and spawns nothing: time comes in as an argument and every effect goes out as a value.
//!
//! ## The engine loop
//!
//! The shell (an XMPP or SIP server, a test, an application embedding the engine) repeats:
//!
//! 1. [`Engine::handle`]`(now, input)` for each event: a session opened, a stanza parsed, a store answer.
//! 2. [`Engine::poll_output`] until `None`, carrying out each [`Output`] in order: deliver a stanza to a session,
//!    route one to another domain, make a write durable ([`Output::Store`]), load a user ([`Output::Load`], answered
//!    later with [`Input::Loaded`], or with [`Input::LoadFailed`] when the store cannot be read), close a session.
//! 3. [`Engine::poll_timeout`] to learn when to call [`Engine::handle_timeout`] next.
//!
//! This shape (one `Input` enum in, one `Output` enum out, time as an argument) follows `str0m` and `quinn-proto`.
//! It keeps the shells thin and lets every rule below be tested at full speed with a fake clock.
//!
//! Storage never blocks the engine: when it needs a user it has not loaded (a sign-in, a message for an offline
//! user) it emits `Output::Load` and parks the work that needs that user; the rest of the traffic keeps flowing.
//! It fails closed: a load that fails is reported as such, never as "no such account", and the parked work fails
//! with temporary errors (a refused bind, a `wait` error to a message's sender, an ended watch) while the engine
//! keeps running and the next work for that user asks for the load again.
//! The [`store`] module holds the traits a shell implements storage with and helpers that turn outputs into calls.
//!
//! ```
//! use std::time::Instant;
//! use presence_core::{BareJid, Engine, EngineConfig, Input, Output, SessionId};
//! use presence_core::compose::EndpointPresence;
//! use presence_core::store::{Account, AccountStore, MemoryStore, Store};
//! use presence_core::message::{Message, MessageKind};
//!
//! let store = MemoryStore::new();
//! for user in ["alice@example.com", "bob@example.com"] {
//!     let jid = BareJid::new(user).unwrap();
//!     store.put_account(&Account { jid, credentials: vec![], digest: vec![] }).unwrap();
//! }
//! let mut engine = Engine::new(EngineConfig::for_domain("example.com"));
//! let now = Instant::now();
//! let mut delivered = Vec::new();
//!
//! // Feeds one input and carries out everything the engine asks for.
//! let mut run = |engine: &mut Engine, input: Input| {
//!     engine.handle(now, input);
//!     while let Some(out) = engine.poll_output() {
//!         match out {
//!             Output::Load(user) => {
//!                 let record = store.load_user(&user).unwrap();
//!                 engine.handle(now, Input::Loaded { user, record });
//!             }
//!             Output::Store(write) => store.apply(&[write]).unwrap(),
//!             Output::Deliver { session, stanza } => delivered.push((session, stanza)),
//!             _ => {}
//!         }
//!     }
//! };
//!
//! let bob = BareJid::new("bob@example.com").unwrap();
//! run(&mut engine, Input::OpenSession { session: SessionId(1), user: bob.clone(), resource: Some("phone".into()) });
//! run(&mut engine, Input::Presence { session: SessionId(1), to: None, presence: Some(EndpointPresence::default()) });
//! // Alice is offline: the message is held for her.
//! let alice = BareJid::new("alice@example.com").unwrap();
//! let message = Message { kind: MessageKind::Chat, body: Some("hi".into()), ..Message::default() };
//! run(&mut engine, Input::Message { session: SessionId(1), to: alice.clone().into(), message });
//! assert_eq!(store.offline(&alice).unwrap().len(), 1);
//! // She signs in and gets it, stamped with its original time.
//! run(&mut engine, Input::OpenSession { session: SessionId(2), user: alice, resource: None });
//! run(&mut engine, Input::Presence { session: SessionId(2), to: None, presence: Some(EndpointPresence::default()) });
//! # use presence_core::stanza::Stanza;
//! assert!(delivered.iter().any(|(s, st)| *s == SessionId(2) && matches!(st, Stanza::Message { delayed: Some(_), .. })));
//! # use presence_core::store::OfflineStore;
//! assert!(store.offline(&BareJid::new("alice@example.com").unwrap()).unwrap().is_empty());
//! ```
//!
//! ## Map of the crate
//!
//! - [`jid`]: addresses (RFC 7622).
//! - [`roster`]: roster entries and the RFC 6121 subscription state machine.
//! - [`policy`]: allow/block lists, defaults, "ask me", availability sharing (DESIGN §3).
//! - [`compose`]: composing one presence from every source (DESIGN §2), with the tables as code.
//! - [`compliance`]: what compliance archiving records of each message the server accepts.
//! - [`message`], [`stanza`]: the protocol-neutral values the engine takes and emits.
//! - [`engine`]: the state machine; forking and offline delivery live in its `messaging` part.
//! - [`rooms`]: group chat (XEP-0045): the room service, its rooms and their rules as tables.
//! - [`watch`]: watches of a user's composed presence or watcher list that are not XMPP sessions (SIP).
//! - [`store`]: storage traits, an in-memory store and the conformance suite.
//! - [`cluster`], [`assignment`], [`failover`]: nodes, user assignment and the redundancy-group failover machine.
//! - [`query`]: requests and PEP notifications between engines (shards or nodes) for users served elsewhere.
//! - [`rate`]: token buckets for inbound rate limits, with time as an argument.
//! - `runtime` (feature `tokio`): the engine thread, group commit, bounded sinks and metrics that drive an engine
//!   for tokio shells; the rest of the crate stays sans-IO without it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod archive;
pub mod assignment;
pub mod cluster;
pub mod compliance;
pub mod compose;
pub mod config;
pub mod directory;
pub mod engine;
pub mod failover;
pub mod feature;
pub mod jid;
pub mod message;
pub mod policy;
pub mod query;
pub mod rate;
pub mod rooms;
pub mod roster;
#[cfg(feature = "tokio")]
pub mod runtime;
pub mod session;
pub mod stanza;
pub mod store;
pub mod time;
pub mod watch;

pub use config::{Cap, EngineConfig, Limits, PushContents};
pub use engine::{Engine, Input, Output};
pub use jid::{BareJid, FullJid, Jid, JidError};
pub use session::SessionId;
pub use watch::{WatchEnd, WatchId, WatchKind, WatchState, WatchView, WatcherInfo, WatcherStatus};
