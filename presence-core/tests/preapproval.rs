//! Subscription pre-approval (RFC 6121 §3.4): a `subscribed` sent before the contact asked is kept as a
//! pre-approval, pushed as `approved`, sent nowhere, kept across a restart, and approves the contact's later
//! request without asking the user — here with automatic authorization off, where asking is the default.
mod common;

use common::*;
use presence_core::feature::{Push, roster};
use presence_core::roster::{
    Link, RosterChange, RosterItem, Subscription, SubscriptionAction::*, SubscriptionAttr,
};
use presence_core::stanza::Stanza;
use presence_core::{Engine, EngineConfig, Input};

fn asking() -> EngineConfig {
    let mut config = EngineConfig::for_domain("x");
    config.auto_authorize = false;
    config
}

fn pushed_items(stanzas: &[Stanza]) -> Vec<RosterItem> {
    stanzas
        .iter()
        .filter_map(|s| match s {
            Stanza::Push(Push::Roster(roster::Push {
                change: RosterChange::Updated(i),
                ..
            })) => Some(i.clone()),
            _ => None,
        })
        .collect()
}

fn asked(stanzas: &[Stanza]) -> bool {
    stanzas.iter().any(|s| {
        matches!(
            s,
            Stanza::Subscription {
                action: Subscribe,
                ..
            }
        )
    })
}

const PRE: Subscription = Subscription {
    outbound: Link::Off,
    inbound: Link::PreApproved,
};

#[test]
fn a_pre_approved_local_request_is_approved_without_asking_even_after_a_restart() {
    let mut h = Harness::with_users(asking(), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    h.clear();
    h.subscribe(a, "bob@x", Subscribed);
    // Alice's roster gets bob, pre-approved; bob hears nothing of it.
    let pushes = pushed_items(&h.take(a));
    assert_eq!(pushes.len(), 1);
    assert!(pushes[0].subscription.approved());
    assert_eq!(pushes[0].subscription.attr(), SubscriptionAttr::None);
    assert!(h.take(b).is_empty());
    assert!(h.routed.is_empty());
    assert_eq!(h.stored_subscription("alice@x", "bob@x"), PRE);

    // A restart keeps it.
    h.engine = Engine::new(asking());
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    h.clear();
    h.subscribe(b, "alice@x", Subscribe);
    let alice = h.take(a);
    assert!(!asked(&alice), "alice was asked: {alice:?}");
    let item = pushed_items(&alice).pop().expect("a push for the approval");
    assert_eq!(item.subscription.attr(), SubscriptionAttr::From);
    assert!(!item.subscription.approved());
    let bob = h.take(b);
    assert!(bob.iter().any(|s| matches!(
        s,
        Stanza::Subscription {
            action: Subscribed,
            ..
        }
    )));
    assert!(saw_available(&bob, "alice@x/pc"));
    assert_eq!(
        h.stored_subscription("bob@x", "alice@x").attr(),
        SubscriptionAttr::To
    );
}

#[test]
fn without_a_pre_approval_the_user_is_asked() {
    let mut h = Harness::with_users(asking(), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    h.clear();
    h.subscribe(b, "alice@x", Subscribe);
    assert!(asked(&h.take(a)));
}

#[test]
fn a_cancelled_pre_approval_no_longer_approves_and_is_not_sent() {
    let mut h = Harness::with_users(asking(), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    h.subscribe(a, "bob@x", Subscribed);
    h.clear();
    h.subscribe(a, "bob@x", Unsubscribed);
    assert!(!pushed_items(&h.take(a))[0].subscription.approved());
    assert!(h.take(b).is_empty());
    assert_eq!(
        h.stored_subscription("alice@x", "bob@x"),
        Subscription::NONE
    );
    h.subscribe(b, "alice@x", Subscribe);
    assert!(asked(&h.take(a)));
}

#[test]
fn a_federated_contact_is_approved_by_a_pre_approval() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    let a = h.login("alice@x", "pc");
    h.clear();
    // Federated requests are never approved automatically (DESIGN §3); a pre-approval is the user's own answer.
    h.subscribe(a, "romeo@remote.example", Subscribed);
    assert!(h.routed.is_empty());
    h.input(Input::FromRemote(Stanza::Subscription {
        from: j("romeo@remote.example"),
        to: j("alice@x"),
        action: Subscribe,
    }));
    assert!(!asked(&h.take(a)));
    assert!(h.routed.iter().any(|s| matches!(
        s,
        Stanza::Subscription {
            action: Subscribed,
            ..
        }
    )));
    assert_eq!(
        h.stored_subscription("alice@x", "romeo@remote.example")
            .attr(),
        SubscriptionAttr::From
    );
}

#[test]
fn a_user_who_pre_approved_can_still_ask_for_the_contacts_presence() {
    let mut h = Harness::with_users(asking(), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    h.subscribe(a, "bob@x", Subscribed);
    h.clear();
    h.subscribe(a, "bob@x", Subscribe);
    // The request goes out (bob is asked) and the pre-approval stays.
    assert!(asked(&h.take(b)));
    assert_eq!(
        h.stored_subscription("alice@x", "bob@x"),
        Subscription {
            outbound: Link::Pending,
            inbound: Link::PreApproved
        }
    );
}
