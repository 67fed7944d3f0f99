//! IQs between clients (RFC 6120 §8.5.3): routed to the addressed session and back; a request that reaches no
//! session, or comes from a blocked sender, is answered with service-unavailable; answers to nobody are dropped.
mod common;

use common::*;
use presence_core::policy::{PolicyEntry, UserPolicy};
use presence_core::stanza::{ErrorAbout, ErrorCondition, IqKind, RoutedIq, Stanza};
use presence_core::{EngineConfig, Input, SessionId};

fn send(h: &mut Harness, from: SessionId, to: &str, id: &str, kind: IqKind) {
    h.input(Input::Iq {
        session: from,
        iq: RoutedIq {
            to: jid(to),
            id: id.into(),
            kind,
            payload: vec!["<ping xmlns='urn:xmpp:ping'/>".into()],
        },
    });
}

#[test]
fn a_request_and_its_answer_travel_between_full_addresses() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    h.login("bob@x", "desk");
    h.clear();
    send(&mut h, a, "bob@x/phone", "p1", IqKind::Get);
    let got = h.take(b);
    assert!(
        matches!(&got[..], [Stanza::Iq { from, iq }] if from.to_string() == "alice@x/pc"
            && iq.id == "p1" && iq.payload == ["<ping xmlns='urn:xmpp:ping'/>"]),
        "{got:?}"
    );
    send(&mut h, b, "alice@x/pc", "p1", IqKind::Result);
    let got = h.take(a);
    assert!(
        matches!(&got[..], [Stanza::Iq { iq, .. }] if iq.kind == IqKind::Result && iq.id == "p1"),
        "{got:?}"
    );
}

#[test]
fn a_request_to_no_session_or_from_a_blocked_sender_is_service_unavailable() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    h.clear();
    let unavailable = |got: Vec<Stanza>, id: &str| {
        matches!(&got[..], [Stanza::Error(e)] if e.condition == ErrorCondition::ServiceUnavailable
            && matches!(&e.about, ErrorAbout::Iq { id: i, .. } if i == id))
    };
    send(&mut h, a, "bob@x/gone", "g", IqKind::Get);
    assert!(unavailable(h.take(a), "g"));
    send(&mut h, a, "carol@x/pc", "c", IqKind::Set);
    assert!(unavailable(h.take(a), "c"), "an offline user");
    send(&mut h, a, "bob@x/gone", "r", IqKind::Result);
    assert!(
        h.take(a).is_empty(),
        "an answer to nobody is dropped, never answered"
    );

    h.input(Input::SetPolicy {
        user: j("bob@x"),
        policy: UserPolicy {
            block: vec![PolicyEntry::Jid(j("alice@x"))],
            ..UserPolicy::default()
        },
    });
    h.clear();
    send(&mut h, a, "bob@x/phone", "b", IqKind::Get);
    assert!(unavailable(h.take(a), "b"));
    assert!(h.take(b).is_empty(), "nothing reaches the blocking user");
}

#[test]
fn a_request_to_another_domain_goes_to_the_router() {
    let mut h = Harness::with_users(EngineConfig::for_domain("x"), &["alice@x"]);
    let a = h.login("alice@x", "pc");
    h.clear();
    send(&mut h, a, "carol@elsewhere.example/pc", "r", IqKind::Get);
    assert!(matches!(&h.routed[..], [Stanza::Iq { iq, .. }] if iq.id == "r"));
}
