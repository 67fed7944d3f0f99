//! The muc#owner protocol (XEP-0045 §10): the configuration form (XEP-0004 with the `muc#roomconfig_` fields),
//! its submission, and destroying a room.

use presence_core::BareJid;
use presence_core::rooms::{ConfigChange, Destroyed, RoomCall, RoomConfig, RoomInfo, WhoIs};
use presence_core::stanza::ErrorCondition;
use xmpp_codec::{Element, IqType};

/// XEP-0045 owner use cases.
pub const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
/// XEP-0004.
pub const NS_DATA: &str = "jabber:x:data";
const FORM_TYPE: &str = "http://jabber.org/protocol/muc#roomconfig";
const ROOM_INFO: &str = "http://jabber.org/protocol/muc#roominfo";

/// Why a muc#owner query could not be read.
type Unread = (ErrorCondition, &'static str);

/// Reads a muc#owner get (the form) or set (a submitted or cancelled form, or a destruction).
pub fn read(iq_type: IqType, query: &Element) -> Result<RoomCall, Unread> {
    if iq_type == IqType::Get {
        return Ok(RoomCall::GetConfig);
    }
    if let Some(d) = query.child(NS_MUC_OWNER, "destroy") {
        let alternate = match d.attr("jid") {
            None => None,
            Some(j) => Some(BareJid::new(j).map_err(|_| {
                (
                    ErrorCondition::BadRequest,
                    "the alternate venue is not a valid room address",
                )
            })?),
        };
        return Ok(RoomCall::Destroy(Destroyed {
            reason: d.child(NS_MUC_OWNER, "reason").map(|r| r.text()),
            alternate,
            password: d.child(NS_MUC_OWNER, "password").map(|p| p.text()),
        }));
    }
    let Some(form) = query.child(NS_DATA, "x") else {
        return Err((
            ErrorCondition::BadRequest,
            "a configuration set carries a form or <destroy/>",
        ));
    };
    match form.attr("type") {
        // An empty submission accepts the defaults: an instant room (XEP-0045 §10.1.2).
        Some("submit") => read_form(form).map(RoomCall::SetConfig),
        Some("cancel") => Ok(RoomCall::CancelConfig),
        _ => Err((
            ErrorCondition::BadRequest,
            "the form must be of type submit or cancel",
        )),
    }
}

fn read_form(form: &Element) -> Result<ConfigChange, Unread> {
    let mut c = ConfigChange::default();
    for field in form.elements().filter(|f| f.is(NS_DATA, "field")) {
        let Some(var) = field.attr("var") else {
            continue;
        };
        let value = field
            .child(NS_DATA, "value")
            .map(|v| v.text())
            .unwrap_or_default();
        let flag = || match value.trim() {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => Err((
                ErrorCondition::BadRequest,
                "a boolean field holds 0, 1, true or false",
            )),
        };
        let number = || {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| (ErrorCondition::BadRequest, "a number field holds a number"))
        };
        match var.strip_prefix("muc#roomconfig_").unwrap_or(var) {
            "roomname" => c.name = Some(value.clone()),
            "roomdesc" => c.description = Some(value.clone()),
            "persistentroom" => c.persistent = Some(flag()?),
            "publicroom" => c.public = Some(flag()?),
            "membersonly" => c.members_only = Some(flag()?),
            "moderatedroom" => c.moderated = Some(flag()?),
            "passwordprotectedroom" => c.password_protected = Some(flag()?),
            "roomsecret" => c.password = Some(value.clone()),
            "maxusers" => c.max_occupants = Some(number()?),
            "whois" => {
                c.whois = Some(match value.trim() {
                    "anyone" => WhoIs::Anyone,
                    "moderators" => WhoIs::Moderators,
                    _ => return Err((ErrorCondition::BadRequest, "whois is anyone or moderators")),
                })
            }
            "historylength" | "muc#maxhistoryfetch" => c.history_length = Some(number()?),
            "allowpm" => {
                c.allow_private_messages = Some(!matches!(value.trim(), "none" | "0" | "false"))
            }
            "changesubject" => c.change_subject = Some(flag()?),
            "enablearchiving" => c.archiving = Some(flag()?),
            "allowinvites" => c.allow_invites = Some(flag()?),
            // FORM_TYPE and fields this service does not have are ignored, as XEP-0004 lets a receiver do.
            _ => {}
        }
    }
    Ok(c)
}

fn field(var: &str, kind: &str, label: &str, values: &[&str]) -> Element {
    let f = Element::new(NS_DATA, "field")
        .with_attr("var", var)
        .with_attr("type", kind)
        .with_attr("label", label);
    values.iter().fold(f, |f, v| {
        f.with_child(Element::new(NS_DATA, "value").with_text(*v))
    })
}

