//! Property tests: roster consistency under any interleaving of subscription actions, and no message lost.
mod common;

use std::collections::HashMap;

use common::*;
use presence_core::compose::Show;
use presence_core::feature::{Call, roster};
use presence_core::message::{Message, MessageKind};
use presence_core::policy::{PolicyEntry, UserPolicy};
use presence_core::roster::{Link, SubscriptionAction};
use presence_core::stanza::{ErrorAbout, RequestId, Stanza};
use presence_core::store::{OfflineStore, RosterStore};
use presence_core::{EngineConfig, Input, SessionId};
use proptest::prelude::*;

const USERS: [&str; 2] = ["a@x", "b@x"];

#[derive(Debug, Clone)]
enum SubOp {
    Login(usize),
    Logout(usize),
    Act(usize, SubscriptionAction),
    Remove(usize),
    Block(usize, bool),
}

fn sub_op() -> impl Strategy<Value = SubOp> {
    let action = prop_oneof![
        Just(SubscriptionAction::Subscribe),
        Just(SubscriptionAction::Subscribed),
        Just(SubscriptionAction::Unsubscribe),
        Just(SubscriptionAction::Unsubscribed),
    ];
    prop_oneof![
        (0..2usize).prop_map(SubOp::Login),
        (0..2usize).prop_map(SubOp::Logout),
        ((0..2usize), action).prop_map(|(u, a)| SubOp::Act(u, a)),
        (0..2usize).prop_map(SubOp::Remove),
        ((0..2usize), any::<bool>()).prop_map(|(u, b)| SubOp::Block(u, b)),
    ]
}

fn links(h: &Harness, user: &str, contact: &str) -> (Link, Link) {
    let s = h
        .store
        .roster(&j(user))
        .unwrap()
        .into_iter()
        .find(|(c, _)| *c == j(contact))
        .map(|(_, e)| e.subscription())
        .unwrap_or_default();
    (s.outbound, s.inbound)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (a) Whatever the two users do, in any order, online or not: A receives B's presence exactly when B shares
    /// it with A, and a request pending on one side is pending on the other.
    #[test]
    fn rosters_stay_mutually_consistent(auto in any::<bool>(), ops in proptest::collection::vec(sub_op(), 1..40)) {
        let mut config = EngineConfig::for_domain("x");
        config.auto_authorize = auto;
        let mut h = Harness::with_users(config, &USERS);
        let mut online: [Option<SessionId>; 2] = [None, None];
        for op in ops {
            match op {
                SubOp::Login(u) if online[u].is_none() => online[u] = Some(h.login(USERS[u], "r")),
                SubOp::Logout(u) => if let Some(s) = online[u].take() { h.logout(s) },
                SubOp::Act(u, action) => if let Some(s) = online[u] {
                    h.input(Input::Subscription { session: s, to: j(USERS[1 - u]), action });
                },
                SubOp::Remove(u) => if let Some(s) = online[u] {
                    h.input(Input::Request { session: s, request: RequestId("r".into()), call: Call::Roster(roster::Call::Remove { jid: j(USERS[1 - u]) }) });
                },
                SubOp::Block(u, on) => {
                    let block = if on { vec![PolicyEntry::Jid(j(USERS[1 - u]))] } else { vec![] };
                    h.input(Input::SetPolicy { user: j(USERS[u]), policy: UserPolicy { block, ..UserPolicy::default() } });
                }
                SubOp::Login(_) => {}
            }
            let (a_out, a_in) = links(&h, "a@x", "b@x");
            let (b_out, b_in) = links(&h, "b@x", "a@x");
            prop_assert_eq!(a_out == Link::On, b_in == Link::On, "a to / b from");
            prop_assert_eq!(b_out == Link::On, a_in == Link::On, "b to / a from");
            prop_assert_eq!(a_out == Link::Pending, b_in == Link::Pending, "a pending out / b pending in");
            prop_assert_eq!(b_out == Link::Pending, a_in == Link::Pending, "b pending out / a pending in");
        }
    }
}

