//! Watches (SIP SUBSCRIBE dialogs): composed presence and watcher lists, authorised by roster and policy
//! (DESIGN §2-§3).
mod common;

use common::*;
use presence_core::compose::{
    Composed, EndpointPresence, LineState, ManualState, ManualStatus, PresenceState, Show,
};
use presence_core::feature::{Call, Push, roster};
use presence_core::policy::{PolicyEntry, UserPolicy};
use presence_core::roster::{Link, Subscription, SubscriptionAction};
use presence_core::stanza::{RequestId, Stanza};
use presence_core::{
    EngineConfig, Input, Output, SessionId, WatchEnd, WatchId, WatchKind, WatchState, WatchView,
    WatcherInfo, WatcherStatus,
};

const W: WatchId = WatchId(7);

/// Takes the watch reports emitted so far.
fn reports(h: &mut Harness) -> Vec<(WatchId, WatchState)> {
    let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut h.other)
        .into_iter()
        .partition(|o| matches!(o, Output::Watch { .. }));
    h.other = rest;
    mine.into_iter()
        .map(|o| match o {
            Output::Watch { watch, state } => (watch, state),
            _ => unreachable!(),
        })
        .collect()
}

fn watch(h: &mut Harness, id: WatchId, watcher: &str, target: &str, kind: WatchKind) {
    h.input(Input::Watch {
        watch: id,
        watcher: j(watcher),
        target: j(target),
        kind,
    });
}

fn presence_watch(h: &mut Harness, watcher: &str, target: &str) {
    watch(h, W, watcher, target, WatchKind::Presence);
}

fn active(c: Composed) -> WatchState {
    WatchState::Active(WatchView::Presence(c))
}

fn unavailable() -> WatchState {
    active(Composed::UNAVAILABLE)
}

fn composed_state(s: &WatchState) -> PresenceState {
    match s {
        WatchState::Active(WatchView::Presence(c)) => c.state,
        other => panic!("not a presence view: {other:?}"),
    }
}

fn manual_off() -> EngineConfig {
    EngineConfig {
        auto_authorize: false,
        ..EngineConfig::for_domain("x")
    }
}

/// Alice online (as `pc`) and Bob subscribed to her both ways; Bob has no session of his own.
fn mutual() -> (Harness, SessionId) {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    h.subscribe(b, "alice@x", SubscriptionAction::Subscribe);
    h.subscribe(a, "bob@x", SubscriptionAction::Subscribe);
    h.logout(b);
    h.clear();
    (h, a)
}

/// `mutual()` with Bob watching Alice and the first report taken.
fn watching() -> (Harness, SessionId) {
    let (mut h, a) = mutual();
    presence_watch(&mut h, "bob@x", "alice@x");
    assert_eq!(reports(&mut h).len(), 1);
    (h, a)
}

#[test]
fn mutual_contact_starts_active_with_the_composed_presence() {
    let (mut h, a) = mutual();
    h.presence(a, Show::Away, 0);
    h.clear();
    presence_watch(&mut h, "bob@x", "alice@x");
    let r = reports(&mut h);
    assert_eq!(r, [(W, active(h.engine.composed(&j("alice@x"))))]);
    assert_eq!(composed_state(&r[0].1), PresenceState::Idle);
    // Nothing was asked of anyone: the roster already authorised Bob.
    assert!(h.take(a).is_empty());
    assert!(h.routed.is_empty());
}

#[test]
fn a_stranger_is_subscribed_for_and_active_at_once_under_automatic_authorization() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    h.clear();
    presence_watch(&mut h, "bob@x", "alice@x");
    let r = reports(&mut h);
    assert_eq!(r.len(), 1, "one report, not Pending then Active: {r:?}");
    assert_eq!(composed_state(&r[0].1), PresenceState::Available);
    // Exactly as if Bob's client had subscribed: both rosters agree.
    assert_eq!(h.stored_subscription("bob@x", "alice@x").outbound, Link::On);
    assert_eq!(h.stored_subscription("alice@x", "bob@x").inbound, Link::On);
    // Alice's client learns of her new watcher through her roster.
    assert!(
        h.take(a)
            .iter()
            .any(|s| matches!(s, Stanza::Push(Push::Roster(roster::Push { .. }))))
    );
}

