//! The user's own presence settings (DND on the phone, DND in a meeting, availability sharing) read and changed
//! by a session: they go through the policy, so composition, watchers and the store follow (DESIGN §2, §3).
mod common;

use common::*;
use presence_core::compose::{CalendarState, LineState, PresenceState, Show};
use presence_core::feature::{Answer, Call, settings};
use presence_core::policy::{DefaultRule, PolicyEntry, PresenceSettings, UserPolicy};
use presence_core::stanza::{PresenceKind, PresenceView, Stanza};
use presence_core::store::RosterStore;
use presence_core::{Input, Output, SessionId, WatchId, WatchKind, WatchState, WatchView};

fn set(
    h: &mut Harness,
    session: SessionId,
    id: &str,
    dnd_on_phone: Option<bool>,
    dnd_in_meeting: Option<bool>,
    share_availability: Option<bool>,
) {
    h.input(Input::Request {
        session,
        request: req(id),
        call: Call::Settings(settings::Call::Set(settings::Change {
            dnd_on_phone,
            dnd_in_meeting,
            share_availability,
        })),
    });
    assert!(
        h.take(session).contains(&Stanza::Answer {
            request: req(id),
            answer: Answer::Done
        }),
        "a settings set is answered with an empty result"
    );
}

fn get(h: &mut Harness, session: SessionId) -> PresenceSettings {
    h.input(Input::Request {
        session,
        request: req("get"),
        call: Call::Settings(settings::Call::Get),
    });
    h.take(session)
        .into_iter()
        .find_map(|s| match s {
            Stanza::Answer {
                request,
                answer: Answer::Settings(settings),
            } if request == req("get") => Some(settings),
            _ => None,
        })
        .expect("a settings result")
}

fn phone(h: &mut Harness, state: LineState) {
    h.input(Input::PhoneLine {
        user: j("alice@x"),
        line: "1001".into(),
        state,
    });
}

fn last_view(stanzas: &[Stanza], from: &str) -> Option<PresenceView> {
    presences(stanzas)
        .into_iter()
        .rev()
        .find_map(|(f, k)| match k {
            PresenceKind::Available(v) if f == from => Some((*v).clone()),
            _ => None,
        })
}

fn stored(h: &Harness) -> UserPolicy {
    h.store.policy(&j("alice@x")).unwrap().unwrap_or_default()
}

#[test]
fn dnd_on_phone_set_by_the_user_makes_a_call_dnd_with_the_phone_status() {
    let (mut h, a, b) = Harness::alice_watched_by_bob();
    set(&mut h, a, "1", Some(true), None, None);
    assert!(
        h.take(b).is_empty(),
        "no call yet: the setting alone changes nothing bob sees"
    );
    assert!(stored(&h).dnd_on_phone, "the setting is stored");

    phone(&mut h, LineState::OnThePhone);
    let v = last_view(&h.take(b), "alice@x/pc").expect("bob told about the call");
    assert_eq!(
        (v.show, v.status.as_deref(), v.composed),
        (Show::Dnd, Some("On the phone"), PresenceState::Dnd)
    );
    // Alice's own client sees what her contacts see.
    let own = last_view(&h.take(a), "alice@x/pc").expect("alice's session told too");
    assert_eq!(own.show, Show::Dnd);

    phone(&mut h, LineState::Idle);
    let v = last_view(&h.take(b), "alice@x/pc").expect("bob told the call ended");
    assert_eq!(
        (v.show, v.status, v.composed),
        (Show::Available, None, PresenceState::Available)
    );
}

#[test]
fn changing_the_setting_during_a_call_recomposes_at_once() {
    let (mut h, a, b) = Harness::alice_watched_by_bob();
    phone(&mut h, LineState::OnThePhone);
    let v = last_view(&h.take(b), "alice@x/pc").unwrap();
    assert_eq!(
        (v.show, v.composed),
        (Show::Away, PresenceState::OnThePhone)
    );

    set(&mut h, a, "1", Some(true), None, None);
    let v = last_view(&h.take(b), "alice@x/pc").expect("the flip reaches bob mid-call");
    assert_eq!(
        (v.show, v.status.as_deref(), v.composed),
        (Show::Dnd, Some("On the phone"), PresenceState::Dnd)
    );

    set(&mut h, a, "2", Some(false), None, None);
    let v = last_view(&h.take(b), "alice@x/pc").expect("and back");
    assert_eq!(
        (v.show, v.composed),
        (Show::Away, PresenceState::OnThePhone)
    );
}

#[test]
fn dnd_in_meeting_makes_a_busy_calendar_dnd() {
    let (mut h, a, b) = Harness::alice_watched_by_bob();
    set(&mut h, a, "1", None, Some(true), None);
    h.input(Input::Calendar {
        user: j("alice@x"),
        state: CalendarState::Busy,
    });
    let v = last_view(&h.take(b), "alice@x/pc").unwrap();
    assert_eq!(
        (v.show, v.status.as_deref(), v.composed),
        (Show::Dnd, Some("In a meeting"), PresenceState::Dnd)
    );
}

