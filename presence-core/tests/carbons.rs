//! Message carbons (XEP-0280): the user's other carbon-enabled sessions see what one session sent and what went
//! to another session; private messages and messages with neither text nor a signal are not copied.
mod common;

use common::*;
use presence_core::feature::carbons::{Copy, Direction};
use presence_core::feature::{Call, Push, carbons};
use presence_core::message::{Marks, Message, MessageKind};
use presence_core::stanza::Stanza;
use presence_core::{EngineConfig, Input, SessionId};

fn enable(h: &mut Harness, s: SessionId) {
    h.input(Input::Request {
        session: s,
        request: req("c"),
        call: Call::Carbons(carbons::Call::Enable),
    });
    h.take(s);
}

fn copies(stanzas: &[Stanza]) -> Vec<(Direction, String, Option<String>)> {
    stanzas
        .iter()
        .filter_map(|s| match s {
            Stanza::Push(Push::Carbon(Copy {
                direction,
                from,
                message,
                ..
            })) => Some((*direction, from.to_string(), message.body.clone())),
            _ => None,
        })
        .collect()
}

fn send(h: &mut Harness, from: SessionId, to: &str, message: Message) {
    h.input(Input::Message {
        session: from,
        to: jid(to),
        message,
    });
}

#[test]
fn sent_and_received_messages_are_copied_to_the_other_enabled_sessions_only() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let desk = h.login("alice@x", "desk");
    let phone = h.login("alice@x", "phone");
    let tablet = h.login("alice@x", "tablet");
    let bob = h.login("bob@x", "pc");
    enable(&mut h, desk);
    enable(&mut h, phone);
    h.clear();

    h.chat(desk, "bob@x", "sent from the desk");
    assert_eq!(
        copies(&h.take(phone)),
        [(
            Direction::Sent,
            "alice@x/desk".into(),
            Some("sent from the desk".into())
        )]
    );
    assert!(copies(&h.take(desk)).is_empty(), "the sender gets no copy");
    assert!(copies(&h.take(tablet)).is_empty(), "carbons not enabled");
    assert_eq!(bodies(&h.take(bob)), ["sent from the desk"]);

    // To one full address: the other enabled session gets a received copy.
    send(&mut h, bob, "alice@x/desk", chat("just for the desk"));
    assert_eq!(bodies(&h.take(desk)), ["just for the desk"]);
    assert_eq!(
        copies(&h.take(phone)),
        [(
            Direction::Received,
            "bob@x/pc".into(),
            Some("just for the desk".into())
        )]
    );
    assert!(h.take(tablet).is_empty());
}

#[test]
fn private_and_empty_messages_are_not_copied_but_chat_states_are() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let desk = h.login("alice@x", "desk");
    let phone = h.login("alice@x", "phone");
    h.login("bob@x", "pc");
    enable(&mut h, phone);
    h.clear();
    let private = Message {
        marks: Marks {
            no_copy: true,
            ..Marks::default()
        },
        ..chat("off the record")
    };
    send(&mut h, desk, "bob@x", private);
    let empty = Message {
        kind: MessageKind::Chat,
        ..Message::default()
    };
    send(&mut h, desk, "bob@x", empty.clone());
    let headline = Message {
        kind: MessageKind::Headline,
        ..chat("news")
    };
    send(&mut h, desk, "bob@x", headline);
    assert!(copies(&h.take(phone)).is_empty());

    let typing = Message {
        marks: Marks {
            signal: true,
            ..Marks::default()
        },
        ..empty
    };
    send(&mut h, desk, "bob@x", typing);
    assert_eq!(
        copies(&h.take(phone)),
        [(Direction::Sent, "alice@x/desk".into(), None)]
    );
}

#[test]
fn disabling_stops_the_copies() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let desk = h.login("alice@x", "desk");
    let phone = h.login("alice@x", "phone");
    h.login("bob@x", "pc");
    enable(&mut h, phone);
    h.input(Input::Request {
        session: phone,
        request: req("d"),
        call: Call::Carbons(carbons::Call::Disable),
    });
    h.clear();
    h.chat(desk, "bob@x", "hello");
    assert!(copies(&h.take(phone)).is_empty());
}
