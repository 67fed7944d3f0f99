//! What a room sends to users outside it: mediated invitations (XEP-0045 §7.8.2) and declined invitations going
//! back to their inviter (§7.8.3).
//!
//! The recipient is not an occupant, may be offline or at another domain, so these are ordinary messages from the
//! room's bare address, routed (and held offline) like any user's message, not room deliveries. Being ordinary
//! messages they may reach a SIP user too, as the text of the body: that is a message to a user, not room traffic.
//! The `muc#user` payload is written here as the serialized extension a message carries (as `avatar` writes its
//! PEP items): the engine routes and stores messages, and only extensions survive offline storage and the
//! cluster's wire.

use crate::jid::{BareJid, FullJid, Jid};
use crate::message::{Marks, Message, MessageKind};
use crate::time::Timestamp;

const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";

/// A message a room sends to an address outside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The room (the sender).
    pub room: BareJid,
    /// The recipient.
    pub to: Jid,
    /// The message.
    pub message: Message,
}

/// The invitation `inviter` (real address) sends `to` through `room`, with the room's password if it has one.
pub fn invitation(
    room: &BareJid,
    inviter: &FullJid,
    to: &Jid,
    reason: Option<&str>,
    password: Option<&str>,
    now: Timestamp,
) -> Outbound {
    let mut x = format!(
        "<x xmlns='{NS_MUC_USER}'><invite from='{}'>",
        escape(&inviter.to_string())
    );
    if let Some(r) = reason {
        x.push_str(&format!("<reason>{}</reason>", escape(r)));
    }
    x.push_str("</invite>");
    if let Some(p) = password {
        x.push_str(&format!("<password>{}</password>", escape(p)));
    }
    x.push_str("</x>");
    let mut body = format!("{} invites you to the room {room}", inviter.bare());
    if let Some(r) = reason {
        body.push_str(&format!(": {r}"));
    }
    outbound(room, to, body, x, now)
}

/// The decline `decliner` (real address) sends back to the inviter `to` through `room`.
pub fn decline(
    room: &BareJid,
    decliner: &FullJid,
    to: &Jid,
    reason: Option<&str>,
    now: Timestamp,
) -> Outbound {
    let mut x = format!(
        "<x xmlns='{NS_MUC_USER}'><decline from='{}'>",
        escape(&decliner.to_string())
    );
    if let Some(r) = reason {
        x.push_str(&format!("<reason>{}</reason>", escape(r)));
    }
    x.push_str("</decline></x>");
    let mut body = format!(
        "{} declined your invitation to the room {room}",
        decliner.bare()
    );
    if let Some(r) = reason {
        body.push_str(&format!(": {r}"));
    }
    outbound(room, to, body, x, now)
}

fn outbound(room: &BareJid, to: &Jid, body: String, x: String, now: Timestamp) -> Outbound {
    Outbound {
        room: room.clone(),
        to: to.clone(),
        message: Message {
            kind: MessageKind::Normal,
            body: Some(body),
            stamp: now,
            extensions: vec![x],
            // Kept for an offline invitee even where bodyless messages would not be.
            marks: Marks {
                store: true,
                ..Marks::default()
            },
            ..Message::default()
        },
    }
}

/// Escapes text for an XML attribute or element.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitation_names_the_inviter_and_escapes_what_users_wrote() {
        let room = BareJid::new("r@conference.x").expect("valid");
        let inviter = FullJid::new("a@x/pc").expect("valid");
        let to = Jid::new("b@y").expect("valid");
        let o = invitation(
            &room,
            &inviter,
            &to,
            Some("<come & see>"),
            Some("s'"),
            Timestamp(0),
        );
        assert_eq!(
            o.message.extensions,
            vec![
                "<x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@x/pc'>\
                 <reason>&lt;come &amp; see&gt;</reason></invite><password>s&apos;</password></x>"
                    .to_owned()
            ]
        );
        assert_eq!(o.to, to);
        assert!(o.message.body.is_some_and(|b| b.contains("r@conference.x")));
    }
}
