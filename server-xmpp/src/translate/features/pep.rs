//! Personal Eventing Protocol (XEP-0163): the XEP-0060 requests a client sends to an account's bare address,
//! read into `pep::Call`s, and the engine's answers and notifications rendered back as pubsub XML.
//!
//! Served: publish (with publish-options as preconditions, auto-creating the node), retrieve items (all, by id,
//! `max_items`), retract, subscribe and unsubscribe, create (with a configure form), delete, and node
//! configuration get and set, for the `presence`, `open` and `whitelist` access models.

use presence_core::BareJid;
use presence_core::feature::Call;
use presence_core::feature::pep::{self, AccessModel, Change, MaxItems, Options};
use presence_core::stanza::ErrorCondition;
use xmpp_codec::{Element, IqType, ns};

use super::{Feature, FromClient, Iq, avatar, xml};

/// XEP-0060.
pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
/// XEP-0060 owner use cases.
pub const NS_PUBSUB_OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
/// XEP-0060 notifications.
pub const NS_PUBSUB_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
/// XEP-0060 application-specific error conditions.
pub const NS_PUBSUB_ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";
/// XEP-0004 data forms.
const NS_DATA: &str = "jabber:x:data";
const FORM_NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";

/// What the account's disco#info says about PEP beside these features (XEP-0163 §6.1).
pub const IDENTITY: (&str, &str) = ("pubsub", "pep");

/// The registry's entry. The features are those of the service on each account (XEP-0163 §6.1), listed for the
/// server too, as Prosody does, since clients look there to learn whether their server offers PEP.
pub const FEATURE: Feature = Feature {
    name: "pep",
    disco: &[
        "http://jabber.org/protocol/pubsub#access-open",
        "http://jabber.org/protocol/pubsub#access-presence",
        "http://jabber.org/protocol/pubsub#access-whitelist",
        "http://jabber.org/protocol/pubsub#auto-create",
        "http://jabber.org/protocol/pubsub#config-node",
        "http://jabber.org/protocol/pubsub#create-and-configure",
        "http://jabber.org/protocol/pubsub#create-nodes",
        "http://jabber.org/protocol/pubsub#delete-nodes",
        "http://jabber.org/protocol/pubsub#item-ids",
        "http://jabber.org/protocol/pubsub#persistent-items",
        "http://jabber.org/protocol/pubsub#publish",
        "http://jabber.org/protocol/pubsub#publish-options",
        "http://jabber.org/protocol/pubsub#retract-items",
        "http://jabber.org/protocol/pubsub#retrieve-items",
        "http://jabber.org/protocol/pubsub#subscribe",
    ],
    payloads: &[(NS_PUBSUB, "pubsub"), (NS_PUBSUB_OWNER, "pubsub")],
    iq,
};

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    // The service lives on accounts of this domain; anything else (the domain, a full JID, another server) is
    // not ours to answer.
    let owner = if iq.for_own_account() {
        None
    } else if iq.for_any_account() {
        iq.to.map(|t| t.bare().clone())
    } else {
        return None;
    };
    let mut children = iq.payload.elements();
    let Some(action) = children.next() else {
        return Some(bad(iq, "the pubsub element names no action"));
    };
    let node = action.attr("node").unwrap_or_default().to_owned();
    let own = owner.is_none();
    let set = iq.iq_type == IqType::Set;
    let call = match (iq.payload.ns.as_str(), action.name.as_str(), set) {
        (NS_PUBSUB, "items", false) => {
            let ids = action
                .elements()
                .filter(|e| e.is(NS_PUBSUB, "item"))
                .filter_map(|e| e.attr("id").map(str::to_owned))
                .collect();
            let max = match action.attr("max_items").map(str::parse::<usize>) {
                None => None,
                Some(Ok(n)) => Some(n),
                Some(Err(_)) => return Some(bad(iq, "max_items is not a number")),
            };
            pep::Call::Items {
                owner,
                node,
                ids,
                max,
            }
        }
        (NS_PUBSUB, "subscribe" | "unsubscribe", true) => {
            // XEP-0060 §6.1.3.1: one subscribes one's own address.
            let me = iq.me.jid.bare();
            let jid = action
                .attr("jid")
                .and_then(|j| presence_core::Jid::new(j).ok());
            if jid.as_ref().is_none_or(|j| j.bare() != me) {
                return Some(bad(iq, "the jid must be your own"));
            }
            let owner = owner.unwrap_or_else(|| me.clone());
            if action.name == "subscribe" {
                pep::Call::Subscribe { owner, node }
            } else {
                pep::Call::Unsubscribe { owner, node }
            }
        }
        _ if !own && set => {
            return Some(iq.error(
                ErrorCondition::Forbidden,
                Some("only the owner changes their nodes"),
            ));
        }
        (NS_PUBSUB, "publish", true) => {
            let items: Vec<&Element> = action
                .elements()
                .filter(|e| e.is(NS_PUBSUB, "item"))
                .collect();
            let [item] = items.as_slice() else {
                return Some(bad(iq, "a publish carries exactly one item"));
            };
            let mut payloads = item.elements();
            let (Some(payload), None) = (payloads.next(), payloads.next()) else {
                return Some(bad(iq, "an item carries exactly one payload"));
            };
            let options = iq
                .payload
                .child(NS_PUBSUB, "publish-options")
                .map(form_options)
                .transpose();
            let options = match options {
                Ok(o) => o.unwrap_or_default(),
                Err(text) => return Some(iq.error(ErrorCondition::NotAcceptable, Some(&text))),
            };
            // An avatar's metadata is read for the engine to convert (XEP-0398).
            let avatar = (node == avatar::NS_METADATA)
                .then(|| avatar::metadata(payload))
                .flatten();
            pep::Call::Publish {
                node,
                item: item.attr("id").filter(|i| !i.is_empty()).map(str::to_owned),
                payload: xml::to_text(payload),
                options,
                avatar,
            }
        }
        (NS_PUBSUB, "retract", true) => pep::Call::Retract {
            node,
            ids: action
                .elements()
                .filter(|e| e.is(NS_PUBSUB, "item"))
                .filter_map(|e| e.attr("id").map(str::to_owned))
                .collect(),
            notify: matches!(action.attr("notify"), Some("1" | "true")),
        },
        (NS_PUBSUB, "create", true) => {
            let options = iq
                .payload
                .child(NS_PUBSUB, "configure")
                .map(form_options)
                .transpose();
            match options {
                Ok(o) => pep::Call::Create {
                    node,
                    options: o.unwrap_or_default(),
                },
                Err(text) => return Some(iq.error(ErrorCondition::NotAcceptable, Some(&text))),
            }
        }
        (NS_PUBSUB_OWNER, "delete", true) => pep::Call::Delete { node },
        (NS_PUBSUB_OWNER, "configure", false) if own => pep::Call::GetConfig { node },
        (NS_PUBSUB_OWNER, "configure", true) => match form_options(action) {
            Ok(options) => pep::Call::SetConfig { node, options },
            Err(text) => return Some(iq.error(ErrorCondition::NotAcceptable, Some(&text))),
        },
        (NS_PUBSUB_OWNER, "configure", false) => {
            return Some(iq.error(
                ErrorCondition::Forbidden,
                Some("only the owner sees their nodes' configuration"),
            ));
        }
        // Subscription options, affiliations, default configuration, purging …: not served.
        _ => {
            return Some(iq.error(
                ErrorCondition::ServiceUnavailable,
                Some("that pubsub request is not supported here"),
            ));
        }
    };
    Some(iq.call(Call::Pep(call)))
}

