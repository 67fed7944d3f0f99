//! Rooms in a cluster (issue 15): each room is served by its home node (`cluster::room_home`), occupants from
//! other nodes sit in it as proxy sessions, and a failed node's rooms are served by its peer. Two engines over
//! one store, with room traffic and routed stanzas carried between them by hand.
mod common;

use std::sync::Arc;

use common::rooms::{config, iq, join, messages, presences, room_stanzas, send};
use common::*;
use presence_core::cluster::room_home;
use presence_core::engine::{PROXY_BIT, RoomTraffic};
use presence_core::message::{Message, MessageKind};
use presence_core::rooms::room::Room;
use presence_core::rooms::{
    ConfigChange, OccupantPresence, RoomAnswer, RoomCall, RoomRequest, RoomStanza,
};
use presence_core::stanza::ErrorCondition;
use presence_core::store::MemoryStore;
use presence_core::time::Timestamp;
use presence_core::{BareJid, Input, SessionId};

const NODES: [&str; 2] = ["a", "b"];

fn placement(h: &mut Harness, served: &[&str]) {
    h.input(Input::RoomPlacement {
        nodes: NODES.iter().map(|n| n.to_string()).collect(),
        served: served.iter().map(|n| n.to_string()).collect(),
    });
}

/// Node `a` serving alice, node `b` serving bob, each serving its own rooms.
fn pair() -> (Harness, Harness) {
    let store = Arc::new(MemoryStore::new());
    let mut a = Harness::node(config(), store.clone(), &["alice@x"]);
    a.account("alice@x");
    a.account("bob@x");
    let mut b = Harness::node(config(), store, &["bob@x"]);
    placement(&mut a, &["a"]);
    placement(&mut b, &["b"]);
    (a, b)
}

/// A room whose home is `node`.
fn room_on(node: &str) -> BareJid {
    (0..)
        .map(|i| j(&format!("room{i}@conference.x")))
        .find(|r| room_home(r, &NODES) == Some(node))
        .expect("some room lands on every node")
}

/// `room` as node `h` holds it.
fn held<'h>(h: &'h Harness, room: &BareJid, why: &str) -> &'h Room {
    h.engine.rooms().unwrap().room(room).expect(why)
}

/// Carries routed stanzas to the node serving their recipient, and room traffic to the node serving its room
/// (`served[i]` is whose rooms node i serves), until nothing moves.
fn pump_with(a: &mut Harness, b: &mut Harness, served: [&[&str]; 2]) {
    loop {
        let stanzas = [std::mem::take(&mut a.routed), std::mem::take(&mut b.routed)];
        let traffic: Vec<RoomTraffic> = std::mem::take(&mut a.to_room)
            .into_iter()
            .chain(std::mem::take(&mut b.to_room))
            .collect();
        if stanzas.iter().all(Vec::is_empty) && traffic.is_empty() {
            return;
        }
        let [from_a, from_b] = stanzas;
        for s in from_a {
            b.input(Input::FromRemote(s));
        }
        for s in from_b {
            a.input(Input::FromRemote(s));
        }
        for t in traffic {
            // A listing goes to the node serving the home it names, the rest to the one serving the room.
            let home = t
                .home()
                .or_else(|| room_home(t.room(), &NODES))
                .expect("a home");
            if served[0].contains(&home) {
                a.input(Input::FromRemoteRoom(Box::new(t)));
            } else {
                b.input(Input::FromRemoteRoom(Box::new(t)));
            }
        }
    }
}

fn pump(a: &mut Harness, b: &mut Harness) {
    pump_with(a, b, [&["a"], &["b"]]);
}

fn message(h: &mut Harness, session: SessionId, room: &BareJid, nick: Option<&str>, body: &str) {
    let message = Message {
        id: Some(format!("m-{body}")),
        kind: if nick.is_some() {
            MessageKind::Chat
        } else {
            MessageKind::Groupchat
        },
        body: Some(body.into()),
        ..Message::default()
    };
    send(
        h,
        session,
        room,
        RoomRequest::Message {
            nick: nick.map(Into::into),
            message,
        },
    );
}

