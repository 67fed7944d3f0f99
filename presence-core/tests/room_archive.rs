//! A room's message archive (XEP-0313 on rooms): what a persistent room appends and how, status 170/171, the
//! stanza-id on broadcasts, history from the archive after a restart, and who may query.

mod common;

use common::rooms::at_room::{groupchat, iq, join};
use common::rooms::{
    ROOM, affiliate, answered, config, error_of, groupchat_message, harness, members_only,
    restarted, room_stanzas, rooms_config,
};
use common::{Harness, j};
use presence_core::archive::Query;
use presence_core::jid::FullJid;
use presence_core::rooms::{
    Affiliation, ArchiveRead, ConfigChange, OccupantPresence, RoomAnswer, RoomCall, RoomEffect,
    RoomLimits, RoomQuery, RoomRequest, RoomStanza, Rooms, Sender,
};
use presence_core::stanza::ErrorCondition;
use presence_core::store::{RoomArchiveStore, RoomStore};
use presence_core::time::Timestamp;
use presence_core::{Input, SessionId};

/// The status codes of the session's own presence among `got`.
fn own_codes(got: &[RoomStanza]) -> Vec<u16> {
    got.iter()
        .find_map(|r| match r {
            RoomStanza::Presence { codes, .. } if codes.iter().any(|c| c.code() == 110) => {
                Some(codes.iter().map(|c| c.code()).collect())
            }
            _ => None,
        })
        .unwrap_or_default()
}

/// (body, stanza-id) of the live (not delayed) room messages among `got`.
fn live(got: &[RoomStanza]) -> Vec<(String, Option<u64>)> {
    got.iter()
        .filter_map(|r| match r {
            RoomStanza::Message {
                message,
                delayed: None,
                ..
            } if message.body.is_some() => Some((
                message.body.clone().unwrap_or_default(),
                message.archive_id.map(|i| i.get()),
            )),
            _ => None,
        })
        .collect()
}

fn persistent(archiving: Option<bool>) -> RoomCall {
    RoomCall::SetConfig(ConfigChange {
        persistent: Some(true),
        archiving,
        ..ConfigChange::default()
    })
}

fn all() -> RoomQuery {
    RoomQuery {
        nick: None,
        query: Query {
            max: 100,
            ..Query::default()
        },
    }
}

/// Alice owns a persistent room (archiving as the default says) with Bob in it.
fn persistent_room() -> (Harness, SessionId, SessionId) {
    let mut h = harness();
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "pc");
    join(&mut h, a, "Alice");
    iq(&mut h, a, persistent(None));
    join(&mut h, b, "Bob");
    h.clear();
    (h, a, b)
}

