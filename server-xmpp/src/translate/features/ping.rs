//! XMPP ping (XEP-0199): the server answers a client's ping.

use xmpp_codec::IqType;

use super::{Feature, FromClient, Iq};

/// XEP-0199.
pub const NS_PING: &str = "urn:xmpp:ping";

/// The registry's entry.
pub const FEATURE: Feature = Feature {
    name: "ping",
    disco: &[NS_PING],
    payloads: &[(NS_PING, "ping")],
    iq,
};

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    (iq.iq_type == IqType::Get && iq.for_server()).then(|| iq.result(vec![]))
}
