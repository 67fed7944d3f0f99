//! Roster versioning (RFC 6121 §2.6): a client that cached the current version gets an empty result, pushes carry
//! the version, and the version never goes back — not across an eviction, not across a restart.
mod common;

use common::*;
use presence_core::feature::{Answer, Call, Push, roster};
use presence_core::roster::{ItemDetails, RosterItem};
use presence_core::stanza::Stanza;
use presence_core::{Engine, EngineConfig, Input, SessionId};

/// Asks for the roster with the cached version `known`; what the engine answered.
fn get(h: &mut Harness, id: SessionId, known: Option<u64>) -> roster::Answer {
    h.input(Input::Request {
        session: id,
        request: req("get"),
        call: Call::Roster(roster::Call::Get { known }),
    });
    h.take(id)
        .into_iter()
        .find_map(|s| match s {
            Stanza::Answer {
                answer: Answer::Roster(a),
                ..
            } => Some(a),
            _ => None,
        })
        .expect("a roster answer")
}

fn add(h: &mut Harness, id: SessionId, contact: &str) {
    h.input(Input::Request {
        session: id,
        request: req("set"),
        call: Call::Roster(roster::Call::Set {
            jid: j(contact),
            details: ItemDetails::default(),
        }),
    });
}

fn jids(items: &[RosterItem]) -> Vec<&str> {
    items.iter().map(|i| i.jid.as_str()).collect()
}

#[test]
fn a_current_version_gets_an_empty_answer_and_a_stale_one_the_whole_roster() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    let a = h.bind("alice@x", "pc");
    let first = get(&mut h, a, None);
    assert_eq!(first.items, Some(vec![]));
    add(&mut h, a, "bob@x");
    // The push carries the version after the change.
    let pushed = h
        .take(a)
        .into_iter()
        .find_map(|s| match s {
            Stanza::Push(Push::Roster(p)) => Some(p.version),
            _ => None,
        })
        .expect("a push");
    assert!(pushed > first.version);
    let current = get(&mut h, a, Some(pushed));
    assert_eq!((current.items, current.version), (None, pushed));
    let stale = get(&mut h, a, Some(first.version));
    assert_eq!(stale.version, pushed);
    assert_eq!(jids(stale.items.as_deref().unwrap()), ["bob@x"]);
}

#[test]
fn an_empty_answer_still_makes_the_session_interested_in_pushes() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    let a = h.bind("alice@x", "pc");
    let v = get(&mut h, a, None).version;
    let b = h.bind("alice@x", "phone");
    assert_eq!(get(&mut h, b, Some(v)).items, None);
    add(&mut h, a, "bob@x");
    assert!(
        h.take(b)
            .iter()
            .any(|s| matches!(s, Stanza::Push(Push::Roster(_))))
    );
}

#[test]
fn the_version_survives_eviction_and_restart_and_only_grows() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    let a = h.bind("alice@x", "pc");
    add(&mut h, a, "bob@x");
    add(&mut h, a, "carol@x");
    let cached = get(&mut h, a, None);
    // Evicted: the last session ends and the user leaves memory; loaded again, the client's cache is current.
    h.logout(a);
    let a = h.bind("alice@x", "pc");
    assert_eq!(get(&mut h, a, Some(cached.version)).items, None);
    // Restarted: a new engine over the same store.
    h.engine = Engine::new(EngineConfig::for_domain("x"));
    let a = h.bind("alice@x", "pc");
    assert_eq!(get(&mut h, a, Some(cached.version)).items, None);
    // A change after the restart gets a version no client can hold from before it, so a client that cached the
    // old roster is sent the new one (a counter starting again at 0 would reach `cached.version` and match).
    h.input(Input::Request {
        session: a,
        request: req("rm"),
        call: Call::Roster(roster::Call::Remove { jid: j("carol@x") }),
    });
    h.clear();
    let now = get(&mut h, a, Some(cached.version));
    assert!(now.version > cached.version);
    assert_eq!(jids(now.items.as_deref().unwrap()), ["bob@x"]);
}

#[test]
fn the_version_is_not_one_of_the_users_documents() {
    let mut config = EngineConfig::for_domain("x");
    config.limits.max_documents_per_user = 1;
    let mut h = Harness::with_users(config.clone(), &["alice@x"]);
    let a = h.bind("alice@x", "pc");
    add(&mut h, a, "bob@x");
    h.logout(a);
    let a = h.bind("alice@x", "pc");
    h.clear();
    // With the version stored, the user's one document still fits.
    h.input(Input::Request {
        session: a,
        request: req("vcard"),
        call: Call::VCard(presence_core::feature::vcard::Call::Set {
            xml: "<vCard xmlns='vcard-temp'/>".into(),
            photo: presence_core::feature::vcard::SetPhoto::None,
        }),
    });
    assert!(h.take(a).iter().any(|s| matches!(
        s,
        Stanza::Answer {
            answer: Answer::Done,
            ..
        }
    )));
}
