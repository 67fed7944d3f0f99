//! Work that waits for a user's load: per-user order across many outstanding loads, and a failed load
//! (`Input::LoadFailed`) failing that work with temporary errors, never as a missing account.
mod common;

use std::collections::HashMap;

use common::*;
use presence_core::engine::{AddRefusal, BindError};
use presence_core::message::{Message, MessageKind};
use presence_core::roster::{ItemDetails, Link, SubscriptionAction};
use presence_core::stanza::{ErrorAbout, ErrorCondition, Stanza, StanzaError};
use presence_core::store::{OfflineStore, RosterStore};
use presence_core::{
    EngineConfig, Input, Output, SessionId, WatchEnd, WatchId, WatchKind, WatchState,
};

/// Many users each with several pieces of queued work, their loads answered in the reverse order of the
/// requests: every user gets their work in the order it was handed in, and a load releases nobody else's work.
#[test]
fn many_loads_answered_in_reverse_release_each_users_work_in_order() {
    const USERS: usize = 2_000;
    let names: Vec<String> = (0..USERS).map(|i| format!("u{i}@x")).collect();
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["sender@x"]);
    for n in &names {
        h.account(n);
    }
    let s = h.login("sender@x", "pc");
    h.clear();
    h.hold_loads = true;
    // Round 0 binds each user's session; rounds 1 and 2 send to that session's full address, so a message
    // released before its bind finds no session and is held offline instead of delivered.
    let sessions: Vec<SessionId> = names.iter().map(|n| h.bind(n, "r")).collect();
    for round in 1..=2 {
        for n in &names {
            h.chat(s, &format!("{n}/r"), &format!("{n}-{round}"));
        }
    }
    assert_eq!(
        h.pending_loads,
        names.iter().map(|n| j(n)).collect::<Vec<_>>(),
        "one load per user, asked for by that user's first work"
    );
    assert!(h.delivered.is_empty() && h.other.is_empty());

    let mut loads = std::mem::take(&mut h.pending_loads);
    h.hold_loads = false;
    loads.reverse();
    // The first answer releases that user's work only.
    let first = loads.remove(0);
    h.answer_load(first.clone());
    let last = *sessions.last().unwrap();
    assert!(h.delivered.iter().all(|(id, _)| *id == last));
    assert_eq!(
        bodies(&h.take(last)),
        [format!("{first}-1"), format!("{first}-2")]
    );
    for user in loads {
        h.answer_load(user);
    }

    let mut got: HashMap<SessionId, Vec<Stanza>> = HashMap::new();
    for (id, stanza) in std::mem::take(&mut h.delivered) {
        got.entry(id).or_default().push(stanza);
    }
    let bound = h
        .other
        .iter()
        .filter(|o| matches!(o, Output::Bound { .. }))
        .count();
    assert_eq!(bound, USERS);
    for (n, id) in names.iter().zip(&sessions).take(USERS - 1) {
        let mine = got.remove(id).unwrap_or_default();
        assert_eq!(bodies(&mine), [format!("{n}-1"), format!("{n}-2")], "{n}");
    }
    assert!(got.is_empty(), "nothing for anyone else: {got:?}");
    assert_eq!(h.engine.offline_total(), 0, "no message overtook its bind");
}

/// The loads asked for so far, answered by nobody yet.
fn held(h: &mut Harness) -> Vec<presence_core::BareJid> {
    std::mem::take(&mut h.pending_loads)
}

/// Takes the watch reports emitted so far.
fn reports(h: &mut Harness) -> Vec<(WatchId, WatchState)> {
    let mut out = Vec::new();
    h.other.retain(|o| match o {
        Output::Watch { watch, state } => {
            out.push((*watch, state.clone()));
            false
        }
        _ => true,
    });
    out
}

