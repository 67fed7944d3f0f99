//! Engines as nodes of a cluster (DESIGN §6): each serves only the users placed on it, and a user of the same
//! domain served elsewhere is reached through the router like a user of another domain, but is not federated.
mod common;

use common::nodes::{mutual, pair, pump};
use common::*;
use presence_core::engine::{BindError, CloseReason};
use presence_core::stanza::{ErrorCondition, Stanza};
use presence_core::store::OfflineStore;
use presence_core::{Input, Output};

#[test]
fn users_on_two_nodes_subscribe_see_presence_and_chat() {
    let (mut a, mut b) = pair();
    let sa = a.login("alice@x", "pc");
    let sb = b.login("bob@x", "phone");
    pump(&mut a, &mut b);
    mutual(&mut a, &mut b, sa, sb);
    assert!(a.stored_subscription("alice@x", "bob@x").outbound == presence_core::roster::Link::On);
    assert!(b.stored_subscription("bob@x", "alice@x").outbound == presence_core::roster::Link::On);
    a.clear();
    b.clear();

    // Presence crosses nodes, and a new session learns its contact's presence by a routed probe.
    let sa2 = a.login("alice@x", "laptop");
    pump(&mut a, &mut b);
    assert!(saw_available(&b.take(sb), "alice@x/laptop"));
    assert!(saw_available(&a.take(sa2), "bob@x/phone"));

    a.chat(sa, "bob@x", "hello across nodes");
    pump(&mut a, &mut b);
    assert_eq!(bodies(&b.take(sb)), ["hello across nodes"]);
    assert!(a.store.offline(&j("bob@x")).unwrap().is_empty());
}

#[test]
fn a_message_for_an_offline_user_on_another_node_is_held_there() {
    let (mut a, mut b) = pair();
    let sa = a.login("alice@x", "pc");
    a.chat(sa, "bob@x", "while you were out");
    assert_eq!(
        a.routed.len(),
        1,
        "node a routes, it never holds bob's messages"
    );
    pump(&mut a, &mut b);
    assert_eq!(a.store.offline(&j("bob@x")).unwrap().len(), 1);
    let sb = b.login("bob@x", "phone");
    assert_eq!(bodies(&b.take(sb)), ["while you were out"]);
}

#[test]
fn a_user_served_elsewhere_cannot_bind_here() {
    let (mut a, _b) = pair();
    let s = a.bind("bob@x", "pc");
    assert!(a.other.iter().any(|o| matches!(
        o,
        Output::BindRefused { session, reason: BindError::ServedElsewhere(u) } if *session == s && *u == j("bob@x")
    )));
}

#[test]
fn an_error_from_another_node_reaches_the_sending_session() {
    let (mut a, mut b) = pair();
    let sa = a.login("alice@x", "pc");
    a.chat(sa, "nobody@x", "hi");
    // Nobody serves nobody@x: the node that answers for it (here b) says there is no such user.
    let routed = std::mem::take(&mut a.routed);
    for s in routed {
        b.input(Input::FromRemote(s));
    }
    pump(&mut a, &mut b);
    let got = a.take(sa);
    assert!(
        got.iter().any(
            |s| matches!(s, Stanza::Error(e) if e.condition == ErrorCondition::ServiceUnavailable)
        ),
        "{got:?}"
    );
}

