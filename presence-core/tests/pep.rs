//! Personal eventing (XEP-0163): publishing with publish-options as preconditions, reading under the access
//! models, notifications to the owner and to subscribers, the item cap and the document limits, and nodes kept in
//! the store across eviction.
mod common;

use common::*;
use presence_core::feature::pep::{
    self, AccessModel, Change, Event, Item, MaxItems, NodeConfig, Options,
};
use presence_core::feature::{Answer, Call};
use presence_core::stanza::{ErrorCondition, Stanza};
use presence_core::store::DocumentStore;
use presence_core::{EngineConfig, Input, SessionId};

fn ask(h: &mut Harness, session: SessionId, id: &str, call: pep::Call) -> Stanza {
    h.take(session);
    h.input(Input::Request {
        session,
        request: req(id),
        call: Call::Pep(call),
    });
    let got = h.take(session);
    got.into_iter()
        .find(|s| !matches!(s, Stanza::Push(_)))
        .expect("an answer")
}

fn publish(node: &str, id: &str, payload: &str, options: Options) -> pep::Call {
    pep::Call::Publish {
        node: node.into(),
        item: Some(id.into()),
        payload: payload.into(),
        options,
        avatar: None,
    }
}

fn items(owner: Option<&str>, node: &str) -> pep::Call {
    pep::Call::Items {
        owner: owner.map(j),
        node: node.into(),
        ids: Vec::new(),
        max: None,
    }
}

fn open() -> Options {
    Options {
        access_model: Some(AccessModel::Open),
        ..Options::default()
    }
}

fn error_of(s: &Stanza) -> ErrorCondition {
    match s {
        Stanza::Error(e) => e.condition,
        other => panic!("not an error: {other:?}"),
    }
}

fn item_ids(s: &Stanza) -> Vec<String> {
    match s {
        Stanza::Answer {
            answer: Answer::Pep(pep::Answer::Items { items, .. }),
            ..
        } => items.iter().map(|i| i.id.clone()).collect(),
        other => panic!("not items: {other:?}"),
    }
}

fn published(id: &str, node: &str, item: &str) -> Stanza {
    Stanza::Answer {
        request: req(id),
        answer: Answer::Pep(pep::Answer::Published {
            node: node.into(),
            item: item.into(),
        }),
    }
}

const MOOD: &str = "http://jabber.org/protocol/mood";

#[test]
fn a_publish_creates_the_node_and_the_owner_reads_it_back_after_eviction() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    let a = h.login("alice@x", "pc");
    let mood = "<mood xmlns='http://jabber.org/protocol/mood'><happy/></mood>";
    assert_eq!(
        ask(
            &mut h,
            a,
            "p1",
            publish(MOOD, "current", mood, Options::default())
        ),
        published("p1", MOOD, "current")
    );
    // The default node keeps one item (XEP-0163 §4.2): a second publish replaces the first.
    ask(
        &mut h,
        a,
        "p2",
        publish(MOOD, "other", mood, Options::default()),
    );
    assert_eq!(item_ids(&ask(&mut h, a, "g", items(None, MOOD))), ["other"]);
    assert_eq!(
        ask(&mut h, a, "c", pep::Call::GetConfig { node: MOOD.into() }),
        Stanza::Answer {
            request: req("c"),
            answer: Answer::Pep(pep::Answer::Config {
                node: MOOD.into(),
                config: NodeConfig::default(),
                cap: 100,
            })
        }
    );
    let stored = h.store.documents(&j("alice@x")).unwrap();
    assert_eq!(stored.len(), 2, "the node and its one item: {stored:?}");

    h.logout(a);
    let a = h.login("alice@x", "laptop");
    let got = ask(&mut h, a, "g2", items(None, MOOD));
    let Stanza::Answer {
        answer: Answer::Pep(pep::Answer::Items { items, .. }),
        ..
    } = got
    else {
        panic!("items: {got:?}")
    };
    assert_eq!(
        items,
        [Item {
            id: "other".into(),
            payload: mood.into()
        }]
    );
    assert_eq!(
        error_of(&ask(&mut h, a, "none", items_of_missing())),
        ErrorCondition::ItemNotFound
    );
}

fn items_of_missing() -> pep::Call {
    items(None, "urn:nothing")
}

