//! Jabber Search (XEP-0055) with data forms (XEP-0004), answered from the user directory: clients find
//! colleagues by name, user id or mail address and add them. The server's own domain is the search service (it
//! lists `jabber:iq:search` in its disco#info), so clients need no separate component address; the feature is
//! on only while a directory is configured ([`super::Features::with_directory`]). Searching reads the directory,
//! so the connection answers it ([`FromClient::Search`]).

use std::sync::Arc;

use presence_core::FullJid;
use presence_core::stanza::ErrorCondition;
use xmpp_codec::{Element, IqType, ns};

use super::{Feature, FromClient, Iq};
use crate::directory::{Directory, SearchHit, SearchQuery};
use crate::translate::iq_error;

/// XEP-0055.
pub const NS_SEARCH: &str = "jabber:iq:search";
/// XEP-0004.
const NS_DATA: &str = "jabber:x:data";

/// The registry's entry.
pub const FEATURE: Feature = Feature {
    name: "search",
    disco: &[NS_SEARCH],
    payloads: &[(NS_SEARCH, "query")],
    iq,
};

/// A submitted search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    /// The IQ's id.
    pub id: String,
    /// Whom it was addressed to (echoed as `from`).
    pub to: Option<String>,
    /// What to look for.
    pub query: SearchQuery,
}

/// The form's fields: (var, label, what they match).
const FIELDS: &[(&str, &str)] = &[
    ("search", "User id, name or mail address contains"),
    ("name", "Name contains"),
    ("mail", "Mail address contains"),
];

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    if !iq.for_domain() {
        return None;
    }
    match iq.iq_type {
        // §3.1 with §4: the form to fill in.
        IqType::Get => Some(iq.result(vec![
            Element::new(NS_SEARCH, "query")
                .with_child(
                    Element::new(NS_SEARCH, "instructions")
                        .with_text("Fill in one or more fields to search the directory."),
                )
                .with_child(form()),
        ])),
        _ => {
            let Some(x) = iq.payload.child(NS_DATA, "x") else {
                return Some(iq.error(
                    ErrorCondition::BadRequest,
                    Some("this service takes data forms only (XEP-0055 §3)"),
                ));
            };
            let value = |var: &str| {
                x.elements()
                    .find(|f| f.is(NS_DATA, "field") && f.attr("var") == Some(var))
                    .and_then(|f| f.child(NS_DATA, "value"))
                    .map(|v| v.text().trim().to_owned())
                    .filter(|v| !v.is_empty())
            };
            let query = SearchQuery {
                text: value("search"),
                name: value("name"),
                mail: value("mail"),
            };
            if query.is_empty() {
                return Some(iq.error(
                    ErrorCondition::NotAcceptable,
                    Some("fill in at least one field"),
                ));
            }
            Some(FromClient::Search(SearchRequest {
                id: iq.id.to_owned(),
                to: iq.stanza.to().map(str::to_owned),
                query,
            }))
        }
    }
}

fn field(var: &str, kind: &str) -> Element {
    Element::new(NS_DATA, "field")
        .with_attr("var", var)
        .with_attr("type", kind)
}

fn form() -> Element {
    let mut x = Element::new(NS_DATA, "x")
        .with_attr("type", "form")
        .with_child(Element::new(NS_DATA, "title").with_text("Directory search"))
        .with_child(
            field("FORM_TYPE", "hidden")
                .with_child(Element::new(NS_DATA, "value").with_text(NS_SEARCH)),
        );
    for (var, label) in FIELDS {
        x = x.with_child(field(var, "text-single").with_attr("label", *label));
    }
    x
}

/// Runs the search against `directory` and renders the result form (§4): one item per user, at most the
/// directory's limit.
pub async fn answer(
    directory: Arc<dyn Directory>,
    me: &FullJid,
    request: SearchRequest,
) -> Element {
    match directory.search(&request.query).await {
        Ok(hits) => {
            let hits: Vec<_> = hits.into_iter().take(directory.search_limit()).collect();
            let mut el = Element::new(ns::CLIENT, "iq")
                .with_attr("type", "result")
                .with_attr("id", &request.id)
                .with_attr("to", me.to_string());
            if let Some(t) = &request.to {
                el = el.with_attr("from", t);
            }
            el.with_child(Element::new(NS_SEARCH, "query").with_child(results(&hits)))
        }
        Err(e) => {
            tracing::warn!(error = %e, "directory search failed");
            iq_error(
                Some(&request.id),
                &me.to_string(),
                request.to.as_deref(),
                ErrorCondition::ServiceUnavailable,
                Some("the directory is not available; try again later"),
            )
        }
    }
}

/// The result form: `jid`, `name`, `mail` and `phone` reported, one item per user.
fn results(hits: &[SearchHit]) -> Element {
    let value = |var: &str, v: &str| {
        Element::new(NS_DATA, "field")
            .with_attr("var", var)
            .with_child(Element::new(NS_DATA, "value").with_text(v))
    };
    let mut reported = Element::new(NS_DATA, "reported");
    for (var, label, kind) in [
        ("jid", "Address", "jid-single"),
        ("name", "Name", "text-single"),
        ("mail", "Mail", "text-single"),
        ("phone", "Phone", "text-single"),
    ] {
        reported = reported.with_child(field(var, kind).with_attr("label", label));
    }
    let mut x = Element::new(NS_DATA, "x")
        .with_attr("type", "result")
        .with_child(
            field("FORM_TYPE", "hidden")
                .with_child(Element::new(NS_DATA, "value").with_text(NS_SEARCH)),
        )
        .with_child(reported);
    for h in hits {
        x = x.with_child(
            Element::new(NS_DATA, "item")
                .with_child(value("jid", h.jid.as_str()))
                .with_child(value("name", h.name.as_deref().unwrap_or("")))
                .with_child(value("mail", h.mail.as_deref().unwrap_or("")))
                .with_child(value("phone", h.phone.as_deref().unwrap_or(""))),
        );
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_report_every_column_and_one_item_per_user() {
        let hits = vec![SearchHit {
            jid: presence_core::BareJid::new("alice@x").expect("valid"),
            name: Some("Alice Liddell".into()),
            mail: None,
            phone: Some("+1 555".into()),
        }];
        let x = results(&hits);
        let items: Vec<_> = x.elements().filter(|e| e.is(NS_DATA, "item")).collect();
        assert_eq!(items.len(), 1);
        let values: Vec<String> = items[0]
            .elements()
            .map(|f| {
                format!(
                    "{}={}",
                    f.attr("var").unwrap_or_default(),
                    f.child(NS_DATA, "value")
                        .map(|v| v.text())
                        .unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(
            values,
            ["jid=alice@x", "name=Alice Liddell", "mail=", "phone=+1 555"]
        );
        let reported = x.child(NS_DATA, "reported").expect("reported");
        assert_eq!(reported.elements().count(), 4);
    }
}
