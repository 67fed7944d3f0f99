//! Compliance archiving in the engine: which messages get an `Output::Comply` record, with what in it, where in
//! the output order, and on which side of a conversation.

mod common;

use common::{Harness, j, jid};
use presence_core::compliance::Record;
use presence_core::message::{Marks, Message, MessageKind};
use presence_core::policy::{DefaultRule, PolicyEntry, UserPolicy};
use presence_core::stanza::Stanza;
use presence_core::store::{OfflineStore, Store, StoreWrite};
use presence_core::time::Timestamp;
use presence_core::{EngineConfig, Input, Jid, Output, SessionId};

fn complying() -> EngineConfig {
    EngineConfig {
        compliance: true,
        ..EngineConfig::for_domain("x")
    }
}

fn message(kind: MessageKind, id: &str, body: Option<&str>) -> Message {
    Message {
        id: Some(id.into()),
        kind,
        body: body.map(str::to_owned),
        stamp: Timestamp::from_millis(1_700_000_000_123),
        ..Message::default()
    }
}

/// Feeds one input and carries out loads and writes as the harness does, returning every output in order.
fn run(h: &mut Harness, input: Input) -> Vec<Output> {
    h.engine.handle(h.now, input);
    let mut outs = Vec::new();
    while let Some(out) = h.engine.poll_output() {
        match &out {
            Output::Load(user) => {
                let record = h.store.load_user(user).unwrap();
                h.engine.handle(
                    h.now,
                    Input::Loaded {
                        user: user.clone(),
                        record,
                    },
                );
            }
            Output::Store(w) => h.store.apply(std::slice::from_ref(w)).unwrap(),
            _ => {}
        }
        outs.push(out);
    }
    outs
}

fn records(outs: &[Output]) -> Vec<Record> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Comply(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn send(h: &mut Harness, session: SessionId, to: &str, m: Message) -> Vec<Output> {
    run(
        h,
        Input::Message {
            session,
            to: jid(to),
            message: m,
        },
    )
}

#[test]
fn nothing_is_recorded_unless_compliance_is_on() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    h.login("bob@x", "phone");
    let outs = send(
        &mut h,
        a,
        "bob@x",
        message(MessageKind::Chat, "1", Some("hi")),
    );
    assert!(records(&outs).is_empty());
}

#[test]
fn a_delivered_message_is_recorded_once_before_its_deliveries() {
    let mut h = Harness::with_users(complying(), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    // Two devices: one record, not one per fork.
    h.login("bob@x", "phone");
    h.login("bob@x", "desk");
    let outs = send(
        &mut h,
        a,
        "bob@x",
        message(MessageKind::Chat, "m1", Some("hello")),
    );
    assert_eq!(
        records(&outs),
        vec![Record {
            sender: jid("alice@x/pc"),
            recipients: vec![jid("bob@x")],
            room: None,
            stamp: Timestamp::from_millis(1_700_000_000_123),
            id: Some("m1".into()),
            kind: MessageKind::Chat,
            body: "hello".into(),
        }]
    );
    let at = outs
        .iter()
        .position(|o| matches!(o, Output::Comply(_)))
        .unwrap();
    let deliveries: Vec<usize> = outs
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            matches!(
                o,
                Output::Deliver {
                    stanza: Stanza::Message { .. },
                    ..
                }
            )
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(deliveries.len(), 2, "{outs:?}");
    assert!(
        deliveries.iter().all(|&i| i > at),
        "the record comes before the deliveries it must be able to hold back: {outs:?}"
    );
}

#[test]
fn a_message_to_a_full_address_names_that_address() {
    let mut h = Harness::with_users(complying(), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    h.login("bob@x", "phone");
    let outs = send(
        &mut h,
        a,
        "bob@x/phone",
        message(MessageKind::Normal, "n", Some("note")),
    );
    let r = records(&outs);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].recipients, vec![jid("bob@x/phone")]);
    assert_eq!(r[0].kind, MessageKind::Normal);
}

#[test]
fn a_message_held_offline_is_recorded_once_and_not_again_when_delivered() {
    let mut h = Harness::with_users(complying(), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let outs = send(
        &mut h,
        a,
        "bob@x",
        message(MessageKind::Chat, "m1", Some("later")),
    );
    let r = records(&outs);
    assert_eq!(r.len(), 1, "{outs:?}");
    assert_eq!(r[0].body, "later");
    let push = outs
        .iter()
        .position(|o| matches!(o, Output::Store(StoreWrite::OfflinePush { .. })))
        .expect("held offline");
    let comply = outs
        .iter()
        .position(|o| matches!(o, Output::Comply(_)))
        .unwrap();
    // Same commit group: nothing that could be let out lies between them.
    assert!(
        outs[push.min(comply)..push.max(comply)]
            .iter()
            .all(|o| !matches!(o, Output::Deliver { .. } | Output::Route(_))),
        "{outs:?}"
    );
    assert_eq!(h.store.offline(&j("bob@x")).unwrap().len(), 1);

    // Bob signs in and gets it: that is no new message.
    let b = h.bind("bob@x", "phone");
    let outs = run(
        &mut h,
        Input::Presence {
            session: b,
            to: None,
            presence: Some(Default::default()),
        },
    );
    assert!(outs.iter().any(|o| matches!(o, Output::Deliver { session, stanza: Stanza::Message { .. } } if *session == b)));
    assert!(records(&outs).is_empty(), "{outs:?}");
}

#[test]
fn errors_headlines_and_bodiless_messages_are_not_recorded() {
    let mut h = Harness::with_users(complying(), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    h.login("bob@x", "phone");
    for m in [
        message(MessageKind::Headline, "h", Some("alert")),
        message(MessageKind::Error, "e", Some("oops")),
        message(MessageKind::Chat, "s", None),
        Message {
            marks: Marks {
                signal: true,
                ..Marks::default()
            },
            ..message(MessageKind::Chat, "state", None)
        },
    ] {
        let outs = send(&mut h, a, "bob@x", m.clone());
        assert!(records(&outs).is_empty(), "{m:?} -> {outs:?}");
    }
}

#[test]
fn a_message_the_server_refuses_is_not_recorded() {
    let mut h = Harness::with_users(complying(), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    // No such account.
    let outs = send(
        &mut h,
        a,
        "nobody@x",
        message(MessageKind::Chat, "1", Some("hi")),
    );
    assert!(records(&outs).is_empty(), "{outs:?}");
    // Bob blocks alice.
    h.input(Input::SetPolicy {
        user: j("bob@x"),
        policy: UserPolicy {
            block: vec![PolicyEntry::Jid(j("alice@x"))],
            default: DefaultRule::AllowAll,
            ..UserPolicy::default()
        },
    });
    h.login("bob@x", "phone");
    let outs = send(
        &mut h,
        a,
        "bob@x",
        message(MessageKind::Chat, "2", Some("hi")),
    );
    assert!(records(&outs).is_empty(), "{outs:?}");
}

#[test]
fn a_message_nobody_can_hold_is_not_recorded() {
    let mut h = Harness::with_users(
        EngineConfig {
            offline_storage: false,
            ..complying()
        },
        &["alice@x", "bob@x"],
    );
    let a = h.login("alice@x", "pc");
    let outs = send(
        &mut h,
        a,
        "bob@x",
        message(MessageKind::Chat, "1", Some("hi")),
    );
    assert!(records(&outs).is_empty(), "{outs:?}");
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Deliver {
            stanza: Stanza::Error(_),
            ..
        }
    )));
}