#[test]
fn access_models_decide_who_reads() {
    // Bob has a presence subscription to alice; carol has none.
    let (mut h, a, b) = Harness::alice_watched_by_bob();
    h.account("carol@x");
    let c = h.login("carol@x", "pc");
    ask(
        &mut h,
        a,
        "1",
        publish("presence-node", "i", "<p xmlns='p'/>", Options::default()),
    );
    ask(
        &mut h,
        a,
        "2",
        publish("open-node", "i", "<o xmlns='o'/>", open()),
    );
    let whitelist = Options {
        access_model: Some(AccessModel::Whitelist),
        persist_items: Some(true),
        ..Options::default()
    };
    ask(
        &mut h,
        a,
        "3",
        publish("private-node", "i", "<w xmlns='w'/>", whitelist),
    );

    assert_eq!(
        item_ids(&ask(
            &mut h,
            b,
            "b1",
            items(Some("alice@x"), "presence-node")
        )),
        ["i"]
    );
    assert_eq!(
        item_ids(&ask(&mut h, b, "b2", items(Some("alice@x"), "open-node"))),
        ["i"]
    );
    assert_eq!(
        error_of(&ask(
            &mut h,
            b,
            "b3",
            items(Some("alice@x"), "private-node")
        )),
        ErrorCondition::Forbidden
    );
    assert_eq!(
        error_of(&ask(
            &mut h,
            c,
            "c1",
            items(Some("alice@x"), "presence-node")
        )),
        ErrorCondition::Forbidden
    );
    assert_eq!(
        item_ids(&ask(&mut h, c, "c2", items(Some("alice@x"), "open-node"))),
        ["i"]
    );
    assert_eq!(
        item_ids(&ask(&mut h, a, "a3", items(None, "private-node"))),
        ["i"]
    );

    // An open node of a user who is offline is read from the store.
    h.logout(a);
    assert_eq!(
        item_ids(&ask(&mut h, c, "c3", items(Some("alice@x"), "open-node"))),
        ["i"]
    );
    assert_eq!(
        error_of(&ask(&mut h, c, "c4", items(Some("nobody@x"), "open-node"))),
        ErrorCondition::ItemNotFound
    );
}

#[test]
fn publish_options_are_preconditions_on_an_existing_node() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    let a = h.login("alice@x", "pc");
    let devices = "eu.siacs.conversations.axolotl.devicelist";
    let list = "<list xmlns='eu.siacs.conversations.axolotl'><device id='1'/></list>";
    assert_eq!(
        ask(&mut h, a, "1", publish(devices, "current", list, open())),
        published("1", devices, "current")
    );
    assert_eq!(
        ask(&mut h, a, "2", publish(devices, "current", list, open())),
        published("2", devices, "current"),
        "the same options are met"
    );
    let whitelist = Options {
        access_model: Some(AccessModel::Whitelist),
        ..Options::default()
    };
    assert_eq!(
        error_of(&ask(
            &mut h,
            a,
            "3",
            publish(devices, "current", list, whitelist)
        )),
        ErrorCondition::PreconditionNotMet
    );
    // `max` is the server cap, so it meets a node configured with the cap as a number.
    let max = Options {
        max_items: Some(MaxItems::Max),
        ..Options::default()
    };
    ask(
        &mut h,
        a,
        "4",
        publish(
            "urn:xmpp:bookmarks:1",
            "r1",
            "<c xmlns='urn:xmpp:bookmarks:1'/>",
            max,
        ),
    );
    let hundred = Options {
        max_items: Some(MaxItems::Count(100)),
        ..Options::default()
    };
    assert_eq!(
        ask(
            &mut h,
            a,
            "5",
            publish(
                "urn:xmpp:bookmarks:1",
                "r2",
                "<c xmlns='urn:xmpp:bookmarks:1'/>",
                hundred
            )
        ),
        published("5", "urn:xmpp:bookmarks:1", "r2")
    );
    // Reconfiguring makes the options met again.
    assert_eq!(
        ask(
            &mut h,
            a,
            "6",
            pep::Call::SetConfig {
                node: devices.into(),
                options: whitelist
            }
        ),
        Stanza::Answer {
            request: req("6"),
            answer: Answer::Done
        }
    );
    assert_eq!(
        ask(&mut h, a, "7", publish(devices, "current", list, whitelist)),
        published("7", devices, "current")
    );
}

