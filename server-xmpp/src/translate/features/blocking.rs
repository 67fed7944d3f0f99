//! The blocking command (XEP-0191), served by the engine.

use presence_core::Jid;
use presence_core::feature::{Call, blocking};
use presence_core::policy::PolicyEntry;
use presence_core::stanza::ErrorCondition;
use xmpp_codec::{Element, IqType};

use super::{Feature, FromClient, Iq};

/// XEP-0191.
pub const NS_BLOCKING: &str = "urn:xmpp:blocking";

/// The registry's entry.
pub const FEATURE: Feature = Feature {
    name: "blocking",
    disco: &[NS_BLOCKING],
    payloads: &[
        (NS_BLOCKING, "blocklist"),
        (NS_BLOCKING, "block"),
        (NS_BLOCKING, "unblock"),
    ],
    iq,
};

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    if !iq.for_own_account() {
        return None;
    }
    Some(match (iq.payload.name.as_str(), iq.iq_type) {
        ("blocklist", IqType::Get) => iq.call(Call::Blocking(blocking::Call::Get)),
        ("block" | "unblock", IqType::Set) => set(iq),
        _ => iq.error(ErrorCondition::BadRequest, None),
    })
}

/// A `<block/>` or `<unblock/>` set (XEP-0191 §3.3, §3.4).
fn set(iq: &Iq<'_>) -> FromClient {
    let mut items = Vec::new();
    for item in iq.payload.elements().filter(|e| e.is(NS_BLOCKING, "item")) {
        let entry = match item.attr("jid").map(Jid::new) {
            Some(Ok(Jid::Bare(b))) if b.local().is_none() => {
                PolicyEntry::Domain(b.domain().to_owned())
            }
            Some(Ok(Jid::Bare(b))) => PolicyEntry::Jid(b),
            // The policy lists hold addresses and domains only (DESIGN §3); widening a resource to the whole
            // account would block more than the user asked for.
            Some(Ok(Jid::Full(_))) => {
                return iq.error(
                    ErrorCondition::BadRequest,
                    Some("only bare JIDs and domains can be blocked"),
                );
            }
            _ => {
                return iq.error(
                    ErrorCondition::BadRequest,
                    Some("an item's 'jid' is missing or not a valid JID"),
                );
            }
        };
        items.push(entry);
    }
    if iq.payload.name == "unblock" {
        // An unblock with no items unblocks everything (XEP-0191 §3.4).
        return iq.call(Call::Blocking(blocking::Call::Unblock(items)));
    }
    if items.is_empty() {
        return iq.error(
            ErrorCondition::BadRequest,
            Some("a block carries at least one item"),
        );
    }
    iq.call(Call::Blocking(blocking::Call::Block(items)))
}

/// An element (`blocklist`, `block`, `unblock`) listing `entries`.
fn items(name: &str, entries: &[PolicyEntry]) -> Element {
    let mut el = Element::new(NS_BLOCKING, name);
    for e in entries {
        let jid = match e {
            PolicyEntry::Jid(j) => j.as_str(),
            PolicyEntry::Domain(d) => d.as_str(),
        };
        el = el.with_child(Element::new(NS_BLOCKING, "item").with_attr("jid", jid));
    }
    el
}

/// The `<blocklist/>` of a result.
pub fn answer(answer: &blocking::Answer) -> Element {
    items("blocklist", &answer.items)
}

/// The `<block/>` or `<unblock/>` of a push.
pub fn push(push: &blocking::Push) -> Element {
    match push {
        blocking::Push::Blocked(list) => items("block", list),
        blocking::Push::Unblocked(list) => items("unblock", list),
        blocking::Push::UnblockedAll => items("unblock", &[]),
    }
}
