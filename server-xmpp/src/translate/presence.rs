//! What every reader of an available `<presence/>` takes alike, from a client or from a federated peer.

use presence_core::feature::avatar::PhotoUpdate;
use xmpp_codec::Element;

use super::features::avatar;
use super::features::xml::Texts;

/// The parts of an available presence read the same way whoever sent it. `<show/>` is left to each reader:
/// a client's unknown value is answered with `bad-request`, while a peer's is read as plain available (there is
/// no one to answer on a server stream).
pub(crate) struct PresenceBody {
    pub status: Option<String>,
    pub priority: i8,
    pub avatar: Option<PhotoUpdate>,
    /// Every other child, as text, to travel on to whoever sees this presence: entity capabilities (XEP-0115),
    /// idle time (XEP-0319), a nickname (XEP-0172) and the like.
    pub extensions: Vec<String>,
}

/// Reads `el`'s status, priority (clamped into RFC 6121's -128..=127; unreadable is 0), XEP-0153 photo hash and
/// extensions. The extensions are every child but `<show/>`, `<status/>`, `<priority/>`, the photo hash read out
/// (the engine replaces it with the account's, XEP-0398, and renders it from that, so it is not kept twice) and
/// whatever `dropped` names (the caller's own rules, e.g. a client's untrusted `<delay/>`).
pub(crate) fn read_body(el: &Element, dropped: impl Fn(&Element) -> bool) -> PresenceBody {
    let content = el.ns.as_str();
    let status = el.child(content, "status").map(|s| s.text());
    let priority = el
        .child(content, "priority")
        .and_then(|p| p.text().trim().parse::<i32>().ok())
        .map_or(0, |p| p.clamp(-128, 127) as i8);
    let photo = el.elements().find_map(avatar::photo_update);
    let texts = Texts::new();
    let extensions = el
        .elements()
        .filter(|c| {
            let standard =
                c.ns == content && matches!(c.name.as_str(), "show" | "status" | "priority");
            let read = photo.is_some() && c.is(avatar::NS_VCARD_UPDATE, "x");
            !(standard || read || dropped(c))
        })
        .map(|c| texts.text(c))
        .collect();
    PresenceBody {
        status,
        priority,
        avatar: photo,
        extensions,
    }
}