#[test]
fn the_owner_and_admitted_subscribers_are_notified() {
    let (mut h, a, b) = Harness::alice_watched_by_bob();
    let a2 = h.login("alice@x", "phone");
    h.account("carol@x");
    let c = h.login("carol@x", "pc");
    let meta = "urn:xmpp:avatar:metadata";
    ask(
        &mut h,
        a,
        "1",
        publish(
            meta,
            "h1",
            "<metadata xmlns='urn:xmpp:avatar:metadata'/>",
            Options::default(),
        ),
    );
    h.clear();

    // Bob may subscribe (presence access) and gets the last item at once; carol may not.
    let sub = |owner: &str| pep::Call::Subscribe {
        owner: j(owner),
        node: meta.into(),
    };
    h.input(Input::Request {
        session: b,
        request: req("s"),
        call: Call::Pep(sub("alice@x")),
    });
    let got = h.take(b);
    assert!(
        matches!(
            &got[0],
            Stanza::Answer {
                answer: Answer::Pep(pep::Answer::Subscribed { .. }),
                ..
            }
        ),
        "{got:?}"
    );
    assert_eq!(pep_events(&got).len(), 1, "the last item follows: {got:?}");
    assert_eq!(
        error_of(&ask(&mut h, c, "s", sub("alice@x"))),
        ErrorCondition::Forbidden
    );

    h.clear();
    ask(
        &mut h,
        a,
        "2",
        publish(
            meta,
            "h2",
            "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='h2'/></metadata>",
            Options::default(),
        ),
    );
    let expected = Event {
        owner: j("alice@x"),
        node: meta.into(),
        change: Change::Items(vec![Item {
            id: "h2".into(),
            payload: "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='h2'/></metadata>".into(),
        }]),
    };
    assert_eq!(
        pep_events(&h.take(a2)),
        std::slice::from_ref(&expected),
        "the owner's other session"
    );
    assert_eq!(pep_events(&h.take(b)), [expected], "the subscriber");
    assert!(pep_events(&h.take(c)).is_empty(), "not a subscriber");

    // Retract with notify, then delete: both reach the subscriber.
    ask(
        &mut h,
        a,
        "3",
        pep::Call::Retract {
            node: meta.into(),
            ids: vec!["h2".into()],
            notify: true,
        },
    );
    assert_eq!(
        pep_events(&h.take(b))[0].change,
        Change::Retracted(vec!["h2".into()])
    );
    ask(&mut h, a, "4", pep::Call::Delete { node: meta.into() });
    assert_eq!(pep_events(&h.take(b))[0].change, Change::Deleted);
    // (The roster's version is kept among the user's documents too; it is not PEP's.)
    assert!(
        h.store
            .documents(&j("alice@x"))
            .unwrap()
            .iter()
            .all(|(k, _)| !k.as_str().starts_with("pep/")),
        "nothing left"
    );

    // Once bob no longer has a presence subscription, a presence node stops notifying him.
    ask(
        &mut h,
        a,
        "5",
        publish(
            meta,
            "h3",
            "<metadata xmlns='urn:xmpp:avatar:metadata'/>",
            Options::default(),
        ),
    );
    ask(&mut h, b, "6", sub("alice@x"));
    h.subscribe(
        b,
        "alice@x",
        presence_core::roster::SubscriptionAction::Unsubscribe,
    );
    h.clear();
    ask(
        &mut h,
        a,
        "7",
        publish(
            meta,
            "h4",
            "<metadata xmlns='urn:xmpp:avatar:metadata'/>",
            Options::default(),
        ),
    );
    assert!(pep_events(&h.take(b)).is_empty());
}

#[test]
fn items_are_capped_and_oversized_payloads_refused() {
    let mut config = EngineConfig::for_domain("x");
    config.limits.pep_max_items = 3;
    config.limits.max_document_bytes = 100;
    let mut h = Harness::with_users(config, &["alice@x"]);
    let a = h.login("alice@x", "pc");
    let max = Options {
        max_items: Some(MaxItems::Max),
        ..Options::default()
    };
    for i in 0..5 {
        ask(
            &mut h,
            a,
            &format!("p{i}"),
            publish("n", &format!("i{i}"), "<x xmlns='x'/>", max),
        );
    }
    assert_eq!(
        item_ids(&ask(&mut h, a, "g", items(None, "n"))),
        ["i2", "i3", "i4"]
    );
    let newest = pep::Call::Items {
        owner: None,
        node: "n".into(),
        ids: Vec::new(),
        max: Some(1),
    };
    assert_eq!(item_ids(&ask(&mut h, a, "g1", newest)), ["i4"]);
    let by_id = pep::Call::Items {
        owner: None,
        node: "n".into(),
        ids: vec!["i3".into(), "gone".into()],
        max: None,
    };
    assert_eq!(item_ids(&ask(&mut h, a, "g2", by_id)), ["i3"]);
    assert_eq!(
        h.store.documents(&j("alice@x")).unwrap().len(),
        4,
        "the node and three items"
    );

    let big = format!("<x xmlns='x'>{}</x>", "y".repeat(100));
    assert_eq!(
        error_of(&ask(&mut h, a, "big", publish("n", "big", &big, max))),
        ErrorCondition::NotAcceptable
    );
    assert_eq!(
        error_of(&ask(
            &mut h,
            a,
            "c",
            pep::Call::Create {
                node: "n".into(),
                options: Options::default()
            }
        )),
        ErrorCondition::Conflict
    );
}

