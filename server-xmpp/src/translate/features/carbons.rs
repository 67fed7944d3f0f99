//! Message carbons (XEP-0280): enable and disable, and the copies wrapped as the XEP shows them.

use presence_core::FullJid;
use presence_core::feature::Call;
use presence_core::feature::carbons::{self, Copy, Direction};
use xmpp_codec::{Element, IqType, ns};

use super::{Feature, FromClient, Iq};
use crate::translate::{Outgoing, message_element};

/// XEP-0280.
pub const NS_CARBONS: &str = "urn:xmpp:carbons:2";
/// XEP-0297, the wrapper of a copied stanza.
pub const NS_FORWARD: &str = "urn:xmpp:forward:0";

/// The registry's entry.
pub const FEATURE: Feature = Feature {
    name: "carbons",
    disco: &[NS_CARBONS],
    payloads: &[(NS_CARBONS, "enable"), (NS_CARBONS, "disable")],
    iq,
};

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    if iq.iq_type != IqType::Set || !iq.for_own_account() {
        return None;
    }
    let call = match iq.payload.name.as_str() {
        "enable" => carbons::Call::Enable,
        _ => carbons::Call::Disable,
    };
    Some(iq.call(Call::Carbons(call)))
}

/// A copy as the receiving session reads it: from the user's bare address, the original message forwarded inside
/// `<sent/>` or `<received/>` (XEP-0280 §7, §8). The original's extensions become elements again, since they sit
/// inside the wrapper rather than at the top of the stanza.
pub fn copy(copy: Copy, me: &FullJid) -> Outgoing {
    let Copy {
        direction,
        from,
        to,
        message,
    } = copy;
    let inner = message_element(&from, &to, message, me.bare().domain());
    let kind = match direction {
        Direction::Sent => "sent",
        Direction::Received => "received",
    };
    let mut outer = Element::new(ns::CLIENT, "message")
        .with_attr("from", me.bare().as_str())
        .with_attr("to", me.to_string());
    if let Some(t) = inner.attr("type") {
        outer = outer.with_attr("type", t.to_owned());
    }
    outer
        .with_child(
            Element::new(NS_CARBONS, kind)
                .with_child(Element::new(NS_FORWARD, "forwarded").with_child(inner)),
        )
        .into()
}
