//! Presence deliveries written straight to bytes, without an element tree: the bulk of what a server writes
//! when a user's contacts change presence (one delivery per watching session, issue 17). Building an [`Element`]
//! for each took a dozen small allocations (names, attributes, texts, a copy of every extension) that the
//! serializer then read once and dropped; this writes the same bytes from the engine's value.
//!
//! Byte for byte what [`super::to_client`] followed by the stream's writer gives, on a client stream whose
//! content namespace is `jabber:client` (the tests hold the two paths together).
//!
//! [`Element`]: xmpp_codec::Element

use presence_core::stanza::{PresenceKind, PresenceView};
use presence_core::{FullJid, Jid};
use xmpp_codec::{escape_attr, escape_text};

use super::features::avatar::NS_VCARD_UPDATE;

/// Appends the presence of `from` for `to` as a client reads it on a `jabber:client` stream, declaring that
/// namespace when `xmlns` (a framed stream's standalone element); `false` (nothing written) for a probe, which
/// is never delivered to a client.
pub(crate) fn presence(
    from: &Jid,
    to: &FullJid,
    kind: &PresenceKind,
    xmlns: bool,
    out: &mut Vec<u8>,
) -> bool {
    let view = match kind {
        PresenceKind::Probe => return false,
        PresenceKind::Available(v) => Some(v),
        PresenceKind::Unavailable => None,
    };
    out.extend_from_slice(b"<presence");
    if xmlns {
        out.extend_from_slice(b" xmlns='");
        out.extend_from_slice(xmpp_codec::ns::CLIENT.as_bytes());
        out.push(b'\'');
    }
    out.extend_from_slice(b" from='");
    jid(from, out);
    out.extend_from_slice(b"' to='");
    full(to, out);
    out.push(b'\'');
    match view {
        None => out.extend_from_slice(b" type='unavailable'/>"),
        Some(v) => available(v, out),
    }
    true
}

fn jid(j: &Jid, out: &mut Vec<u8>) {
    match j {
        Jid::Bare(b) => escape_attr(b.as_str(), out),
        Jid::Full(f) => full(f, out),
    }
}

fn full(j: &FullJid, out: &mut Vec<u8>) {
    escape_attr(j.bare().as_str(), out);
    out.push(b'/');
    escape_attr(j.resource(), out);
}

/// The rest of an available presence, from just after its last attribute.
fn available(v: &PresenceView, out: &mut Vec<u8>) {
    let show = super::show_text(v.show);
    if show.is_none()
        && v.status.is_none()
        && v.priority == 0
        && v.avatar.is_none()
        && v.extensions.is_empty()
    {
        out.extend_from_slice(b"/>");
        return;
    }
    out.push(b'>');
    if let Some(s) = show {
        text_child("show", s, out);
    }
    if let Some(s) = &v.status {
        text_child("status", s, out);
    }
    if v.priority != 0 {
        text_child("priority", &v.priority.to_string(), out);
    }
    if let Some(a) = &v.avatar {
        use presence_core::feature::avatar::PhotoUpdate;
        out.extend_from_slice(b"<x xmlns='");
        out.extend_from_slice(NS_VCARD_UPDATE.as_bytes());
        out.push(b'\'');
        match a {
            PhotoUpdate::NotReady => out.extend_from_slice(b"/>"),
            PhotoUpdate::NoPhoto => out.extend_from_slice(b"><photo/></x>"),
            PhotoUpdate::Hash(h) => {
                out.push(b'>');
                text_child("photo", h.as_str(), out);
                out.extend_from_slice(b"</x>");
            }
        }
    }
    // Opaque extensions are already-serialized XML, passed through as they came.
    for raw in v.extensions.iter() {
        out.extend_from_slice(raw.as_bytes());
    }
    out.extend_from_slice(b"</presence>");
}

/// `<name>text</name>`, or `<name/>` for empty text (as an element whose text is empty has no children).
fn text_child(name: &str, text: &str, out: &mut Vec<u8>) {
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    if text.is_empty() {
        out.extend_from_slice(b"/>");
        return;
    }
    out.push(b'>');
    escape_text(text, out);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
}

#[cfg(test)]
mod tests {
    use presence_core::compose::{PresenceState, Show};
    use presence_core::feature::avatar::{AvatarHash, PhotoUpdate};
    use xmpp_codec::{StreamHeader, StreamWriter, ns};