#[test]
fn a_node_that_does_not_persist_only_notifies() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    let a = h.login("alice@x", "pc");
    let a2 = h.login("alice@x", "phone");
    let transient = Options {
        persist_items: Some(false),
        ..Options::default()
    };
    ask(
        &mut h,
        a,
        "1",
        publish("tune", "t", "<tune xmlns='t'/>", transient),
    );
    assert_eq!(pep_events(&h.take(a2)).len(), 1);
    assert!(item_ids(&ask(&mut h, a, "g", items(None, "tune"))).is_empty());
}

fn interests(h: &mut Harness, session: SessionId, nodes: &[&str]) {
    h.input(Input::Interests {
        session,
        notify: nodes.iter().map(|n| (*n).to_owned()).collect(),
    });
}

const DEVICES: &str = "eu.siacs.conversations.axolotl.devicelist";

#[test]
fn contacts_whose_clients_asked_for_a_node_are_notified() {
    // Bob and carol receive alice's presence; only bob's client asked for device lists. Dave is no contact.
    let (mut h, a, b) = Harness::alice_watched_by_bob();
    let a2 = h.login("alice@x", "phone");
    h.account("carol@x");
    h.account("dave@x");
    let c = h.login("carol@x", "pc");
    let d = h.login("dave@x", "pc");
    h.subscribe(
        c,
        "alice@x",
        presence_core::roster::SubscriptionAction::Subscribe,
    );
    let b2 = h.login("bob@x", "tablet");
    for s in [a2, b, d] {
        interests(&mut h, s, &[DEVICES, MOOD]);
    }
    h.clear();

    let list = "<list xmlns='eu.siacs.conversations.axolotl'><device id='1'/></list>";
    ask(
        &mut h,
        a,
        "1",
        publish(DEVICES, "current", list, Options::default()),
    );
    let expected = Event {
        owner: j("alice@x"),
        node: DEVICES.into(),
        change: Change::Items(vec![Item {
            id: "current".into(),
            payload: list.into(),
        }]),
    };
    assert_eq!(pep_events(&h.take(b)), std::slice::from_ref(&expected));
    assert!(
        pep_events(&h.take(b2)).is_empty(),
        "bob's other client did not ask"
    );
    assert!(
        pep_events(&h.take(c)).is_empty(),
        "carol's client did not ask"
    );
    assert!(pep_events(&h.take(d)).is_empty(), "dave is no contact");
    assert_eq!(
        pep_events(&h.take(a2)),
        [expected],
        "the owner's session, interested too, hears it once"
    );

    // An open node still notifies contacts only; a whitelist node nobody but the owner.
    ask(
        &mut h,
        a,
        "2",
        publish(MOOD, "m", "<mood xmlns='m'/>", open()),
    );
    assert_eq!(pep_events(&h.take(b)).len(), 1);
    assert!(
        pep_events(&h.take(d)).is_empty(),
        "open, but dave is no contact"
    );
    h.clear();
    let whitelist = Options {
        access_model: Some(AccessModel::Whitelist),
        ..Options::default()
    };
    ask(
        &mut h,
        a,
        "3",
        pep::Call::SetConfig {
            node: DEVICES.into(),
            options: whitelist,
        },
    );
    ask(&mut h, a, "4", publish(DEVICES, "current", list, whitelist));
    assert!(pep_events(&h.take(b)).is_empty(), "whitelist");
    assert_eq!(pep_events(&h.take(a2)).len(), 1);

    // A session that is both a subscriber and interested hears a change once; retract and delete reach it too.
    ask(
        &mut h,
        a,
        "5",
        publish(MOOD, "m2", "<mood xmlns='m'/>", open()),
    );
    ask(
        &mut h,
        b,
        "6",
        pep::Call::Subscribe {
            owner: j("alice@x"),
            node: MOOD.into(),
        },
    );
    h.clear();
    ask(
        &mut h,
        a,
        "7",
        publish(MOOD, "m3", "<mood xmlns='m'/>", open()),
    );
    let got = pep_events(&h.take(b));
    assert_eq!(got.len(), 1, "once: {got:?}");
    assert_eq!(pep_events(&h.take(b2)).len(), 1, "as a subscriber");
    ask(
        &mut h,
        a,
        "8",
        pep::Call::Retract {
            node: MOOD.into(),
            ids: vec!["m3".into()],
            notify: true,
        },
    );
    assert_eq!(
        pep_events(&h.take(b))
            .into_iter()
            .map(|e| e.change)
            .collect::<Vec<_>>(),
        [Change::Retracted(vec!["m3".into()])]
    );
    ask(&mut h, a, "9", pep::Call::Delete { node: MOOD.into() });
    assert_eq!(
        pep_events(&h.take(b))
            .into_iter()
            .map(|e| e.change)
            .collect::<Vec<_>>(),
        [Change::Deleted]
    );

    // Gone unavailable, bob's client has no interests until it says them again.
    h.input(Input::Presence {
        session: b,
        to: None,
        presence: None,
    });
    ask(
        &mut h,
        a,
        "10",
        publish(DEVICES, "current", list, whitelist),
    );
    ask(
        &mut h,
        a,
        "11",
        publish(MOOD, "m4", "<mood xmlns='m'/>", open()),
    );
    assert!(pep_events(&h.take(b)).is_empty());
}

