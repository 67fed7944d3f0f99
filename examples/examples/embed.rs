//! Embedding the engine in-process, with no network: two users, one fake session each, presence both ways and a
//! message, printed as the engine emits it. Run with `cargo run -p examples --example embed`.

use std::time::Instant;

use presence_core::compose::{EndpointPresence, Show};
use presence_core::message::{Message, MessageKind};
use presence_core::roster::SubscriptionAction;
use presence_core::stanza::{PresenceKind, Stanza};
use presence_core::store::{Account, AccountStore, MemoryStore, Store};
use presence_core::{BareJid, Engine, EngineConfig, Input, Output, SessionId};

/// A minimal shell: feeds inputs, answers loads from the store, applies writes, prints deliveries.
struct Shell {
    engine: Engine,
    store: MemoryStore,
    names: Vec<(SessionId, String)>,
}

impl Shell {
    fn run(&mut self, input: Input) {
        let now = Instant::now();
        self.engine.handle(now, input);
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Load(user) => {
                    let record = self
                        .store
                        .load_user(&user)
                        .expect("memory store does not fail");
                    self.engine.handle(now, Input::Loaded { user, record });
                }
                Output::Store(write) => self
                    .store
                    .apply(&[write])
                    .expect("memory store does not fail"),
                Output::Bound { session, jid } => {
                    println!("bound      {jid}");
                    self.names.push((session, jid.to_string()));
                }
                Output::Deliver { session, stanza } => println!(
                    "deliver to {:<16} {}",
                    self.name(session),
                    describe(&stanza)
                ),
                other => println!("other      {other:?}"),
            }
        }
    }

    fn name(&self, id: SessionId) -> &str {
        self.names
            .iter()
            .find(|(s, _)| *s == id)
            .map_or("?", |(_, n)| n)
    }
}

fn describe(stanza: &Stanza) -> String {
    match stanza {
        Stanza::Presence {
            from,
            kind: PresenceKind::Available(v),
            ..
        } => {
            format!(
                "presence from {from}: {:?} {:?} (composed {:?})",
                v.show, v.status, v.composed
            )
        }
        Stanza::Presence { from, kind, .. } => format!("presence from {from}: {kind:?}"),
        Stanza::Subscription { from, action, .. } => format!("subscription {action:?} from {from}"),
        Stanza::Message { from, message, .. } => format!(
            "message from {from}: {:?}",
            message.body.as_deref().unwrap_or("")
        ),
        Stanza::Push(push) => format!("push {push:?}"),
        other => format!("{other:?}"),
    }
}

fn main() {
    let store = MemoryStore::new();
    let alice = BareJid::new("alice@example.com").expect("valid address");
    let bob = BareJid::new("bob@example.com").expect("valid address");
    for jid in [&alice, &bob] {
        store
            .put_account(&Account {
                jid: jid.clone(),
                credentials: vec![],
                digest: vec![],
            })
            .expect("memory store does not fail");
    }
    let mut shell = Shell {
        engine: Engine::new(EngineConfig::for_domain("example.com")),
        store,
        names: Vec::new(),
    };
    let (a, b) = (SessionId(1), SessionId(2));

    println!("-- both sign in");
    shell.run(Input::OpenSession {
        session: a,
        user: alice.clone(),
        resource: Some("laptop".into()),
    });
    shell.run(Input::OpenSession {
        session: b,
        user: bob.clone(),
        resource: Some("phone".into()),
    });
    let available = |show| {
        Some(EndpointPresence {
            show,
            ..EndpointPresence::default()
        })
    };
    shell.run(Input::Presence {
        session: a,
        to: None,
        presence: available(Show::Available),
    });
    shell.run(Input::Presence {
        session: b,
        to: None,
        presence: available(Show::Available),
    });

    println!("-- they subscribe to each other (approved automatically)");
    shell.run(Input::Subscription {
        session: a,
        to: bob.clone(),
        action: SubscriptionAction::Subscribe,
    });
    shell.run(Input::Subscription {
        session: b,
        to: alice.clone(),
        action: SubscriptionAction::Subscribe,
    });

    println!("-- Bob goes away; Alice's phone rings");
    shell.run(Input::Presence {
        session: b,
        to: None,
        presence: available(Show::Away),
    });
    shell.run(Input::PhoneLine {
        user: alice.clone(),
        line: "1001".into(),
        state: presence_core::compose::LineState::OnThePhone,
    });

    println!("-- Alice writes to Bob");
    let message = Message {
        kind: MessageKind::Chat,
        body: Some("call you back in 5".into()),
        ..Message::default()
    };
    shell.run(Input::Message {
        session: a,
        to: bob.clone().into(),
        message,
    });

    println!("-- Bob signs out");
    shell.run(Input::CloseSession { session: b });
}
