//! The blocking command (XEP-0191) on top of the per-user policy (DESIGN §3): polite blocking of presence,
//! refused messages, the block list itself and its pushes.
mod common;

use common::*;
use presence_core::feature::{Answer, Call, Push, blocking};
use presence_core::policy::{DefaultRule, PolicyEntry, UserPolicy};
use presence_core::roster::SubscriptionAction::Subscribe;
use presence_core::stanza::{ErrorCondition, Stanza};
use presence_core::store::RosterStore;
use presence_core::{EngineConfig, Input, SessionId};

fn block(h: &mut Harness, session: SessionId, id: &str, items: Vec<PolicyEntry>) {
    h.input(Input::Request {
        session,
        request: req(id),
        call: Call::Blocking(blocking::Call::Block(items)),
    });
}

fn unblock(h: &mut Harness, session: SessionId, id: &str, items: Vec<PolicyEntry>) {
    h.input(Input::Request {
        session,
        request: req(id),
        call: Call::Blocking(blocking::Call::Unblock(items)),
    });
}

fn block_list(h: &mut Harness, session: SessionId) -> Vec<PolicyEntry> {
    h.input(Input::Request {
        session,
        request: req("bl"),
        call: Call::Blocking(blocking::Call::Get),
    });
    h.take(session)
        .into_iter()
        .find_map(|s| match s {
            Stanza::Answer {
                request,
                answer: Answer::Blocking(blocking::Answer { items }),
            } if request == req("bl") => Some(items),
            _ => None,
        })
        .expect("a block list result")
}

fn errors(stanzas: &[Stanza]) -> Vec<ErrorCondition> {
    stanzas
        .iter()
        .filter_map(|s| match s {
            Stanza::Error(e) => Some(e.condition),
            _ => None,
        })
        .collect()
}

