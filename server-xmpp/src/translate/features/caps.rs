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

/// An extended information form (XEP-0128) as XEP-0115 §5.1 hashes it: its `FORM_TYPE` and its other fields
/// with their values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Form {
    /// The `FORM_TYPE` field's value.
    pub form_type: String,
    /// The other fields: `var` and values.
    pub fields: Vec<(String, Vec<String>)>,
}

/// The verification string of XEP-0115 §5.1: base64 of the SHA-1 of the sorted identities, the sorted features
/// and the forms sorted by `FORM_TYPE` (fields sorted by `var`, values sorted), each item followed by `<`.
pub fn ver(identities: &[Identity<'_>], features: &[&str], forms: &[Form]) -> String {
    let mut ids: Vec<String> = identities
        .iter()
        .map(|i| format!("{}/{}/{}/{}<", i.category, i.kind, i.lang, i.name))
        .collect();
    ids.sort_unstable();
    let mut features = features.to_vec();
    features.sort_unstable();
    let mut s = ids.concat();
    let mut push = |item: &str| {
        s.push_str(item);
        s.push('<');
    };
    for f in features {
        push(f);
    }
    let mut forms: Vec<&Form> = forms.iter().collect();
    forms.sort_unstable_by(|a, b| a.form_type.cmp(&b.form_type));
    for form in forms {
        push(&form.form_type);
        let mut fields: Vec<&(String, Vec<String>)> = form.fields.iter().collect();
        fields.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (var, values) in fields {
            push(var);
            let mut values: Vec<&String> = values.iter().collect();
            values.sort_unstable();
            for v in values {
                push(v);
            }
        }
    }
    B64.encode(Sha1::digest(s.as_bytes()))
}

/// The server's own verification string, from exactly what its disco#info answers.
pub fn server_ver(features: &Features) -> String {
    ver(&[SERVER_IDENTITY], &features.disco(), &[])
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
        assert_eq!(
            ver(&[exodus], &features, &[]),
            "QgayPKawpkPSDYmwT/WM94uAlu0="
        );
    }

    #[test]
    fn the_xep_0115_complex_example_with_a_form() {
        // XEP-0115 §5.3.
        let psi = |lang, name| Identity {
            category: "client",
            kind: "pc",
            lang,
            name,
        };
        let features = [
            "http://jabber.org/protocol/disco#items",
            "http://jabber.org/protocol/caps",
            "http://jabber.org/protocol/muc",
            "http://jabber.org/protocol/disco#info",
        ];
        let field = |var: &str, values: &[&str]| {
            (
                var.to_owned(),
                values.iter().map(|v| (*v).to_owned()).collect(),
            )
        };
        let form = Form {
            form_type: "urn:xmpp:dataforms:softwareinfo".into(),
            fields: vec![
                field("software_version", &["0.11"]),
                field("ip_version", &["ipv6", "ipv4"]),
                field("os", &["Mac"]),
                field("os_version", &["10.5.1"]),
                field("software", &["Psi"]),
            ],
        };
        assert_eq!(
            ver(
                &[psi("en", "Psi 0.11"), psi("el", "Ψ 0.11")],
                &features,
                &[form]
            ),
            "q07IKJEyjvHSyhy//CH0CxmKi8w="
        );
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
        assert_eq!(ver(&[a, b], &["x"], &[]), ver(&[b, a], &["x"], &[]));
    }

    #[test]
    fn the_server_ver_changes_with_its_features() {
        let all = Features::standard();
        assert_ne!(server_ver(&all), server_ver(&all.clone().without(&["pep"])));
    }
}
