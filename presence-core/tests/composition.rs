//! Composed presence through the engine: phone, calendar and manual status reach XMPP watchers (DESIGN §2).
mod common;

use common::*;
use presence_core::Input;
use presence_core::compose::{
    CalendarState, LineState, ManualState, ManualStatus, PresenceState, Show,
};
use presence_core::policy::UserPolicy;
use presence_core::stanza::{PresenceKind, PresenceView, Stanza};

fn last_view(stanzas: &[Stanza], from: &str) -> Option<PresenceView> {
    presences(stanzas)
        .into_iter()
        .rev()
        .find_map(|(f, k)| match k {
            PresenceKind::Available(v) if f == from => Some((*v).clone()),
            _ => None,
        })
}

#[test]
fn phone_call_shows_on_the_phone_and_back() {
    let (mut h, _a, b) = Harness::alice_watched_by_bob();
    h.input(Input::PhoneLine {
        user: j("alice@x"),
        line: "1001".into(),
        state: LineState::OnThePhone,
    });
    let v = last_view(&h.take(b), "alice@x/pc").expect("watchers told");
    assert_eq!(
        (v.show, v.status.as_deref(), v.composed),
        (Show::Away, Some("On the phone"), PresenceState::OnThePhone)
    );
    h.input(Input::PhoneLine {
        user: j("alice@x"),
        line: "1001".into(),
        state: LineState::Idle,
    });
    let v = last_view(&h.take(b), "alice@x/pc").expect("watchers told");
    assert_eq!(
        (v.show, v.status, v.composed),
        (Show::Available, None, PresenceState::Available)
    );
    assert_eq!(
        h.engine.composed(&j("alice@x")).state,
        PresenceState::Available
    );
}

#[test]
fn dnd_while_on_the_phone_when_the_user_asked() {
    let (mut h, _a, b) = Harness::alice_watched_by_bob();
    h.input(Input::SetPolicy {
        user: j("alice@x"),
        policy: UserPolicy {
            dnd_on_phone: true,
            ..UserPolicy::default()
        },
    });
    h.input(Input::PhoneLine {
        user: j("alice@x"),
        line: "1001".into(),
        state: LineState::OnThePhone,
    });
    let v = last_view(&h.take(b), "alice@x/pc").unwrap();
    assert_eq!((v.show, v.composed), (Show::Dnd, PresenceState::Dnd));
}

#[test]
fn meeting_and_out_of_office_from_the_calendar() {
    let (mut h, _a, b) = Harness::alice_watched_by_bob();
    h.input(Input::Calendar {
        user: j("alice@x"),
        state: CalendarState::Busy,
    });
    assert_eq!(
        last_view(&h.take(b), "alice@x/pc").unwrap().composed,
        PresenceState::InAMeeting
    );
    h.input(Input::Calendar {
        user: j("alice@x"),
        state: CalendarState::OutOfOffice,
    });
    let v = last_view(&h.take(b), "alice@x/pc").unwrap();
    assert_eq!((v.show, v.composed), (Show::Xa, PresenceState::OutOfOffice));
    h.input(Input::Calendar {
        user: j("alice@x"),
        state: CalendarState::Tentative,
    });
    assert_eq!(
        last_view(&h.take(b), "alice@x/pc").unwrap().composed,
        PresenceState::Available
    );
}

#[test]
fn phone_state_set_while_offline_applies_at_sign_in() {
    let (mut h, a, b) = Harness::alice_watched_by_bob();
    h.logout(a);
    h.input(Input::PhoneLine {
        user: j("alice@x"),
        line: "1".into(),
        state: LineState::OnThePhone,
    });
    assert_eq!(
        h.engine.composed(&j("alice@x")).state,
        PresenceState::Unavailable,
        "a phone alone does not sign a user in"
    );
    h.clear();
    h.login("alice@x", "pc");
    assert_eq!(
        last_view(&h.take(b), "alice@x/pc").unwrap().composed,
        PresenceState::OnThePhone
    );
}

#[test]
fn manual_status_overrides_and_is_cleared_by_the_last_sign_out() {
    let (mut h, a, b) = Harness::alice_watched_by_bob();
    let a2 = h.login("alice@x", "tablet");
    h.input(Input::SetManualStatus {
        user: j("alice@x"),
        status: Some(ManualStatus {
            state: ManualState::Dnd,
            text: Some("focus".into()),
        }),
    });
    let seen = h.take(b);
    for r in ["alice@x/pc", "alice@x/tablet"] {
        let v = last_view(&seen, r).unwrap();
        assert_eq!(
            (v.show, v.status.as_deref()),
            (Show::Dnd, Some("focus")),
            "{r}"
        );
    }
    h.input(Input::PhoneLine {
        user: j("alice@x"),
        line: "1".into(),
        state: LineState::OnThePhone,
    });
    assert_eq!(
        h.engine.composed(&j("alice@x")).state,
        PresenceState::Dnd,
        "manual beats the phone"
    );
    h.input(Input::PhoneLine {
        user: j("alice@x"),
        line: "1".into(),
        state: LineState::Idle,
    });
    h.logout(a);
    assert_eq!(
        h.engine.composed(&j("alice@x")).state,
        PresenceState::Dnd,
        "kept while a session remains"
    );
    h.logout(a2);
    h.login("alice@x", "pc");
    assert_eq!(
        h.engine.composed(&j("alice@x")).state,
        PresenceState::Available,
        "cleared by the last sign-out"
    );
}

#[test]
fn idle_on_all_clients_is_away_and_one_active_client_is_available() {
    let (mut h, a, _b) = Harness::alice_watched_by_bob();
    let a2 = h.login("alice@x", "tablet");
    h.presence(a, Show::Away, 0);
    assert_eq!(
        h.engine.composed(&j("alice@x")).state,
        PresenceState::Available
    );
    h.presence(a2, Show::Xa, 0);
    assert_eq!(h.engine.composed(&j("alice@x")).state, PresenceState::Idle);
    assert_eq!(
        h.engine.composed(&j("alice@x")).state.basic(),
        presence_core::compose::Basic::Away
    );
}