fn pushes(stanzas: &[Stanza]) -> Vec<blocking::Push> {
    stanzas
        .iter()
        .filter_map(|s| match s {
            Stanza::Push(Push::Blocking(c)) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// alice and bob, both online and subscribed to each other.
fn mutual() -> (Harness, SessionId, SessionId) {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    for (from, to) in [(a, "bob@x"), (b, "alice@x")] {
        h.input(Input::Subscription {
            session: from,
            to: j(to),
            action: Subscribe,
        });
    }
    h.clear();
    (h, a, b)
}

#[test]
fn block_hides_presence_refuses_messages_and_unblock_restores_presence() {
    let (mut h, a, b) = mutual();
    let bob = PolicyEntry::Jid(j("bob@x"));
    block(&mut h, a, "1", vec![bob.clone()]);
    assert!(h.take(a).contains(&Stanza::Answer {
        request: req("1"),
        answer: Answer::Done
    }));
    let seen = h.take(b);
    assert!(saw_unavailable(&seen, "alice@x/pc"), "{seen:?}");
    assert!(errors(&seen).is_empty(), "polite blocking: never an error");
    assert_eq!(
        h.store.policy(&j("alice@x")).unwrap().unwrap().block,
        vec![bob.clone()]
    );

    // Alice's presence changes no longer reach Bob; his messages bounce with service-unavailable.
    h.presence(a, presence_core::compose::Show::Away, 0);
    assert!(!saw_available(&h.take(b), "alice@x/pc"));
    h.chat(b, "alice@x", "hello?");
    assert_eq!(errors(&h.take(b)), [ErrorCondition::ServiceUnavailable]);
    assert!(bodies(&h.take(a)).is_empty());

    assert_eq!(block_list(&mut h, a), vec![bob.clone()]);

    unblock(&mut h, a, "2", vec![bob]);
    assert!(h.take(a).contains(&Stanza::Answer {
        request: req("2"),
        answer: Answer::Done
    }));
    assert!(saw_available(&h.take(b), "alice@x/pc"));
    assert!(block_list(&mut h, a).is_empty());
    h.chat(b, "alice@x", "back");
    assert_eq!(bodies(&h.take(a)), ["back"]);
}

#[test]
fn domain_entries_block_every_address_of_the_domain() {
    let mut h = Harness::with_users(
        EngineConfig::for_domain("x"),
        &["alice@x", "bob@x", "carol@x"],
    );
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    let c = h.login("carol@x", "desk");
    for from in [b, c] {
        h.input(Input::Subscription {
            session: from,
            to: j("alice@x"),
            action: Subscribe,
        });
    }
    h.clear();
    block(&mut h, a, "1", vec![PolicyEntry::Domain("x".into())]);
    assert!(saw_unavailable(&h.take(b), "alice@x/pc"));
    assert!(saw_unavailable(&h.take(c), "alice@x/pc"));
    // Unblocking one address leaves the domain entry in force.
    unblock(&mut h, a, "2", vec![PolicyEntry::Jid(j("bob@x"))]);
    assert!(h.take(b).is_empty());
    unblock(&mut h, a, "3", vec![]);
    assert!(saw_available(&h.take(b), "alice@x/pc"));
    assert!(saw_available(&h.take(c), "alice@x/pc"));
}

#[test]
fn block_keeps_the_rest_of_the_policy_and_unblock_all_empties_only_the_block_list() {
    let (mut h, a, _) = mutual();
    let policy = UserPolicy {
        allow: vec![PolicyEntry::Domain("partner.com".into())],
        block: vec![PolicyEntry::Jid(j("eve@x"))],
        default: DefaultRule::BlockAll,
        ask_federated: true,
        ..UserPolicy::default()
    };
    h.input(Input::SetPolicy {
        user: j("alice@x"),
        policy: policy.clone(),
    });
    // A repeated entry is listed once.
    block(
        &mut h,
        a,
        "1",
        vec![
            PolicyEntry::Jid(j("bob@x")),
            PolicyEntry::Jid(j("eve@x")),
            PolicyEntry::Jid(j("bob@x")),
        ],
    );
    let stored = h.store.policy(&j("alice@x")).unwrap().unwrap();
    assert_eq!(
        stored,
        UserPolicy {
            block: vec![PolicyEntry::Jid(j("eve@x")), PolicyEntry::Jid(j("bob@x"))],
            ..policy.clone()
        }
    );
    unblock(&mut h, a, "2", vec![]);
    let stored = h.store.policy(&j("alice@x")).unwrap().unwrap();
    assert_eq!(
        stored,
        UserPolicy {
            block: vec![],
            ..policy
        }
    );
}

#[test]
fn empty_block_is_a_bad_request_and_changes_nothing() {
    let (mut h, a, b) = mutual();
    block(&mut h, a, "1", vec![]);
    assert_eq!(errors(&h.take(a)), [ErrorCondition::BadRequest]);
    assert!(h.take(b).is_empty());
    assert!(h.store.policy(&j("alice@x")).unwrap().is_none());
}

#[test]
fn changes_are_pushed_to_sessions_that_asked_for_the_list() {
    let (mut h, a, _) = mutual();
    let a2 = h.login("alice@x", "phone");
    let a3 = h.login("alice@x", "tablet");
    block_list(&mut h, a);
    block_list(&mut h, a2);
    h.clear();
    let bob = PolicyEntry::Jid(j("bob@x"));
    block(&mut h, a, "1", vec![bob.clone()]);
    let expected = [blocking::Push::Blocked(vec![bob.clone()])];
    assert_eq!(pushes(&h.take(a)), expected);
    assert_eq!(pushes(&h.take(a2)), expected);
    assert!(
        pushes(&h.take(a3)).is_empty(),
        "never asked for the list: no push"
    );
    unblock(&mut h, a2, "2", vec![bob.clone()]);
    assert_eq!(pushes(&h.take(a)), [blocking::Push::Unblocked(vec![bob])]);
    unblock(&mut h, a2, "3", vec![]);
    assert_eq!(pushes(&h.take(a)), [blocking::Push::UnblockedAll]);
}

#[test]
fn block_survives_a_reload() {
    let (mut h, a, b) = mutual();
    block(&mut h, a, "1", vec![PolicyEntry::Jid(j("bob@x"))]);
    h.logout(a);
    h.clear();
    // Alice is evicted with no session; her stored policy must still hide her from Bob.
    let a = h.login("alice@x", "pc");
    assert!(!saw_available(&h.take(b), "alice@x/pc"));
    assert_eq!(block_list(&mut h, a), [PolicyEntry::Jid(j("bob@x"))]);
}
