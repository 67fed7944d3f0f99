//! The muc#admin protocol (XEP-0045 §8-§9): role and affiliation lists and changes, read into room calls and
//! answered as `<item/>` lists.

use presence_core::BareJid;
use presence_core::rooms::{
    Affiliate, Affiliation, AffiliationChange, Item, Role, RoleChange, RoomCall,
};
use presence_core::stanza::ErrorCondition;
use xmpp_codec::{Element, IqType};

/// XEP-0045 admin use cases.
pub const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";

/// Why a muc#admin query could not be read.
type Unread = (ErrorCondition, &'static str);

/// Reads a muc#admin get (one item naming a role or an affiliation) or set (items changing roles by nickname or
/// affiliations by address).
pub fn read(iq_type: IqType, query: &Element) -> Result<RoomCall, Unread> {
    let items: Vec<&Element> = query
        .elements()
        .filter(|e| e.is(NS_MUC_ADMIN, "item"))
        .collect();
    let role = |i: &Element| {
        i.attr("role")
            .map(|r| Role::from_name(r).ok_or((ErrorCondition::BadRequest, "unknown role")))
    };
    let affiliation = |i: &Element| {
        i.attr("affiliation").map(|a| {
            Affiliation::from_name(a).ok_or((ErrorCondition::BadRequest, "unknown affiliation"))
        })
    };
    if iq_type == IqType::Get {
        let [item] = items[..] else {
            return Err((
                ErrorCondition::BadRequest,
                "a list request names one role or affiliation",
            ));
        };
        return match (role(item).transpose()?, affiliation(item).transpose()?) {
            (Some(r), None) => Ok(RoomCall::GetRoles(r)),
            (None, Some(a)) => Ok(RoomCall::GetAffiliations(a)),
            _ => Err((
                ErrorCondition::BadRequest,
                "a list request names one role or affiliation",
            )),
        };
    }
    if items.is_empty() {
        return Err((
            ErrorCondition::BadRequest,
            "a change names at least one item",
        ));
    }
    let reason = |i: &Element| i.child(NS_MUC_ADMIN, "reason").map(|r| r.text());
    let mut roles = Vec::new();
    let mut affiliations = Vec::new();
    for item in items {
        match (role(item).transpose()?, affiliation(item).transpose()?) {
            (Some(role), None) => {
                let nick = item
                    .attr("nick")
                    .ok_or((ErrorCondition::BadRequest, "a role change names a nick"))?;
                roles.push(RoleChange {
                    nick: nick.to_owned(),
                    role,
                    reason: reason(item),
                });
            }
            (None, Some(affiliation)) => {
                // By address, or by an occupant's nickname, which the room resolves to its user.
                let who = match (item.attr("jid"), item.attr("nick")) {
                    (Some(jid), _) => {
                        // Affiliations belong to bare addresses (XEP-0045 §5.2); a resource is dropped.
                        let jid = presence_core::Jid::new(jid).map_err(|_| {
                            (
                                ErrorCondition::BadRequest,
                                "the item's jid is not a valid address",
                            )
                        })?;
                        let jid: BareJid = jid.bare().clone();
                        Affiliate::Jid(jid)
                    }
                    (None, Some(nick)) => Affiliate::Nick(nick.to_owned()),
                    (None, None) => {
                        return Err((
                            ErrorCondition::BadRequest,
                            "an affiliation change names a jid or a nick",
                        ));
                    }
                };
                affiliations.push(AffiliationChange {
                    who,
                    affiliation,
                    reason: reason(item),
                });
            }
            _ => {
                return Err((
                    ErrorCondition::BadRequest,
                    "each item changes one role or one affiliation",
                ));
            }
        }
    }
    match (roles.is_empty(), affiliations.is_empty()) {
        (false, true) => Ok(RoomCall::SetRoles(roles)),
        (true, false) => Ok(RoomCall::SetAffiliations(affiliations)),
        _ => Err((
            ErrorCondition::BadRequest,
            "one request changes roles or affiliations, not both",
        )),
    }
}

/// One `<item/>` in `ns` (muc#user in presence, muc#admin in lists).
pub fn item(ns: &str, item: &Item) -> Element {
    let mut el = Element::new(ns, "item")
        .with_attr("affiliation", item.affiliation.name())
        .with_attr("role", item.role.name());
    if let Some(j) = &item.jid {
        el = el.with_attr("jid", j.to_string());
    }
    if let Some(n) = &item.nick {
        el = el.with_attr("nick", n);
    }
    if let Some(r) = &item.reason {
        el = el.with_child(Element::new(ns, "reason").with_text(r));
    }
    el
}

/// A list answer.
pub fn items(items: &[Item]) -> Element {
    items
        .iter()
        .fold(Element::new(NS_MUC_ADMIN, "query"), |q, i| {
            q.with_child(item(NS_MUC_ADMIN, i))
        })
}
