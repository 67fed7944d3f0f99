//! Offline messages (XEP-0160), marked with delayed delivery (XEP-0203). The engine holds and delivers them; no
//! IQ is involved, so the feature only stands for its disco#info entries.

use super::{Feature, FromClient, Iq};

/// XEP-0203.
pub const NS_DELAY: &str = "urn:xmpp:delay";

/// The registry's entry.
pub const FEATURE: Feature = Feature {
    name: "offline",
    disco: &["msgoffline", NS_DELAY],
    payloads: &[],
    iq,
};

fn iq(_: &Iq<'_>) -> Option<FromClient> {
    None
}
