//! Private XML storage (XEP-0049): one element per namespace, kept for the user's own sessions only.

use presence_core::feature::{Call, private};
use presence_core::stanza::ErrorCondition;
use xmpp_codec::{Element, IqType, ns};

use super::{Feature, FromClient, Iq, xml};

/// XEP-0049.
pub const NS_PRIVATE: &str = "jabber:iq:private";

/// The registry's entry. XEP-0049 has no disco#info feature of its own; clients just try it.
pub const FEATURE: Feature = Feature {
    name: "private",
    disco: &[],
    payloads: &[(NS_PRIVATE, "query")],
    iq,
};

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    // XEP-0049 §3: another user's private data is forbidden, whoever asks.
    if !iq.for_own_account() {
        return Some(iq.error(
            ErrorCondition::Forbidden,
            Some("private data belongs to its own user"),
        ));
    }
    let mut children = iq.payload.elements();
    let (Some(child), None) = (children.next(), children.next()) else {
        return Some(iq.error(
            ErrorCondition::BadRequest,
            Some("the query carries exactly one element"),
        ));
    };
    // §3: the namespaces of the protocol itself cannot be used for storage.
    if [NS_PRIVATE, ns::CLIENT, "jabber:server"].contains(&child.ns.as_str()) || child.ns.is_empty()
    {
        return Some(iq.error(
            ErrorCondition::NotAcceptable,
            Some("that namespace cannot be stored"),
        ));
    }
    let call = match iq.iq_type {
        IqType::Get => private::Call::Get {
            namespace: child.ns.to_string(),
            element: child.name.to_string(),
        },
        _ => private::Call::Set {
            namespace: child.ns.to_string(),
            xml: xml::to_text(child),
        },
    };
    Some(iq.call(Call::Private(call)))
}

/// The `<query/>` of a get's result: the stored element, or an empty one of the name asked for.
pub fn answer(answer: &private::Answer) -> Element {
    let stored = answer.xml.as_deref().and_then(xml::from_text);
    let el = stored.unwrap_or_else(|| Element::new(&answer.namespace, &answer.element));
    Element::new(NS_PRIVATE, "query").with_child(el)
}
