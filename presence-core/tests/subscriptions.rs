//! Subscriptions, roster pushes and presence flow (RFC 6121 §2-§4) with the policy of DESIGN §3.
mod common;

use common::*;
use presence_core::compose::Show;
use presence_core::engine::{AddRefusal, Output};
use presence_core::feature::{Answer, Call, Push, roster};
use presence_core::policy::{DefaultRule, PolicyEntry, UserPolicy};
use presence_core::roster::{
    ItemDetails, Link, RosterChange, RosterEntry, Subscription, SubscriptionAction::*,
    SubscriptionAttr,
};
use presence_core::stanza::{ErrorCondition, PresenceKind, RequestId, Stanza};
use presence_core::store::RosterStore;
use presence_core::{Cap, EngineConfig, Input};

const BOTH: Subscription = Subscription {
    outbound: Link::On,
    inbound: Link::On,
};
const TO: Subscription = Subscription {
    outbound: Link::On,
    inbound: Link::Off,
};
const FROM: Subscription = Subscription {
    outbound: Link::Off,
    inbound: Link::On,
};

#[test]
fn automatic_authorization_approves_local_requests_and_presence_flows() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    h.clear();
    h.subscribe(a, "bob@x", Subscribe);
    assert_eq!(h.stored_subscription("alice@x", "bob@x"), TO);
    assert_eq!(h.stored_subscription("bob@x", "alice@x"), FROM);
    let alice = h.take(a);
    // Alice's roster went none+ask, then to; she got Bob's approval and his presence.
    let pushes: Vec<_> = alice
        .iter()
        .filter_map(|s| match s {
            Stanza::Push(Push::Roster(roster::Push {
                change: RosterChange::Updated(i),
                ..
            })) => Some((i.subscription.attr(), i.subscription.ask())),
            _ => None,
        })
        .collect();
    assert_eq!(
        pushes,
        [
            (SubscriptionAttr::None, true),
            (SubscriptionAttr::To, false)
        ]
    );
    assert!(alice.iter().any(|s| matches!(
        s,
        Stanza::Subscription {
            action: Subscribed,
            ..
        }
    )));
    assert!(saw_available(&alice, "bob@x/phone"));
    // Bob got a roster push for the new "from" item and no request to answer.
    let bob = h.take(b);
    assert!(bob.iter().any(|s| matches!(s, Stanza::Push(Push::Roster(roster::Push { change: RosterChange::Updated(i), .. })) if i.subscription.attr() == SubscriptionAttr::From)));
    assert!(!bob.iter().any(|s| matches!(
        s,
        Stanza::Subscription {
            action: Subscribe,
            ..
        }
    )));
    // Bob's presence changes reach Alice; Alice's do not reach Bob (he only has "from").
    h.presence(b, Show::Away, 0);
    assert!(presences(&h.take(a)).iter().any(|(f, k)| f == "bob@x/phone"
        && matches!(k, PresenceKind::Available(v) if v.show == Show::Away)));
    h.presence(a, Show::Dnd, 0);
    assert!(!saw_available(&h.take(b), "alice@x/pc"));
    // Logging out broadcasts unavailable to Alice.
    h.logout(b);
    assert!(saw_unavailable(&h.take(a), "bob@x/phone"));
}

#[test]
fn probes_on_login_return_contacts_presence() {
    let mut h = Harness::with_users(
        EngineConfig::for_domain("x"),
        &["alice@x", "bob@x", "carol@x"],
    );
    let a = h.login("alice@x", "pc");
    h.subscribe(a, "bob@x", Subscribe);
    h.subscribe(a, "carol@x", Subscribe);
    h.logout(a);
    h.login("bob@x", "phone");
    h.clear();
    let a = h.login("alice@x", "pc");
    let seen = h.take(a);
    assert!(saw_available(&seen, "bob@x/phone"));
    assert!(!saw_available(&seen, "carol@x/any"));
}