#[test]
fn a_message_to_another_domain_is_recorded_by_the_senders_side_before_it_is_routed() {
    let mut h = Harness::with_users(complying(), &["alice@x"]);
    let a = h.login("alice@x", "pc");
    let outs = send(
        &mut h,
        a,
        "bot@component.x",
        message(MessageKind::Chat, "1", Some("ping")),
    );
    let r = records(&outs);
    assert_eq!(r.len(), 1, "{outs:?}");
    assert_eq!(r[0].recipients, vec![jid("bot@component.x")]);
    let comply = outs
        .iter()
        .position(|o| matches!(o, Output::Comply(_)))
        .unwrap();
    let route = outs
        .iter()
        .position(|o| matches!(o, Output::Route(Stanza::Message { .. })))
        .unwrap();
    assert!(comply < route, "{outs:?}");
}

#[test]
fn a_message_from_another_domain_is_recorded_where_it_is_accepted() {
    let mut h = Harness::with_users(complying(), &["bob@x"]);
    h.login("bob@x", "phone");
    let outs = run(
        &mut h,
        Input::FromRemote(Stanza::Message {
            from: jid("carol@elsewhere.org/laptop"),
            to: jid("bob@x"),
            message: message(MessageKind::Chat, "r", Some("from afar")),
            delayed: None,
        }),
    );
    let r = records(&outs);
    assert_eq!(r.len(), 1, "{outs:?}");
    assert_eq!(r[0].sender, jid("carol@elsewhere.org/laptop"));
}

#[test]
fn across_the_nodes_of_a_cluster_only_the_recipients_node_records() {
    let store = std::sync::Arc::new(presence_core::store::MemoryStore::new());
    let mut a_node = Harness::node(complying(), store.clone(), &["alice@x"]);
    a_node.account("alice@x");
    a_node.account("bob@x");
    let a = a_node.login("alice@x", "pc");
    let outs = send(
        &mut a_node,
        a,
        "bob@x",
        message(MessageKind::Chat, "1", Some("hi")),
    );
    assert!(records(&outs).is_empty(), "{outs:?}");
    let routed = outs
        .into_iter()
        .find_map(|o| match o {
            Output::Route(s @ Stanza::Message { .. }) => Some(s),
            _ => None,
        })
        .expect("routed to bob's node");

    let mut b_node = Harness::node(complying(), store, &["bob@x"]);
    b_node.login("bob@x", "phone");
    let outs = run(&mut b_node, Input::FromRemote(routed));
    assert_eq!(records(&outs).len(), 1, "{outs:?}");
}

/// SIP MESSAGE reaches the engine as `Input::Message` from the SIP endpoint's session (server-sip's
/// `requests.rs`: a chat message with the text body and a `sip-N` id, to the target's bare address), so it is
/// recorded like any 1:1 message, delivered or held.
#[test]
fn a_sip_message_is_recorded_like_any_other() {
    let mut h = Harness::with_users(complying(), &["alice@x", "bob@x"]);
    let phone = h.bind("alice@x", "sip-endpoint");
    let sip = |id: &str, body: &str| Message {
        id: Some(id.into()),
        kind: MessageKind::Chat,
        body: Some(body.into()),
        stamp: Timestamp::from_millis(5),
        ..Message::default()
    };
    // Bob offline: held and recorded.
    let outs = send(&mut h, phone, "bob@x", sip("sip-1", "from my phone"));
    let r = records(&outs);
    assert_eq!(r.len(), 1, "{outs:?}");
    assert_eq!(r[0].sender, jid("alice@x/sip-endpoint"));
    assert_eq!(r[0].id.as_deref(), Some("sip-1"));
    // Bob online: delivered and recorded.
    h.login("bob@x", "pc");
    let outs = send(&mut h, phone, "bob@x", sip("sip-2", "again"));
    assert_eq!(records(&outs).len(), 1, "{outs:?}");
    assert_eq!(records(&outs)[0].recipients, vec![Jid::Bare(j("bob@x"))]);
}