/// Alice (on a) creates `room` (homed on a) as an instant room; bob (on b) joins it. Outputs cleared.
fn alice_and_bob_in(room: &BareJid) -> (Harness, Harness, SessionId, SessionId) {
    let (mut a, mut b) = pair();
    let sa = a.login("alice@x", "pc");
    let sb = b.login("bob@x", "phone");
    pump(&mut a, &mut b);
    join(&mut a, sa, room, "Alice");
    iq(
        &mut a,
        sa,
        room,
        RoomCall::SetConfig(ConfigChange::default()),
    );
    pump(&mut a, &mut b);
    a.clear();
    b.clear();
    join(&mut b, sb, room, "Bob");
    assert!(
        b.engine.rooms().is_some_and(|r| r.is_empty()),
        "node b holds no room homed on a"
    );
    assert_eq!(b.to_room.len(), 1, "the join leaves b as room traffic");
    pump(&mut a, &mut b);
    (a, b, sa, sb)
}

/// Alice makes `room` persistent with the name "Lobby".
fn make_lobby(a: &mut Harness, sa: SessionId, room: &BareJid) {
    let change = ConfigChange {
        persistent: Some(true),
        name: Some("Lobby".into()),
        ..ConfigChange::default()
    };
    iq(a, sa, room, RoomCall::SetConfig(change));
}

#[test]
fn a_user_on_another_node_joins_sees_occupants_and_talks_both_ways() {
    let room = room_on("a");
    let (mut a, mut b, sa, sb) = alice_and_bob_in(&room);

    // Bob sees alice, then himself (110); alice sees bob come in.
    let got = room_stanzas(&mut b, sb);
    let seen = presences(&got);
    assert_eq!(seen[0], ("Alice".into(), true, vec![]), "{got:?}");
    assert!(
        seen.iter()
            .any(|(n, on, c)| n == "Bob" && *on && c.contains(&110)),
        "{got:?}"
    );
    assert_eq!(
        presences(&room_stanzas(&mut a, sa)),
        [("Bob".into(), true, vec![])]
    );
    // On a, bob is seated as a proxy session carrying his real address.
    let r = held(&a, &room, "the room is on a");
    let bob = r.occupants().get("Bob").expect("bob is an occupant");
    assert!(bob.seats[0].session.0 & PROXY_BIT != 0);
    assert_eq!(bob.jid().to_string(), "bob@x/phone");

    // Groupchat both ways: everyone, the sender included, gets it from the sender's room address.
    message(&mut a, sa, &room, None, "hi from a");
    pump(&mut a, &mut b);
    let from_alice = (format!("{room}/Alice"), "hi from a".to_owned(), false);
    assert_eq!(
        messages(&room_stanzas(&mut b, sb)),
        std::slice::from_ref(&from_alice)
    );
    assert_eq!(messages(&room_stanzas(&mut a, sa)), [from_alice]);
    message(&mut b, sb, &room, None, "hi from b");
    pump(&mut a, &mut b);
    let from_bob = (format!("{room}/Bob"), "hi from b".to_owned(), false);
    assert_eq!(
        messages(&room_stanzas(&mut a, sa)),
        std::slice::from_ref(&from_bob)
    );
    assert_eq!(messages(&room_stanzas(&mut b, sb)), [from_bob]);

    // Private messages both ways.
    message(&mut b, sb, &room, Some("Alice"), "psst");
    pump(&mut a, &mut b);
    assert_eq!(
        messages(&room_stanzas(&mut a, sa)),
        [(format!("{room}/Bob"), "psst".to_owned(), true)]
    );
    message(&mut a, sa, &room, Some("Bob"), "back");
    pump(&mut a, &mut b);
    assert_eq!(
        messages(&room_stanzas(&mut b, sb)),
        [(format!("{room}/Alice"), "back".to_owned(), true)]
    );

    // An IQ from b is answered from the room on a.
    iq(&mut b, sb, &room, RoomCall::Info);
    pump(&mut a, &mut b);
    let got = room_stanzas(&mut b, sb);
    assert!(
        got.iter().any(|r| matches!(r, RoomStanza::Answer { answer: RoomAnswer::Info(i), .. } if i.occupants == 2)),
        "{got:?}"
    );
}

