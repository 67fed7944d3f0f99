//! Push notifications (XEP-0357): a registration is woken by a message held offline (all registrations) or
//! delivered to a detached session (that resource's registrations), with the count of waiting messages; the
//! summary names sender and text only when configured; disabled registrations and resumed sessions wake nobody.
mod common;

use common::*;
use presence_core::engine::Undelivered;
use presence_core::feature::Call;
use presence_core::feature::app_push::{self, Notification};
use presence_core::stanza::Stanza;
use presence_core::{EngineConfig, Input, PushContents, SessionId};

fn enable(h: &mut Harness, session: SessionId, node: &str) {
    h.input(Input::Request {
        session,
        request: req("e"),
        call: Call::AppPush(app_push::Call::Enable {
            service: jid("push.example"),
            node: node.into(),
            options: Some("<x xmlns='jabber:x:data' type='submit'/>".into()),
        }),
    });
}

fn notifications(h: &mut Harness) -> Vec<Notification> {
    h.drain();
    std::mem::take(&mut h.routed)
        .into_iter()
        .filter_map(|s| match s {
            Stanza::AppPush(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn config(contents: PushContents) -> EngineConfig {
    EngineConfig {
        push_contents: contents,
        ..EngineConfig::for_domain("x")
    }
}

#[test]
fn a_held_message_wakes_every_registration_with_the_waiting_count() {
    let mut h = Harness::with_users(
        config(PushContents {
            sender: true,
            body: true,
        }),
        &["alice@x", "bob@x"],
    );
    let phone = h.login("alice@x", "phone");
    let tablet = h.login("alice@x", "tablet");
    enable(&mut h, phone, "p");
    enable(&mut h, tablet, "t");
    h.logout(phone);
    h.logout(tablet);
    let bob = h.login("bob@x", "pc");
    h.clear();
    h.chat(bob, "alice@x", "one");
    let got = notifications(&mut h);
    let mut nodes: Vec<_> = got.iter().map(|n| n.node.as_str()).collect();
    nodes.sort_unstable();
    assert_eq!(nodes, ["p", "t"], "{got:?}");
    assert!(got.iter().all(|n| n.count == 1
        && n.user == j("alice@x")
        && n.sender.as_ref().map(|s| s.bare().to_string()) == Some("bob@x".into())
        && n.body.as_deref() == Some("one")
        && n.options.is_some()));
    h.chat(bob, "alice@x", "two");
    assert!(notifications(&mut h).iter().all(|n| n.count == 2));
}

#[test]
fn the_summary_is_a_count_unless_configured_and_disabled_registrations_are_quiet() {
    let mut h = Harness::with_users(config(PushContents::default()), &["alice@x", "bob@x"]);
    let phone = h.login("alice@x", "phone");
    enable(&mut h, phone, "p");
    h.logout(phone);
    let bob = h.login("bob@x", "pc");
    h.clear();
    h.chat(bob, "alice@x", "secret text");
    let got = notifications(&mut h);
    assert!(
        matches!(&got[..], [n] if n.sender.is_none() && n.body.is_none() && n.count == 1),
        "{got:?}"
    );
    let phone = h.login("alice@x", "phone");
    h.input(Input::Request {
        session: phone,
        request: req("d"),
        call: Call::AppPush(app_push::Call::Disable {
            service: jid("push.example"),
            node: None,
        }),
    });
    h.logout(phone);
    h.clear();
    h.chat(bob, "alice@x", "nobody hears of this");
    assert!(notifications(&mut h).is_empty());
}

#[test]
fn a_detached_session_wakes_its_own_device_until_it_is_back() {
    let mut h = Harness::with_users(config(PushContents::default()), &["alice@x", "bob@x"]);
    let phone = h.login("alice@x", "phone");
    let desk = h.login("alice@x", "desk");
    enable(&mut h, phone, "p");
    let bob = h.login("bob@x", "pc");
    h.clear();
    // One message the phone never confirmed before its connection dropped.
    let unconfirmed = Undelivered {
        from: jid("bob@x/pc"),
        to: jid("alice@x/phone"),
        message: chat("unconfirmed"),
    };
    h.input(Input::Detached {
        session: phone,
        unacked: vec![unconfirmed],
    });
    let got = notifications(&mut h);
    assert!(
        matches!(&got[..], [n] if n.node == "p" && n.count == 1),
        "{got:?}"
    );
    // Delivered to both of alice's sessions; the desk sees it, the phone cannot.
    h.chat(bob, "alice@x", "while away");
    let got = notifications(&mut h);
    assert!(matches!(&got[..], [n] if n.count == 2), "{got:?}");
    assert_eq!(bodies(&h.take(desk)), ["while away"]);
    h.input(Input::Reattached { session: phone });
    h.chat(bob, "alice@x", "back");
    assert!(notifications(&mut h).is_empty());
}
