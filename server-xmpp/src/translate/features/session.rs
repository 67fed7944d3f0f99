//! RFC 3921 legacy session establishment: still sent by some clients, and a no-op since RFC 6121.

use xmpp_codec::IqType;

use super::{Feature, FromClient, Iq};

/// The legacy session namespace.
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";

/// The registry's entry; advertised in the stream features (as optional), not in disco#info.
pub const FEATURE: Feature = Feature {
    name: "session",
    disco: &[],
    payloads: &[(NS_SESSION, "session")],
    iq,
};

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    (iq.iq_type == IqType::Set && iq.for_server()).then(|| iq.result(vec![]))
}