#[test]
fn a_session_ending_on_its_node_removes_the_occupant_on_the_rooms_node() {
    let room = room_on("a");
    let (mut a, mut b, sa, _sb) = alice_and_bob_in(&room);
    a.clear();
    b.logout(_sb);
    assert!(
        b.to_room
            .iter()
            .any(|t| matches!(t, RoomTraffic::Left { room: r, .. } if *r == room)),
        "{:?}",
        b.to_room
    );
    pump(&mut a, &mut b);
    assert_eq!(
        presences(&room_stanzas(&mut a, sa)),
        [("Bob".into(), false, vec![])]
    );
    let r = held(&a, &room, "alice keeps it");
    assert_eq!(r.occupants().len(), 1);
}

#[test]
fn a_remote_occupant_who_leaves_and_comes_back_is_seen_both_times() {
    let room = room_on("a");
    let (mut a, mut b, sa, sb) = alice_and_bob_in(&room);
    a.clear();
    b.clear();
    send(
        &mut b,
        sb,
        &room,
        RoomRequest::Presence {
            nick: "Bob".into(),
            presence: None,
            join: Default::default(),
        },
    );
    pump(&mut a, &mut b);
    assert_eq!(
        presences(&room_stanzas(&mut a, sa)),
        [("Bob".into(), false, vec![])]
    );
    let got = room_stanzas(&mut b, sb);
    assert!(
        presences(&got)
            .iter()
            .any(|(n, on, c)| n == "Bob" && !on && c.contains(&110)),
        "{got:?}"
    );
    join(&mut b, sb, &room, "Bob");
    pump(&mut a, &mut b);
    assert_eq!(
        presences(&room_stanzas(&mut a, sa)),
        [("Bob".into(), true, vec![])]
    );
    // What the rejoin brought (occupants, the subject) is not what is looked at next.
    b.clear();
    message(&mut a, sa, &room, None, "welcome back");
    pump(&mut a, &mut b);
    assert_eq!(
        messages(&room_stanzas(&mut b, sb)),
        [(format!("{room}/Alice"), "welcome back".to_owned(), false)]
    );
}

/// What disco#items of the service lists, asked by `s` on node `h`.
fn service_items(h: &mut Harness, s: SessionId) -> Vec<BareJid> {
    iq(h, s, &j("conference.x"), RoomCall::Items);
    match room_stanzas(h, s).iter().find_map(|r| match r {
        RoomStanza::Answer { answer, .. } => Some(answer.clone()),
        _ => None,
    }) {
        Some(RoomAnswer::Rooms(rooms)) => rooms.into_iter().map(|(r, _)| r).collect(),
        other => panic!("disco#items answered {other:?}"),
    }
}

#[test]
fn the_service_of_each_node_lists_the_public_rooms_the_other_serves() {
    let (on_a, on_b) = (room_on("a"), room_on("b"));
    let (mut a, mut b) = pair();
    let sa = a.login("alice@x", "pc");
    let sb = b.login("bob@x", "phone");
    for (h, s, room) in [(&mut a, sa, &on_a), (&mut b, sb, &on_b)] {
        join(h, s, room, "Owner");
        iq(h, s, room, RoomCall::SetConfig(ConfigChange::default()));
    }
    pump(&mut a, &mut b);
    let mut both = vec![on_a.clone(), on_b.clone()];
    both.sort();
    a.clear();
    b.clear();
    assert_eq!(service_items(&mut a, sa), both);
    assert_eq!(service_items(&mut b, sb), both);
    // Bob leaves his ad hoc room: it vanishes, and a stops listing it.
    send(
        &mut b,
        sb,
        &on_b,
        RoomRequest::Presence {
            nick: "Owner".into(),
            presence: None,
            join: Default::default(),
        },
    );
    pump(&mut a, &mut b);
    assert_eq!(service_items(&mut a, sa), vec![on_a.clone()]);
}

