//! Messages handed back for a session whose client never confirmed them (XEP-0198): held offline, given to the
//! user's other sessions, refused at the caps, never dropped.
mod common;

use common::*;
use presence_core::compose::Show;
use presence_core::engine::Undelivered;
use presence_core::message::{Message, MessageKind};
use presence_core::stanza::{ErrorCondition, Stanza};
use presence_core::store::OfflineStore;
use presence_core::time::Timestamp;
use presence_core::{EngineConfig, Input};

fn undelivered(
    from: &str,
    to: &str,
    body: Option<&str>,
    kind: MessageKind,
    at: u64,
) -> Undelivered {
    Undelivered {
        from: jid(from),
        to: jid(to),
        message: Message {
            id: body.map(|b| format!("id-{b}")),
            kind,
            body: body.map(str::to_owned),
            stamp: Timestamp(at),
            ..Message::default()
        },
    }
}

fn chats(to: &str, bodies: &[&str]) -> Vec<Undelivered> {
    bodies
        .iter()
        .enumerate()
        .map(|(i, b)| undelivered("alice@x/pc", to, Some(b), MessageKind::Chat, 100 + i as u64))
        .collect()
}

fn errors(stanzas: &[Stanza]) -> Vec<ErrorCondition> {
    stanzas
        .iter()
        .filter_map(|s| match s {
            Stanza::Error(e) => Some(e.condition),
            _ => None,
        })
        .collect()
}

#[test]
fn messages_of_a_lost_session_are_held_offline_and_delivered_at_the_next_sign_in_with_their_stamp()
{
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    h.logout(b);
    // Bob is not even loaded any more: the hand-back loads him like a message would.
    h.input(Input::HoldUndelivered {
        user: j("bob@x"),
        messages: chats("bob@x/phone", &["one", "two", "three"]),
    });
    assert_eq!(h.store.offline(&j("bob@x")).unwrap().len(), 3);
    assert_eq!(h.engine.offline_total(), 3);
    assert!(errors(&h.take(a)).is_empty());

    let b = h.login("bob@x", "phone");
    let got = h.take(b);
    assert_eq!(bodies(&got), ["one", "two", "three"]);
    let stamps: Vec<_> = got
        .iter()
        .filter_map(|s| match s {
            Stanza::Message { delayed, .. } => *delayed,
            _ => None,
        })
        .collect();
    assert_eq!(stamps, [Timestamp(100), Timestamp(101), Timestamp(102)]);
}

#[test]
fn only_messages_worth_holding_and_addressed_to_the_user_are_taken() {
    let mut h = Harness::with_users(
        EngineConfig::for_domain("x"),
        &["alice@x", "bob@x", "carol@x"],
    );
    h.input(Input::HoldUndelivered {
        user: j("bob@x"),
        messages: vec![
            undelivered("alice@x/pc", "bob@x", None, MessageKind::Chat, 1),
            undelivered(
                "alice@x/pc",
                "bob@x",
                Some("news"),
                MessageKind::Headline,
                2,
            ),
            undelivered(
                "alice@x/pc",
                "carol@x",
                Some("not bob's"),
                MessageKind::Chat,
                3,
            ),
            undelivered("alice@x/pc", "bob@x", Some("kept"), MessageKind::Normal, 4),
        ],
    });
    let held = h.store.offline(&j("bob@x")).unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].message.body.as_deref(), Some("kept"));
    assert!(h.store.offline(&j("carol@x")).unwrap().is_empty());
}

#[test]
fn another_available_session_of_the_user_gets_them_at_once_stamped_as_late() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let b2 = h.login("bob@x", "laptop");
    h.presence(b2, Show::Away, 0);
    h.clear();
    h.input(Input::HoldUndelivered {
        user: j("bob@x"),
        messages: chats("bob@x/phone", &["one", "two"]),
    });
    let got = h.take(b2);
    assert_eq!(bodies(&got), ["one", "two"]);
    assert!(got.iter().all(|s| matches!(
        s,
        Stanza::Message {
            delayed: Some(_),
            ..
        }
    )));
    assert!(h.store.offline(&j("bob@x")).unwrap().is_empty());
}

#[test]
fn past_the_offline_cap_the_sender_gets_an_error_rather_than_silence() {
    let mut config = EngineConfig::for_domain("x");
    config.limits.offline_per_user = 2;
    let mut h = Harness::with_users(config, &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    h.clear();
    h.input(Input::HoldUndelivered {
        user: j("bob@x"),
        messages: chats("bob@x", &["one", "two", "three"]),
    });
    assert_eq!(h.store.offline(&j("bob@x")).unwrap().len(), 2);
    assert_eq!(errors(&h.take(a)), [ErrorCondition::ResourceConstraint]);
}

#[test]
fn when_the_user_cannot_be_loaded_the_senders_get_a_temporary_error() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    h.clear();
    h.hold_loads = true;
    h.input(Input::HoldUndelivered {
        user: j("bob@x"),
        messages: chats("bob@x", &["one"]),
    });
    h.fail_load(j("bob@x"));
    assert_eq!(errors(&h.take(a)), [ErrorCondition::InternalServerError]);
    assert!(h.store.offline(&j("bob@x")).unwrap().is_empty());
}