#[derive(Debug, Clone)]
enum MsgOp {
    Login(usize, i8),
    Logout(usize),
    Presence(usize, i8),
    Send {
        from: usize,
        to: usize,
        full: bool,
        normal: bool,
    },
}

fn msg_op() -> impl Strategy<Value = MsgOp> {
    prop_oneof![
        ((0..3usize), -1i8..2).prop_map(|(u, p)| MsgOp::Login(u, p)),
        (0..6usize).prop_map(MsgOp::Logout),
        ((0..6usize), -1i8..2).prop_map(|(s, p)| MsgOp::Presence(s, p)),
        ((0..6usize), (0..3usize), any::<bool>(), any::<bool>()).prop_map(
            |(from, to, full, normal)| MsgOp::Send {
                from,
                to,
                full,
                normal
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (b) Every chat or normal message handed to the engine is delivered to a session, held offline, or refused
    /// with an error to its sender — never silently dropped, whatever the sessions, priorities and caps.
    #[test]
    fn no_message_is_lost(storage in any::<bool>(), per_user in 0usize..3, per_node in 0usize..5, ops in proptest::collection::vec(msg_op(), 1..60)) {
        const U: [&str; 3] = ["u0@x", "u1@x", "u2@x"];
        let mut config = EngineConfig::for_domain("x");
        config.offline_storage = storage;
        config.limits.offline_per_user = per_user;
        config.limits.offline_per_node = per_node;
        let mut h = Harness::with_users(config, &U);
        // Live sessions: (session, user index, resource).
        let mut live: Vec<(SessionId, usize, String)> = Vec::new();
        let mut sent: Vec<String> = Vec::new();
        let mut n = 0;
        let mut fate: HashMap<String, u32> = HashMap::new();
        let collect = |h: &mut Harness, fate: &mut HashMap<String, u32>| {
            for (_, s) in h.delivered.drain(..) {
                match s {
                    Stanza::Message { message, .. } => *fate.entry(message.id.unwrap()).or_default() += 1,
                    Stanza::Error(e) => if let ErrorAbout::Message { id: Some(id), .. } = e.about { *fate.entry(id).or_default() += 1 },
                    _ => {}
                }
            }
        };
        for op in ops {
            match op {
                MsgOp::Login(u, p) => {
                    n += 1;
                    let r = format!("r{n}");
                    let s = h.login_with(U[u], &r, p);
                    if h.engine.sessions_of(&j(U[u])).iter().any(|(id, _)| *id == s) {
                        live.push((s, u, r));
                    }
                }
                MsgOp::Logout(i) => if i < live.len() { let (s, _, _) = live.remove(i); h.logout(s) },
                MsgOp::Presence(i, p) => if let Some((s, _, _)) = live.get(i) { h.presence(*s, Show::Away, p) },
                MsgOp::Send { from, to, full, normal } => if let Some((s, _, _)) = live.get(from % live.len().max(1)).cloned() {
                    n += 1;
                    let id = format!("m{n}");
                    let target = if full { format!("{}/r{}", U[to], n % 4) } else { U[to].to_owned() };
                    let kind = if normal { MessageKind::Normal } else { MessageKind::Chat };
                    h.input(Input::Message { session: s, to: jid(&target), message: Message { id: Some(id.clone()), kind, body: Some(id.clone()), ..Message::default() } });
                    sent.push(id);
                },
            }
            collect(&mut h, &mut fate);
        }
        let held: Vec<String> = U.iter().flat_map(|u| h.store.offline(&j(u)).unwrap()).map(|m| m.message.id.unwrap()).collect();
        for id in &sent {
            prop_assert!(fate.contains_key(id) || held.contains(id), "message {} vanished", id);
        }
        prop_assert_eq!(h.engine.offline_total(), held.len());
    }
}
