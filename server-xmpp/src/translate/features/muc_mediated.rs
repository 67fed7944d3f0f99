//! Messages to a room that ask it to act rather than speak (XEP-0045): mediated invitations and declines
//! (`muc#user` `<invite/>`, `<decline/>`, §7.8.2-7.8.3) and voice requests with their approval (the
//! `muc#request` form, §7.13, §8.6), read into [`Mediated`]; and the approval form a moderator is sent.

use presence_core::Jid;
use presence_core::jid::{BareJid, FullJid};
use presence_core::rooms::{Invite, Mediated};
use xmpp_codec::{Element, Stanza, ns};

use super::muc::NS_MUC_USER;
use super::muc_owner::NS_DATA;

/// XEP-0045 §7.13: the voice request form.
pub const NS_MUC_REQUEST: &str = "http://jabber.org/protocol/muc#request";

/// What a message to the room asks, if it is one of these (`None`: an ordinary message); `Err` for one that is
/// but is malformed.
pub fn read(stanza: &Stanza) -> Option<Result<Mediated, &'static str>> {
    let el = stanza.element();
    if let Some(x) = el.child(NS_MUC_USER, "x") {
        let invites: Vec<&Element> = x
            .elements()
            .filter(|e| e.is(NS_MUC_USER, "invite"))
            .collect();
        if !invites.is_empty() {
            return Some(read_invites(&invites));
        }
        if let Some(d) = x.child(NS_MUC_USER, "decline") {
            return Some(
                address(d, "a decline names its inviter: <decline to='…'/>").map(|to| {
                    Mediated::Decline {
                        to,
                        reason: reason(d),
                    }
                }),
            );
        }
    }
    let form = el
        .elements()
        .find(|e| e.is(NS_DATA, "x") && form_type(e).as_deref() == Some(NS_MUC_REQUEST))?;
    Some(read_voice(form))
}

fn read_invites(invites: &[&Element]) -> Result<Mediated, &'static str> {
    invites
        .iter()
        .map(|i| {
            Ok(Invite {
                to: address(i, "an invitation names its invitee: <invite to='…'/>")?,
                reason: reason(i),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Mediated::Invite)
}

fn address(el: &Element, missing: &'static str) -> Result<Jid, &'static str> {
    el.attr("to").and_then(|t| Jid::new(t).ok()).ok_or(missing)
}

fn reason(el: &Element) -> Option<String> {
    el.child(NS_MUC_USER, "reason")
        .map(|r| r.text())
        .filter(|r| !r.is_empty())
}

fn form_type(form: &Element) -> Option<String> {
    value(form, "FORM_TYPE")
}

fn value(form: &Element, var: &str) -> Option<String> {
    form.elements()
        .find(|f| f.is(NS_DATA, "field") && f.attr("var") == Some(var))
        .and_then(|f| f.child(NS_DATA, "value"))
        .map(|v| v.text().trim().to_owned())
}

/// A submitted `muc#request` form: with `muc#request_allow` it is a moderator's answer naming the visitor by
/// `muc#roomnick`; without, a visitor's request (for the participant role, the only one §7.13 asks for).
fn read_voice(form: &Element) -> Result<Mediated, &'static str> {
    let Some(allow) = value(form, "muc#request_allow") else {
        return match value(form, "muc#role").as_deref() {
            Some("participant") | None => Ok(Mediated::RequestVoice),
            Some(_) => Err("a voice request asks for the participant role"),
        };
    };
    let nick = value(form, "muc#roomnick")
        .filter(|n| !n.is_empty())
        .ok_or("an approval names the visitor in muc#roomnick")?;
    Ok(Mediated::AnswerVoice {
        nick,
        allow: matches!(allow.as_str(), "1" | "true"),
    })
}

/// The approval form a moderator gets for a visitor's voice request (XEP-0045 §8.6).
pub fn voice_request(from: &BareJid, to: &FullJid, nick: &str, jid: &FullJid) -> Element {
    let field = |var: &str, kind: &str, label: &str, v: &str| {
        Element::new(NS_DATA, "field")
            .with_attr("var", var)
            .with_attr("type", kind)
            .with_attr("label", label)
            .with_child(Element::new(NS_DATA, "value").with_text(v))
    };
    let form = Element::new(NS_DATA, "x")
        .with_attr("type", "form")
        .with_child(Element::new(NS_DATA, "title").with_text("Voice request"))
        .with_child(
            Element::new(NS_DATA, "instructions")
                .with_text("To approve this request for voice, select \"Grant voice\" and submit."),
        )
        .with_child(field("FORM_TYPE", "hidden", "", NS_MUC_REQUEST))
        .with_child(field(
            "muc#role",
            "list-single",
            "Requested role",
            "participant",
        ))
        .with_child(field("muc#jid", "jid-single", "User ID", &jid.to_string()))
        .with_child(field("muc#roomnick", "text-single", "Room Nickname", nick))
        .with_child(field(
            "muc#request_allow",
            "boolean",
            "Grant voice",
            "false",
        ));
    Element::new(ns::CLIENT, "message")
        .with_attr("from", from.as_str())
        .with_attr("to", to.to_string())
        .with_child(form)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(child: Element) -> Stanza {
        Stanza::Message(Element::new(ns::CLIENT, "message").with_child(child))
    }

    fn form(fields: &[(&str, &str)]) -> Element {
        fields.iter().fold(
            Element::new(NS_DATA, "x").with_attr("type", "submit"),
            |f, (var, v)| {
                f.with_child(
                    Element::new(NS_DATA, "field")
                        .with_attr("var", *var)
                        .with_child(Element::new(NS_DATA, "value").with_text(*v)),
                )
            },
        )
    }

    #[test]
    fn invitations_and_declines_are_read() {
        let x = Element::new(NS_MUC_USER, "x").with_child(
            Element::new(NS_MUC_USER, "invite")
                .with_attr("to", "b@y")
                .with_child(Element::new(NS_MUC_USER, "reason").with_text("come")),
        );
        assert_eq!(
            read(&message(x)),
            Some(Ok(Mediated::Invite(vec![Invite {
                to: Jid::new("b@y").expect("valid"),
                reason: Some("come".into()),
            }])))
        );
        let x = Element::new(NS_MUC_USER, "x").with_child(Element::new(NS_MUC_USER, "decline"));
        assert!(matches!(read(&message(x)), Some(Err(_))));
        let plain = Element::new(ns::CLIENT, "body").with_text("hi");
        assert_eq!(read(&message(plain)), None);
    }

    #[test]
    fn voice_requests_and_answers_are_read() {
        let ask = form(&[("FORM_TYPE", NS_MUC_REQUEST), ("muc#role", "participant")]);
        assert_eq!(read(&message(ask)), Some(Ok(Mediated::RequestVoice)));
        let answer = form(&[
            ("FORM_TYPE", NS_MUC_REQUEST),
            ("muc#role", "participant"),
            ("muc#roomnick", "Dave"),
            ("muc#request_allow", "true"),
        ]);
        assert_eq!(
            read(&message(answer)),
            Some(Ok(Mediated::AnswerVoice {
                nick: "Dave".into(),
                allow: true
            }))
        );
        let other = form(&[("FORM_TYPE", "urn:other")]);
        assert_eq!(read(&message(other)), None);
    }
}