fn options(f: Element, options: &[&str]) -> Element {
    options.iter().fold(f, |f, o| {
        f.with_child(
            Element::new(NS_DATA, "option")
                .with_child(Element::new(NS_DATA, "value").with_text(*o)),
        )
    })
}

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

/// The configuration form of `room` with its current values (the password is never sent back).
pub fn config_form(room: &BareJid, c: &RoomConfig) -> Element {
    let max = c.max_occupants.to_string();
    let history = c.history_length.to_string();
    let whois = match c.whois {
        WhoIs::Anyone => "anyone",
        WhoIs::Moderators => "moderators",
    };
    let form = Element::new(NS_DATA, "x")
        .with_attr("type", "form")
        .with_child(Element::new(NS_DATA, "title").with_text(format!("Configuration of {room}")))
        .with_child(field("FORM_TYPE", "hidden", "", &[FORM_TYPE]))
        .with_child(field(
            "muc#roomconfig_roomname",
            "text-single",
            "Name",
            &[&c.name],
        ))
        .with_child(field(
            "muc#roomconfig_roomdesc",
            "text-single",
            "Description",
            &[&c.description],
        ))
        .with_child(field(
            "muc#roomconfig_persistentroom",
            "boolean",
            "Persistent",
            &[flag(c.persistent)],
        ))
        .with_child(field(
            "muc#roomconfig_publicroom",
            "boolean",
            "Listed in the directory",
            &[flag(c.public)],
        ))
        .with_child(field(
            "muc#roomconfig_membersonly",
            "boolean",
            "Members only",
            &[flag(c.members_only)],
        ))
        .with_child(field(
            "muc#roomconfig_moderatedroom",
            "boolean",
            "Moderated",
            &[flag(c.moderated)],
        ))
        .with_child(field(
            "muc#roomconfig_passwordprotectedroom",
            "boolean",
            "Password protected",
            &[flag(c.password.is_some())],
        ))
        .with_child(field(
            "muc#roomconfig_roomsecret",
            "text-private",
            "Password",
            &[],
        ))
        .with_child(field(
            "muc#roomconfig_maxusers",
            "text-single",
            "Maximum occupants",
            &[&max],
        ))
        .with_child(options(
            field(
                "muc#roomconfig_whois",
                "list-single",
                "Who sees real addresses",
                &[whois],
            ),
            &["moderators", "anyone"],
        ))
        .with_child(field(
            "muc#roomconfig_historylength",
            "text-single",
            "Messages kept for newcomers",
            &[&history],
        ))
        .with_child(options(
            field(
                "muc#roomconfig_allowpm",
                "list-single",
                "Private messages",
                &[if c.allow_private_messages {
                    "anyone"
                } else {
                    "none"
                }],
            ),
            &["anyone", "none"],
        ))
        .with_child(field(
            "muc#roomconfig_changesubject",
            "boolean",
            "Participants may change the subject",
            &[flag(c.change_subject)],
        ))
        .with_child(field(
            "muc#roomconfig_enablearchiving",
            "boolean",
            "Archive messages (persistent rooms)",
            &[flag(c.archiving)],
        ))
        .with_child(field(
            "muc#roomconfig_allowinvites",
            "boolean",
            "Occupants may invite others into a members-only room",
            &[flag(c.allow_invites)],
        ));
    Element::new(NS_MUC_OWNER, "query").with_child(form)
}

/// The `muc#roominfo` form of a room's disco#info (XEP-0045 §6.4).
pub fn room_info_form(info: &RoomInfo) -> Element {
    let occupants = info.occupants.to_string();
    let mut form = Element::new(NS_DATA, "x")
        .with_attr("type", "result")
        .with_child(field("FORM_TYPE", "hidden", "", &[ROOM_INFO]))
        .with_child(field(
            "muc#roominfo_description",
            "text-single",
            "Description",
            &[&info.description],
        ))
        .with_child(field(
            "muc#roominfo_occupants",
            "text-single",
            "Occupants",
            &[&occupants],
        ));
    if let Some(s) = &info.subject {
        form = form.with_child(field(
            "muc#roominfo_subject",
            "text-single",
            "Subject",
            &[s],
        ));
    }
    form
}

/// A `<destroy/>` in `ns` (muc#user in the presence that announces it).
pub fn destroy_element(ns: &str, d: &Destroyed) -> Element {
    let mut el = Element::new(ns, "destroy");
    if let Some(j) = &d.alternate {
        el = el.with_attr("jid", j.as_str());
    }
    if let Some(r) = &d.reason {
        el = el.with_child(Element::new(ns, "reason").with_text(r));
    }
    if let Some(p) = &d.password {
        el = el.with_child(Element::new(ns, "password").with_text(p));
    }
    el
}