#[test]
fn pending_until_the_target_approves_then_active() {
    let mut h = Harness::with_users(manual_off(), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    h.clear();
    presence_watch(&mut h, "bob@x", "alice@x");
    assert_eq!(reports(&mut h), [(W, WatchState::Pending)]);
    // The request reached Alice's client like any other.
    assert!(h.take(a).iter().any(|s| matches!(
        s,
        Stanza::Subscription { from, action: SubscriptionAction::Subscribe, .. } if *from == j("bob@x")
    )));
    h.subscribe(a, "bob@x", SubscriptionAction::Subscribed);
    let r = reports(&mut h);
    assert_eq!(r, [(W, active(h.engine.composed(&j("alice@x"))))]);
    assert_eq!(composed_state(&r[0].1), PresenceState::Available);
}

#[test]
fn a_denied_request_terminates_the_watch_and_it_is_forgotten() {
    let mut h = Harness::with_users(manual_off(), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    presence_watch(&mut h, "bob@x", "alice@x");
    assert_eq!(reports(&mut h), [(W, WatchState::Pending)]);
    h.subscribe(a, "bob@x", SubscriptionAction::Unsubscribed);
    assert_eq!(
        reports(&mut h),
        [(W, WatchState::Terminated(WatchEnd::Rejected))]
    );
    h.presence(a, Show::Dnd, 0);
    h.subscribe(a, "bob@x", SubscriptionAction::Subscribed);
    assert!(reports(&mut h).is_empty());
}

#[test]
fn losing_the_subscription_later_terminates_the_watch() {
    // The target removes the watcher from its roster.
    let (mut h, a) = watching();
    h.input(Input::Request {
        session: a,
        request: RequestId("rm".into()),
        call: Call::Roster(roster::Call::Remove { jid: j("bob@x") }),
    });
    assert_eq!(
        reports(&mut h),
        [(W, WatchState::Terminated(WatchEnd::Rejected))]
    );

    // The watcher's own client unsubscribes.
    let (mut h, _a) = watching();
    let b = h.login("bob@x", "phone");
    reports(&mut h);
    h.subscribe(b, "alice@x", SubscriptionAction::Unsubscribe);
    assert_eq!(
        reports(&mut h),
        [(W, WatchState::Terminated(WatchEnd::Rejected))]
    );
}

#[test]
fn every_kind_of_presence_change_is_reported_and_an_unchanged_one_is_not() {
    let (mut h, a) = watching();
    h.presence(a, Show::Dnd, 0);
    let r = reports(&mut h);
    assert_eq!(r.len(), 1);
    assert_eq!(composed_state(&r[0].1), PresenceState::Dnd);

    h.presence(a, Show::Available, 0);
    assert_eq!(
        composed_state(&reports(&mut h)[0].1),
        PresenceState::Available
    );
    // The same presence again recomposes to the same thing.
    h.presence(a, Show::Available, 0);
    assert!(reports(&mut h).is_empty());
    // A second session that composes to the same thing is no news for the watcher either.
    let second = h.bind("alice@x", "tablet");
    h.presence(second, Show::Available, -1);
    assert!(reports(&mut h).is_empty());

    h.input(Input::PhoneLine {
        user: j("alice@x"),
        line: "1001".into(),
        state: LineState::OnThePhone,
    });
    let r = reports(&mut h);
    assert_eq!(r.len(), 1);
    assert_eq!(composed_state(&r[0].1), PresenceState::OnThePhone);
    h.input(Input::PhoneLine {
        user: j("alice@x"),
        line: "1001".into(),
        state: LineState::Idle,
    });
    assert_eq!(
        composed_state(&reports(&mut h)[0].1),
        PresenceState::Available
    );

    h.input(Input::SetManualStatus {
        user: j("alice@x"),
        status: Some(ManualStatus {
            state: ManualState::Dnd,
            text: Some("writing".into()),
        }),
    });
    let r = reports(&mut h);
    assert_eq!(r, [(W, active(h.engine.composed(&j("alice@x"))))]);
    assert_eq!(composed_state(&r[0].1), PresenceState::Dnd);

    // Signing out everywhere is a change too: the watcher sees her offline, and the watch lives on.
    h.logout(second);
    h.logout(a);
    assert_eq!(reports(&mut h), [(W, unavailable())]);
}

#[test]
fn polite_blocking_shows_unavailable_and_unblocking_restores_presence() {
    let (mut h, _a) = watching();
    let blocked = UserPolicy {
        block: vec![PolicyEntry::Jid(j("bob@x"))],
        ..UserPolicy::default()
    };
    h.input(Input::SetPolicy {
        user: j("alice@x"),
        policy: blocked.clone(),
    });
    assert_eq!(reports(&mut h), [(W, unavailable())]);
    // Still hidden, not ended: her changes do not leak.
    h.input(Input::SetManualStatus {
        user: j("alice@x"),
        status: Some(ManualStatus {
            state: ManualState::Busy,
            text: None,
        }),
    });
    assert!(reports(&mut h).is_empty());
    h.input(Input::SetPolicy {
        user: j("alice@x"),
        policy: UserPolicy::default(),
    });
    let r = reports(&mut h);
    assert_eq!(r, [(W, active(h.engine.composed(&j("alice@x"))))]);
    assert_eq!(composed_state(&r[0].1), PresenceState::Busy);

    // Availability sharing off hides her the same way.
    h.input(Input::SetPolicy {
        user: j("alice@x"),
        policy: UserPolicy {
            share_availability: false,
            ..UserPolicy::default()
        },
    });
    assert_eq!(reports(&mut h), [(W, unavailable())]);
}

#[test]
fn a_blocked_stranger_is_politely_shown_unavailable_not_left_pending() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    h.input(Input::SetPolicy {
        user: j("alice@x"),
        policy: UserPolicy {
            block: vec![PolicyEntry::Jid(j("bob@x"))],
            ..UserPolicy::default()
        },
    });
    presence_watch(&mut h, "bob@x", "alice@x");
    assert_eq!(reports(&mut h), [(W, unavailable())]);
    // Alice was asked (DESIGN §3: a blocked local requester is asked, not refused).
    assert_eq!(
        h.stored_subscription("alice@x", "bob@x").inbound,
        Link::Pending
    );
    h.presence(a, Show::Dnd, 0);
    assert!(reports(&mut h).is_empty());
}

#[test]
fn unwatch_stops_reports_and_releases_the_target() {
    let (mut h, a) = watching();
    h.input(Input::Unwatch { watch: W });
    assert!(reports(&mut h).is_empty());
    h.presence(a, Show::Dnd, 0);
    h.logout(a);
    assert!(reports(&mut h).is_empty());
    // With no session and no watch, Alice is no longer held in memory.
    h.hold_loads = true;
    h.bind("alice@x", "pc");
    assert_eq!(h.pending_loads, [j("alice@x")]);
}

#[test]
fn unwatch_before_the_target_is_loaded_wins() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    h.hold_loads = true;
    presence_watch(&mut h, "bob@x", "alice@x");
    h.input(Input::Unwatch { watch: W });
    h.release_loads();
    assert!(reports(&mut h).is_empty());
    assert_eq!(
        h.stored_subscription("bob@x", "alice@x"),
        Subscription::NONE
    );
}

