//! Group chat (XEP-0045) through the engine: the room service's state machine as sessions see it.

mod common;

use common::rooms::at_room::{groupchat, iq, join, join_with};
use common::rooms::{
    self, ROOM, affiliate, answered, config, error_of, harness, members_only, moderated, presences,
    restarted, room_stanzas,
};
use common::{Harness, j};
use presence_core::message::{Message, MessageKind};
use presence_core::rooms::{
    Affiliate, Affiliation, AffiliationChange, ConfigChange, Destroyed, Invite, JoinOptions,
    Mediated, OccupantPresence, Role, RoleChange, RoomAnswer, RoomCall, RoomRequest, RoomStanza,
    StatusCode, WhoIs,
};
use presence_core::stanza::{ErrorCondition, IqKind, RoutedIq, Stanza};
use presence_core::store::{OfflineStore, RoomStore};
use presence_core::{EngineConfig, Input, SessionId};
use proptest::prelude::*;

fn send(h: &mut Harness, session: SessionId, room: &str, request: RoomRequest) {
    rooms::send(h, session, &j(room), request);
}

/// Sends `message` to the room, or through it to the occupant `nick`.
fn message_to(h: &mut Harness, session: SessionId, nick: Option<&str>, message: Message) {
    send(
        h,
        session,
        ROOM,
        RoomRequest::Message {
            nick: nick.map(Into::into),
            message,
        },
    );
}

/// A private message saying "psst".
fn psst() -> Message {
    Message {
        kind: MessageKind::Chat,
        body: Some("psst".into()),
        ..Message::default()
    }
}

/// A nickname change: available presence to the new nickname (the same request as a join).
fn rename(h: &mut Harness, session: SessionId, nick: &str) {
    join(h, session, nick);
}

/// Alice creates the room and accepts the defaults (an instant room); bob and carol join. Outputs cleared.
fn three_in_a_room() -> (Harness, SessionId, SessionId, SessionId) {
    let mut h = harness();
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "pc");
    let c = h.login("carol@x", "pc");
    join(&mut h, a, "Alice");
    iq(&mut h, a, RoomCall::SetConfig(ConfigChange::default()));
    join(&mut h, b, "Bob");
    join(&mut h, c, "Carol");
    h.clear();
    (h, a, b, c)
}

/// `three_in_a_room` made moderated, then dave joins as a visitor. Outputs cleared.
fn moderated_with_a_visitor() -> (Harness, SessionId, SessionId, SessionId) {
    let (mut h, a, b, _) = three_in_a_room();
    iq(&mut h, a, moderated());
    let d = h.login("dave@x", "pc");
    join(&mut h, d, "Dave");
    h.clear();
    (h, a, b, d)
}

#[test]
fn the_first_to_join_creates_a_locked_room_until_it_is_configured() {
    let mut h = harness();
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "pc");
    h.clear();
    join(&mut h, a, "Alice");
    let got = room_stanzas(&mut h, a);
    assert_eq!(
        presences(&got),
        vec![("Alice".into(), true, vec![110, 201])]
    );
    let Some(RoomStanza::Presence { item, .. }) = got.first() else {
        panic!("{got:?}")
    };
    assert_eq!(
        (item.affiliation, item.role),
        (Affiliation::Owner, Role::Moderator)
    );
    // The (empty) subject ends the join.
    assert!(
        matches!(got.last(), Some(RoomStanza::Message { message, .. }) if message.subject.as_deref() == Some(""))
    );
    join(&mut h, b, "Bob");
    assert_eq!(
        error_of(&room_stanzas(&mut h, b)),
        Some(ErrorCondition::ItemNotFound)
    );
    iq(&mut h, a, RoomCall::SetConfig(ConfigChange::default()));
    assert_eq!(answered(&room_stanzas(&mut h, a)), Some(&RoomAnswer::Done));
    join(&mut h, b, "Bob");
    // Bob sees alice first, then himself with 110; alice sees bob arrive.
    assert_eq!(
        presences(&room_stanzas(&mut h, b)),
        vec![
            ("Alice".into(), true, vec![]),
            ("Bob".into(), true, vec![110])
        ]
    );
    assert_eq!(
        presences(&room_stanzas(&mut h, a)),
        vec![("Bob".into(), true, vec![])]
    );
}