    use super::*;

    /// What the element path writes for the same delivery on `writer`'s stream.
    fn through_element(
        from: &Jid,
        to: &FullJid,
        kind: &PresenceKind,
        writer: &StreamWriter,
    ) -> String {
        let stanza = presence_core::stanza::Stanza::Presence {
            from: from.clone(),
            to: Jid::Full(to.clone()),
            kind: kind.clone(),
        };
        let o = super::super::to_client(stanza, to, "example.com", || "push".into())
            .expect("a presence is written");
        let mut out = Vec::new();
        writer.write_element(&o.element, &mut out);
        if !o.raw_children.is_empty() {
            // Spliced before the closing tag, as the wire does.
            if out.ends_with(b"/>") {
                out.truncate(out.len() - 2);
                out.push(b'>');
            } else {
                out.truncate(out.len() - "</presence>".len());
            }
            for raw in &o.raw_children {
                out.extend_from_slice(raw.as_bytes());
            }
            out.extend_from_slice(b"</presence>");
        }
        String::from_utf8(out).expect("UTF-8")
    }

    fn direct(from: &Jid, to: &FullJid, kind: &PresenceKind, xmlns: bool) -> String {
        let mut out = Vec::new();
        assert!(presence(from, to, kind, xmlns, &mut out));
        String::from_utf8(out).expect("UTF-8")
    }

    fn view(show: Show, status: Option<&str>, priority: i8) -> PresenceView {
        PresenceView {
            show,
            status: status.map(str::to_owned),
            priority,
            composed: PresenceState::Available,
            extensions: Vec::new().into(),
            avatar: None,
        }
    }

    #[test]
    fn writes_what_the_element_path_writes() {
        let to = FullJid::new("bob@example.com/phone").expect("jid");
        let senders = [
            Jid::Full(FullJid::new("alice@example.com/pc 'one' & <two>").expect("jid")),
            Jid::Bare(presence_core::BareJid::new("alice@example.com").expect("jid")),
        ];
        let hash = AvatarHash::parse("0123456789abcdef0123456789abcdef01234567").expect("hash");
        let mut kinds = vec![
            PresenceKind::Unavailable,
            PresenceKind::Available(view(Show::Available, None, 0).into()),
            PresenceKind::Available(
                view(Show::Away, Some("<out> & 'about' \"now\"\r\n]]>"), 0).into(),
            ),
            PresenceKind::Available(view(Show::Dnd, Some(""), -5).into()),
            PresenceKind::Available(view(Show::Chat, None, 127).into()),
            PresenceKind::Available(view(Show::Xa, Some("é 😀 \u{1}"), -128).into()),
        ];
        for avatar in [
            PhotoUpdate::NotReady,
            PhotoUpdate::NoPhoto,
            PhotoUpdate::Hash(hash),
        ] {
            let mut v = view(Show::Available, Some("s"), 1);
            v.avatar = Some(avatar);
            kinds.push(PresenceKind::Available(v.into()));
        }
        let caps =
            "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>".to_owned();
        let mut v = view(Show::Available, None, 0);
        v.extensions = vec![caps.clone()].into();
        kinds.push(PresenceKind::Available(v.into()));
        let mut v = view(Show::Away, Some("x"), 0);
        v.extensions = vec![
            caps,
            "<nick xmlns='http://jabber.org/protocol/nick'>A</nick>".into(),
        ]
        .into();
        kinds.push(PresenceKind::Available(v.into()));

        let client = StreamWriter::new(&StreamHeader::new(ns::CLIENT));
        let framed = StreamWriter::framed();
        for from in &senders {
            for kind in &kinds {
                assert_eq!(
                    direct(from, &to, kind, false),
                    through_element(from, &to, kind, &client)
                );
                assert_eq!(
                    direct(from, &to, kind, true),
                    through_element(from, &to, kind, &framed)
                );
            }
        }
    }

    #[test]
    fn a_probe_is_not_written() {
        let to = FullJid::new("bob@example.com/phone").expect("jid");
        let from = Jid::Full(FullJid::new("alice@example.com/pc").expect("jid"));
        let mut out = Vec::new();
        assert!(!presence(&from, &to, &PresenceKind::Probe, false, &mut out));
        assert!(out.is_empty());
    }
}
