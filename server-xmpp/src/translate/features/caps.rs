//! Entity capabilities of the server (XEP-0115): the `<c/>` stream feature whose `ver` is the hash of what the
//! domain's disco#info answers, so a client that saw this `ver` before can skip the disco#info round trip.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha1::{Digest, Sha1};
use xmpp_codec::Element;

use super::Features;

/// `http://jabber.org/protocol/caps`.
pub const NS_CAPS: &str = "http://jabber.org/protocol/caps";
/// The node that names this software (XEP-0115 §4: a URI of the software).
pub const NODE: &str = "https://presenced.example/caps";

/// One disco#info identity: category, type, `xml:lang` and name (empty when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity<'a> {
    /// `category`.
    pub category: &'a str,
    /// `type`.
    pub kind: &'a str,
    /// `xml:lang`.
    pub lang: &'a str,
    /// `name`.
    pub name: &'a str,
}

/// The identity the domain's disco#info lists.
pub const SERVER_IDENTITY: Identity<'static> = Identity {
    category: "server",
    kind: "im",
    lang: "",
    name: "presenced",
};

/// The verification string of XEP-0115 §5.1 (without extended forms: the server's disco#info has none), base64
/// of the SHA-1 of the sorted identities and features, each followed by `<`.
pub fn ver(identities: &[Identity<'_>], features: &[&str]) -> String {
    let mut ids: Vec<String> = identities
        .iter()
        .map(|i| format!("{}/{}/{}/{}<", i.category, i.kind, i.lang, i.name))
        .collect();
    ids.sort_unstable();
    let mut features = features.to_vec();
    features.sort_unstable();
    let mut s = ids.concat();
    for f in features {
        s.push_str(f);
        s.push('<');
    }
    B64.encode(Sha1::digest(s.as_bytes()))
}

/// The server's own verification string, from exactly what its disco#info answers.
pub fn server_ver(features: &Features) -> String {
    ver(&[SERVER_IDENTITY], &features.disco())
}

/// The `<c/>` stream feature (XEP-0115 §6.3).
pub fn stream_feature(features: &Features) -> Element {
    Element::new(NS_CAPS, "c")
        .with_attr("hash", "sha-1")
        .with_attr("node", NODE)
        .with_attr("ver", server_ver(features))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xep_0115_simple_example() {
        // XEP-0115 §5.2.
        let exodus = Identity {
            category: "client",
            kind: "pc",
            lang: "",
            name: "Exodus 0.9.1",
        };
        let features = [
            "http://jabber.org/protocol/muc",
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/caps",
            "http://jabber.org/protocol/disco#items",
        ];
        assert_eq!(ver(&[exodus], &features), "QgayPKawpkPSDYmwT/WM94uAlu0=");
    }

    #[test]
    fn identities_are_sorted_before_hashing() {
        let a = Identity {
            category: "client",
            kind: "pc",
            lang: "en",
            name: "A",
        };
        let b = Identity {
            category: "client",
            kind: "pc",
            lang: "de",
            name: "B",
        };
        assert_eq!(ver(&[a, b], &["x"]), ver(&[b, a], &["x"]));
    }

    #[test]
    fn the_server_ver_changes_with_its_features() {
        let all = Features::standard();
        assert_ne!(server_ver(&all), server_ver(&all.clone().without(&["pep"])));
    }
}
