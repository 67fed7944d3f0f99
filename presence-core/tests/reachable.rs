//! Sessions reachable for messages while unavailable (`Input::Reachable`): a registered SIP phone that appears
//! offline still gets the user's bare-address messages (RFC 3428 routes MESSAGE by registration, not by presence),
//! while every watcher keeps seeing the user unavailable; a publish-only endpoint never takes them (DESIGN §4).
mod common;

use common::*;
use presence_core::compose::{Composed, PresenceState, Show};
use presence_core::roster::SubscriptionAction;
use presence_core::stanza::Stanza;
use presence_core::store::OfflineStore;
use presence_core::{
    EngineConfig, Input, Output, SessionId, WatchId, WatchKind, WatchState, WatchView,
};

const W: WatchId = WatchId(3);

/// bob watches alice (an XMPP subscription from his client and a SIP watch); alice's phone session `sip` is bound,
/// has never been available, and the shell says whether it is `reachable`. Outputs cleared.
fn appear_offline_phone(reachable: bool) -> (Harness, SessionId, SessionId) {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let b = h.login("bob@x", "pc");
    h.subscribe(b, "alice@x", SubscriptionAction::Subscribe);
    h.input(Input::Watch {
        watch: W,
        watcher: j("bob@x"),
        target: j("alice@x"),
        kind: WatchKind::Presence,
    });
    let phone = h.bind("alice@x", "sip");
    h.input(Input::Reachable {
        session: phone,
        reachable,
    });
    (h, phone, b)
}

/// The composed presence of every watch report emitted so far (taken).
fn watch_reports(h: &mut Harness) -> Vec<PresenceState> {
    let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut h.other)
        .into_iter()
        .partition(|o| matches!(o, Output::Watch { .. }));
    h.other = rest;
    mine.into_iter()
        .filter_map(|o| match o {
            Output::Watch {
                state: WatchState::Active(WatchView::Presence(Composed { state, .. })),
                ..
            } => Some(state),
            _ => None,
        })
        .collect()
}

fn errors(stanzas: &[Stanza]) -> usize {
    stanzas
        .iter()
        .filter(|s| matches!(s, Stanza::Error(_)))
        .count()
}

#[test]
fn appear_offline_registered_phone_takes_bare_messages() {
    let (mut h, phone, b) = appear_offline_phone(true);
    h.clear();
    h.chat(b, "alice@x", "are you there?");
    assert_eq!(bodies(&h.take(phone)), ["are you there?"]);
    assert_eq!(errors(&h.take(b)), 0);
    assert!(
        h.store.offline(&j("alice@x")).unwrap().is_empty(),
        "delivered, not held"
    );
}

#[test]
fn watchers_still_see_an_appear_offline_phone_unavailable() {
    let (mut h, phone, b) = appear_offline_phone(false);
    assert_eq!(
        watch_reports(&mut h).last(),
        Some(&PresenceState::Unavailable)
    );
    h.clear();
    h.input(Input::Reachable {
        session: phone,
        reachable: true,
    });
    // Nothing broadcast: bob's client hears no presence, his SIP watch gets no new report.
    assert!(
        presences(&h.take(b)).is_empty(),
        "reachability is not presence"
    );
    assert!(
        watch_reports(&mut h).is_empty(),
        "no watch report for a reachability change"
    );
    h.chat(b, "alice@x", "ping");
    assert_eq!(bodies(&h.take(phone)), ["ping"]);
    // The phone announces unavailable again (a SIP publication of `closed`): still reachable, still unavailable.
    h.input(Input::Presence {
        session: phone,
        to: None,
        presence: None,
    });
    assert!(!saw_available(&h.take(b), "alice@x/sip"));
    assert!(
        watch_reports(&mut h)
            .iter()
            .all(|s| *s == PresenceState::Unavailable)
    );
    h.chat(b, "alice@x", "pong");
    assert_eq!(bodies(&h.take(phone)), ["pong"]);
}

#[test]
fn unreachable_unavailable_session_does_not_take_messages() {
    // A publish-only SIP endpoint (no registered contact): bound, unavailable, not reachable. The message is held.
    let (mut h, phone, b) = appear_offline_phone(false);
    h.clear();
    h.chat(b, "alice@x", "held");
    assert!(bodies(&h.take(phone)).is_empty());
    assert_eq!(h.store.offline(&j("alice@x")).unwrap().len(), 1);
}

#[test]
fn negative_priority_publish_only_endpoint_does_not_take_messages() {
    // The SIP shell's publish-only endpoint: available (it published open) with priority -1, not reachable.
    let (mut h, phone, b) = appear_offline_phone(false);
    h.presence(phone, Show::Available, -1);
    h.clear();
    h.chat(b, "alice@x", "held");
    assert!(bodies(&h.take(phone)).is_empty());
    assert_eq!(h.store.offline(&j("alice@x")).unwrap().len(), 1);
}

#[test]
fn held_messages_go_to_a_session_when_it_becomes_reachable() {
    let (mut h, phone, b) = appear_offline_phone(false);
    h.chat(b, "alice@x", "one");
    h.chat(b, "alice@x", "two");
    assert_eq!(h.store.offline(&j("alice@x")).unwrap().len(), 2);
    h.clear();
    h.input(Input::Reachable {
        session: phone,
        reachable: true,
    });
    let got = h.take(phone);
    assert_eq!(bodies(&got), ["one", "two"]);
    assert!(
        got.iter().all(|s| matches!(
            s,
            Stanza::Message {
                delayed: Some(_),
                ..
            }
        )),
        "held messages keep their stamp: {got:?}"
    );
    assert!(h.store.offline(&j("alice@x")).unwrap().is_empty());
    assert_eq!(h.engine.offline_total(), 0);
}

#[test]
fn reachable_phone_and_available_xmpp_session_both_get_the_message() {
    let (mut h, phone, b) = appear_offline_phone(true);
    let desk = h.login("alice@x", "desk");
    h.clear();
    h.chat(b, "alice@x", "to all");
    assert_eq!(bodies(&h.take(phone)), ["to all"]);
    assert_eq!(bodies(&h.take(desk)), ["to all"]);
}

#[test]
fn session_no_longer_reachable_stops_taking_messages() {
    let (mut h, phone, b) = appear_offline_phone(true);
    h.input(Input::Reachable {
        session: phone,
        reachable: false,
    });
    h.clear();
    h.chat(b, "alice@x", "later");
    assert!(bodies(&h.take(phone)).is_empty());
    assert_eq!(h.store.offline(&j("alice@x")).unwrap().len(), 1);
}
