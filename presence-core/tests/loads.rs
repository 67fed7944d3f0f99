//! Work that waits for a user's load: per-user order across many outstanding loads.
mod common;

use std::collections::HashMap;

use common::*;
use presence_core::stanza::Stanza;
use presence_core::{EngineConfig, Output, SessionId};

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
