//! Avatars in XML (XEP-0398): the shell's half of the conversion the engine does (`presence_core::feature::avatar`).
//! Read here: a vCard's PHOTO, the `<info/>` of an avatar metadata item, the `vcard-temp:x:update` of a presence.
//! Written here: the PHOTO of a card read back and the `vcard-temp:x:update` of a presence going out.
//!
//! Not a feature of the registry of its own: the conversion needs both vCards and PEP, and the vCard feature
//! advertises it ([`NS_CONVERSION`]), since that is where a client sees its effect.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use presence_core::feature::avatar::{AvatarHash, Image, Info, Metadata, MimeType, PhotoUpdate};
use presence_core::feature::vcard::{CardPhoto, SetPhoto};
use xmpp_codec::{Element, Node};

use super::vcard::NS_VCARD;
use super::xml;

/// XEP-0398's disco#info feature.
pub const NS_CONVERSION: &str = "urn:xmpp:pep-vcard-conversion:0";
/// XEP-0153's presence element.
pub const NS_VCARD_UPDATE: &str = "vcard-temp:x:update";
/// XEP-0084's metadata payload (also the node's name).
pub const NS_METADATA: &str = presence_core::feature::avatar::METADATA_NODE;
/// XEP-0084's data payload (also the node's name).
pub const NS_DATA: &str = presence_core::feature::avatar::DATA_NODE;

/// vCards' BINVAL: base64 as clients write it, padded or not, and (removed before decoding) broken into lines.
const BINVAL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a presence's `vcard-temp:x:update` says; `None` for an element that is not one or says something
/// unreadable (a malformed hash), which then passes on untouched as any other extension.
pub fn photo_update(el: &Element) -> Option<PhotoUpdate> {
    if !el.is(NS_VCARD_UPDATE, "x") {
        return None;
    }
    match el.child(NS_VCARD_UPDATE, "photo").map(|p| p.text()) {
        None => Some(PhotoUpdate::NotReady),
        Some(t) if t.trim().is_empty() => Some(PhotoUpdate::NoPhoto),
        Some(t) => AvatarHash::parse(&t).ok().map(PhotoUpdate::Hash),
    }
}

/// The `vcard-temp:x:update` saying `update`.
pub fn photo_update_element(update: &PhotoUpdate) -> Element {
    let x = Element::new(NS_VCARD_UPDATE, "x");
    match update {
        PhotoUpdate::NotReady => x,
        PhotoUpdate::NoPhoto => x.with_child(Element::new(NS_VCARD_UPDATE, "photo")),
        PhotoUpdate::Hash(h) => {
            x.with_child(Element::new(NS_VCARD_UPDATE, "photo").with_text(h.as_str()))
        }
    }
}

/// What an avatar metadata payload says; `None` when it is not one the engine can act on (another element, an
/// `<info/>` without a readable id, type or size), which is then published and nothing more.
pub fn metadata(payload: &Element) -> Option<Metadata> {
    if !payload.is(NS_METADATA, "metadata") {
        return None;
    }
    let infos: Vec<&Element> = payload
        .elements()
        .filter(|e| e.is(NS_METADATA, "info"))
        .collect();
    // The image the data node can hold is the one without a `url` (XEP-0084); the others are kept elsewhere.
    let Some(info) = infos
        .iter()
        .find(|i| i.attr("url").is_none())
        .or(infos.first())
    else {
        return Some(Metadata::Disabled);
    };
    Some(Metadata::Avatar(Info {
        hash: AvatarHash::parse(info.attr("id")?).ok()?,
        mime: MimeType::parse(info.attr("type")?).ok()?,
        bytes: info.attr("bytes")?.trim().parse().ok()?,
    }))
}

/// A card being set, without its PHOTO when that is an image the engine takes as the avatar, and what the PHOTO
/// said.
pub fn take_photo(mut card: Element) -> (Element, SetPhoto) {
    let Some(photo) = card.child(NS_VCARD, "PHOTO") else {
        return (card, SetPhoto::None);
    };
    let binval = photo.child(NS_VCARD, "BINVAL").map(|b| b.text());
    let set = match binval {
        // An empty PHOTO is how some clients say "none".
        None if photo.child(NS_VCARD, "EXTVAL").is_none() => SetPhoto::None,
        None => SetPhoto::Kept,
        Some(b64) => {
            let mime = photo
                .child(NS_VCARD, "TYPE")
                .and_then(|t| MimeType::parse(&t.text()).ok());
            let compact: String = b64.split_ascii_whitespace().collect();
            match (mime, BINVAL.decode(compact)) {
                (Some(mime), Ok(data)) if !data.is_empty() => {
                    SetPhoto::Image(Image::new(mime, data))
                }
                _ => SetPhoto::Kept,
            }
        }
    };
    if !matches!(set, SetPhoto::Kept) {
        remove_photos(&mut card);
    }
    (card, set)
}

