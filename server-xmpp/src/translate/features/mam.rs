//! Message archive management (XEP-0313, `urn:xmpp:mam:2` with the `#extended` additions): queries of the user's
//! own archive with a data form and RSM paging (XEP-0059), the query form, and the archiving preferences.
//! A query is a read the connection makes from the store ([`FromClient::Archive`]); preferences go to the engine.

use presence_core::BareJid;
use presence_core::archive::{self, Prefs, Query};
use presence_core::feature::{Call, mam};
use presence_core::rooms::{ArchiveRead, RoomQuery};
use presence_core::stanza::ErrorCondition;
use xmpp_codec::{Element, IqType};

use super::{Feature, FromClient, Iq};
use crate::translate::parse_stamp;

/// XEP-0313.
pub const NS_MAM: &str = "urn:xmpp:mam:2";
/// XEP-0313's additions: before-id, after-id, ids and flip-page.
pub const NS_MAM_EXTENDED: &str = "urn:xmpp:mam:2#extended";
/// XEP-0059.
pub const NS_RSM: &str = "http://jabber.org/protocol/rsm";
/// XEP-0004.
pub const NS_DATA: &str = "jabber:x:data";

/// Results per page when the client names no `<max/>`.
pub const DEFAULT_PAGE: usize = 50;
/// The most results one page returns, whatever the client asks (Prosody's default cap too).
pub const MAX_PAGE: usize = 250;

/// The registry's entry.
pub const FEATURE: Feature = Feature {
    name: "mam",
    disco: &[NS_MAM, NS_MAM_EXTENDED],
    payloads: &[(NS_MAM, "query"), (NS_MAM, "prefs")],
    iq,
};

/// An archive query to run against the store, and how to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRequest {
    /// The IQ's id, for the final result.
    pub id: String,
    /// The client's query id, echoed on every result message.
    pub queryid: Option<String>,
    /// The query.
    pub query: Query,
    /// Results in reverse order within the page (`<flip-page/>`).
    pub flip: bool,
}

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    // Only the user's own archive is kept; another account's is not ours to show.
    if !iq.for_own_account() {
        return Some(iq.error(
            ErrorCondition::Forbidden,
            Some("only the user's own archive can be queried"),
        ));
    }
    Some(match (iq.payload.name.as_str(), iq.iq_type) {
        ("query", IqType::Get) => iq.result(vec![form()]),
        ("query", _) => match request(iq.payload) {
            Ok(query) => FromClient::Archive(ArchiveRequest {
                id: iq.id.to_owned(),
                ..query
            }),
            Err((condition, text)) => iq.error(condition, Some(&text)),
        },
        ("prefs", IqType::Get) => iq.call(Call::Mam(mam::Call::GetPrefs)),
        (_, _) => match prefs(iq.payload) {
            Ok(p) => iq.call(Call::Mam(mam::Call::SetPrefs(p))),
            Err(text) => iq.error(ErrorCondition::BadRequest, Some(&text)),
        },
    })
}

/// The query form (XEP-0313 §5.1.1), the same for a user's archive and a room's.
pub(crate) fn form() -> Element {
    let field = |var: &str, kind: &str| {
        Element::new(NS_DATA, "field")
            .with_attr("var", var)
            .with_attr("type", kind)
    };
    let x = Element::new(NS_DATA, "x")
        .with_attr("type", "form")
        .with_child(
            field("FORM_TYPE", "hidden")
                .with_child(Element::new(NS_DATA, "value").with_text(NS_MAM)),
        )
        .with_child(field("with", "jid-single"))
        .with_child(field("start", "text-single"))
        .with_child(field("end", "text-single"))
        .with_child(field("before-id", "text-single"))
        .with_child(field("after-id", "text-single"))
        .with_child(field("ids", "list-multi"));
    Element::new(NS_MAM, "query").with_child(x)
}

type Refusal = (ErrorCondition, String);

fn bad(text: impl Into<String>) -> Refusal {
    (ErrorCondition::BadRequest, text.into())
}

/// An archive id as the client sends it back; ours are decimal numbers, so anything else names no message.
fn archive_id(text: &str) -> Result<u64, Refusal> {
    text.trim().parse().map_err(|_| {
        (
            ErrorCondition::ItemNotFound,
            format!("no archived message has the id {text:?}"),
        )
    })
}