#[test]
fn a_new_interest_brings_the_last_items_of_contacts_and_of_the_own_account() {
    let mut h = Harness::with_users(
        EngineConfig::for_domain("x"),
        &["alice@x", "bob@x", "carol@x"],
    );
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "pc");
    let c = h.login("carol@x", "pc");
    // Bob receives alice's presence; carol receives nobody's.
    h.subscribe(
        b,
        "alice@x",
        presence_core::roster::SubscriptionAction::Subscribe,
    );
    let list = "<list xmlns='eu.siacs.conversations.axolotl'><device id='1'/></list>";
    ask(
        &mut h,
        a,
        "1",
        publish(DEVICES, "current", list, Options::default()),
    );
    ask(
        &mut h,
        a,
        "2",
        publish(MOOD, "m", "<mood xmlns='m'/>", Options::default()),
    );
    let own = "<list xmlns='eu.siacs.conversations.axolotl'><device id='2'/></list>";
    ask(
        &mut h,
        b,
        "3",
        publish(DEVICES, "mine", own, Options::default()),
    );
    h.logout(b);
    h.clear();

    // Bob comes online and his client asks for device lists: alice's and his own last items come.
    let b = h.login("bob@x", "phone");
    h.clear();
    interests(&mut h, b, &[DEVICES]);
    let got: Vec<(String, String)> = pep_events(&h.take(b))
        .into_iter()
        .map(|e| match e.change {
            Change::Items(items) => (e.owner.to_string(), items[0].id.clone()),
            other => panic!("not items: {other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            ("bob@x".to_owned(), "mine".to_owned()),
            ("alice@x".to_owned(), "current".to_owned())
        ]
    );
    // The same interests again bring nothing; a new one brings that node's items only.
    interests(&mut h, b, &[DEVICES]);
    assert!(pep_events(&h.take(b)).is_empty());
    interests(&mut h, b, &[DEVICES, MOOD, "urn:nothing"]);
    let got = pep_events(&h.take(b));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].node, MOOD);

    // Carol is no contact: nothing of alice's.
    interests(&mut h, c, &[DEVICES, MOOD]);
    assert!(pep_events(&h.take(c)).is_empty());

    // A session that has not sent available presence keeps no interests.
    let quiet = h.bind("bob@x", "quiet");
    interests(&mut h, quiet, &[DEVICES]);
    assert!(pep_events(&h.take(quiet)).is_empty());
    h.presence(quiet, presence_core::compose::Show::Available, 0);
    h.clear();
    ask(
        &mut h,
        a,
        "4",
        publish(DEVICES, "current", list, Options::default()),
    );
    assert!(pep_events(&h.take(quiet)).is_empty());
    assert_eq!(pep_events(&h.take(b)).len(), 1);

    // A contact that is not loaded (offline) is not read: alice goes away, bob's new session gets only his own.
    h.logout(a);
    let b3 = h.login("bob@x", "laptop");
    h.clear();
    interests(&mut h, b3, &[DEVICES]);
    let got = pep_events(&h.take(b3));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].owner, j("bob@x"));
}
