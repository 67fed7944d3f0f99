//! The roster (RFC 6121 §2): get, set and remove, served by the engine.

use presence_core::BareJid;
use presence_core::feature::{Call, roster};
use presence_core::roster::{ItemDetails, RosterChange, RosterItem};
use presence_core::stanza::ErrorCondition;
use xmpp_codec::{Element, IqType};

use super::{Feature, FromClient, Iq};

/// `jabber:iq:roster`.
pub const NS_ROSTER: &str = "jabber:iq:roster";
/// The stream feature of roster versioning (RFC 6121 §2.6.1).
pub const NS_ROSTERVER: &str = "urn:xmpp:features:rosterver";
/// The stream feature of subscription pre-approval (RFC 6121 §3.4.1).
pub const NS_PRE_APPROVAL: &str = "urn:xmpp:features:pre-approval";

/// What the roster adds to the stream features of a bound client's stream.
pub fn stream_features() -> Vec<Element> {
    vec![
        Element::new(NS_ROSTERVER, "ver"),
        Element::new(NS_PRE_APPROVAL, "sub"),
    ]
}

/// The registry's entry.
pub const FEATURE: Feature = Feature {
    name: "roster",
    disco: &[NS_ROSTER],
    payloads: &[(NS_ROSTER, "query")],
    iq,
};

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    if !iq.for_own_account() {
        return None;
    }
    Some(match iq.iq_type {
        IqType::Get => iq.call(Call::Roster(roster::Call::Get {
            // A version this server never issued (not a number; `''` for "no cache") is simply not current.
            known: iq.payload.attr("ver").and_then(|v| v.parse().ok()),
        })),
        _ => set(iq),
    })
}

fn set(iq: &Iq<'_>) -> FromClient {
    let mut items = iq.payload.elements().filter(|e| e.is(NS_ROSTER, "item"));
    let (Some(item), None) = (items.next(), items.next()) else {
        return iq.error(
            ErrorCondition::BadRequest,
            Some("a roster set carries exactly one item"),
        );
    };
    let Some(Ok(jid)) = item.attr("jid").map(BareJid::new) else {
        return iq.error(
            ErrorCondition::BadRequest,
            Some("the item's 'jid' is missing or not a bare JID"),
        );
    };
    if item.attr("subscription") == Some("remove") {
        return iq.call(Call::Roster(roster::Call::Remove { jid }));
    }
    let details = ItemDetails {
        name: item
            .attr("name")
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        groups: item
            .elements()
            .filter(|g| g.is(NS_ROSTER, "group"))
            .map(|g| g.text())
            .collect(),
    };
    iq.call(Call::Roster(roster::Call::Set { jid, details }))
}

fn item(item: &RosterItem) -> Element {
    let mut el = Element::new(NS_ROSTER, "item")
        .with_attr("jid", item.jid.as_str())
        .with_attr("subscription", item.subscription.attr().as_str());
    if let Some(n) = &item.details.name {
        el = el.with_attr("name", n);
    }
    if item.subscription.ask() {
        el = el.with_attr("ask", "subscribe");
    }
    if item.subscription.approved() {
        el = el.with_attr("approved", "true");
    }
    for g in &item.details.groups {
        el = el.with_child(Element::new(NS_ROSTER, "group").with_text(g));
    }
    el
}

/// The `<query/>` of a roster result; none when the client's cached version is current (RFC 6121 §2.6.3).
pub fn answer(answer: &roster::Answer) -> Option<Element> {
    let mut q = Element::new(NS_ROSTER, "query").with_attr("ver", answer.version.to_string());
    for i in answer.items.as_ref()? {
        q = q.with_child(item(i));
    }
    Some(q)
}

/// The `<query/>` of a roster push.
pub fn push(push: &roster::Push) -> Element {
    let item = match &push.change {
        RosterChange::Updated(i) => item(i),
        RosterChange::Removed(j) => Element::new(NS_ROSTER, "item")
            .with_attr("jid", j.as_str())
            .with_attr("subscription", "remove"),
    };
    Element::new(NS_ROSTER, "query")
        .with_attr("ver", push.version.to_string())
        .with_child(item)
}