#[test]
fn without_automatic_authorization_the_user_decides_and_approval_is_reciprocal() {
    let mut config = EngineConfig::for_domain("x");
    config.auto_authorize = false;
    let mut h = Harness::with_users(config, &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    h.clear();
    h.subscribe(a, "bob@x", Subscribe);
    assert!(h.take(b).iter().any(|s| matches!(s, Stanza::Subscription { action: Subscribe, from, .. } if *from == j("alice@x"))));
    assert_eq!(
        h.stored_subscription("alice@x", "bob@x"),
        Subscription {
            outbound: Link::Pending,
            inbound: Link::Off
        }
    );
    assert_eq!(
        h.store.roster(&j("bob@x")).unwrap(),
        vec![(j("alice@x"), RosterEntry::Requested)]
    );
    h.subscribe(b, "alice@x", Subscribed);
    // Reciprocal add: both directions are on, without Alice being asked.
    assert_eq!(h.stored_subscription("alice@x", "bob@x"), BOTH);
    assert_eq!(h.stored_subscription("bob@x", "alice@x"), BOTH);
    assert!(saw_available(&h.take(b), "alice@x/pc"));
    assert!(saw_available(&h.take(a), "bob@x/phone"));
}

#[test]
fn pending_requests_are_delivered_at_next_sign_in() {
    let mut config = EngineConfig::for_domain("x");
    config.auto_authorize = false;
    let mut h = Harness::with_users(config, &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    h.subscribe(a, "bob@x", Subscribe);
    let b = h.login("bob@x", "phone");
    assert!(h.take(b).iter().any(|s| matches!(s, Stanza::Subscription { action: Subscribe, from, .. } if *from == j("alice@x"))));
    h.subscribe(b, "alice@x", Unsubscribed);
    assert_eq!(
        h.stored_subscription("alice@x", "bob@x"),
        Subscription::NONE
    );
    assert!(h.store.roster(&j("bob@x")).unwrap().is_empty());
    assert!(h.take(a).iter().any(|s| matches!(
        s,
        Stanza::Subscription {
            action: Unsubscribed,
            ..
        }
    )));
}

#[test]
fn blocked_local_requester_is_asked_about_and_politely_blocked() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let b = h.login("bob@x", "phone");
    h.input(Input::SetPolicy {
        user: j("bob@x"),
        policy: UserPolicy {
            block: vec![PolicyEntry::Jid(j("alice@x"))],
            ..UserPolicy::default()
        },
    });
    let a = h.login("alice@x", "pc");
    h.clear();
    h.subscribe(a, "bob@x", Subscribe);
    assert!(
        h.take(b).iter().any(|s| matches!(
            s,
            Stanza::Subscription {
                action: Subscribe,
                ..
            }
        )),
        "blocked requester: the user is asked"
    );
    h.subscribe(b, "alice@x", Subscribed);
    assert_eq!(h.stored_subscription("alice@x", "bob@x"), TO);
    // Approved but still on the block list: Alice sees Bob as unavailable, never an error.
    let alice = h.take(a);
    assert!(!saw_available(&alice, "bob@x/phone"));
    assert!(!alice.iter().any(|s| matches!(s, Stanza::Error(_))));
    h.presence(b, Show::Chat, 1);
    assert!(!saw_available(&h.take(a), "bob@x/phone"));
    // Unblocking shows the real presence; blocking again sends unavailable.
    h.input(Input::SetPolicy {
        user: j("bob@x"),
        policy: UserPolicy::default(),
    });
    assert!(saw_available(&h.take(a), "bob@x/phone"));
    h.input(Input::SetPolicy {
        user: j("bob@x"),
        policy: UserPolicy {
            block: vec![PolicyEntry::Domain("x".into())],
            ..UserPolicy::default()
        },
    });
    assert!(saw_unavailable(&h.take(a), "bob@x/phone"));
}

#[test]
fn availability_sharing_off_hides_presence_from_everyone_but_the_user() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    let b2 = h.login("bob@x", "desk");
    h.subscribe(a, "bob@x", Subscribe);
    h.input(Input::SetPolicy {
        user: j("bob@x"),
        policy: UserPolicy {
            share_availability: false,
            ..UserPolicy::default()
        },
    });
    h.clear();
    h.presence(b, Show::Away, 0);
    assert!(h.take(a).is_empty());
    assert!(
        saw_available(&h.take(b2), "bob@x/phone"),
        "the user still sees their own presence"
    );
}