#[test]
fn messages_reach_every_occupant_and_newcomers_get_history_then_the_subject() {
    let (mut h, a, b, c) = three_in_a_room();
    groupchat(&mut h, b, "hello");
    for s in [a, b, c] {
        let got = room_stanzas(&mut h, s);
        assert!(
            got.iter().any(|r| matches!(r, RoomStanza::Message { from, message, occupant_id: Some(_), .. }
                if from.to_string() == "room@conference.x/Bob" && message.body.as_deref() == Some("hello"))),
            "{s:?}: {got:?}"
        );
    }
    let subject = Message {
        kind: MessageKind::Groupchat,
        subject: Some("Plans".into()),
        ..Message::default()
    };
    // Participants may not set the subject by default; the moderator may.
    message_to(&mut h, b, None, subject.clone());
    assert_eq!(
        error_of(&room_stanzas(&mut h, b)),
        Some(ErrorCondition::Forbidden)
    );
    message_to(&mut h, a, None, subject);
    h.clear();
    let d = h.login("dave@x", "pc");
    h.clear();
    join(&mut h, d, "Dave");
    let got = room_stanzas(&mut h, d);
    let history: Vec<_> = got
        .iter()
        .filter_map(|r| match r {
            RoomStanza::Message {
                message,
                delayed: Some(_),
                ..
            } => message.body.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(history, vec!["hello".to_owned()]);
    assert!(
        matches!(got.last(), Some(RoomStanza::Message { message, from, .. })
        if message.subject.as_deref() == Some("Plans") && from.to_string() == "room@conference.x/Alice")
    );
}

#[test]
fn a_taken_nickname_conflicts_and_a_nickname_change_is_303() {
    let (mut h, a, b, _) = three_in_a_room();
    let d = h.login("dave@x", "pc");
    h.clear();
    join(&mut h, d, "Bob");
    assert_eq!(
        error_of(&room_stanzas(&mut h, d)),
        Some(ErrorCondition::Conflict)
    );
    rename(&mut h, b, "Carol");
    assert_eq!(
        error_of(&room_stanzas(&mut h, b)),
        Some(ErrorCondition::Conflict)
    );
    rename(&mut h, b, "Robert");
    assert_eq!(
        presences(&room_stanzas(&mut h, b)),
        vec![
            ("Bob".into(), false, vec![110, 303]),
            ("Robert".into(), true, vec![110])
        ]
    );
    let seen = room_stanzas(&mut h, a);
    assert_eq!(
        presences(&seen),
        vec![
            ("Bob".into(), false, vec![303]),
            ("Robert".into(), true, vec![])
        ]
    );
    assert!(
        matches!(&seen[0], RoomStanza::Presence { item, .. } if item.nick.as_deref() == Some("Robert"))
    );
}

#[test]
fn private_messages_go_to_the_occupants_session_from_the_senders_room_address() {
    let (mut h, a, b, c) = three_in_a_room();
    let pm = psst();
    message_to(&mut h, b, Some("Carol"), pm.clone());
    let got = room_stanzas(&mut h, c);
    assert!(
        matches!(&got[..], [RoomStanza::Message { from, private: true, .. }] if from.to_string() == "room@conference.x/Bob")
    );
    assert!(room_stanzas(&mut h, a).is_empty());
    message_to(&mut h, b, Some("Nobody"), pm.clone());
    assert_eq!(
        error_of(&room_stanzas(&mut h, b)),
        Some(ErrorCondition::ItemNotFound)
    );
    let d = h.login("dave@x", "pc");
    h.clear();
    message_to(&mut h, d, Some("Carol"), pm);
    assert_eq!(
        error_of(&room_stanzas(&mut h, d)),
        Some(ErrorCondition::NotAcceptable)
    );
    groupchat(&mut h, d, "outsider");
    assert_eq!(
        error_of(&room_stanzas(&mut h, d)),
        Some(ErrorCondition::NotAcceptable)
    );
}

#[test]
fn moderators_kick_admins_ban_and_owners_are_never_kicked() {
    let (mut h, a, b, c) = three_in_a_room();
    // Bob is a participant: he may not kick.
    iq(
        &mut h,
        b,
        RoomCall::SetRoles(vec![RoleChange {
            nick: "Carol".into(),
            role: Role::None,
            reason: None,
        }]),
    );
    assert_eq!(
        error_of(&room_stanzas(&mut h, b)),
        Some(ErrorCondition::NotAllowed)
    );
    iq(
        &mut h,
        a,
        RoomCall::SetRoles(vec![RoleChange {
            nick: "Carol".into(),
            role: Role::None,
            reason: Some("bye".into()),
        }]),
    );
    assert_eq!(
        presences(&room_stanzas(&mut h, c)),
        vec![("Carol".into(), false, vec![110, 307])]
    );
    assert_eq!(
        presences(&room_stanzas(&mut h, b)),
        vec![("Carol".into(), false, vec![307])]
    );
    // Make bob a moderator; he still cannot kick the owner.
    iq(
        &mut h,
        a,
        RoomCall::SetRoles(vec![RoleChange {
            nick: "Bob".into(),
            role: Role::Moderator,
            reason: None,
        }]),
    );
    h.clear();
    iq(
        &mut h,
        b,
        RoomCall::SetRoles(vec![RoleChange {
            nick: "Alice".into(),
            role: Role::None,
            reason: None,
        }]),
    );
    assert_eq!(
        error_of(&room_stanzas(&mut h, b)),
        Some(ErrorCondition::NotAllowed)
    );
    // A ban removes bob (301) and keeps him out.
    iq(&mut h, a, affiliate("bob@x", Affiliation::Outcast));
    assert_eq!(
        presences(&room_stanzas(&mut h, b)),
        vec![("Bob".into(), false, vec![110, 301])]
    );
    join(&mut h, b, "Bob");
    assert_eq!(
        error_of(&room_stanzas(&mut h, b)),
        Some(ErrorCondition::Forbidden)
    );
    h.clear();
    iq(&mut h, a, RoomCall::GetAffiliations(Affiliation::Outcast));
    assert!(
        matches!(answered(&room_stanzas(&mut h, a)), Some(RoomAnswer::Items(items)) if items.len() == 1)
    );
    // The last owner cannot step down.
    iq(&mut h, a, affiliate("alice@x", Affiliation::Member));
    assert_eq!(
        error_of(&room_stanzas(&mut h, a)),
        Some(ErrorCondition::Conflict)
    );
}

#[test]
fn passwords_members_only_and_full_rooms_keep_people_out() {
    let (mut h, a, _, _) = three_in_a_room();
    let d = h.login("dave@x", "pc");
    let change = ConfigChange {
        password_protected: Some(true),
        password: Some("pw".into()),
        ..ConfigChange::default()
    };
    iq(&mut h, a, RoomCall::SetConfig(change));
    h.clear();
    join(&mut h, d, "Dave");
    assert_eq!(
        error_of(&room_stanzas(&mut h, d)),
        Some(ErrorCondition::NotAuthorized)
    );
    join_with(
        &mut h,
        d,
        "Dave",
        JoinOptions {
            password: Some("pw".into()),
            ..JoinOptions::default()
        },
    );
    assert!(error_of(&room_stanzas(&mut h, d)).is_none());
    send(
        &mut h,
        d,
        ROOM,
        RoomRequest::Presence {
            nick: "Dave".into(),
            presence: None,
            join: JoinOptions::default(),
        },
    );
    // Members-only removes non-members present (322) and refuses newcomers.
    iq(&mut h, a, members_only());
    let seen = presences(&room_stanzas(&mut h, a));
    assert!(seen.contains(&("Bob".into(), false, vec![322])), "{seen:?}");
    join_with(
        &mut h,
        d,
        "Dave",
        JoinOptions {
            password: Some("pw".into()),
            ..JoinOptions::default()
        },
    );
    assert_eq!(
        error_of(&room_stanzas(&mut h, d)),
        Some(ErrorCondition::RegistrationRequired)
    );
    iq(
        &mut h,
        a,
        RoomCall::SetConfig(ConfigChange {
            members_only: Some(false),
            max_occupants: Some(1),
            ..ConfigChange::default()
        }),
    );
    h.clear();
    join_with(
        &mut h,
        d,
        "Dave",
        JoinOptions {
            password: Some("pw".into()),
            ..JoinOptions::default()
        },
    );
    assert_eq!(
        error_of(&room_stanzas(&mut h, d)),
        Some(ErrorCondition::ServiceUnavailable)
    );
}

#[test]
fn moderated_rooms_silence_visitors_until_given_voice() {
    let (mut h, a, b, d) = moderated_with_a_visitor();
    groupchat(&mut h, d, "hi");
    assert_eq!(
        error_of(&room_stanzas(&mut h, d)),
        Some(ErrorCondition::Forbidden)
    );
    iq(
        &mut h,
        a,
        RoomCall::SetRoles(vec![RoleChange {
            nick: "Dave".into(),
            role: Role::Participant,
            reason: None,
        }]),
    );
    h.clear();
    groupchat(&mut h, d, "hi");
    assert!(error_of(&room_stanzas(&mut h, d)).is_none());
    assert_eq!(room_stanzas(&mut h, b).len(), 1);
}

#[test]
fn semi_anonymous_rooms_show_real_addresses_to_moderators_only() {
    let (mut h, a, b, _) = three_in_a_room();
    let d = h.login("dave@x", "pc");
    h.clear();
    join(&mut h, d, "Dave");
    let jid_seen_by = |got: &[RoomStanza]| {
        got.iter().find_map(|r| match r {
            RoomStanza::Presence { from, item, .. } if from.resource() == "Dave" => {
                Some(item.jid.is_some())
            }
            _ => None,
        })
    };
    assert_eq!(jid_seen_by(&room_stanzas(&mut h, a)), Some(true));
    assert_eq!(jid_seen_by(&room_stanzas(&mut h, b)), Some(false));
    iq(
        &mut h,
        a,
        RoomCall::SetConfig(ConfigChange {
            whois: Some(WhoIs::Anyone),
            ..ConfigChange::default()
        }),
    );
    let e = h.login("carol@x", "phone");
    h.clear();
    join(&mut h, e, "Carol2");
    let own = presences(&room_stanzas(&mut h, e));
    assert_eq!(own.last(), Some(&("Carol2".into(), true, vec![100, 110])));
}

#[test]
fn a_session_that_ends_leaves_and_an_ad_hoc_room_vanishes_with_its_last_occupant() {
    let (mut h, a, b, c) = three_in_a_room();
    h.logout(c);
    assert_eq!(
        presences(&room_stanzas(&mut h, a)),
        vec![("Carol".into(), false, vec![])]
    );
    // Unavailable to everyone is leaving too.
    h.input(Input::Presence {
        session: b,
        to: None,
        presence: None,
    });
    assert_eq!(
        presences(&room_stanzas(&mut h, a)),
        vec![("Bob".into(), false, vec![])]
    );
    h.logout(a);
    assert!(h.engine.rooms().expect("service").room(&j(ROOM)).is_none());
}

#[test]
fn persistent_rooms_are_stored_survive_restarts_and_destruction_removes_them() {
    let (mut h, a, b, _) = three_in_a_room();
    iq(
        &mut h,
        a,
        RoomCall::SetConfig(ConfigChange {
            persistent: Some(true),
            name: Some("Kept".into()),
            ..ConfigChange::default()
        }),
    );
    groupchat(&mut h, b, "remember me");
    let stored = h.store.rooms().expect("rooms");
    assert_eq!(stored.len(), 1);
    // The history is in the room's archive, not in its record (see tests/room_archive.rs).
    assert_eq!(stored[0].history.len(), 0);
    // Everybody leaves: the room stays.
    for s in [a, b] {
        h.logout(s);
    }
    h.logout(SessionId(3));
    assert!(h.engine.rooms().expect("service").room(&j(ROOM)).is_some());
    // A new engine over the same store has it back, unlocked, with its history.
    let mut h2 = restarted(&h);
    let d = h2.login("dave@x", "pc");
    h2.clear();
    join(&mut h2, d, "Dave");
    let got = room_stanzas(&mut h2, d);
    assert!(error_of(&got).is_none(), "{got:?}");
    assert!(got.iter().any(|r| matches!(r, RoomStanza::Message { message, delayed: Some(_), .. } if message.body.as_deref() == Some("remember me"))));
    // Alice is still the owner and destroys it; dave is told where to go.
    let a2 = h2.login("alice@x", "pc");
    let destroyed = Destroyed {
        reason: Some("moving".into()),
        alternate: Some(j("new@conference.x")),
        password: None,
    };
    iq(&mut h2, a2, RoomCall::Destroy(destroyed.clone()));
    let got = room_stanzas(&mut h2, d);
    assert!(
        matches!(&got[..], [RoomStanza::Presence { destroyed: Some(d), presence: None, .. }] if *d == destroyed)
    );
    assert!(h2.store.rooms().expect("rooms").is_empty());
}

#[test]
fn self_ping_is_answered_by_the_room_and_a_ping_to_another_occupant_goes_to_its_client() {
    let (mut h, _, b, c) = three_in_a_room();
    let ping = |h: &mut Harness, s: SessionId, nick: &str| {
        send(
            h,
            s,
            ROOM,
            RoomRequest::Iq {
                id: "p".into(),
                nick: Some(nick.into()),
                call: RoomCall::Ping,
            },
        )
    };
    ping(&mut h, b, "Bob");
    assert_eq!(answered(&room_stanzas(&mut h, b)), Some(&RoomAnswer::Done));
    // Carol's client answers a ping to carol's occupant address (XEP-0410 §3), not the room.
    ping(&mut h, b, "Carol");
    assert!(room_stanzas(&mut h, b).is_empty());
    let got = room_stanzas(&mut h, c);
    let [RoomStanza::Iq { from, iq }] = &got[..] else {
        panic!("{got:?}")
    };
    assert_eq!(from.to_string(), format!("{ROOM}/Bob"));
    assert_eq!(iq.kind, IqKind::Get);
    assert_eq!(iq.payload, vec!["<ping xmlns='urn:xmpp:ping'/>".to_owned()]);
    // Someone outside the room is told it is not in it, whoever it pings.
    let d = h.login("dave@x", "pc");
    h.clear();
    for nick in ["Bob", "Dave"] {
        ping(&mut h, d, nick);
        assert_eq!(
            error_of(&room_stanzas(&mut h, d)),
            Some(ErrorCondition::NotAcceptable)
        );
    }
}

#[test]
fn the_service_lists_public_configured_rooms_and_occupant_ids_are_stable() {
    let (mut h, a, b, _) = three_in_a_room();
    send(
        &mut h,
        b,
        "conference.x",
        RoomRequest::Iq {
            id: "i".into(),
            nick: None,
            call: RoomCall::Items,
        },
    );
    assert!(
        matches!(answered(&room_stanzas(&mut h, b)), Some(RoomAnswer::Rooms(r)) if r.len() == 1)
    );
    iq(
        &mut h,
        a,
        RoomCall::SetConfig(ConfigChange {
            public: Some(false),
            ..ConfigChange::default()
        }),
    );
    h.clear();
    send(
        &mut h,
        b,
        "conference.x",
        RoomRequest::Iq {
            id: "i".into(),
            nick: None,
            call: RoomCall::Items,
        },
    );
    assert!(
        matches!(answered(&room_stanzas(&mut h, b)), Some(RoomAnswer::Rooms(r)) if r.is_empty())
    );
    let id_of = |got: &[RoomStanza]| {
        got.iter().find_map(|r| match r {
            RoomStanza::Presence {
                occupant_id, from, ..
            } if from.resource() == "Bob" => Some(occupant_id.clone()),
            _ => None,
        })
    };
    send(
        &mut h,
        b,
        ROOM,
        RoomRequest::Presence {
            nick: "Bob".into(),
            presence: None,
            join: JoinOptions::default(),
        },
    );
    let first = id_of(&room_stanzas(&mut h, a));
    join(&mut h, b, "Bob");
    assert_eq!(id_of(&room_stanzas(&mut h, a)), first);
}

#[test]
fn no_room_service_answers_service_unavailable() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    let a = h.login("alice@x", "pc");
    h.clear();
    join(&mut h, a, "Alice");
    assert_eq!(
        error_of(&room_stanzas(&mut h, a)),
        Some(ErrorCondition::ServiceUnavailable)
    );
}

#[test]
fn room_traffic_is_never_a_plain_message() {
    let (mut h, a, b, _) = three_in_a_room();
    groupchat(&mut h, b, "x");
    assert!(h.take(a).iter().all(|s| matches!(s, Stanza::Room(_))));
}

#[derive(Debug, Clone)]
enum Op {
    Set(u8, u8, Affiliation),
    Persist(u8, bool),
}

fn op() -> impl Strategy<Value = Op> {
    let aff = prop::sample::select(Affiliation::ALL.to_vec());
    prop_oneof![
        (0u8..4, 0u8..4, aff).prop_map(|(by, who, a)| Op::Set(by, who, a)),
        (0u8..4, any::<bool>()).prop_map(|(by, p)| Op::Persist(by, p)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// A room always has an owner while persistent, whatever affiliation changes anyone asks for.
    #[test]
    fn a_persistent_room_always_has_an_owner(ops in proptest::collection::vec(op(), 0..40)) {
        let users = ["alice@x", "bob@x", "carol@x", "dave@x"];
        let (mut h, a, b, c) = three_in_a_room();
        let d = h.login("dave@x", "pc");
        let sessions = [a, b, c, d];
        for op in ops {
            match op {
                Op::Set(by, who, affiliation) => iq(&mut h, sessions[by as usize], RoomCall::SetAffiliations(vec![
                    AffiliationChange { who: Affiliate::Jid(j(users[who as usize])), affiliation, reason: None },
                ])),
                Op::Persist(by, p) => iq(&mut h, sessions[by as usize], RoomCall::SetConfig(ConfigChange { persistent: Some(p), ..ConfigChange::default() })),
            }
            h.clear();
            if let Some(r) = h.engine.rooms().and_then(|s| s.room(&j(ROOM))) {
                prop_assert!(r.has_owner());
            }
            for stored in h.store.rooms().expect("rooms") {
                prop_assert!(stored.affiliations.iter().any(|(_, a)| *a == Affiliation::Owner));
            }
        }
    }
}

#[test]
fn status_codes_have_their_numbers() {
    assert_eq!(StatusCode::SelfPresence.code(), 110);
    assert_eq!(StatusCode::Kicked.code(), 307);
}

#[test]
fn with_compliance_on_a_room_message_is_one_record_with_every_real_recipient() {
    let mut h = Harness::with_users(
        EngineConfig {
            compliance: true,
            ..config()
        },
        &["alice@x", "bob@x", "carol@x"],
    );
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "pc");
    join(&mut h, a, "Alice");
    iq(&mut h, a, RoomCall::SetConfig(ConfigChange::default()));
    join(&mut h, b, "Bob");
    h.clear();
    groupchat(&mut h, b, "for the record");
    let records: Vec<_> = h
        .other
        .iter()
        .filter_map(|o| match o {
            presence_core::Output::Comply(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(
        r.room.as_ref().map(ToString::to_string).as_deref(),
        Some(ROOM)
    );
    assert_eq!(r.sender.to_string(), "bob@x/pc");
    let mut to: Vec<String> = r.recipients.iter().map(ToString::to_string).collect();
    to.sort();
    assert_eq!(to, ["alice@x/pc", "bob@x/pc"]);
    // A subject change carries no body: nothing to record.
    h.clear();
    message_to(
        &mut h,
        a,
        None,
        Message {
            kind: MessageKind::Groupchat,
            subject: Some("topic".into()),
            ..Message::default()
        },
    );
    assert!(
        !h.other
            .iter()
            .any(|o| matches!(o, presence_core::Output::Comply(_)))
    );
}

fn leave(h: &mut Harness, session: SessionId, nick: &str) {
    send(
        h,
        session,
        ROOM,
        RoomRequest::Presence {
            nick: nick.into(),
            presence: None,
            join: JoinOptions::default(),
        },
    );
}

/// The bodies of the room messages among `got`.
fn bodies(got: &[RoomStanza]) -> Vec<String> {
    got.iter()
        .filter_map(|r| match r {
            RoomStanza::Message { message, .. } => message.body.clone(),
            _ => None,
        })
        .collect()
}

#[test]
fn a_second_session_under_the_same_nick_is_the_same_occupant() {
    let (mut h, a, b, c) = three_in_a_room();
    groupchat(&mut h, a, "before");
    let b2 = h.login("bob@x", "phone");
    h.clear();
    join(&mut h, b2, "Bob");
    // The full join sequence for the new session: occupants, itself with 110, history, the subject.
    let got = room_stanzas(&mut h, b2);
    assert_eq!(
        presences(&got),
        vec![
            ("Alice".into(), true, vec![]),
            ("Carol".into(), true, vec![]),
            ("Bob".into(), true, vec![110])
        ]
    );
    assert_eq!(bodies(&got), vec!["before".to_owned()]);
    assert!(
        matches!(got.last(), Some(RoomStanza::Message { message, .. }) if message.subject.is_some())
    );
    // Nobody else sees a new occupant, bob's first session included.
    for s in [a, b, c] {
        assert!(presences(&room_stanzas(&mut h, s)).is_empty());
    }
    assert_eq!(
        h.engine
            .rooms()
            .and_then(|r| r.room(&j(ROOM)))
            .map(|r| r.occupants().len()),
        Some(3)
    );
    // Broadcasts and private messages to Bob reach both sessions.
    groupchat(&mut h, c, "hi all");
    assert_eq!(bodies(&room_stanzas(&mut h, b)), vec!["hi all".to_owned()]);
    assert_eq!(bodies(&room_stanzas(&mut h, b2)), vec!["hi all".to_owned()]);
    h.clear();
    message_to(&mut h, a, Some("Bob"), psst());
    assert_eq!(bodies(&room_stanzas(&mut h, b)), vec!["psst".to_owned()]);
    assert_eq!(bodies(&room_stanzas(&mut h, b2)), vec!["psst".to_owned()]);
    // What either session says comes from the one occupant.
    groupchat(&mut h, b2, "from the phone");
    let got = room_stanzas(&mut h, a);
    assert!(
        matches!(&got[..], [RoomStanza::Message { from, .. }] if from.to_string() == format!("{ROOM}/Bob"))
    );
    h.clear();
    // The first session leaves: only it is told; the occupant stays.
    leave(&mut h, b, "Bob");
    assert_eq!(
        presences(&room_stanzas(&mut h, b)),
        vec![("Bob".into(), false, vec![110])]
    );
    assert!(presences(&room_stanzas(&mut h, a)).is_empty());
    assert!(presences(&room_stanzas(&mut h, b2)).is_empty());
    // The last one ends: now the others see Bob go.
    h.logout(b2);
    assert_eq!(
        presences(&room_stanzas(&mut h, a)),
        vec![("Bob".into(), false, vec![])]
    );
}

#[test]
fn another_user_still_conflicts_and_a_kick_removes_every_session() {
    let (mut h, a, b, _) = three_in_a_room();
    let b2 = h.login("bob@x", "phone");
    let d = h.login("dave@x", "pc");
    join(&mut h, b2, "Bob");
    h.clear();
    join(&mut h, d, "Bob");
    assert_eq!(
        error_of(&room_stanzas(&mut h, d)),
        Some(ErrorCondition::Conflict)
    );
    // A session renaming alone would split the occupant: refused while it has company.
    rename(&mut h, b2, "Robert");
    assert_eq!(
        error_of(&room_stanzas(&mut h, b2)),
        Some(ErrorCondition::NotAcceptable)
    );
    iq(
        &mut h,
        a,
        RoomCall::SetRoles(vec![RoleChange {
            nick: "Bob".into(),
            role: Role::None,
            reason: None,
        }]),
    );
    for s in [b, b2] {
        assert_eq!(
            presences(&room_stanzas(&mut h, s)),
            vec![("Bob".into(), false, vec![110, 307])]
        );
    }
    assert_eq!(
        presences(&room_stanzas(&mut h, a)),
        vec![("Bob".into(), false, vec![307])]
    );
    // Both sessions are out: what they say now is refused.
    groupchat(&mut h, b2, "still here?");
    assert_eq!(
        error_of(&room_stanzas(&mut h, b2)),
        Some(ErrorCondition::NotAcceptable)
    );
}

fn mediated(h: &mut Harness, session: SessionId, what: Mediated) {
    send(h, session, ROOM, RoomRequest::Mediated { id: None, what });
}

fn invite(to: &str, reason: Option<&str>) -> Mediated {
    Mediated::Invite(vec![Invite {
        to: presence_core::Jid::new(to).expect("valid"),
        reason: reason.map(str::to_owned),
    }])
}

/// The plain (not room) messages among `got`: (from, extensions).
fn plain_messages(got: &[Stanza]) -> Vec<(String, Vec<String>)> {
    got.iter()
        .filter_map(|s| match s {
            Stanza::Message { from, message, .. } => {
                Some((from.to_string(), message.extensions.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_mediated_invitation_reaches_the_invitee_and_makes_them_a_member_of_a_members_only_room() {
    let mut h = harness();
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "pc");
    let d = h.login("dave@x", "pc");
    join(&mut h, a, "Alice");
    iq(&mut h, a, members_only());
    iq(&mut h, a, affiliate("bob@x", Affiliation::Member));
    join(&mut h, b, "Bob");
    h.clear();
    join(&mut h, d, "Dave");
    assert_eq!(
        error_of(&room_stanzas(&mut h, d)),
        Some(ErrorCondition::RegistrationRequired)
    );
    // The owner invites dave: an ordinary message from the room, naming alice's real address and the reason.
    mediated(&mut h, a, invite("dave@x", Some("join us")));
    let got = plain_messages(&h.take(d));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, ROOM);
    assert!(got[0].1[0].contains("<invite from='alice@x/pc'><reason>join us</reason>"));
    join(&mut h, d, "Dave");
    assert_eq!(
        presences(&room_stanzas(&mut h, d)).last(),
        Some(&("Dave".into(), true, vec![110]))
    );
    // A member may not invite unless the room lets occupants invite.
    h.clear();
    mediated(&mut h, b, invite("carol@x", None));
    assert_eq!(
        error_of(&room_stanzas(&mut h, b)),
        Some(ErrorCondition::Forbidden)
    );
    iq(
        &mut h,
        a,
        RoomCall::SetConfig(ConfigChange {
            allow_invites: Some(true),
            ..ConfigChange::default()
        }),
    );
    h.clear();
    // Carol is offline: the invitation is held for her like any message.
    mediated(&mut h, b, invite("carol@x", None));
    assert_eq!(error_of(&room_stanzas(&mut h, b)), None);
    assert_eq!(h.store.offline(&j("carol@x")).expect("offline").len(), 1);
    let c = h.login("carol@x", "pc");
    assert_eq!(plain_messages(&h.take(c)).len(), 1);
    join(&mut h, c, "Carol");
    assert_eq!(error_of(&room_stanzas(&mut h, c)), None);
    // An invitee at another domain is reached through the router.
    h.clear();
    mediated(&mut h, a, invite("zed@elsewhere", None));
    assert!(h.routed.iter().any(|s| matches!(
        s,
        Stanza::Message { from, to, .. } if from.to_string() == ROOM && to.to_string() == "zed@elsewhere"
    )));
}

#[test]
fn a_decline_goes_back_to_the_inviter_from_the_room() {
    let (mut h, a, _, _) = three_in_a_room();
    let d = h.login("dave@x", "pc");
    h.clear();
    mediated(
        &mut h,
        d,
        Mediated::Decline {
            to: presence_core::Jid::new("alice@x/pc").expect("valid"),
            reason: Some("busy".into()),
        },
    );
    let got = plain_messages(&h.take(a));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, ROOM);
    assert!(got[0].1[0].contains("<decline from='dave@x/pc'><reason>busy</reason></decline>"));
}

#[test]
fn a_visitor_asks_for_voice_and_a_moderator_grants_it() {
    let (mut h, a, b, d) = moderated_with_a_visitor();
    // Bob, a participant already (he entered before the room was moderated), has nothing to ask for.
    mediated(&mut h, b, Mediated::RequestVoice);
    assert_eq!(
        error_of(&room_stanzas(&mut h, b)),
        Some(ErrorCondition::NotAcceptable)
    );
    mediated(&mut h, d, Mediated::RequestVoice);
    let got = room_stanzas(&mut h, a);
    assert!(
        matches!(&got[..], [RoomStanza::VoiceRequest { nick, jid, .. }] if nick == "Dave" && jid.to_string() == "dave@x/pc"),
        "{got:?}"
    );
    assert!(
        room_stanzas(&mut h, b).is_empty(),
        "only moderators hear of it"
    );
    // A participant cannot approve; the moderator can.
    mediated(
        &mut h,
        b,
        Mediated::AnswerVoice {
            nick: "Dave".into(),
            allow: true,
        },
    );
    assert_eq!(
        error_of(&room_stanzas(&mut h, b)),
        Some(ErrorCondition::NotAllowed)
    );
    mediated(
        &mut h,
        a,
        Mediated::AnswerVoice {
            nick: "Dave".into(),
            allow: true,
        },
    );
    let got = room_stanzas(&mut h, d);
    assert!(
        matches!(&got[..], [RoomStanza::Presence { item, .. }] if item.role == Role::Participant),
        "{got:?}"
    );
    groupchat(&mut h, d, "thanks");
    assert_eq!(bodies(&room_stanzas(&mut h, a)), vec!["thanks".to_owned()]);
}

#[test]
fn an_affiliation_change_may_name_an_occupant_by_nickname() {
    let (mut h, a, b, c) = three_in_a_room();
    iq(
        &mut h,
        a,
        RoomCall::SetAffiliations(vec![AffiliationChange {
            who: Affiliate::Nick("Bob".into()),
            affiliation: Affiliation::Outcast,
            reason: Some("spam".into()),
        }]),
    );
    assert_eq!(answered(&room_stanzas(&mut h, a)), Some(&RoomAnswer::Done));
    assert_eq!(
        presences(&room_stanzas(&mut h, b)),
        vec![("Bob".into(), false, vec![110, 301])]
    );
    let r = h
        .engine
        .rooms()
        .and_then(|r| r.room(&j(ROOM)))
        .expect("room");
    assert_eq!(r.affiliation(&j("bob@x")), Affiliation::Outcast);
    h.clear();
    iq(
        &mut h,
        a,
        RoomCall::SetAffiliations(vec![AffiliationChange {
            who: Affiliate::Nick("Nobody".into()),
            affiliation: Affiliation::Member,
            reason: None,
        }]),
    );
    assert_eq!(
        error_of(&room_stanzas(&mut h, a)),
        Some(ErrorCondition::ItemNotFound)
    );
    iq(
        &mut h,
        a,
        RoomCall::SetAffiliations(vec![AffiliationChange {
            who: Affiliate::Nick("Carol".into()),
            affiliation: Affiliation::Member,
            reason: None,
        }]),
    );
    let r = h
        .engine
        .rooms()
        .and_then(|r| r.room(&j(ROOM)))
        .expect("room");
    assert_eq!(r.affiliation(&j("carol@x")), Affiliation::Member);
    let _ = c;
}

#[test]
fn a_shutdown_removes_every_occupant_with_332_and_keeps_persistent_rooms() {
    let (mut h, a, b, c) = three_in_a_room();
    let b2 = h.login("bob@x", "phone");
    join(&mut h, b2, "Bob");
    iq(
        &mut h,
        a,
        RoomCall::SetConfig(ConfigChange {
            persistent: Some(true),
            ..ConfigChange::default()
        }),
    );
    h.clear();
    h.engine.shutdown_rooms();
    h.drain();
    for (s, nick) in [(a, "Alice"), (b, "Bob"), (b2, "Bob"), (c, "Carol")] {
        assert_eq!(
            presences(&room_stanzas(&mut h, s)),
            vec![(nick.into(), false, vec![110, 332])]
        );
    }
    let r = h
        .engine
        .rooms()
        .and_then(|r| r.room(&j(ROOM)))
        .expect("kept");
    assert!(r.occupants().is_empty());
}

#[test]
fn a_nickname_the_service_changes_is_told_with_210() {
    let (mut h, a, _, _) = three_in_a_room();
    let d = h.login("dave@x", "pc");
    h.clear();
    join(&mut h, d, "  Dave  the   Great ");
    assert_eq!(
        presences(&room_stanzas(&mut h, d)).last(),
        Some(&("Dave the Great".into(), true, vec![110, 210]))
    );
    assert_eq!(
        presences(&room_stanzas(&mut h, a)),
        vec![("Dave the Great".into(), true, vec![])]
    );
    // The same nickname, spelled as the room keeps it, is the same occupant: no conflict.
    let d2 = h.login("dave@x", "phone");
    join(&mut h, d2, "Dave the Great");
    assert_eq!(
        presences(&room_stanzas(&mut h, d2)).last(),
        Some(&("Dave the Great".into(), true, vec![110]))
    );
    let e = h.login("dave@x", "tablet");
    join(&mut h, e, "   ");
    assert_eq!(
        error_of(&room_stanzas(&mut h, e)),
        Some(ErrorCondition::NotAcceptable)
    );
}

fn occupant_iq(
    h: &mut Harness,
    session: SessionId,
    nick: &str,
    id: &str,
    kind: IqKind,
    payload: &str,
) {
    send(
        h,
        session,
        ROOM,
        RoomRequest::OccupantIq {
            nick: nick.into(),
            iq: RoutedIq {
                to: presence_core::Jid::new(&format!("{ROOM}/{nick}")).expect("valid"),
                id: id.into(),
                kind,
                payload: vec![payload.into()],
            },
        },
    );
}

#[test]
fn an_iq_to_an_occupant_reaches_its_client_from_the_askers_room_address_and_the_answer_comes_back()
{
    let (mut h, a, b, c) = three_in_a_room();
    let query = "<query xmlns='jabber:iq:version'/>";
    occupant_iq(&mut h, b, "Carol", "v1", IqKind::Get, query);
    let got = room_stanzas(&mut h, c);
    let [RoomStanza::Iq { from, iq }] = &got[..] else {
        panic!("{got:?}")
    };
    // From bob's occupant address, never his real one; under the room's id.
    assert_eq!(from.to_string(), format!("{ROOM}/Bob"));
    assert_eq!(iq.to.to_string(), "carol@x/pc");
    assert_ne!(iq.id, "v1");
    assert_eq!(iq.payload, vec![query.to_owned()]);
    let forwarded_id = iq.id.clone();
    // Someone else's answer under that id counts for nothing.
    occupant_iq(&mut h, a, "Bob", &forwarded_id, IqKind::Result, "<x/>");
    assert!(room_stanzas(&mut h, b).is_empty());
    // Carol's client answers to bob's occupant address; bob gets it under his own id, from carol's.
    let answer = "<query xmlns='jabber:iq:version'><name>c</name></query>";
    occupant_iq(&mut h, c, "Bob", &forwarded_id, IqKind::Result, answer);
    let got = room_stanzas(&mut h, b);
    let [RoomStanza::Iq { from, iq }] = &got[..] else {
        panic!("{got:?}")
    };
    assert_eq!(from.to_string(), format!("{ROOM}/Carol"));
    assert_eq!((iq.id.as_str(), iq.kind), ("v1", IqKind::Result));
    assert_eq!(iq.to.to_string(), "bob@x/pc");
    // Once only.
    occupant_iq(&mut h, c, "Bob", &forwarded_id, IqKind::Result, answer);
    assert!(room_stanzas(&mut h, b).is_empty());
    // Nobody by that nickname, or an asker outside the room: refused.
    occupant_iq(&mut h, b, "Nobody", "v2", IqKind::Get, query);
    assert_eq!(
        error_of(&room_stanzas(&mut h, b)),
        Some(ErrorCondition::ItemNotFound)
    );
    let d = h.login("dave@x", "pc");
    h.clear();
    occupant_iq(&mut h, d, "Carol", "v3", IqKind::Get, query);
    assert_eq!(
        error_of(&room_stanzas(&mut h, d)),
        Some(ErrorCondition::NotAcceptable)
    );
}

#[derive(Debug, Clone)]
enum SeatOp {
    Join(u8, u8),
    Leave(u8),
    Rename(u8, u8),
    End(u8),
}

fn seat_op() -> impl Strategy<Value = SeatOp> {
    prop_oneof![
        (0u8..4, 0u8..3).prop_map(|(s, n)| SeatOp::Join(s, n)),
        (0u8..4).prop_map(SeatOp::Leave),
        (0u8..4, 0u8..3).prop_map(|(s, n)| SeatOp::Rename(s, n)),
        (0u8..4).prop_map(SeatOp::End),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// Whatever two users do through two sessions each (enter, leave, rename, end), no two occupants share a
    /// nickname, a session is in at most one occupant, and an occupant's sessions are one user's.
    #[test]
    fn a_session_is_in_at_most_one_occupant(ops in proptest::collection::vec(seat_op(), 0..40)) {
        let mut h = harness();
        let owner = h.login("carol@x", "pc");
        join(&mut h, owner, "Owner");
        iq(&mut h, owner, RoomCall::SetConfig(ConfigChange::default()));
        let mut sessions = [
            h.login("alice@x", "pc"),
            h.login("alice@x", "phone"),
            h.login("bob@x", "pc"),
            h.login("bob@x", "phone"),
        ];
        let nicks = ["n0", "n1", "n2"];
        for op in ops {
            match op {
                SeatOp::Join(s, n) => join(&mut h, sessions[s as usize], nicks[n as usize]),
                SeatOp::Leave(s) => leave(&mut h, sessions[s as usize], "any"),
                SeatOp::Rename(s, n) => send(&mut h, sessions[s as usize], ROOM, RoomRequest::Presence {
                    nick: nicks[n as usize].into(),
                    presence: Some(OccupantPresence::default()),
                    join: JoinOptions::default(),
                }),
                SeatOp::End(s) => {
                    let s = s as usize;
                    h.logout(sessions[s]);
                    let (user, resource) = [("alice@x", "pc"), ("alice@x", "phone"), ("bob@x", "pc"), ("bob@x", "phone")][s];
                    sessions[s] = h.login(user, resource);
                }
            }
            h.clear();
            let r = h.engine.rooms().and_then(|r| r.room(&j(ROOM))).expect("the owner keeps it");
            let mut nick_list: Vec<&str> = r.occupants().iter().map(|o| o.nick.as_str()).collect();
            let count = nick_list.len();
            nick_list.dedup();
            prop_assert_eq!(nick_list.len(), count);
            let mut seen = std::collections::HashSet::new();
            for o in r.occupants().iter() {
                prop_assert!(!o.seats.is_empty());
                for seat in &o.seats {
                    prop_assert!(seen.insert(seat.session), "a session in two seats");
                    prop_assert_eq!(seat.jid.bare(), o.bare());
                    prop_assert_eq!(r.occupants().by_session(seat.session).map(|x| x.nick.as_str()), Some(o.nick.as_str()));
                }
            }
        }
    }
}

#[test]
fn an_invitation_to_an_unknown_local_user_bounces_without_looping() {
    let (mut h, a, _, _) = three_in_a_room();
    mediated(&mut h, a, invite("nobody@x", None));
    // The invitation was accepted by the room; the bounce is an error to the room's address, which the router
    // drops (the service sends no errors back, and errors are never answered): nothing loops.
    assert_eq!(error_of(&room_stanzas(&mut h, a)), None);
    assert!(
        matches!(&h.routed[..], [Stanza::Error(e)] if e.to.to_string() == ROOM),
        "{:?}",
        h.routed
    );
}
