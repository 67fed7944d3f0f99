//! Archiving (XEP-0313) as messages pass through the engine: both parties' archives, the stanza-id on delivery,
//! the user's preferences, the store hints and the size cap.
mod common;

use common::*;
use presence_core::archive::{self, Prefs, Query};
use presence_core::feature::{Answer, Call, mam};
use presence_core::message::{Marks, Message};
use presence_core::stanza::Stanza;
use presence_core::store::ArchiveStore;
use presence_core::{EngineConfig, Input};

fn bodies_in(h: &Harness, user: &str) -> Vec<String> {
    let page = h
        .store
        .archive_query(
            &j(user),
            &Query {
                max: 1000,
                ..Query::default()
            },
        )
        .unwrap();
    page.messages
        .into_iter()
        .filter_map(|m| m.message.body)
        .collect()
}

#[test]
fn both_parties_archive_and_the_recipient_sees_its_archive_id() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "pc");
    h.clear();
    h.chat(a, "bob@x", "one");
    h.chat(b, "alice@x", "two");
    assert_eq!(bodies_in(&h, "alice@x"), ["one", "two"]);
    assert_eq!(bodies_in(&h, "bob@x"), ["one", "two"]);
    let ids: Vec<Option<u64>> = h
        .take(b)
        .into_iter()
        .filter_map(|s| match s {
            Stanza::Message { message, .. } => Some(message.archive_id.map(|i| i.get())),
            _ => None,
        })
        .collect();
    assert_eq!(
        ids,
        [Some(1)],
        "bob's archive id 1 is the stanza-id of what he got"
    );

    // An offline recipient's archive takes the message too, and the held copy keeps its id.
    h.logout(b);
    h.chat(a, "bob@x", "while away");
    assert_eq!(bodies_in(&h, "bob@x"), ["one", "two", "while away"]);
    let b = h.login("bob@x", "phone");
    let held: Vec<Option<u64>> = h
        .take(b)
        .into_iter()
        .filter_map(|s| match s {
            Stanza::Message { message, .. } => Some(message.archive_id.map(|i| i.get())),
            _ => None,
        })
        .collect();
    assert_eq!(held, [Some(3)]);
}

#[test]
fn preferences_and_hints_decide_what_is_archived() {
    let mut h = Harness::with_users(
        EngineConfig::for_domain("x"),
        &["alice@x", "bob@x", "carol@x"],
    );
    let a = h.login("alice@x", "pc");
    h.login("bob@x", "pc");
    h.login("carol@x", "pc");
    let never_bob = Prefs {
        default: archive::Default::Always,
        always: vec![],
        never: vec![j("bob@x")],
    };
    h.input(Input::Request {
        session: a,
        request: req("p"),
        call: Call::Mam(mam::Call::SetPrefs(never_bob.clone())),
    });
    assert!(h.take(a).contains(&Stanza::Answer {
        request: req("p"),
        answer: Answer::Mam(never_bob.clone())
    }));
    h.chat(a, "bob@x", "not kept by alice");
    h.chat(a, "carol@x", "kept");
    let secret = Message {
        marks: Marks {
            no_store: true,
            ..Marks::default()
        },
        ..chat("no-store")
    };
    h.input(Input::Message {
        session: a,
        to: jid("carol@x"),
        message: secret,
    });
    assert_eq!(bodies_in(&h, "alice@x"), ["kept"]);
    assert_eq!(
        bodies_in(&h, "bob@x"),
        ["not kept by alice"],
        "bob's own prefs apply to his archive"
    );
    assert_eq!(bodies_in(&h, "carol@x"), ["kept"]);
    h.input(Input::Request {
        session: a,
        request: req("g"),
        call: Call::Mam(mam::Call::GetPrefs),
    });
    assert!(h.take(a).contains(&Stanza::Answer {
        request: req("g"),
        answer: Answer::Mam(never_bob)
    }));
}

#[test]
fn the_archive_is_trimmed_to_its_cap() {
    let mut config = EngineConfig::for_domain("x");
    config.limits.max_archive_per_user = 100;
    let mut h = Harness::with_users(config, &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    h.login("bob@x", "pc");
    for i in 0..600 {
        h.chat(a, "bob@x", &format!("m{i}"));
    }
    let kept = bodies_in(&h, "alice@x");
    // Trimmed in steps, so between the cap and the cap plus one step remain, always the newest.
    assert!((100..=100 + 256).contains(&kept.len()), "{}", kept.len());
    assert_eq!(kept.last().map(String::as_str), Some("m599"));
}