#[test]
fn a_user_who_moves_away_is_dropped_and_served_by_the_new_node() {
    let (mut a, mut b) = pair();
    let sa = a.login("alice@x", "pc");
    let sb = b.login("bob@x", "phone");
    pump(&mut a, &mut b);
    mutual(&mut a, &mut b, sa, sb);
    a.clear();
    b.clear();

    // Failover: node b takes alice over.
    a.input(Input::Rehome {
        users: vec![j("alice@x")],
        here: false,
    });
    b.input(Input::Rehome {
        users: vec![j("alice@x")],
        here: true,
    });
    assert!(a.other.iter().any(|o| matches!(
        o,
        Output::Close { session, reason: CloseReason::Moved } if *session == sa
    )));
    assert!(a.engine.sessions_of(&j("alice@x")).is_empty());
    pump(&mut a, &mut b);
    assert!(
        saw_unavailable(&b.take(sb), "alice@x/pc"),
        "her contacts saw her go"
    );

    // Bob writes while she is between nodes: now held on b's side of the store, and delivered when she signs
    // in through b, which loads her from the shared store.
    b.chat(sb, "alice@x", "are you there?");
    assert!(b.routed.is_empty(), "alice is served by b now");
    let sa_b = b.login("alice@x", "pc");
    pump(&mut a, &mut b);
    let got = b.take(sa_b);
    assert_eq!(bodies(&got), ["are you there?"]);
    assert!(saw_available(&got, "bob@x/phone"));
}

/// A SIP watch lives on the watched user's node; when that user moves, the watch ends with `Moved`, so the
/// subscriber subscribes again and is sent to the new node.
#[test]
fn a_watch_on_a_user_who_moves_away_ends_as_moved() {
    use presence_core::{WatchEnd, WatchId, WatchKind, WatchState};
    let (mut a, mut b) = pair();
    let sa = a.login("alice@x", "pc");
    let sb = b.login("bob@x", "phone");
    pump(&mut a, &mut b);
    mutual(&mut a, &mut b, sa, sb);
    // Bob's phone watches alice on alice's node.
    a.input(Input::Watch {
        watch: WatchId(7),
        watcher: j("bob@x"),
        target: j("alice@x"),
        kind: WatchKind::Presence,
    });
    assert!(a.other.iter().any(|o| matches!(
        o,
        Output::Watch {
            watch: WatchId(7),
            state: WatchState::Active(_)
        }
    )));
    a.clear();
    a.input(Input::Rehome {
        users: vec![j("alice@x")],
        here: false,
    });
    assert!(a.other.iter().any(|o| matches!(
        o,
        Output::Watch {
            watch: WatchId(7),
            state: WatchState::Terminated(WatchEnd::Moved)
        }
    )));
}

/// What `h` said about its users' availability since last asked, in order.
fn availability(h: &mut common::Harness) -> Vec<(String, bool)> {
    let (said, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut h.other)
        .into_iter()
        .partition(|o| matches!(o, Output::Available { .. }));
    h.other = rest;
    said.into_iter()
        .map(|o| match o {
            Output::Available { user, available } => (user.to_string(), available),
            _ => unreachable!("partitioned"),
        })
        .collect()
}

#[test]
fn an_engine_serving_some_users_says_when_a_user_first_becomes_available_and_when_the_last_session_goes()
 {
    let (mut a, _b) = pair();
    // A bound session without presence is not available: a broadcast to alice would reach no one yet.
    let pc = a.bind("alice@x", "pc");
    assert_eq!(availability(&mut a), []);
    a.presence(pc, presence_core::compose::Show::Available, 0);
    assert_eq!(availability(&mut a), [("alice@x".to_owned(), true)]);
    // A second session and a change of presence say nothing new.
    let phone = a.login("alice@x", "phone");
    a.presence(pc, presence_core::compose::Show::Away, 0);
    assert_eq!(availability(&mut a), []);
    // Unavailable presence from one session, then the other's connection gone: the last one says it.
    a.input(Input::Presence {
        session: pc,
        to: None,
        presence: None,
    });
    assert_eq!(availability(&mut a), []);
    a.logout(phone);
    assert_eq!(availability(&mut a), [("alice@x".to_owned(), false)]);
    // And again on the next sign-in.
    a.presence(pc, presence_core::compose::Show::Available, 0);
    assert_eq!(availability(&mut a), [("alice@x".to_owned(), true)]);
}

#[test]
fn a_single_engine_says_nothing_about_availability() {
    let mut h =
        common::Harness::with_users(presence_core::EngineConfig::for_domain("x"), &["alice@x"]);
    let s = h.login("alice@x", "pc");
    h.logout(s);
    assert!(
        availability(&mut h).is_empty(),
        "nobody routes presence to it"
    );
}