fn bad(iq: &Iq<'_>, text: &str) -> FromClient {
    iq.error(ErrorCondition::BadRequest, Some(text))
}

/// The configuration fields of the data form inside `parent` (`<publish-options/>`, `<configure/>`). Fields
/// this service does not keep are ignored, as clients send many (`pubsub#send_last_published_item`,
/// `pubsub#notify_retract` …) that change nothing here; a value it cannot serve is refused.
fn form_options(parent: &Element) -> Result<Options, String> {
    let mut options = Options::default();
    let Some(form) = parent.child(NS_DATA, "x") else {
        return Ok(options);
    };
    for field in form.elements().filter(|e| e.is(NS_DATA, "field")) {
        let Some(var) = field.attr("var") else {
            continue;
        };
        let value = field
            .child(NS_DATA, "value")
            .map(|v| v.text())
            .unwrap_or_default();
        let value = value.trim();
        match var {
            "pubsub#access_model" => {
                options.access_model = Some(
                    AccessModel::parse(value)
                        .ok_or_else(|| format!("access model '{value}' is not supported"))?,
                )
            }
            "pubsub#persist_items" => {
                options.persist_items = Some(match value {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(format!("'{value}' is not a boolean")),
                })
            }
            "pubsub#max_items" => {
                options.max_items = Some(
                    MaxItems::parse(value)
                        .ok_or_else(|| format!("max_items '{value}' is not a number or 'max'"))?,
                )
            }
            _ => {}
        }
    }
    Ok(options)
}