/// The condition and subject of every error among `stanzas`.
fn errors(stanzas: &[Stanza]) -> Vec<&StanzaError> {
    stanzas
        .iter()
        .filter_map(|s| match s {
            Stanza::Error(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn a_bind_whose_load_fails_is_refused_as_temporary_and_a_retry_binds() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "carol@x"]);
    h.hold_loads = true;
    let first = h.bind("alice@x", "pc");
    let carol = h.bind("carol@x", "pc");
    assert_eq!(held(&mut h), [j("alice@x"), j("carol@x")]);
    h.fail_load(j("alice@x"));
    assert_eq!(
        h.other,
        [Output::BindRefused {
            session: first,
            reason: BindError::StoreUnavailable(j("alice@x")),
        }]
    );
    h.other.clear();
    // The engine keeps running: another user's load still releases that user's work.
    h.answer_load(j("carol@x"));
    assert!(matches!(&h.other[..], [Output::Bound { session, .. }] if *session == carol));
    h.other.clear();
    // The retry asks the store again, and binds once the store answers.
    let second = h.bind("alice@x", "pc");
    assert_eq!(held(&mut h), [j("alice@x")]);
    h.answer_load(j("alice@x"));
    assert!(matches!(&h.other[..], [Output::Bound { session, .. }] if *session == second));
}

#[test]
fn a_failed_load_is_not_taken_for_a_missing_account() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    h.hold_loads = true;
    h.input(Input::FromRemote(Stanza::Subscription {
        from: j("p@far.com"),
        to: j("alice@x"),
        action: SubscriptionAction::Subscribe,
    }));
    let s = h.bind("alice@x", "pc");
    assert_eq!(held(&mut h), [j("alice@x")]);
    h.fail_load(j("alice@x"));
    // A missing account would deny the request with `unsubscribed` and refuse the bind with NoSuchUser.
    assert_eq!(
        h.routed,
        [Stanza::Error(StanzaError {
            to: jid("p@far.com"),
            about: ErrorAbout::Presence { to: jid("alice@x") },
            condition: ErrorCondition::InternalServerError,
            text: Some("the data of alice@x could not be loaded; try again later".into()),
        })]
    );
    assert_eq!(
        h.other,
        [Output::BindRefused {
            session: s,
            reason: BindError::StoreUnavailable(j("alice@x")),
        }]
    );
    // Nor is she remembered as missing: the next work for her asks the store again.
    h.input(Input::FromRemote(Stanza::Subscription {
        from: j("p@far.com"),
        to: j("alice@x"),
        action: SubscriptionAction::Subscribe,
    }));
    assert_eq!(held(&mut h), [j("alice@x")]);
    assert!(h.store.roster(&j("alice@x")).unwrap().is_empty());
}

#[test]
fn a_message_to_a_user_whose_load_fails_gets_a_wait_error_and_nothing_is_stored() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let b = h.login("bob@x", "phone");
    h.clear();
    h.hold_loads = true;
    h.chat(b, "alice@x", "m1");
    // An error is never answered with an error (no loops).
    h.input(Input::Message {
        session: b,
        to: jid("alice@x"),
        message: Message {
            id: Some("bounce".into()),
            kind: MessageKind::Error,
            ..Message::default()
        },
    });
    h.chat(b, "alice@x", "m2");
    h.input(Input::FromRemote(Stanza::Message {
        from: jid("p@far.com/x"),
        to: jid("alice@x"),
        message: chat("far"),
        delayed: None,
    }));
    assert_eq!(held(&mut h), [j("alice@x")]);
    h.fail_load(j("alice@x"));

    let mine = h.take(b);
    let got: Vec<_> = errors(&mine)
        .into_iter()
        .map(|e| (e.about.clone(), e.condition))
        .collect();
    let about = |id: &str| ErrorAbout::Message {
        id: Some(id.into()),
        to: jid("alice@x"),
    };
    assert_eq!(
        got,
        [
            (about("id-m1"), ErrorCondition::InternalServerError),
            (about("id-m2"), ErrorCondition::InternalServerError),
        ],
        "in order, and none for the error message"
    );
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert!(errors(&mine).iter().all(|e| e.to == jid("bob@x/phone")
        && e.text.as_deref() == Some("the data of alice@x could not be loaded; try again later")));
    assert!(matches!(
        &h.routed[..],
        [Stanza::Error(StanzaError {
            to,
            condition: ErrorCondition::InternalServerError,
            about: ErrorAbout::Message { .. },
            ..
        })] if *to == jid("p@far.com/x")
    ));
    assert!(h.store.offline(&j("alice@x")).unwrap().is_empty());
    assert_eq!(h.engine.offline_total(), 0);
}