#[test]
fn federated_requests_follow_lists_default_and_ask_me() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["bob@x"]);
    let b = h.login("bob@x", "phone");
    h.input(Input::SetPolicy {
        user: j("bob@x"),
        policy: UserPolicy {
            allow: vec![PolicyEntry::Domain("partner.com".into())],
            block: vec![PolicyEntry::Domain("evil.com".into())],
            default: DefaultRule::BlockAll,
            ask_federated: true,
            ..UserPolicy::default()
        },
    });
    h.clear();
    let remote = |from: &str| {
        Input::FromRemote(Stanza::Subscription {
            from: j(from),
            to: j("bob@x"),
            action: Subscribe,
        })
    };
    h.input(remote("p@partner.com"));
    assert!(h.routed.iter().any(|s| matches!(s, Stanza::Subscription { to, action: Subscribed, .. } if *to == j("p@partner.com"))));
    assert!(saw_available(&h.routed, "bob@x/phone"));
    h.input(remote("e@evil.com"));
    assert!(
        !h.routed
            .iter()
            .any(|s| matches!(s, Stanza::Subscription { to, .. } if *to == j("e@evil.com"))),
        "polite: no answer"
    );
    h.input(remote("u@unknown.com"));
    assert!(h.take(b).iter().any(|s| matches!(s, Stanza::Subscription { from, action: Subscribe, .. } if *from == j("u@unknown.com"))), "ask me");
    assert_eq!(h.stored_subscription("bob@x", "p@partner.com"), FROM);
    assert_eq!(
        h.stored_subscription("bob@x", "e@evil.com"),
        Subscription::NONE
    );
}

#[test]
fn remote_probe_and_presence() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["bob@x"]);
    let b = h.login("bob@x", "phone");
    h.input(Input::FromRemote(Stanza::Subscription {
        from: j("p@far.com"),
        to: j("bob@x"),
        action: Subscribe,
    }));
    h.subscribe(b, "p@far.com", Subscribe);
    assert!(h.routed.iter().any(|s| matches!(
        s,
        Stanza::Subscription {
            action: Subscribe,
            ..
        }
    )));
    h.input(Input::FromRemote(Stanza::Subscription {
        from: j("p@far.com"),
        to: j("bob@x"),
        action: Subscribed,
    }));
    assert_eq!(h.stored_subscription("bob@x", "p@far.com"), BOTH);
    h.clear();
    h.input(Input::FromRemote(Stanza::Presence {
        from: jid("p@far.com"),
        to: jid("bob@x"),
        kind: PresenceKind::Probe,
    }));
    assert!(saw_available(&h.routed, "bob@x/phone"));
    h.input(Input::FromRemote(Stanza::Presence {
        from: jid("stranger@far.com"),
        to: jid("bob@x"),
        kind: PresenceKind::Probe,
    }));
    assert!(
        saw_unavailable(&h.routed, "bob@x"),
        "unauthorized probe: unavailable, not an error"
    );
    h.input(Input::FromRemote(Stanza::Presence {
        from: jid("p@far.com/x"),
        to: jid("bob@x"),
        kind: PresenceKind::Unavailable,
    }));
    assert!(saw_unavailable(&h.take(b), "p@far.com/x"));
    h.input(Input::FromRemote(Stanza::Presence {
        from: jid("stranger@far.com/x"),
        to: jid("bob@x"),
        kind: PresenceKind::Unavailable,
    }));
    assert!(
        h.take(b).is_empty(),
        "broadcast presence from a non-contact is not delivered"
    );
    // Signing in probes the remote contact.
    h.clear();
    h.login("bob@x", "desk");
    assert!(h.routed.iter().any(|s| matches!(s, Stanza::Presence { kind: PresenceKind::Probe, to, .. } if *to == jid("p@far.com"))));
}