/// The result's payload.
pub fn answer(answer: &pep::Answer) -> Element {
    match answer {
        pep::Answer::Published { node, item } => Element::new(NS_PUBSUB, "pubsub").with_child(
            Element::new(NS_PUBSUB, "publish")
                .with_attr("node", node)
                .with_child(Element::new(NS_PUBSUB, "item").with_attr("id", item)),
        ),
        pep::Answer::Items { node, items, .. } => {
            let mut el = Element::new(NS_PUBSUB, "items").with_attr("node", node);
            for i in items {
                el = el.with_child(item(NS_PUBSUB, i));
            }
            Element::new(NS_PUBSUB, "pubsub").with_child(el)
        }
        pep::Answer::Config { node, config, cap } => {
            let field = |var: &str, kind: &str, value: String| {
                Element::new(NS_DATA, "field")
                    .with_attr("var", var)
                    .with_attr("type", kind)
                    .with_child(Element::new(NS_DATA, "value").with_text(value))
            };
            let mut access = field(
                "pubsub#access_model",
                "list-single",
                config.access_model.as_str().to_owned(),
            );
            for m in [
                AccessModel::Presence,
                AccessModel::Open,
                AccessModel::Whitelist,
            ] {
                access = access.with_child(
                    Element::new(NS_DATA, "option")
                        .with_child(Element::new(NS_DATA, "value").with_text(m.as_str())),
                );
            }
            let form = Element::new(NS_DATA, "x")
                .with_attr("type", "form")
                .with_child(field("FORM_TYPE", "hidden", FORM_NODE_CONFIG.to_owned()))
                .with_child(access)
                .with_child(field(
                    "pubsub#persist_items",
                    "boolean",
                    if config.persist_items { "1" } else { "0" }.to_owned(),
                ))
                .with_child(field(
                    "pubsub#max_items",
                    "text-single",
                    // `max` shown as the number it stands for, so a client can compare it.
                    match config.max_items {
                        MaxItems::Max => cap.to_string(),
                        m => m.effective(*cap).to_string(),
                    },
                ));
            Element::new(NS_PUBSUB_OWNER, "pubsub").with_child(
                Element::new(NS_PUBSUB_OWNER, "configure")
                    .with_attr("node", node)
                    .with_child(form),
            )
        }
        pep::Answer::Subscribed { node, jid, .. } => Element::new(NS_PUBSUB, "pubsub").with_child(
            Element::new(NS_PUBSUB, "subscription")
                .with_attr("node", node)
                .with_attr("jid", jid.as_str())
                .with_attr("subscription", "subscribed"),
        ),
    }
}

/// Who a result comes from: the owner whose nodes were read or subscribed to, when not the caller.
pub fn answer_from<'a>(answer: &'a pep::Answer, me: &BareJid) -> Option<&'a BareJid> {
    match answer {
        pep::Answer::Items { owner, .. } | pep::Answer::Subscribed { owner, .. } => {
            Some(owner).filter(|o| *o != me)
        }
        _ => None,
    }
}

fn item(namespace: &str, i: &pep::Item) -> Element {
    let mut el = Element::new(namespace, "item").with_attr("id", &i.id);
    // A payload that no longer parses (a damaged record) is left out rather than sent broken.
    if let Some(payload) = xml::from_text(&i.payload) {
        el = el.with_child(payload);
    }
    el
}

/// A notification (XEP-0060 §7.1.2.1): a headline from the owner's bare address.
pub fn event(event: pep::Event, me: &presence_core::FullJid) -> super::super::Outgoing {
    let what = match &event.change {
        Change::Items(items) => {
            let mut el = Element::new(NS_PUBSUB_EVENT, "items").with_attr("node", &event.node);
            for i in items {
                el = el.with_child(item(NS_PUBSUB_EVENT, i));
            }
            el
        }
        Change::Retracted(ids) => {
            let mut el = Element::new(NS_PUBSUB_EVENT, "items").with_attr("node", &event.node);
            for id in ids {
                el = el.with_child(Element::new(NS_PUBSUB_EVENT, "retract").with_attr("id", id));
            }
            el
        }
        Change::Deleted => Element::new(NS_PUBSUB_EVENT, "delete").with_attr("node", &event.node),
    };
    Element::new(ns::CLIENT, "message")
        .with_attr("type", "headline")
        .with_attr("from", event.owner.as_str())
        .with_attr("to", me.to_string())
        .with_child(Element::new(NS_PUBSUB_EVENT, "event").with_child(what))
        .into()
}
