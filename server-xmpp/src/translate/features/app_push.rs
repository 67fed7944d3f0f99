//! Push notifications (XEP-0357): a client's `<enable/>` and `<disable/>` become registrations in the engine,
//! and the engine's notifications become the pubsub publish an app server reads.

use presence_core::Jid;
use presence_core::feature::Call;
use presence_core::feature::app_push::{self, Notification};
use presence_core::stanza::ErrorCondition;
use xmpp_codec::{Element, IqType, ns};

use super::xml::{from_text, to_text};
use super::{Feature, FromClient, Iq, pep::NS_PUBSUB};
use crate::translate::Outgoing;

/// XEP-0357.
pub const NS_PUSH: &str = "urn:xmpp:push:0";
/// XEP-0004 data forms.
const NS_DATA: &str = "jabber:x:data";
/// The form type of a notification's summary (XEP-0357 §7).
const SUMMARY: &str = "urn:xmpp:push:summary";

/// The registry's entry. Also listed on every account's disco#info, where clients look for it (XEP-0357 §5).
pub const FEATURE: Feature = Feature {
    name: "push",
    disco: &[NS_PUSH],
    payloads: &[(NS_PUSH, "enable"), (NS_PUSH, "disable")],
    iq,
};

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    if iq.iq_type != IqType::Set || !iq.for_own_account() {
        return None;
    }
    let p = iq.payload;
    let Some(service) = p.attr("jid").and_then(|j| Jid::new(j).ok()) else {
        return Some(iq.error(
            ErrorCondition::BadRequest,
            Some("a push registration needs the app server's address in 'jid'"),
        ));
    };
    let node = p.attr("node").filter(|n| !n.is_empty()).map(str::to_owned);
    let call = match p.name.as_str() {
        "enable" => {
            let Some(node) = node else {
                return Some(iq.error(
                    ErrorCondition::BadRequest,
                    Some("enabling push needs a 'node'"),
                ));
            };
            // The form (if any) is what the app server wants back as publish options: a secret, usually.
            let options = p.child(NS_DATA, "x").map(to_text);
            app_push::Call::Enable {
                service,
                node,
                options,
            }
        }
        _ => app_push::Call::Disable { service, node },
    };
    Some(iq.call(Call::AppPush(call)))
}

/// The publish that carries a notification to its app server, from the user's bare address (XEP-0357 §7).
pub fn publish(n: Notification, id: String) -> Outgoing {
    let field = |var: &str, value: String| {
        Element::new(NS_DATA, "field")
            .with_attr("var", var)
            .with_child(Element::new(NS_DATA, "value").with_text(value))
    };
    let mut form = Element::new(NS_DATA, "x")
        .with_attr("type", "form")
        .with_child(field("FORM_TYPE", SUMMARY.to_owned()))
        .with_child(field("message-count", n.count.to_string()));
    if let Some(sender) = n.sender {
        form = form.with_child(field("last-message-sender", sender.to_string()));
    }
    if let Some(body) = n.body {
        form = form.with_child(field("last-message-body", body));
    }
    let item = Element::new(NS_PUBSUB, "item")
        .with_child(Element::new(NS_PUSH, "notification").with_child(form));
    let mut pubsub = Element::new(NS_PUBSUB, "pubsub").with_child(
        Element::new(NS_PUBSUB, "publish")
            .with_attr("node", n.node)
            .with_child(item),
    );
    if let Some(options) = n.options.as_deref().and_then(from_text) {
        pubsub = pubsub.with_child(Element::new(NS_PUBSUB, "publish-options").with_child(options));
    }
    Element::new(ns::CLIENT, "iq")
        .with_attr("type", "set")
        .with_attr("id", id)
        .with_attr("from", n.user.as_str())
        .with_attr("to", n.service.to_string())
        .with_child(pubsub)
        .into()
}