#[test]
fn roster_set_and_remove_with_pushes_and_cancellation() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let a2 = h.login("alice@x", "phone");
    let b = h.login("bob@x", "phone");
    h.clear();
    h.input(Input::Request {
        session: a,
        request: RequestId("1".into()),
        call: Call::Roster(roster::Call::Set {
            jid: j("bob@x"),
            details: ItemDetails {
                name: Some("Bob".into()),
                groups: vec!["Work".into()],
            },
        }),
    });
    assert!(h.take(a).contains(&Stanza::Answer {
        request: RequestId("1".into()),
        answer: Answer::Done
    }));
    assert!(h.take(a2).iter().any(|s| matches!(s, Stanza::Push(Push::Roster(roster::Push { change: RosterChange::Updated(i), .. })) if i.details.name.as_deref() == Some("Bob"))));
    h.subscribe(a, "bob@x", Subscribe);
    h.subscribe(b, "alice@x", Subscribe);
    assert_eq!(h.stored_subscription("alice@x", "bob@x"), BOTH);
    h.clear();
    h.input(Input::Request {
        session: a,
        request: RequestId("2".into()),
        call: Call::Roster(roster::Call::Remove { jid: j("bob@x") }),
    });
    assert!(h.take(a2).iter().any(|s| matches!(s, Stanza::Push(Push::Roster(roster::Push { change: RosterChange::Removed(r), .. })) if *r == j("bob@x"))));
    assert_eq!(
        h.stored_subscription("bob@x", "alice@x"),
        Subscription::NONE
    );
    let bob = h.take(b);
    assert!(saw_unavailable(&bob, "alice@x/pc"));
    assert!(bob.iter().any(|s| matches!(
        s,
        Stanza::Subscription {
            action: Unsubscribe,
            ..
        }
    )));
    assert!(bob.iter().any(|s| matches!(
        s,
        Stanza::Subscription {
            action: Unsubscribed,
            ..
        }
    )));
    h.input(Input::Request {
        session: a,
        request: RequestId("3".into()),
        call: Call::Roster(roster::Call::Remove { jid: j("bob@x") }),
    });
    assert!(
        h.take(a)
            .iter()
            .any(|s| matches!(s, Stanza::Error(e) if e.condition == ErrorCondition::ItemNotFound))
    );
    h.input(Input::Request {
        session: a,
        request: RequestId("4".into()),
        call: Call::Roster(roster::Call::Set {
            jid: j("bob@x"),
            details: ItemDetails {
                name: None,
                groups: vec!["A".into(), "A".into()],
            },
        }),
    });
    assert!(
        h.take(a)
            .iter()
            .any(|s| matches!(s, Stanza::Error(e) if e.condition == ErrorCondition::BadRequest))
    );
}

