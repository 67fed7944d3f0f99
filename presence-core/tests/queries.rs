//! Requests between engines (`presence_core::query`): a session reads and subscribes to the data of a user served
//! by another engine (a shard of the node or another node) exactly as it would on one engine, and PEP
//! notifications reach contacts and subscribers served elsewhere.
mod common;

use common::nodes::{mutual, pair, pump};
use common::*;
use presence_core::feature::pep::{self, AccessModel, Change, Event, Options};
use presence_core::feature::{Answer, Call, Push, vcard};
use presence_core::roster::SubscriptionAction;
use presence_core::stanza::{ErrorCondition, Stanza};
use presence_core::{Input, SessionId};

const MOOD: &str = "http://jabber.org/protocol/mood";

/// Sends a request of `session` on `h` and carries what it causes between the engines.
fn request(
    h: &mut Harness,
    other: &mut Harness,
    session: SessionId,
    id: &str,
    call: Call,
) -> Vec<Stanza> {
    h.take(session);
    h.input(Input::Request {
        session,
        request: req(id),
        call,
    });
    pump(h, other);
    h.take(session)
}

fn publish(node: &str, id: &str, payload: &str, access: AccessModel) -> Call {
    Call::Pep(pep::Call::Publish {
        node: node.into(),
        item: Some(id.into()),
        payload: payload.into(),
        options: Options {
            access_model: Some(access),
            ..Options::default()
        },
        avatar: None,
    })
}

fn items_of(owner: &str, node: &str) -> Call {
    Call::Pep(pep::Call::Items {
        owner: Some(j(owner)),
        node: node.into(),
        ids: Vec::new(),
        max: None,
    })
}

fn item_ids(event: &Event) -> Vec<String> {
    match &event.change {
        Change::Items(items) => items.iter().map(|i| i.id.clone()).collect(),
        other => panic!("not items: {other:?}"),
    }
}