#[test]
fn a_room_homed_on_the_users_node_is_served_there_and_others_reach_it() {
    // The mirror case: the room is homed on b, created by bob, joined by alice from a.
    let room = room_on("b");
    let (mut a, mut b) = pair();
    let sa = a.login("alice@x", "pc");
    let sb = b.login("bob@x", "phone");
    join(&mut b, sb, &room, "Bob");
    iq(
        &mut b,
        sb,
        &room,
        RoomCall::SetConfig(ConfigChange::default()),
    );
    assert!(
        b.to_room
            .iter()
            .all(|t| matches!(t, RoomTraffic::Listed { home, .. } if home == "a")),
        "b serves its own rooms (it only tells a that the room is listed): {:?}",
        b.to_room
    );
    join(&mut a, sa, &room, "Alice");
    pump(&mut a, &mut b);
    b.clear();
    message(&mut a, sa, &room, None, "from a");
    pump(&mut a, &mut b);
    assert_eq!(
        messages(&room_stanzas(&mut b, sb)),
        [(format!("{room}/Alice"), "from a".to_owned(), false)]
    );
    assert!(a.engine.rooms().unwrap().is_empty());
}

#[test]
fn a_request_reaching_a_node_that_does_not_serve_the_room_is_answered_with_an_error() {
    let room = room_on("a");
    let (mut a, mut b) = pair();
    let sb = b.login("bob@x", "phone");
    iq(&mut b, sb, &room, RoomCall::Info);
    let traffic = std::mem::take(&mut b.to_room);
    // Delivered to b's own engine as if it came from elsewhere (a stale view): b does not serve the room.
    for t in traffic {
        b.input(Input::FromRemoteRoom(Box::new(t)));
    }
    pump(&mut a, &mut b);
    let got = room_stanzas(&mut b, sb);
    assert!(
        got.iter().any(|r| matches!(r, RoomStanza::Error(e) if e.condition == ErrorCondition::ServiceUnavailable)),
        "{got:?}"
    );
    // And a request that cannot be carried at all is answered by its own node (what the runtime does).
    iq(&mut b, sb, &room, RoomCall::Info);
    let t = b.to_room.pop().expect("traffic");
    let bounce = t
        .bounce(ErrorCondition::ServiceUnavailable, "no node")
        .expect("a request is answered");
    b.input(Input::FromRemote(bounce));
    let got = room_stanzas(&mut b, sb);
    assert!(
        matches!(got.as_slice(), [RoomStanza::Error(e)] if e.condition == ErrorCondition::ServiceUnavailable),
        "{got:?}"
    );
}

#[test]
fn when_a_node_fails_its_peer_serves_its_persistent_rooms_from_the_store_and_gives_them_back() {
    let room = room_on("a");
    let (mut a, mut b, sa, sb) = alice_and_bob_in(&room);
    make_lobby(&mut a, sa, &room);
    pump(&mut a, &mut b);
    a.clear();
    b.clear();

    // Failover: b serves a's rooms; a serves none. A's occupants (bob via b) hear 332.
    placement(&mut a, &[]);
    placement(&mut b, &["a", "b"]);
    assert!(a.engine.rooms().unwrap().is_empty(), "a dropped its rooms");
    pump_with(&mut a, &mut b, [&[], &["a", "b"]]);
    let got = room_stanzas(&mut b, sb);
    assert!(
        presences(&got)
            .iter()
            .any(|(n, on, c)| n == "Bob" && !on && c.contains(&332)),
        "{got:?}"
    );
    let on_b = held(&b, &room, "b read it from the store");
    assert_eq!(on_b.config().name, "Lobby");
    assert!(on_b.config().persistent);

    // Bob rejoins: served by b now, locally.
    join(&mut b, sb, &room, "Bob");
    assert!(b.to_room.is_empty());
    let got = room_stanzas(&mut b, sb);
    assert!(
        presences(&got)
            .iter()
            .any(|(n, on, c)| n == "Bob" && *on && c.contains(&110)),
        "{got:?}"
    );

    // Failback: a serves its rooms again, reading them from the store; b lets go and bob hears 332.
    placement(&mut b, &["b"]);
    placement(&mut a, &["a"]);
    let got = room_stanzas(&mut b, sb);
    assert!(
        presences(&got)
            .iter()
            .any(|(_, on, c)| !on && c.contains(&332)),
        "{got:?}"
    );
    assert!(b.engine.rooms().unwrap().is_empty());
    let on_a = held(&a, &room, "a read it again");
    assert_eq!(on_a.config().name, "Lobby");
}