#[test]
fn a_second_watch_with_the_same_id_replaces_the_first() {
    let mut h = Harness::with_users(
        EngineConfig::for_domain("x"),
        &["alice@x", "bob@x", "carol@x"],
    );
    let a = h.login("alice@x", "pc");
    let c = h.login("carol@x", "pc");
    presence_watch(&mut h, "bob@x", "alice@x");
    presence_watch(&mut h, "bob@x", "carol@x");
    assert_eq!(reports(&mut h).len(), 2);
    h.presence(a, Show::Dnd, 0);
    assert!(reports(&mut h).is_empty());
    h.presence(c, Show::Dnd, 0);
    assert_eq!(composed_state(&reports(&mut h)[0].1), PresenceState::Dnd);
}

#[test]
fn no_resource_for_an_unknown_user_or_another_domain() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["bob@x"]);
    presence_watch(&mut h, "bob@x", "nobody@x");
    assert_eq!(
        reports(&mut h),
        [(W, WatchState::Terminated(WatchEnd::NoResource))]
    );
    watch(
        &mut h,
        WatchId(8),
        "bob@x",
        "someone@elsewhere.example",
        WatchKind::Presence,
    );
    assert_eq!(
        reports(&mut h),
        [(WatchId(8), WatchState::Terminated(WatchEnd::NoResource))]
    );
    // A self-watch of a missing account is no better.
    watch(
        &mut h,
        WatchId(9),
        "nobody@x",
        "nobody@x",
        WatchKind::Watchers,
    );
    assert_eq!(
        reports(&mut h),
        [(WatchId(9), WatchState::Terminated(WatchEnd::NoResource))]
    );
    assert!(h.routed.is_empty());
}

#[test]
fn a_watcher_without_an_account_is_rejected() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    h.login("alice@x", "pc");
    presence_watch(&mut h, "ghost@x", "alice@x");
    assert_eq!(
        reports(&mut h),
        [(W, WatchState::Terminated(WatchEnd::Rejected))]
    );
}

#[test]
fn self_watch_is_always_active() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    presence_watch(&mut h, "alice@x", "alice@x");
    assert_eq!(reports(&mut h), [(W, unavailable())]);
    let a = h.login("alice@x", "pc");
    assert_eq!(
        composed_state(&reports(&mut h)[0].1),
        PresenceState::Available
    );
    // Sharing off hides her from everyone but herself.
    h.input(Input::SetPolicy {
        user: j("alice@x"),
        policy: UserPolicy {
            share_availability: false,
            ..UserPolicy::default()
        },
    });
    assert!(reports(&mut h).is_empty());
    h.presence(a, Show::Away, 0);
    assert_eq!(composed_state(&reports(&mut h)[0].1), PresenceState::Idle);
}

