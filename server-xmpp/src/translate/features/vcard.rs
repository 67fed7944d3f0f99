//! vCard-temp (XEP-0054): the user sets their own card; anyone may read any local user's card. Its PHOTO is the
//! account's avatar, converted to and from PEP (XEP-0398, see [`super::avatar`]).

use presence_core::Jid;
use presence_core::feature::{Call, vcard};
use presence_core::stanza::ErrorCondition;
use xmpp_codec::{Element, IqType};

use super::{Feature, FromClient, Iq, avatar, xml};

/// XEP-0054.
pub const NS_VCARD: &str = "vcard-temp";

/// The registry's entry.
pub const FEATURE: Feature = Feature {
    name: "vcard",
    disco: &[NS_VCARD, avatar::NS_CONVERSION],
    payloads: &[(NS_VCARD, "vCard")],
    iq,
};

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    Some(match iq.iq_type {
        IqType::Get => {
            let of = match iq.to {
                Some(t) if t.bare() != iq.me.jid.bare() => {
                    // The server's own card, or a full JID's (answered by a client, not routed yet).
                    if t.bare().local().is_none() || matches!(t, Jid::Full(_)) {
                        return None;
                    }
                    Some(t.bare().clone())
                }
                _ => None,
            };
            iq.call(Call::VCard(vcard::Call::Get { of }))
        }
        _ if !iq.for_own_account() => iq.error(
            ErrorCondition::Forbidden,
            Some("only the user sets their own vCard"),
        ),
        _ => {
            let (card, photo) = avatar::take_photo(iq.payload.clone());
            iq.call(Call::VCard(vcard::Call::Set {
                xml: xml::to_text(&card),
                photo,
            }))
        }
    })
}

/// The `<vCard/>` of a get's result (empty for a user who never set one), with the avatar as its PHOTO.
pub fn answer(answer: &vcard::Answer) -> Element {
    let card = answer
        .xml
        .as_deref()
        .and_then(xml::from_text)
        .unwrap_or_else(|| Element::new(NS_VCARD, "vCard"));
    avatar::with_photo(card, &answer.photo)
}