#[test]
fn a_single_node_without_placement_serves_every_room() {
    let mut h = Harness::with_users(config(), &["alice@x"]);
    let s = h.login("alice@x", "pc");
    for node in NODES {
        join(&mut h, s, &room_on(node), "Alice");
    }
    assert!(h.to_room.is_empty());
    assert_eq!(h.engine.rooms().unwrap().len(), 2);
}

/// Alice's persistent room "Lobby" homed on a; then b takes a's rooms over while bob's join is already queued
/// behind the placement change (the runtime hands both in one batch, before it reads the store).
fn takeover_with_a_join_in_the_same_batch(fail: bool) -> (Harness, SessionId, BareJid) {
    let room = room_on("a");
    let (mut a, mut b, sa, sb) = alice_and_bob_in(&room);
    make_lobby(&mut a, sa, &room);
    b.logout(sb);
    pump(&mut a, &mut b);
    let sb = b.login("bob@x", "phone");
    b.clear();
    let now = b.now;
    b.engine.handle(
        now,
        Input::RoomPlacement {
            nodes: NODES.iter().map(|n| n.to_string()).collect(),
            served: vec!["a".into(), "b".into()],
        },
    );
    b.engine.handle(
        now,
        Input::Room {
            session: sb,
            room: room.clone(),
            stamp: Timestamp(2_000_000),
            request: RoomRequest::Presence {
                nick: "Bob".into(),
                presence: Some(OccupantPresence::default()),
                join: Default::default(),
            },
        },
    );
    if fail {
        b.engine.handle(now, Input::RoomsLoadFailed);
    }
    b.drain();
    (b, sb, room)
}

#[test]
fn room_work_waits_for_the_rooms_read_on_takeover_so_a_join_finds_the_stored_room() {
    let (mut b, sb, room) = takeover_with_a_join_in_the_same_batch(false);
    let got = room_stanzas(&mut b, sb);
    let seen = presences(&got);
    assert!(
        seen.iter()
            .any(|(n, on, c)| n == "Bob" && *on && c.contains(&110) && !c.contains(&201)),
        "joined the stored room, not a new one: {got:?}"
    );
    let r = held(&b, &room, "on b");
    assert_eq!(r.config().name, "Lobby");
}

#[test]
fn a_failed_rooms_read_answers_the_waiting_work_with_a_temporary_error_and_the_next_asks_again() {
    let (mut b, sb, room) = takeover_with_a_join_in_the_same_batch(true);
    let got = room_stanzas(&mut b, sb);
    assert!(
        matches!(got.as_slice(), [RoomStanza::Error(e)] if e.condition == ErrorCondition::InternalServerError),
        "{got:?}"
    );
    // The harness answered the read that was asked (it succeeded this time): the next join finds the room.
    join(&mut b, sb, &room, "Bob");
    let got = room_stanzas(&mut b, sb);
    assert!(
        presences(&got).iter().any(|(n, on, _)| n == "Bob" && *on),
        "{got:?}"
    );
    assert_eq!(held(&b, &room, "on b").config().name, "Lobby");
}
