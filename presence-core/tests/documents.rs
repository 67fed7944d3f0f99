//! Account features that keep documents: private XML storage (XEP-0049) and vCards (XEP-0054), stored through the
//! store, read back after the user is evicted, within the configured limits.
mod common;

use common::*;
use presence_core::feature::{Answer, Call, private, vcard};
use presence_core::stanza::{ErrorCondition, Stanza};
use presence_core::store::DocumentStore;
use presence_core::{EngineConfig, Input, SessionId};

fn call(h: &mut Harness, session: SessionId, id: &str, call: Call) -> Stanza {
    h.take(session);
    h.input(Input::Request {
        session,
        request: req(id),
        call,
    });
    let mut got = h.take(session);
    // Setting a card also settles the avatar (XEP-0398), which the user's presence announces; that is
    // `tests/avatar.rs`'s to check.
    got.retain(|s| !matches!(s, Stanza::Presence { .. }));
    assert_eq!(got.len(), 1, "one answer: {got:?}");
    got.pop().expect("an answer")
}

fn done(id: &str) -> Stanza {
    Stanza::Answer {
        request: req(id),
        answer: Answer::Done,
    }
}

fn error_of(s: &Stanza) -> ErrorCondition {
    match s {
        Stanza::Error(e) => e.condition,
        other => panic!("not an error: {other:?}"),
    }
}

#[test]
fn private_xml_is_kept_per_namespace_and_survives_eviction() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    let a = h.login("alice@x", "pc");
    let get = |ns: &str| {
        Call::Private(private::Call::Get {
            namespace: ns.into(),
            element: "storage".into(),
        })
    };
    assert_eq!(
        call(&mut h, a, "g0", get("storage:bookmarks")),
        Stanza::Answer {
            request: req("g0"),
            answer: Answer::Private(private::Answer {
                namespace: "storage:bookmarks".into(),
                element: "storage".into(),
                xml: None
            })
        },
        "nothing stored yet"
    );
    let xml = "<storage xmlns='storage:bookmarks'><conference jid='r@c.x'/></storage>";
    let set = Call::Private(private::Call::Set {
        namespace: "storage:bookmarks".into(),
        xml: xml.into(),
    });
    assert_eq!(call(&mut h, a, "s1", set), done("s1"));
    assert_eq!(
        h.store.documents(&j("alice@x")).unwrap().len(),
        1,
        "written through the store"
    );
    h.logout(a);
    let a = h.login("alice@x", "phone");
    match call(&mut h, a, "g1", get("storage:bookmarks")) {
        Stanza::Answer {
            answer: Answer::Private(p),
            ..
        } => assert_eq!(p.xml.as_deref(), Some(xml)),
        other => panic!("{other:?}"),
    }
    match call(&mut h, a, "g2", get("other:ns")) {
        Stanza::Answer {
            answer: Answer::Private(p),
            ..
        } => assert_eq!(p.xml, None, "one namespace is not another"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn anyone_reads_a_local_users_vcard_and_only_the_owner_sets_it() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let card = "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>";
    let set = Call::VCard(vcard::Call::Set {
        xml: card.into(),
        photo: vcard::SetPhoto::None,
    });
    assert_eq!(call(&mut h, a, "s", set), done("s"));
    h.logout(a);

    // Bob asks for Alice's card while she is offline and not in memory: the engine loads her for it.
    let b = h.login("bob@x", "pc");
    let get = |of: Option<&str>| Call::VCard(vcard::Call::Get { of: of.map(j) });
    assert_eq!(
        call(&mut h, b, "g", get(Some("alice@x"))),
        Stanza::Answer {
            request: req("g"),
            answer: Answer::VCard(vcard::Answer {
                of: j("alice@x"),
                xml: Some(card.into()),
                photo: vcard::CardPhoto::Without,
            })
        }
    );
    assert_eq!(
        call(&mut h, b, "own", get(None)),
        Stanza::Answer {
            request: req("own"),
            answer: Answer::VCard(vcard::Answer {
                of: j("bob@x"),
                xml: None,
                photo: vcard::CardPhoto::AsStored,
            })
        },
        "a user who never set a card has an empty one"
    );
    assert_eq!(
        error_of(&call(&mut h, b, "n", get(Some("nobody@x")))),
        ErrorCondition::ItemNotFound
    );
    assert_eq!(
        error_of(&call(&mut h, b, "r", get(Some("carol@elsewhere.example")))),
        ErrorCondition::ServiceUnavailable
    );
}

#[test]
fn documents_over_the_limits_are_refused_and_nothing_is_stored() {
    let mut config = EngineConfig::for_domain("x");
    config.limits.max_document_bytes = 64;
    config.limits.max_documents_per_user = 2;
    let mut h = Harness::with_users(config, &["alice@x"]);
    let a = h.login("alice@x", "pc");
    let set = |ns: &str, xml: String| {
        Call::Private(private::Call::Set {
            namespace: ns.into(),
            xml,
        })
    };
    let big = format!("<x xmlns='a'>{}</x>", "y".repeat(64));
    assert_eq!(
        error_of(&call(&mut h, a, "big", set("a", big))),
        ErrorCondition::NotAcceptable
    );
    assert_eq!(
        call(&mut h, a, "1", set("a", "<x xmlns='a'/>".into())),
        done("1")
    );
    assert_eq!(
        call(&mut h, a, "2", set("b", "<x xmlns='b'/>".into())),
        done("2")
    );
    assert_eq!(
        error_of(&call(&mut h, a, "3", set("c", "<x xmlns='c'/>".into()))),
        ErrorCondition::ResourceConstraint
    );
    assert_eq!(
        call(&mut h, a, "4", set("a", "<x xmlns='a'>2</x>".into())),
        done("4"),
        "replacing a kept document is not a new one"
    );
    assert_eq!(h.store.documents(&j("alice@x")).unwrap().len(), 2);
}