#[test]
fn get_returns_the_defaults_then_what_was_set_also_after_signing_in_again() {
    let (mut h, a, _) = Harness::alice_watched_by_bob();
    assert_eq!(
        get(&mut h, a),
        PresenceSettings {
            dnd_on_phone: false,
            dnd_in_meeting: false,
            share_availability: true,
        }
    );
    set(&mut h, a, "1", Some(true), Some(true), Some(false));
    let want = PresenceSettings {
        dnd_on_phone: true,
        dnd_in_meeting: true,
        share_availability: false,
    };
    assert_eq!(get(&mut h, a), want);

    // Signed out everywhere, alice is dropped from memory; her settings come back from the store.
    h.logout(a);
    let a = h.login("alice@x", "laptop");
    assert_eq!(get(&mut h, a), want);
}

#[test]
fn only_the_given_settings_change_and_the_lists_stay() {
    let (mut h, a, b) = Harness::alice_watched_by_bob();
    let before = UserPolicy {
        allow: vec![PolicyEntry::Domain("partner.com".into())],
        block: vec![PolicyEntry::Jid(j("eve@x"))],
        default: DefaultRule::BlockAll,
        ask_federated: true,
        dnd_in_meeting: true,
        ..UserPolicy::default()
    };
    h.input(Input::SetPolicy {
        user: j("alice@x"),
        policy: before.clone(),
    });
    h.clear();

    set(&mut h, a, "1", Some(true), None, None);
    assert_eq!(
        stored(&h),
        UserPolicy {
            dnd_on_phone: true,
            ..before.clone()
        }
    );
    set(&mut h, a, "2", None, Some(false), None);
    assert_eq!(
        stored(&h),
        UserPolicy {
            dnd_on_phone: true,
            dnd_in_meeting: false,
            ..before.clone()
        }
    );

    // A set naming nothing, or only what is already so, writes nothing and tells nobody: only the answer goes out.
    // (Driven by hand: the harness would apply store writes without showing them.)
    h.clear();
    for (id, dnd_on_phone, share_availability) in [("3", None, None), ("4", Some(true), Some(true))]
    {
        h.engine.handle(
            h.now,
            Input::Request {
                session: a,
                request: req(id),
                call: Call::Settings(settings::Call::Set(settings::Change {
                    dnd_on_phone,
                    dnd_in_meeting: None,
                    share_availability,
                })),
            },
        );
        let outputs: Vec<Output> = std::iter::from_fn(|| h.engine.poll_output()).collect();
        assert_eq!(
            outputs,
            [Output::Deliver {
                session: a,
                stanza: Stanza::Answer {
                    request: req(id),
                    answer: Answer::Done
                }
            }]
        );
    }
    assert!(h.take(b).is_empty());
}

#[test]
fn sharing_off_hides_presence_politely_and_on_shows_it_again() {
    let (mut h, a, b) = Harness::alice_watched_by_bob();
    let w = WatchId(1);
    h.input(Input::Watch {
        watch: w,
        watcher: j("bob@x"),
        target: j("alice@x"),
        kind: WatchKind::Presence,
    });
    h.clear();

    set(&mut h, a, "1", None, None, Some(false));
    let seen = h.take(b);
    assert!(saw_unavailable(&seen, "alice@x/pc"), "{seen:?}");
    assert!(
        !seen.iter().any(|s| matches!(s, Stanza::Error(_))),
        "polite: never an error"
    );
    assert_eq!(last_watch_state(&mut h, w), PresenceState::Unavailable);

    // Her changes no longer reach bob, on either protocol; her own session still hears them.
    h.presence(a, Show::Away, 0);
    assert!(!saw_available(&h.take(b), "alice@x/pc"));
    assert!(saw_available(&h.take(a), "alice@x/pc"));
    assert!(
        watch_states(&mut h, w)
            .iter()
            .all(|s| *s == PresenceState::Unavailable)
    );

    set(&mut h, a, "2", None, None, Some(true));
    let v = last_view(&h.take(b), "alice@x/pc").expect("bob sees alice again");
    assert_eq!(v.show, Show::Away);
    assert_eq!(last_watch_state(&mut h, w), PresenceState::Idle);
}

/// The composed states reported to watch `w` so far (taken).
fn watch_states(h: &mut Harness, w: WatchId) -> Vec<PresenceState> {
    let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut h.other)
        .into_iter()
        .partition(|o| matches!(o, Output::Watch { watch, .. } if *watch == w));
    h.other = rest;
    mine.into_iter()
        .map(|o| match o {
            Output::Watch {
                state: WatchState::Active(WatchView::Presence(c)),
                ..
            } => c.state,
            other => panic!("not a presence report: {other:?}"),
        })
        .collect()
}

fn last_watch_state(h: &mut Harness, w: WatchId) -> PresenceState {
    *watch_states(h, w).last().expect("the watch was told")
}
