//! Forking, stickiness, offline storage and errors (DESIGN §4, RFC 6121 §8.5, XEP-0160).
mod common;

use std::time::Duration;

use common::*;
use presence_core::compose::Show;
use presence_core::message::{Message, MessageKind};
use presence_core::policy::{PolicyEntry, UserPolicy};
use presence_core::stanza::{ErrorCondition, Stanza};
use presence_core::store::OfflineStore;
use presence_core::time::Timestamp;
use presence_core::{EngineConfig, Input};

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
fn message_to_bare_address_forks_to_every_available_non_negative_session() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b1 = h.login_with("bob@x", "one", 5);
    let b2 = h.login_with("bob@x", "two", 0);
    let b3 = h.login_with("bob@x", "negative", -1);
    let b4 = h.bind("bob@x", "no-presence");
    h.clear();
    h.chat(a, "bob@x", "hello");
    assert_eq!(bodies(&h.take(b1)), ["hello"]);
    assert_eq!(bodies(&h.take(b2)), ["hello"]);
    assert!(bodies(&h.take(b3)).is_empty());
    assert!(bodies(&h.take(b4)).is_empty());
}

#[test]
fn conversation_sticks_to_the_session_that_replied_until_idle() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b1 = h.login("bob@x", "one");
    let b2 = h.login("bob@x", "two");
    h.chat(a, "bob@x", "first");
    h.chat(b2, "alice@x", "reply from two");
    h.clear();
    h.chat(a, "bob@x", "second");
    assert!(bodies(&h.take(b1)).is_empty());
    assert_eq!(bodies(&h.take(b2)), ["second"]);
    // 600 s without a word from Bob's side: the conversation forks again.
    h.advance(Duration::from_secs(599));
    h.chat(a, "bob@x", "third");
    assert_eq!(bodies(&h.take(b2)), ["third"]);
    h.advance(Duration::from_secs(2));
    h.chat(a, "bob@x", "fourth");
    assert_eq!(bodies(&h.take(b1)), ["fourth"]);
    assert_eq!(bodies(&h.take(b2)), ["fourth"]);
    // Stickiness also ends when the session goes.
    h.chat(b1, "alice@x", "from one");
    h.logout(b1);
    h.clear();
    h.chat(a, "bob@x", "fifth");
    assert_eq!(bodies(&h.take(b2)), ["fifth"]);
}

#[test]
fn sticky_timer_rearms_while_the_conversation_is_active() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b1 = h.login("bob@x", "one");
    let b2 = h.login("bob@x", "two");
    h.chat(b2, "alice@x", "hi");
    h.advance(Duration::from_secs(500));
    h.chat(b2, "alice@x", "still here");
    h.advance(Duration::from_secs(200));
    h.clear();
    h.chat(a, "bob@x", "x");
    assert!(
        bodies(&h.take(b1)).is_empty(),
        "700 s after the first reply but only 200 s after the last"
    );
    assert_eq!(bodies(&h.take(b2)), ["x"]);
}

#[test]
fn full_address_goes_to_that_session_or_falls_back_to_bare() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b1 = h.login("bob@x", "one");
    let b2 = h.login_with("bob@x", "two", -5);
    h.clear();
    h.chat(a, "bob@x/two", "direct");
    assert_eq!(
        bodies(&h.take(b2)),
        ["direct"],
        "a full address reaches even a negative-priority session"
    );
    assert!(bodies(&h.take(b1)).is_empty());
    h.chat(a, "bob@x/gone", "fallback");
    assert_eq!(bodies(&h.take(b1)), ["fallback"]);
}

#[test]
fn offline_messages_are_held_and_delivered_in_order_with_their_stamp() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    for (i, body) in ["one", "two", "three"].iter().enumerate() {
        h.input(Input::Message {
            session: a,
            to: jid("bob@x"),
            message: Message {
                kind: MessageKind::Chat,
                body: Some((*body).into()),
                stamp: Timestamp(1000 + i as u64),
                ..Message::default()
            },
        });
    }
    assert_eq!(h.store.offline(&j("bob@x")).unwrap().len(), 3);
    assert_eq!(h.engine.offline_total(), 3);
    assert!(errors(&h.take(a)).is_empty());
    let b = h.bind("bob@x", "phone");
    assert!(
        bodies(&h.take(b)).is_empty(),
        "nothing before initial presence"
    );
    h.presence(b, Show::Available, 0);
    let got = h.take(b);
    assert_eq!(bodies(&got), ["one", "two", "three"]);
    let stamps: Vec<_> = got
        .iter()
        .filter_map(|s| match s {
            Stanza::Message { delayed, .. } => *delayed,
            _ => None,
        })
        .collect();
    assert_eq!(stamps, [Timestamp(1000), Timestamp(1001), Timestamp(1002)]);
    assert!(h.store.offline(&j("bob@x")).unwrap().is_empty());
    assert_eq!(h.engine.offline_total(), 0);
}

#[test]
fn negative_priority_session_does_not_drain_offline_messages() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    h.chat(a, "bob@x", "held");
    let b = h.login_with("bob@x", "bot", -1);
    assert!(bodies(&h.take(b)).is_empty());
    h.chat(a, "bob@x", "also held");
    assert_eq!(h.store.offline(&j("bob@x")).unwrap().len(), 2);
    h.presence(b, Show::Available, 1);
    assert_eq!(bodies(&h.take(b)), ["held", "also held"]);
}