#[test]
fn contact_limit_refuses_roster_adds_and_bulk_adds_are_partial() {
    let mut config = EngineConfig::for_domain("x");
    config.limits.max_contacts = Cap::AtMost(200);
    let mut h = Harness::with_users(config, &["alice@x"]);
    let a = h.login("alice@x", "pc");
    let first: Vec<_> = (0..195)
        .map(|i| (j(&format!("c{i}@y")), ItemDetails::default()))
        .collect();
    h.input(Input::AddContacts {
        user: j("alice@x"),
        contacts: first,
    });
    h.clear();
    let six: Vec<_> = (195..201)
        .map(|i| (j(&format!("c{i}@y")), ItemDetails::default()))
        .collect();
    h.input(Input::AddContacts {
        user: j("alice@x"),
        contacts: six,
    });
    let Some(Output::ContactsAdded { added, refused, .. }) = h.other.last().cloned() else {
        panic!("no result")
    };
    assert_eq!(added.len(), 5, "a user at 195 adding 6 gets 5");
    assert_eq!(refused, vec![AddRefusal::OverLimit(j("c200@y"))]);
    assert_eq!(
        h.routed
            .iter()
            .filter(|s| matches!(
                s,
                Stanza::Subscription {
                    action: Subscribe,
                    ..
                }
            ))
            .count(),
        5
    );
    h.input(Input::Request {
        session: a,
        request: RequestId("x".into()),
        call: Call::Roster(roster::Call::Set {
            jid: j("one-more@y"),
            details: ItemDetails::default(),
        }),
    });
    assert!(
        h.take(a)
            .iter()
            .any(|s| matches!(s, Stanza::Error(e) if e.condition == ErrorCondition::NotAllowed))
    );
    // Editing an existing item is still fine at the limit.
    h.input(Input::Request {
        session: a,
        request: RequestId("y".into()),
        call: Call::Roster(roster::Call::Set {
            jid: j("c0@y"),
            details: ItemDetails {
                name: Some("zero".into()),
                groups: vec![],
            },
        }),
    });
    assert!(h.take(a).contains(&Stanza::Answer {
        request: RequestId("y".into()),
        answer: Answer::Done
    }));
}

#[test]
fn watcher_limit_denies_further_watchers() {
    let mut config = EngineConfig::for_domain("x");
    config.limits.max_watchers = Cap::AtMost(2);
    let mut h = Harness::with_users(config, &["star@x", "f1@x", "f2@x", "f3@x"]);
    for f in ["f1@x", "f2@x", "f3@x"] {
        let s = h.login(f, "r");
        h.subscribe(s, "star@x", Subscribe);
    }
    assert_eq!(h.stored_subscription("f1@x", "star@x"), TO);
    assert_eq!(h.stored_subscription("f2@x", "star@x"), TO);
    assert_eq!(
        h.stored_subscription("f3@x", "star@x"),
        Subscription::NONE,
        "denied at the watcher cap"
    );
    assert_eq!(h.store.roster(&j("star@x")).unwrap().len(), 2);
}

#[test]
fn subscription_to_unknown_local_user_is_denied() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    let a = h.login("alice@x", "pc");
    h.subscribe(a, "ghost@x", Subscribe);
    assert_eq!(
        h.stored_subscription("alice@x", "ghost@x"),
        Subscription {
            outbound: Link::Off,
            inbound: Link::Off
        }
    );
}

#[test]
fn unlimited_caps() {
    let mut config = EngineConfig::for_domain("x");
    config.limits.max_contacts = Cap::Unlimited;
    let mut h = Harness::with_users(config, &["alice@x"]);
    h.login("alice@x", "pc");
    let many: Vec<_> = (0..300)
        .map(|i| (j(&format!("c{i}@y")), ItemDetails::default()))
        .collect();
    h.input(Input::AddContacts {
        user: j("alice@x"),
        contacts: many,
    });
    assert!(
        matches!(h.other.last(), Some(Output::ContactsAdded { added, refused, .. }) if added.len() == 300 && refused.is_empty())
    );
}

#[test]
fn directed_presence_is_retracted_on_logout() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    let a = h.login("alice@x", "pc");
    h.input(Input::Presence {
        session: a,
        to: Some(jid("room@conference.far.com/alice")),
        presence: Some(Default::default()),
    });
    assert!(saw_available(&h.routed, "alice@x/pc"));
    h.clear();
    h.logout(a);
    assert!(saw_unavailable(&h.routed, "alice@x/pc"));
}
