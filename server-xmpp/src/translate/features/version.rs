//! Software version (XEP-0092).

use xmpp_codec::{Element, IqType};

use super::{Feature, FromClient, Iq};

/// XEP-0092.
pub const NS_VERSION: &str = "jabber:iq:version";

/// The registry's entry.
pub const FEATURE: Feature = Feature {
    name: "version",
    disco: &[NS_VERSION],
    payloads: &[(NS_VERSION, "query")],
    iq,
};

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    (iq.iq_type == IqType::Get && iq.for_server()).then(|| {
        iq.result(vec![
            Element::new(NS_VERSION, "query")
                .with_child(Element::new(NS_VERSION, "name").with_text("presenced"))
                .with_child(
                    Element::new(NS_VERSION, "version").with_text(env!("CARGO_PKG_VERSION")),
                ),
        ])
    })
}