#[test]
fn offline_caps_per_user_and_per_node() {
    let mut config = EngineConfig::for_domain("x");
    config.limits.offline_per_user = 3;
    config.limits.offline_per_node = 5;
    let mut h = Harness::with_users(config, &["alice@x", "bob@x", "carol@x"]);
    let a = h.login("alice@x", "pc");
    for i in 0..4 {
        h.chat(a, "bob@x", &format!("b{i}"));
    }
    assert_eq!(h.store.offline(&j("bob@x")).unwrap().len(), 3);
    assert_eq!(errors(&h.take(a)), [ErrorCondition::ResourceConstraint]);
    for i in 0..3 {
        h.chat(a, "carol@x", &format!("c{i}"));
    }
    assert_eq!(
        h.store.offline(&j("carol@x")).unwrap().len(),
        2,
        "node cap of 5 reached"
    );
    assert_eq!(errors(&h.take(a)), [ErrorCondition::ResourceConstraint]);
}

#[test]
fn node_cap_counts_messages_already_in_the_store() {
    let mut config = EngineConfig::for_domain("x");
    config.limits.offline_per_node = 10;
    let mut h = Harness::with_users(config.clone(), &["alice@x", "bob@x"]);
    h.engine = presence_core::Engine::new(config).with_offline_total(10);
    let a = h.login("alice@x", "pc");
    h.chat(a, "bob@x", "no room");
    assert_eq!(errors(&h.take(a)), [ErrorCondition::ResourceConstraint]);
}

#[test]
fn suppressed_offline_storage_returns_the_configured_error_text() {
    let mut config = EngineConfig::for_domain("x");
    config.offline_storage = false;
    let mut h = Harness::with_users(config, &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    h.chat(a, "bob@x", "lost?");
    let got = h.take(a);
    let Some(Stanza::Error(e)) = got.iter().find(|s| matches!(s, Stanza::Error(_))) else {
        panic!("no error: {got:?}")
    };
    assert_eq!(e.condition, ErrorCondition::ServiceUnavailable);
    assert_eq!(e.text.as_deref(), Some("Your IM could not be delivered."));
    assert!(h.store.offline(&j("bob@x")).unwrap().is_empty());
}

#[test]
fn unknown_recipient_blocked_sender_and_disabled_im_get_errors() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    h.chat(a, "ghost@x", "anyone?");
    assert_eq!(errors(&h.take(a)), [ErrorCondition::ServiceUnavailable]);
    h.input(Input::SetPolicy {
        user: j("bob@x"),
        policy: UserPolicy {
            block: vec![PolicyEntry::Jid(j("alice@x"))],
            ..UserPolicy::default()
        },
    });
    h.chat(a, "bob@x", "blocked");
    assert_eq!(errors(&h.take(a)), [ErrorCondition::ServiceUnavailable]);
    assert!(bodies(&h.take(b)).is_empty());

    let mut config = EngineConfig::for_domain("x");
    config.im_enabled = false;
    let mut h = Harness::with_users(config, &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    h.chat(a, "bob@x", "off");
    assert_eq!(errors(&h.take(a)), [ErrorCondition::ServiceUnavailable]);
    assert!(bodies(&h.take(b)).is_empty());
}

#[test]
fn headlines_are_never_stored_and_errors_never_answered() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    for kind in [MessageKind::Headline, MessageKind::Error] {
        h.input(Input::Message {
            session: a,
            to: jid("bob@x"),
            message: Message {
                kind,
                body: Some("x".into()),
                ..Message::default()
            },
        });
    }
    assert!(h.store.offline(&j("bob@x")).unwrap().is_empty());
    assert!(errors(&h.take(a)).is_empty());
    h.input(Input::Message {
        session: a,
        to: jid("bob@x"),
        message: Message {
            kind: MessageKind::Groupchat,
            body: Some("x".into()),
            ..Message::default()
        },
    });
    assert_eq!(errors(&h.take(a)), [ErrorCondition::ServiceUnavailable]);
}

#[test]
fn remote_messages_are_routed_out_and_in() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    let a = h.login("alice@x", "pc");
    h.chat(a, "p@far.com", "out");
    assert!(matches!(&h.routed[..], [Stanza::Message { to, .. }] if *to == jid("p@far.com")));
    h.input(Input::FromRemote(Stanza::Message {
        from: jid("p@far.com/x"),
        to: jid("alice@x"),
        message: chat("in"),
        delayed: None,
    }));
    assert_eq!(bodies(&h.take(a)), ["in"]);
    h.clear();
    h.input(Input::FromRemote(Stanza::Message {
        from: jid("p@far.com/x"),
        to: jid("ghost@x"),
        message: chat("in"),
        delayed: None,
    }));
    assert!(matches!(&h.routed[..], [Stanza::Error(e)] if e.to == jid("p@far.com/x")));
}

#[test]
fn messages_wait_in_order_while_the_recipient_loads() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    h.hold_loads = true;
    for i in 0..5 {
        h.chat(a, "bob@x", &format!("m{i}"));
    }
    assert_eq!(h.pending_loads, vec![j("bob@x")], "one load for all five");
    h.release_loads();
    let held: Vec<_> = h
        .store
        .offline(&j("bob@x"))
        .unwrap()
        .into_iter()
        .map(|m| m.message.body.unwrap())
        .collect();
    assert_eq!(held, ["m0", "m1", "m2", "m3", "m4"]);
}
