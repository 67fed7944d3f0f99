//! Session binding: resources, conflicts, limits, unknown users.
mod common;

use common::*;
use presence_core::engine::{BindError, CloseReason};
use presence_core::{EngineConfig, Input, Output, SessionId};

#[test]
fn binds_the_requested_resource_or_picks_one() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    h.bind("alice@x", "laptop");
    h.input(Input::OpenSession {
        session: SessionId(99),
        user: j("alice@x"),
        resource: None,
    });
    let bound: Vec<String> = h
        .other
        .iter()
        .filter_map(|o| match o {
            Output::Bound { jid, .. } => Some(jid.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(bound.len(), 2);
    assert_eq!(bound[0], "alice@x/laptop");
    assert!(bound[1].starts_with("alice@x/") && bound[1] != bound[0]);
}

#[test]
fn same_resource_replaces_the_old_session() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    h.login("alice@x", "r");
    h.login("bob@x", "r");
    h.input(Input::Subscription {
        session: SessionId(2),
        to: j("alice@x"),
        action: presence_core::roster::SubscriptionAction::Subscribe,
    });
    h.clear();
    let second = h.login("alice@x", "r");
    assert!(h.other.contains(&Output::Close {
        session: SessionId(1),
        reason: CloseReason::Conflict
    }));
    assert_eq!(
        h.engine.sessions_of(&j("alice@x")),
        vec![(second, j("alice@x").with_resource("r").unwrap())]
    );
    // Bob saw the old session leave and the new one arrive.
    let bob = h.take(SessionId(2));
    assert!(saw_unavailable(&bob, "alice@x/r"));
    assert!(saw_available(&bob, "alice@x/r"));
}

#[test]
fn session_limit_refuses_with_resource_constraint() {
    let mut config = EngineConfig::for_domain("x");
    config.limits.max_sessions_per_user = 2;
    let mut h = Harness::with_users(config, &["alice@x"]);
    h.bind("alice@x", "a");
    h.bind("alice@x", "b");
    let third = h.bind("alice@x", "c");
    assert!(h.other.iter().any(|o| matches!(o, Output::BindRefused { session, reason: BindError::TooManySessions { limit: 2, .. } } if *session == third)));
    assert_eq!(h.engine.sessions_of(&j("alice@x")).len(), 2);
}

#[test]
fn unknown_user_is_refused() {
    let mut h = Harness::new(EngineConfig::for_domain("x"));
    let id = h.bind("ghost@x", "r");
    assert!(h.other.contains(&Output::BindRefused {
        session: id,
        reason: BindError::NoSuchUser(j("ghost@x"))
    }));
}

#[test]
fn bind_waits_for_the_store_without_blocking_others() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let bob = h.login("bob@x", "r");
    h.hold_loads = true;
    let alice = h.bind("alice@x", "r");
    assert_eq!(h.pending_loads, vec![j("alice@x")]);
    assert!(
        !h.other
            .iter()
            .any(|o| matches!(o, Output::Bound { session, .. } if *session == alice))
    );
    // Bob keeps working while Alice's record loads.
    h.chat(bob, "bob@x/r", "to myself");
    assert_eq!(bodies(&h.take(bob)), ["to myself"]);
    h.release_loads();
    assert!(
        h.other
            .iter()
            .any(|o| matches!(o, Output::Bound { session, .. } if *session == alice))
    );
}

#[test]
fn bad_resource_is_refused() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    let id = h.bind("alice@x", "bad\u{7}");
    assert!(h.other.iter().any(|o| matches!(o, Output::BindRefused { session, reason: BindError::BadResource(_) } if *session == id)));
}

#[test]
fn a_removed_account_loses_its_sessions_and_is_forgotten() {
    use presence_core::stanza::{ErrorCondition, Stanza};
    use presence_core::store::AccountStore;
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "pc");
    h.clear();
    // As `presenced user del` does: out of the store, then the engine is told.
    assert!(h.store.remove_account(&j("alice@x")).expect("store"));
    h.input(Input::AccountRemoved { user: j("alice@x") });
    assert!(
        h.other.iter().any(|o| matches!(o,
            Output::Close { session, reason: CloseReason::AccountRemoved } if *session == a)),
        "{:?}",
        h.other
    );
    // Forgotten: a message for alice is refused as for any address without an account.
    h.clear();
    h.chat(b, "alice@x", "are you there?");
    let got = h.take(b);
    assert!(
        matches!(&got[..], [Stanza::Error(e)] if e.condition == ErrorCondition::ServiceUnavailable),
        "{got:?}"
    );
}