#[test]
fn a_persistent_room_archives_with_growing_ids_and_stamps_them_on_the_broadcast() {
    let (mut h, a, b) = persistent_room();
    groupchat(&mut h, b, "one");
    groupchat(&mut h, a, "two");
    assert_eq!(
        live(&room_stanzas(&mut h, a)),
        vec![("one".into(), Some(1)), ("two".into(), Some(2))]
    );
    assert_eq!(
        live(&room_stanzas(&mut h, b)),
        vec![("one".into(), Some(1)), ("two".into(), Some(2))],
        "every occupant sees the same stanza-id"
    );
    let page = h.store.room_archive_query(&j(ROOM), &all()).expect("query");
    let kept: Vec<(u64, String, String)> = page
        .messages
        .iter()
        .map(|m| {
            (
                m.id,
                m.from.to_string(),
                m.message.body.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        vec![
            (1, format!("{ROOM}/Bob"), "one".into()),
            (2, format!("{ROOM}/Alice"), "two".into())
        ]
    );
    assert_eq!(page.messages[0].with, j("bob@x"), "the real sender is kept");
    assert_eq!(
        h.store.rooms().expect("rooms")[0].history.len(),
        0,
        "the record is not rewritten with the history"
    );
}

#[test]
fn an_ad_hoc_room_never_archives_and_says_nothing_of_logging() {
    let mut h = Harness::with_users(config(), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "pc");
    join(&mut h, a, "Alice");
    iq(&mut h, a, RoomCall::SetConfig(ConfigChange::default()));
    h.clear();
    join(&mut h, b, "Bob");
    assert!(!own_codes(&room_stanzas(&mut h, b)).contains(&170));
    groupchat(&mut h, b, "gone");
    assert_eq!(live(&room_stanzas(&mut h, b)), vec![("gone".into(), None)]);
    assert_eq!(
        h.store.room_archive_head(&j(ROOM)).expect("head"),
        0,
        "nothing archived"
    );
    iq(&mut h, b, RoomCall::ArchiveQuery(Box::default()));
    assert_eq!(
        error_of(&room_stanzas(&mut h, b)),
        Some(ErrorCondition::FeatureNotImplemented)
    );
}

#[test]
fn joining_an_archiving_room_says_170_and_config_changes_say_170_or_171() {
    let (mut h, a, _) = persistent_room();
    let c = h.login("carol@x", "pc");
    join(&mut h, c, "Carol");
    assert_eq!(own_codes(&room_stanzas(&mut h, c)), vec![110, 170]);
    h.clear();
    iq(&mut h, a, persistent(Some(false)));
    let codes_of = |got: &[RoomStanza]| {
        got.iter()
            .find_map(|r| match r {
                RoomStanza::Message { codes, .. } if !codes.is_empty() => {
                    Some(codes.iter().map(|c| c.code()).collect::<Vec<u16>>())
                }
                _ => None,
            })
            .unwrap_or_default()
    };
    assert_eq!(codes_of(&room_stanzas(&mut h, c)), vec![104, 171]);
    groupchat(&mut h, c, "unarchived");
    assert_eq!(h.store.room_archive_head(&j(ROOM)).expect("head"), 0);
    iq(&mut h, a, persistent(Some(true)));
    assert_eq!(codes_of(&room_stanzas(&mut h, c)), vec![104, 170]);
    h.clear();
    let d = h.login("dave@x", "pc");
    join(&mut h, d, "Dave");
    assert_eq!(own_codes(&room_stanzas(&mut h, d)), vec![110, 170]);
}

#[test]
fn history_comes_back_from_the_archive_after_a_restart() {
    let (mut h, a, b) = persistent_room();
    for n in 0..20 {
        groupchat(&mut h, b, &format!("m{n}"));
    }
    for s in [a, b] {
        h.logout(s);
    }
    let mut h2 = restarted(&h);
    let d = h2.login("dave@x", "pc");
    h2.clear();
    join(&mut h2, d, "Dave");
    let got = room_stanzas(&mut h2, d);
    let history: Vec<(String, Option<u64>)> = got
        .iter()
        .filter_map(|r| match r {
            RoomStanza::Message {
                message,
                delayed: Some(_),
                ..
            } => Some((
                message.body.clone().unwrap_or_default(),
                message.archive_id.map(|i| i.get()),
            )),
            _ => None,
        })
        .collect();
    let expected: Vec<(String, Option<u64>)> = (5..20)
        .map(|n| (format!("m{n}"), Some(n as u64 + 1)))
        .collect();
    assert_eq!(history, expected, "the last 15, with their stanza-ids");
    // The counter goes on where it stopped.
    let b2 = h2.login("bob@x", "pc");
    join(&mut h2, b2, "Bob");
    h2.clear();
    groupchat(&mut h2, b2, "after");
    assert_eq!(
        live(&room_stanzas(&mut h2, d)),
        vec![("after".into(), Some(21))]
    );
}

#[test]
fn destroying_the_room_removes_its_archive() {
    let (mut h, a, b) = persistent_room();
    groupchat(&mut h, b, "soon gone");
    assert_eq!(h.store.room_archive_head(&j(ROOM)).expect("head"), 1);
    iq(&mut h, a, RoomCall::Destroy(Default::default()));
    assert_eq!(h.store.room_archive_head(&j(ROOM)).expect("head"), 0);
}

#[test]
fn who_may_query_follows_membership_and_bans() {
    let (mut h, a, b) = persistent_room();
    let read = ArchiveRead {
        query: all(),
        queryid: Some("qid".into()),
        flip: false,
    };
    // Open room: anyone not banned, in the room or not.
    let c = h.login("carol@x", "pc");
    iq(&mut h, c, RoomCall::ArchiveQuery(Box::new(read.clone())));
    assert_eq!(
        answered(&room_stanzas(&mut h, c)),
        Some(&RoomAnswer::ArchiveRead(Box::new(read.clone()))),
        "the room hands the query back for the shell to read"
    );
    iq(&mut h, a, affiliate("carol@x", Affiliation::Outcast));
    h.clear();
    iq(&mut h, c, RoomCall::ArchiveQuery(Box::new(read.clone())));
    assert_eq!(
        error_of(&room_stanzas(&mut h, c)),
        Some(ErrorCondition::Forbidden)
    );
    // Members-only: members and above.
    iq(&mut h, a, members_only());
    iq(&mut h, a, affiliate("bob@x", Affiliation::Member));
    let d = h.login("dave@x", "pc");
    h.clear();
    iq(&mut h, d, RoomCall::ArchiveQuery(Box::new(read.clone())));
    assert_eq!(
        error_of(&room_stanzas(&mut h, d)),
        Some(ErrorCondition::Forbidden)
    );
    iq(&mut h, b, RoomCall::ArchiveQuery(Box::new(read.clone())));
    assert!(matches!(
        answered(&room_stanzas(&mut h, b)),
        Some(RoomAnswer::ArchiveRead(_))
    ));
    iq(&mut h, a, RoomCall::ArchiveQuery(Box::new(read.clone())));
    assert!(matches!(
        answered(&room_stanzas(&mut h, a)),
        Some(RoomAnswer::ArchiveRead(_))
    ));
    // An unknown room.
    h.input(Input::Room {
        session: d,
        room: j("nowhere@conference.x"),
        stamp: Timestamp(1_000_000),
        request: RoomRequest::Iq {
            id: "q".into(),
            nick: None,
            call: RoomCall::ArchiveQuery(Box::new(read)),
        },
    });
    assert_eq!(
        error_of(&room_stanzas(&mut h, d)),
        Some(ErrorCondition::ItemNotFound)
    );
}

#[test]
fn a_message_is_one_append_and_the_archive_is_trimmed_in_steps() {
    let mut config = rooms_config();
    config.limits = RoomLimits {
        max_archive_per_room: 300,
        ..RoomLimits::default()
    };
    let mut rooms = Rooms::new(config, Vec::new());
    let alice = FullJid::new("alice@x/pc").expect("valid");
    let from = Sender {
        session: SessionId(1),
        jid: &alice,
    };
    let now = Timestamp(1000);
    let handle = |rooms: &mut Rooms, request| rooms.handle(now, from, j(ROOM), request);
    handle(
        &mut rooms,
        RoomRequest::Presence {
            nick: "Alice".into(),
            presence: Some(OccupantPresence::default()),
            join: Default::default(),
        },
    );
    handle(
        &mut rooms,
        RoomRequest::Iq {
            id: "c".into(),
            nick: None,
            call: persistent(None),
        },
    );
    let mut trims = Vec::new();
    for n in 1..=600u64 {
        let effects = handle(
            &mut rooms,
            RoomRequest::Message {
                nick: None,
                message: groupchat_message(&format!("m{n}")),
            },
        );
        let mut appends = 0;
        for e in effects {
            match e {
                RoomEffect::Archive { entry, .. } => {
                    assert_eq!(entry.id, n);
                    appends += 1;
                }
                RoomEffect::ArchiveTrim { below, .. } => trims.push((n, below)),
                RoomEffect::Put(_) => panic!("message {n} rewrote the room's record"),
                RoomEffect::Deliver(_)
                | RoomEffect::Remove(_)
                | RoomEffect::Send(_)
                | RoomEffect::Listed { .. } => {}
            }
        }
        assert_eq!(appends, 1, "message {n}");
    }
    // Ids 512 (the first multiple of the step past the bound of 300) trims to the newest 300.
    assert_eq!(trims, vec![(512, 213)]);
}