fn winfo(list: &[(&str, WatcherStatus)]) -> WatchState {
    WatchState::Active(WatchView::Watchers(
        list.iter()
            .map(|(w, status)| WatcherInfo {
                watcher: j(w),
                status: *status,
            })
            .collect(),
    ))
}

#[test]
fn watcher_list_follows_new_subscribers() {
    let mut h = Harness::with_users(manual_off(), &["alice@x", "bob@x", "carol@x", "dave@x"]);
    let a = h.login("alice@x", "pc");
    let c = h.login("carol@x", "pc");
    let d = h.login("dave@x", "pc");
    h.subscribe(d, "alice@x", SubscriptionAction::Subscribe);
    h.subscribe(a, "dave@x", SubscriptionAction::Subscribed);
    h.clear();
    watch(&mut h, W, "alice@x", "alice@x", WatchKind::Watchers);
    assert_eq!(
        reports(&mut h),
        [(W, winfo(&[("dave@x", WatcherStatus::Active)]))]
    );
    // Presence changes do not touch the list.
    h.presence(a, Show::Dnd, 0);
    assert!(reports(&mut h).is_empty());
    h.subscribe(c, "alice@x", SubscriptionAction::Subscribe);
    assert_eq!(
        reports(&mut h),
        [(
            W,
            winfo(&[
                ("carol@x", WatcherStatus::Pending),
                ("dave@x", WatcherStatus::Active)
            ])
        )]
    );
    h.subscribe(a, "carol@x", SubscriptionAction::Subscribed);
    let r = reports(&mut h);
    assert_eq!(
        r.last(),
        Some(&(
            W,
            winfo(&[
                ("carol@x", WatcherStatus::Active),
                ("dave@x", WatcherStatus::Active)
            ])
        ))
    );
    // A SIP watcher shows up on the list like anyone else.
    presence_watch_id(&mut h, WatchId(8), "bob@x", "alice@x");
    let r = reports(&mut h);
    assert!(r.contains(&(WatchId(8), WatchState::Pending)), "{r:?}");
    assert!(r.contains(&(
        W,
        winfo(&[
            ("bob@x", WatcherStatus::Pending),
            ("carol@x", WatcherStatus::Active),
            ("dave@x", WatcherStatus::Active)
        ])
    )));
}

fn presence_watch_id(h: &mut Harness, id: WatchId, watcher: &str, target: &str) {
    watch(h, id, watcher, target, WatchKind::Presence);
}

#[test]
fn only_the_target_may_watch_its_watcher_list() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    watch(&mut h, W, "bob@x", "alice@x", WatchKind::Watchers);
    assert_eq!(
        reports(&mut h),
        [(W, WatchState::Terminated(WatchEnd::Rejected))]
    );
}

#[test]
fn a_watched_user_without_sessions_stays_loaded_and_its_sign_in_is_seen() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    presence_watch(&mut h, "bob@x", "alice@x");
    assert_eq!(reports(&mut h), [(W, unavailable())]);
    h.hold_loads = true;
    let a = h.bind("alice@x", "pc");
    assert!(
        h.pending_loads.is_empty(),
        "alice was evicted while watched"
    );
    h.hold_loads = false;
    h.input(Input::Presence {
        session: a,
        to: None,
        presence: Some(EndpointPresence {
            show: Show::Chat,
            status: Some("here".into()),
            ..EndpointPresence::default()
        }),
    });
    let r = reports(&mut h);
    assert_eq!(r, [(W, active(h.engine.composed(&j("alice@x"))))]);
    assert_eq!(composed_state(&r[0].1), PresenceState::Available);
    // Her sign-out leaves her loaded still, and the watcher sees it.
    h.logout(a);
    assert_eq!(reports(&mut h), [(W, unavailable())]);
    h.hold_loads = true;
    h.bind("alice@x", "pc");
    assert!(h.pending_loads.is_empty());
}

#[test]
fn a_watcher_that_must_be_loaded_first_still_gets_one_report() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    h.login("alice@x", "pc");
    h.hold_loads = true;
    presence_watch(&mut h, "bob@x", "alice@x");
    assert!(reports(&mut h).is_empty());
    assert_eq!(h.pending_loads, [j("bob@x")]);
    h.release_loads();
    let r = reports(&mut h);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(composed_state(&r[0].1), PresenceState::Available);
}