fn error_for(stanzas: &[Stanza], id: &str) -> ErrorCondition {
    stanzas
        .iter()
        .find_map(|s| match s {
            Stanza::Error(e) if e.about == presence_core::stanza::ErrorAbout::Request(req(id)) => {
                Some(e.condition)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no error for {id}: {stanzas:?}"))
}

#[test]
fn a_vcard_is_read_from_the_engine_serving_its_owner_whether_or_not_they_are_online() {
    let (mut a, mut b) = pair();
    let sa = a.login("alice@x", "pc");
    let card = "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>";
    let set = Call::VCard(vcard::Call::Set {
        xml: card.into(),
        photo: vcard::SetPhoto::None,
    });
    request(&mut a, &mut b, sa, "set", set);
    a.logout(sa);
    pump(&mut a, &mut b);

    let sb = b.login("bob@x", "phone");
    let get = Call::VCard(vcard::Call::Get {
        of: Some(j("alice@x")),
    });
    let got = request(&mut b, &mut a, sb, "get", get);
    let answer = got
        .iter()
        .find_map(|s| match s {
            Stanza::Answer {
                request,
                answer: Answer::VCard(card),
            } if *request == req("get") => Some(card.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no vCard answer: {got:?}"));
    assert_eq!(answer.of, j("alice@x"));
    assert_eq!(answer.xml.as_deref(), Some(card));
    assert!(!a.engine.serves(&j("bob@x")), "bob stays served by b alone");

    // A user with no account is answered as on one engine.
    let none = Call::VCard(vcard::Call::Get {
        of: Some(j("alice2@x")),
    });
    let got = request(&mut b, &mut a, sb, "none", none);
    assert_eq!(error_for(&got, "none"), ErrorCondition::ItemNotFound);
}

#[test]
fn pep_items_of_another_engines_user_follow_the_owners_access_model() {
    let (mut a, mut b) = pair();
    let sa = a.login("alice@x", "pc");
    let sb = b.login("bob@x", "phone");
    pump(&mut a, &mut b);
    let mood = "<mood xmlns='http://jabber.org/protocol/mood'><happy/></mood>";
    request(
        &mut a,
        &mut b,
        sa,
        "p",
        publish(MOOD, "m1", mood, AccessModel::Presence),
    );

    // Bob receives no presence of alice's: the presence access model refuses him, on her engine.
    let got = request(&mut b, &mut a, sb, "r1", items_of("alice@x", MOOD));
    assert_eq!(error_for(&got, "r1"), ErrorCondition::Forbidden);

    mutual(&mut a, &mut b, sa, sb);
    let got = request(&mut b, &mut a, sb, "r2", items_of("alice@x", MOOD));
    let items = got
        .iter()
        .find_map(|s| match s {
            Stanza::Answer {
                answer: Answer::Pep(pep::Answer::Items { owner, items, .. }),
                ..
            } => Some((owner.clone(), items.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no items: {got:?}"));
    assert_eq!(items.0, j("alice@x"));
    assert_eq!(items.1.len(), 1);
    assert_eq!(items.1[0].payload, mood);

    let got = request(
        &mut b,
        &mut a,
        sb,
        "r3",
        items_of("alice@x", "no-such-node"),
    );
    assert_eq!(error_for(&got, "r3"), ErrorCondition::ItemNotFound);
}

#[test]
fn a_subscriber_on_another_engine_gets_the_last_item_then_every_publish() {
    let (mut a, mut b) = pair();
    let sa = a.login("alice@x", "pc");
    let sb = b.login("bob@x", "phone");
    pump(&mut a, &mut b);
    request(
        &mut a,
        &mut b,
        sa,
        "p1",
        publish("news", "n1", "<n>1</n>", AccessModel::Open),
    );
    let subscribe = Call::Pep(pep::Call::Subscribe {
        owner: j("alice@x"),
        node: "news".into(),
    });
    let got = request(&mut b, &mut a, sb, "s", subscribe);
    let answered = got.iter().position(|s| {
        matches!(
            s,
            Stanza::Answer {
                answer: Answer::Pep(pep::Answer::Subscribed { .. }),
                ..
            }
        )
    });
    let evented = got
        .iter()
        .position(|s| matches!(s, Stanza::Push(Push::Pep(_))));
    assert!(
        matches!((answered, evented), (Some(x), Some(y)) if x < y),
        "the answer, then the last item: {got:?}"
    );
    assert_eq!(item_ids(&pep_events(&got)[0]), ["n1"]);

    request(
        &mut a,
        &mut b,
        sa,
        "p2",
        publish("news", "n2", "<n>2</n>", AccessModel::Open),
    );
    let heard = pep_events(&b.take(sb));
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_eq!(heard[0].owner, j("alice@x"));
    assert_eq!(item_ids(&heard[0]), ["n2"]);

    let unsubscribe = Call::Pep(pep::Call::Unsubscribe {
        owner: j("alice@x"),
        node: "news".into(),
    });
    let got = request(&mut b, &mut a, sb, "u", unsubscribe);
    assert!(got.iter().any(|s| matches!(
        s,
        Stanza::Answer {
            answer: Answer::Done,
            ..
        }
    )));
    request(
        &mut a,
        &mut b,
        sa,
        "p3",
        publish("news", "n3", "<n>3</n>", AccessModel::Open),
    );
    assert!(pep_events(&b.take(sb)).is_empty(), "unsubscribed");
}

#[test]
fn a_contact_on_another_engine_hears_of_the_nodes_its_client_asked_for() {
    let (mut a, mut b) = pair();
    let sa = a.login("alice@x", "pc");
    let sb = b.login("bob@x", "phone");
    let sb2 = b.login("bob@x", "desk");
    pump(&mut a, &mut b);
    mutual(&mut a, &mut b, sa, sb);
    let mood = "<mood xmlns='http://jabber.org/protocol/mood'><sad/></mood>";
    request(
        &mut a,
        &mut b,
        sa,
        "p1",
        publish(MOOD, "m1", mood, AccessModel::Presence),
    );
    b.clear();

    // The phone's client names the mood node: it gets alice's last mood from her engine.
    b.input(Input::Interests {
        session: sb,
        notify: vec![MOOD.into()],
    });
    pump(&mut b, &mut a);
    let got = pep_events(&b.take(sb));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].owner, j("alice@x"));
    assert_eq!(item_ids(&got[0]), ["m1"]);

    // A new mood reaches the interested session only.
    request(
        &mut a,
        &mut b,
        sa,
        "p2",
        publish(MOOD, "m2", mood, AccessModel::Presence),
    );
    let got = pep_events(&b.take(sb));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(item_ids(&got[0]), ["m2"]);
    assert!(pep_events(&b.take(sb2)).is_empty(), "the desk did not ask");

    // Once bob stops receiving her presence, he hears nothing more.
    a.subscribe(sa, "bob@x", SubscriptionAction::Unsubscribed);
    pump(&mut a, &mut b);
    b.clear();
    request(
        &mut a,
        &mut b,
        sa,
        "p3",
        publish(MOOD, "m3", mood, AccessModel::Presence),
    );
    assert!(pep_events(&b.take(sb)).is_empty());
}