/// Reads the form and the RSM set of a query.
fn request(query: &Element) -> Result<ArchiveRequest, Refusal> {
    let mut q = Query {
        max: DEFAULT_PAGE,
        ..Query::default()
    };
    if let Some(x) = query.child(NS_DATA, "x") {
        for field in x.elements().filter(|f| f.is(NS_DATA, "field")) {
            let var = field.attr("var").unwrap_or_default();
            let values: Vec<String> = field
                .elements()
                .filter(|v| v.is(NS_DATA, "value"))
                .map(|v| v.text())
                .collect();
            let one = || values.first().map(String::as_str).unwrap_or_default();
            match var {
                "FORM_TYPE" if one() != NS_MAM => {
                    return Err(bad("the form is not a urn:xmpp:mam:2 query"));
                }
                "FORM_TYPE" => {}
                "with" => {
                    // Conversations are filed under the peer's bare address; a full JID narrows nothing further.
                    let jid = presence_core::Jid::new(one().trim())
                        .map_err(|e| bad(format!("'with' is not a JID: {e}")))?;
                    q.with = Some(BareJid::clone(jid.bare()));
                }
                "start" => {
                    q.start =
                        Some(parse_stamp(one()).ok_or_else(|| bad("'start' is not a date-time"))?)
                }
                "end" => {
                    q.end = Some(parse_stamp(one()).ok_or_else(|| bad("'end' is not a date-time"))?)
                }
                "after-id" => q.after = Some(archive_id(one())?),
                "before-id" => q.before = Some(archive_id(one())?),
                "ids" => {
                    q.ids = Some(
                        values
                            .iter()
                            .map(|v| archive_id(v))
                            .collect::<Result<_, _>>()?,
                    )
                }
                // XEP-0313 §5.1.1: a field the server does not know is an error, not silently ignored.
                other => return Err(bad(format!("the field {other:?} is not supported"))),
            }
        }
    }
    if let Some(set) = query.child(NS_RSM, "set") {
        if let Some(max) = set.child(NS_RSM, "max") {
            let n: usize = max
                .text()
                .trim()
                .parse()
                .map_err(|_| bad("<max/> is not a number"))?;
            q.max = n;
        }
        if let Some(after) = set.child(NS_RSM, "after") {
            q.after = Some(archive_id(&after.text())?);
        }
        if let Some(before) = set.child(NS_RSM, "before") {
            // An empty <before/> asks for the last page (XEP-0059 §2.5).
            q.from_end = true;
            let text = before.text();
            if !text.trim().is_empty() {
                q.before = Some(archive_id(&text)?);
            }
        }
        if set.child(NS_RSM, "index").is_some() {
            return Err((
                ErrorCondition::NotAcceptable,
                "paging by index is not supported; use after and before".into(),
            ));
        }
    }
    q.max = q.max.min(MAX_PAGE);
    Ok(ArchiveRequest {
        id: String::new(),
        queryid: query.attr("queryid").map(str::to_owned),
        query: q,
        flip: query.child(NS_MAM, "flip-page").is_some(),
    })
}

/// Reads a query sent to a room (XEP-0313 §4 on a MUC room): the same form and RSM as a user's, except that
/// `with` names an occupant, `room@service/nick`, and filters by that nickname.
pub fn room_read(query: &Element) -> Result<ArchiveRead, (ErrorCondition, &'static str)> {
    let mut nick = None;
    let mut form = query.clone();
    let is_with = |n: &xmpp_codec::Node| matches!(n, xmpp_codec::Node::Element(f) if f.is(NS_DATA, "field") && f.attr("var") == Some("with"));
    let x = form.children.iter_mut().find_map(|n| match n {
        xmpp_codec::Node::Element(e) if e.is(NS_DATA, "x") => Some(e),
        _ => None,
    });
    if let Some(x) = x {
        let with = x
            .elements()
            .find(|f| f.is(NS_DATA, "field") && f.attr("var") == Some("with"))
            .map(|f| {
                f.child(NS_DATA, "value")
                    .map(|v| v.text())
                    .unwrap_or_default()
            });
        if let Some(with) = with {
            match presence_core::Jid::new(with.trim()) {
                Ok(presence_core::Jid::Full(f)) => nick = Some(f.resource().to_owned()),
                _ => {
                    return Err((
                        ErrorCondition::BadRequest,
                        "in a room, 'with' names an occupant: room@service/nick",
                    ));
                }
            }
            // The rest of the form reads as a user's query does.
            x.children.retain(|n| !is_with(n));
        }
    }
    let request = request(&form).map_err(|(c, _)| (c, "the archive query is not valid"))?;
    Ok(ArchiveRead {
        query: RoomQuery {
            nick,
            query: request.query,
        },
        queryid: request.queryid,
        flip: request.flip,
    })
}