/// The card read back with the PHOTO the engine says it has.
pub fn with_photo(mut card: Element, photo: &CardPhoto) -> Element {
    match photo {
        CardPhoto::AsStored => card,
        CardPhoto::Without => {
            remove_photos(&mut card);
            card
        }
        CardPhoto::Image { mime, data } => {
            remove_photos(&mut card);
            // The data item as its publisher wrote it: its text is the base64 (perhaps with line breaks).
            let Some(b64) = xml::from_text(data)
                .filter(|d| d.is(NS_DATA, "data"))
                .map(|d| d.text().split_ascii_whitespace().collect::<String>())
            else {
                return card;
            };
            card.with_child(
                Element::new(NS_VCARD, "PHOTO")
                    .with_child(Element::new(NS_VCARD, "TYPE").with_text(mime.as_str()))
                    .with_child(Element::new(NS_VCARD, "BINVAL").with_text(b64)),
            )
        }
    }
}

fn remove_photos(card: &mut Element) {
    card.children
        .retain(|c| !matches!(c, Node::Element(e) if e.is(NS_VCARD, "PHOTO")));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Element {
        xml::from_text(text).expect("well-formed")
    }

    #[test]
    fn presence_updates_are_read_and_written_alike() {
        let hash = AvatarHash::of(b"x");
        for update in [
            PhotoUpdate::NotReady,
            PhotoUpdate::NoPhoto,
            PhotoUpdate::Hash(hash.clone()),
        ] {
            assert_eq!(photo_update(&photo_update_element(&update)), Some(update));
        }
        let upper = format!(
            "<x xmlns='vcard-temp:x:update'><photo> {} </photo></x>",
            hash.as_str().to_uppercase()
        );
        assert_eq!(photo_update(&parse(&upper)), Some(PhotoUpdate::Hash(hash)));
        assert_eq!(
            photo_update(&parse(
                "<x xmlns='vcard-temp:x:update'><photo>nohash</photo></x>"
            )),
            None
        );
    }

    #[test]
    fn metadata_names_the_image_the_data_node_holds() {
        let id = AvatarHash::of(b"img");
        let meta = parse(&format!(
            "<metadata xmlns='urn:xmpp:avatar:metadata'>\
             <info id='{0}' url='https://x/a.gif' bytes='9' type='image/gif'/>\
             <info id='{0}' bytes='3' type='image/png' width='1' height='1'/></metadata>",
            id.as_str()
        ));
        assert_eq!(
            metadata(&meta),
            Some(Metadata::Avatar(Info {
                hash: id,
                mime: MimeType::parse("image/png").expect("valid"),
                bytes: 3,
            }))
        );
        assert_eq!(
            metadata(&parse("<metadata xmlns='urn:xmpp:avatar:metadata'/>")),
            Some(Metadata::Disabled)
        );
        assert_eq!(
            metadata(&parse(
                "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='bad'/></metadata>"
            )),
            None
        );
    }

    #[test]
    fn a_photo_leaves_the_card_and_comes_back_from_the_data_item() {
        let card = parse(
            "<vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><TYPE>image/png</TYPE>\
             <BINVAL>aW1h\nZ2U</BINVAL></PHOTO></vCard>",
        );
        let (rest, photo) = take_photo(card);
        let SetPhoto::Image(image) = photo else {
            panic!("an image: {photo:?}")
        };
        assert_eq!(image.data(), b"image");
        assert_eq!(rest, parse("<vCard xmlns='vcard-temp'><FN>A</FN></vCard>"));
        let back = with_photo(
            rest.clone(),
            &CardPhoto::Image {
                mime: MimeType::parse("image/png").expect("valid"),
                data: "<data xmlns='urn:xmpp:avatar:data'>aW1hZ2U=</data>".into(),
            },
        );
        assert_eq!(
            back,
            parse(
                "<vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><TYPE>image/png</TYPE>\
                 <BINVAL>aW1hZ2U=</BINVAL></PHOTO></vCard>"
            )
        );
        assert_eq!(with_photo(back, &CardPhoto::Without), rest);
    }

    #[test]
    fn photos_the_server_cannot_convert_stay_in_the_card() {
        for photo in [
            "<PHOTO><EXTVAL>https://x/a.png</EXTVAL></PHOTO>",
            "<PHOTO><BINVAL>aW1hZ2U=</BINVAL></PHOTO>",
            "<PHOTO><TYPE>image/png</TYPE><BINVAL>!!</BINVAL></PHOTO>",
        ] {
            let card = parse(&format!("<vCard xmlns='vcard-temp'>{photo}</vCard>"));
            assert_eq!(take_photo(card.clone()), (card, SetPhoto::Kept), "{photo}");
        }
        let empty = parse("<vCard xmlns='vcard-temp'><PHOTO/></vCard>");
        assert_eq!(
            take_photo(empty),
            (Element::new(NS_VCARD, "vCard"), SetPhoto::None)
        );
    }
}