#[test]
fn a_subscription_to_a_user_whose_load_fails_gets_a_wait_error_and_stays_pending() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let b = h.login("bob@x", "phone");
    h.clear();
    h.hold_loads = true;
    h.subscribe(b, "alice@x", SubscriptionAction::Subscribe);
    assert_eq!(held(&mut h), [j("alice@x")]);
    h.fail_load(j("alice@x"));
    let mine = h.take(b);
    assert_eq!(
        errors(&mine)
            .iter()
            .map(|e| (e.about.clone(), e.condition))
            .collect::<Vec<_>>(),
        [(
            ErrorAbout::Presence { to: jid("alice@x") },
            ErrorCondition::InternalServerError
        )]
    );
    // Not denied: Bob's request stays pending, so sending it again can still succeed.
    assert_eq!(
        h.stored_subscription("bob@x", "alice@x").outbound,
        Link::Pending
    );
    assert!(h.store.roster(&j("alice@x")).unwrap().is_empty());
}

#[test]
fn a_watch_whose_target_fails_to_load_ends_with_store_unavailable_and_is_forgotten() {
    let mut h = Harness::with_users(
        EngineConfig::for_domain("x"),
        &["alice@x", "bob@x", "carol@x"],
    );
    h.hold_loads = true;
    for (id, watcher) in [(1, "bob@x"), (2, "carol@x")] {
        h.input(Input::Watch {
            watch: WatchId(id),
            watcher: j(watcher),
            target: j("alice@x"),
            kind: WatchKind::Presence,
        });
    }
    // A watch closed before the failure is nobody's concern any more.
    h.input(Input::Unwatch { watch: WatchId(2) });
    assert_eq!(held(&mut h), [j("alice@x")]);
    h.fail_load(j("alice@x"));
    assert_eq!(
        reports(&mut h),
        [(
            WatchId(1),
            WatchState::Terminated(WatchEnd::StoreUnavailable)
        )]
    );
    // Forgotten: once Alice signs in and out, no watch keeps her in memory.
    h.hold_loads = false;
    let a = h.login("alice@x", "pc");
    h.logout(a);
    assert!(reports(&mut h).is_empty());
    h.hold_loads = true;
    h.bind("alice@x", "pc");
    assert_eq!(held(&mut h), [j("alice@x")]);
}

#[test]
fn a_watch_whose_watcher_fails_to_load_ends_with_store_unavailable() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    h.login("alice@x", "pc");
    h.hold_loads = true;
    // Bob has no standing with Alice, so the watch must subscribe for him, which needs Bob loaded.
    h.input(Input::Watch {
        watch: WatchId(1),
        watcher: j("bob@x"),
        target: j("alice@x"),
        kind: WatchKind::Presence,
    });
    assert_eq!(held(&mut h), [j("bob@x")]);
    h.fail_load(j("bob@x"));
    assert_eq!(
        reports(&mut h),
        [(
            WatchId(1),
            WatchState::Terminated(WatchEnd::StoreUnavailable)
        )]
    );
    assert_eq!(
        h.stored_subscription("alice@x", "bob@x").inbound,
        Link::Off,
        "no request was sent for Bob"
    );
}

#[test]
fn a_bulk_add_for_a_user_whose_load_fails_refuses_every_contact() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    h.hold_loads = true;
    h.input(Input::AddContacts {
        user: j("alice@x"),
        contacts: vec![
            (j("c1@y"), ItemDetails::default()),
            (j("c2@y"), ItemDetails::default()),
        ],
    });
    assert_eq!(held(&mut h), [j("alice@x")]);
    h.fail_load(j("alice@x"));
    assert_eq!(
        h.other,
        [Output::ContactsAdded {
            user: j("alice@x"),
            added: vec![],
            refused: vec![
                AddRefusal::StoreUnavailable(j("c1@y")),
                AddRefusal::StoreUnavailable(j("c2@y")),
            ],
        }]
    );
    assert!(h.routed.is_empty(), "no subscription request was sent");
    assert!(h.store.roster(&j("alice@x")).unwrap().is_empty());
}