/// Reads a `<prefs/>` set (XEP-0313 §6).
fn prefs(el: &Element) -> Result<Prefs, String> {
    let default = match el.attr("default") {
        Some("always") => archive::Default::Always,
        Some("never") => archive::Default::Never,
        Some("roster") => archive::Default::Roster,
        other => {
            return Err(format!(
                "'default' must be always, never or roster, not {other:?}"
            ));
        }
    };
    let list = |name: &str| -> Result<Vec<BareJid>, String> {
        let Some(l) = el.child(NS_MAM, name) else {
            return Ok(Vec::new());
        };
        l.elements()
            .filter(|j| j.is(NS_MAM, "jid"))
            .map(|j| {
                BareJid::new(j.text().trim()).map_err(|e| format!("<{name}/> holds a bad JID: {e}"))
            })
            .collect()
    };
    Ok(Prefs {
        default,
        always: list("always")?,
        never: list("never")?,
    })
}

/// The `<prefs/>` of an answer.
pub fn answer(p: &Prefs) -> Element {
    let default = match p.default {
        archive::Default::Always => "always",
        archive::Default::Never => "never",
        archive::Default::Roster => "roster",
    };
    let list = |name: &str, jids: &[BareJid]| {
        let mut l = Element::new(NS_MAM, name);
        for j in jids {
            l = l.with_child(Element::new(NS_MAM, "jid").with_text(j.as_str()));
        }
        l
    };
    Element::new(NS_MAM, "prefs")
        .with_attr("default", default)
        .with_child(list("always", &p.always))
        .with_child(list("never", &p.never))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(var: &str, values: &[&str]) -> Element {
        let mut f = Element::new(NS_DATA, "field").with_attr("var", var);
        for v in values {
            f = f.with_child(Element::new(NS_DATA, "value").with_text(*v));
        }
        f
    }

    #[test]
    fn a_form_and_rsm_become_a_query() {
        let q = Element::new(NS_MAM, "query")
            .with_attr("queryid", "q1")
            .with_child(
                Element::new(NS_DATA, "x")
                    .with_child(field("FORM_TYPE", &[NS_MAM]))
                    .with_child(field("with", &["bob@x/phone"]))
                    .with_child(field("start", &["1970-01-01T00:00:01Z"]))
                    .with_child(field("ids", &["3", "5"])),
            )
            .with_child(
                Element::new(NS_RSM, "set")
                    .with_child(Element::new(NS_RSM, "max").with_text("1000"))
                    .with_child(Element::new(NS_RSM, "before")),
            );
        let r = request(&q).expect("valid");
        assert_eq!(r.queryid.as_deref(), Some("q1"));
        assert_eq!(r.query.with.as_ref().map(BareJid::as_str), Some("bob@x"));
        assert_eq!(r.query.start.map(|t| t.as_millis()), Some(1000));
        assert_eq!(r.query.ids, Some(vec![3, 5]));
        assert_eq!((r.query.max, r.query.from_end), (MAX_PAGE, true));
    }

    #[test]
    fn bad_queries_are_refused_with_the_right_condition() {
        let with_field = |f: Element| {
            Element::new(NS_MAM, "query").with_child(Element::new(NS_DATA, "x").with_child(f))
        };
        assert_eq!(
            request(&with_field(field("start", &["yesterday"])))
                .unwrap_err()
                .0,
            ErrorCondition::BadRequest
        );
        assert_eq!(
            request(&with_field(field("colour", &["red"])))
                .unwrap_err()
                .0,
            ErrorCondition::BadRequest
        );
        assert_eq!(
            request(&with_field(field("after-id", &["not-ours"])))
                .unwrap_err()
                .0,
            ErrorCondition::ItemNotFound
        );
    }

    #[test]
    fn a_room_query_filters_by_the_occupant_nickname() {
        let q = Element::new(NS_MAM, "query")
            .with_attr("queryid", "r1")
            .with_child(
                Element::new(NS_DATA, "x")
                    .with_child(field("FORM_TYPE", &[NS_MAM]))
                    .with_child(field("with", &["room@conference.x/bob"]))
                    .with_child(field("after-id", &["3"])),
            )
            .with_child(Element::new(NS_MAM, "flip-page"));
        let r = room_read(&q).expect("valid");
        assert_eq!(r.query.nick.as_deref(), Some("bob"));
        assert_eq!(r.query.query.with, None);
        assert_eq!(r.query.query.after, Some(3));
        assert_eq!(r.query.query.max, DEFAULT_PAGE);
        assert_eq!((r.queryid.as_deref(), r.flip), (Some("r1"), true));
        let bare = Element::new(NS_MAM, "query").with_child(
            Element::new(NS_DATA, "x").with_child(field("with", &["room@conference.x"])),
        );
        assert_eq!(room_read(&bare).unwrap_err().0, ErrorCondition::BadRequest);
    }

    #[test]
    fn prefs_round_trip_through_xml() {
        let p = Prefs {
            default: archive::Default::Roster,
            always: vec![BareJid::new("a@x").unwrap()],
            never: vec![],
        };
        assert_eq!(prefs(&answer(&p)), Ok(p));
    }
}
