//! The user's own presence settings over XMPP, in a namespace of this server: no XEP covers "show me as do not
//! disturb while I am on the phone" or "in a meeting", nor an on/off switch for sharing presence at all, so
//! `presenced` defines one and advertises it in disco#info.
//!
//! ```xml
//! <iq type='get' id='s1'><settings xmlns='urn:presenced:presence-settings:0'/></iq>
//! <iq type='result' id='s1'>
//!   <settings xmlns='urn:presenced:presence-settings:0'
//!             dnd-on-phone='false' dnd-in-meeting='false' share-availability='true'/>
//! </iq>
//!
//! <iq type='set' id='s2'><settings xmlns='urn:presenced:presence-settings:0' dnd-on-phone='true'/></iq>
//! <iq type='result' id='s2'/>
//! ```
//!
//! A set changes only the attributes it carries. Values are XML Schema booleans (`true`, `false`, `1`, `0`);
//! anything else is a `bad-request` and nothing changes. Attributes this version does not know are ignored, so a
//! newer client can send them to an older server. The `:0` marks the namespace as this server's own and
//! unstable; a change that old clients would misread gets a new number.

use presence_core::feature::{Call, settings};
use presence_core::policy::PresenceSettings;
use presence_core::stanza::ErrorCondition;
use xmpp_codec::{Element, IqType};

use super::{Feature, FromClient, Iq};

/// The namespace of the presence settings (server-specific; no XEP defines it).
pub const NS_PRESENCE_SETTINGS: &str = "urn:presenced:presence-settings:0";

const DND_ON_PHONE: &str = "dnd-on-phone";
const DND_IN_MEETING: &str = "dnd-in-meeting";
const SHARE_AVAILABILITY: &str = "share-availability";

/// The registry's entry.
pub const FEATURE: Feature = Feature {
    name: "settings",
    disco: &[NS_PRESENCE_SETTINGS],
    payloads: &[(NS_PRESENCE_SETTINGS, "settings")],
    iq,
};

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    if !iq.for_own_account() {
        return None;
    }
    Some(match call(iq.iq_type, iq.payload) {
        Ok(call) => iq.call(Call::Settings(call)),
        Err((condition, text)) => iq.error(condition, Some(&text)),
    })
}

/// Reads a `<settings/>` get or set, or says why it is a `bad-request`.
fn call(iq_type: IqType, settings: &Element) -> Result<settings::Call, (ErrorCondition, String)> {
    match iq_type {
        IqType::Get => Ok(settings::Call::Get),
        _ => {
            let flag = |name: &str| -> Result<Option<bool>, (ErrorCondition, String)> {
                settings.attr(name).map(|v| boolean(name, v)).transpose()
            };
            Ok(settings::Call::Set(settings::Change {
                dnd_on_phone: flag(DND_ON_PHONE)?,
                dnd_in_meeting: flag(DND_IN_MEETING)?,
                share_availability: flag(SHARE_AVAILABILITY)?,
            }))
        }
    }
}

/// An XML Schema boolean (XSD §3.3.2: `true`, `false`, `1`, `0`; surrounding whitespace is collapsed).
fn boolean(name: &str, value: &str) -> Result<bool, (ErrorCondition, String)> {
    match value.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err((
            ErrorCondition::BadRequest,
            format!("'{name}' must be 'true', 'false', '1' or '0'"),
        )),
    }
}

/// The `<settings/>` element of a result: every setting, spelled `true` or `false`.
pub fn element(settings: &PresenceSettings) -> Element {
    let b = |v: bool| if v { "true" } else { "false" };
    Element::new(NS_PRESENCE_SETTINGS, "settings")
        .with_attr(DND_ON_PHONE, b(settings.dnd_on_phone))
        .with_attr(DND_IN_MEETING, b(settings.dnd_in_meeting))
        .with_attr(SHARE_AVAILABILITY, b(settings.share_availability))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(attrs: &[(&str, &str)]) -> Result<settings::Call, (ErrorCondition, String)> {
        let mut el = Element::new(NS_PRESENCE_SETTINGS, "settings");
        for (k, v) in attrs {
            el = el.with_attr(*k, *v);
        }
        call(IqType::Set, &el)
    }

    fn flags(call: settings::Call) -> (Option<bool>, Option<bool>, Option<bool>) {
        match call {
            settings::Call::Set(c) => (c.dnd_on_phone, c.dnd_in_meeting, c.share_availability),
            other => panic!("not a settings set: {other:?}"),
        }
    }

    #[test]
    fn a_set_carries_only_the_attributes_given_in_every_boolean_spelling() {
        assert_eq!(flags(set(&[]).unwrap()), (None, None, None));
        assert_eq!(
            flags(set(&[("dnd-on-phone", "true")]).unwrap()),
            (Some(true), None, None)
        );
        assert_eq!(
            flags(
                set(&[
                    ("dnd-on-phone", "0"),
                    ("dnd-in-meeting", "1"),
                    ("share-availability", "false"),
                    ("future-setting", "whatever"),
                ])
                .unwrap()
            ),
            (Some(false), Some(true), Some(false))
        );
    }

    #[test]
    fn anything_but_an_xsd_boolean_is_a_bad_request() {
        for bad in ["yes", "TRUE", "", "2", "on"] {
            let (condition, text) = set(&[("share-availability", bad)]).unwrap_err();
            assert_eq!(condition, ErrorCondition::BadRequest, "{bad:?}");
            assert!(text.contains("share-availability"), "{text}");
        }
    }

    #[test]
    fn a_get_ignores_attributes_and_a_result_spells_every_setting() {
        let el = Element::new(NS_PRESENCE_SETTINGS, "settings").with_attr("dnd-on-phone", "x");
        assert!(matches!(call(IqType::Get, &el), Ok(settings::Call::Get)));
        let out = element(&PresenceSettings {
            dnd_on_phone: true,
            dnd_in_meeting: false,
            share_availability: true,
        });
        assert_eq!(out.attr("dnd-on-phone"), Some("true"));
        assert_eq!(out.attr("dnd-in-meeting"), Some("false"));
        assert_eq!(out.attr("share-availability"), Some("true"));
    }
}
