//! Service discovery (XEP-0030), answered by the shell from the feature registry.

use xmpp_codec::{Element, IqType};

use presence_core::stanza::ErrorCondition;

use super::{Feature, FromClient, Iq, app_push, caps, pep, upload};

/// XEP-0030 info.
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0030 items.
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// The registry's entry.
pub const FEATURE: Feature = Feature {
    name: "disco",
    disco: &[NS_DISCO_INFO, NS_DISCO_ITEMS],
    payloads: &[(NS_DISCO_INFO, "query"), (NS_DISCO_ITEMS, "query")],
    iq,
};

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    if iq.iq_type != IqType::Get {
        return None;
    }
    if iq.payload.ns == NS_DISCO_ITEMS {
        let mut q = Element::new(NS_DISCO_ITEMS, "query");
        // The domain's services (XEP-0030 §4): the room service, where there is one.
        if iq.for_domain()
            && iq.payload.attr("node").is_none()
            && let Some(item) = super::muc::service_item(iq)
        {
            q = q.with_child(item);
        }
        return (iq.for_server() || iq.for_any_account()).then(|| iq.result(vec![q]));
    }
    if iq.for_domain() {
        let mut q = Element::new(NS_DISCO_INFO, "query");
        // XEP-0115 §6.2: asked for the node#ver of the server's caps, the same info, naming the node.
        if let Some(node) = iq.payload.attr("node") {
            if node != format!("{}#{}", caps::NODE, caps::server_ver(iq.me.features)) {
                return Some(iq.error(ErrorCondition::ItemNotFound, None));
            }
            q = q.with_attr("node", node);
        }
        let id = caps::SERVER_IDENTITY;
        q = q.with_child(
            Element::new(NS_DISCO_INFO, "identity")
                .with_attr("category", id.category)
                .with_attr("type", id.kind)
                .with_attr("name", id.name),
        );
        // The domain is its own upload service (XEP-0363 §3): clients look for this identity and read the size
        // limit from the form.
        let upload = iq.me.features.upload();
        if upload.is_some() {
            let (category, kind) = upload::IDENTITY;
            q = q.with_child(
                Element::new(NS_DISCO_INFO, "identity")
                    .with_attr("category", category)
                    .with_attr("type", kind)
                    .with_attr("name", "HTTP File Upload"),
            );
        }
        for f in iq.me.features.disco() {
            q = q.with_child(Element::new(NS_DISCO_INFO, "feature").with_attr("var", f));
        }
        if let Some(issuer) = upload {
            q = q.with_child(upload::disco_form(issuer.max_file_size()));
        }
        return Some(iq.result(vec![q]));
    }
    // XEP-0030 §3.1 answered by the server on behalf of an account.
    (iq.for_server() || iq.for_any_account()).then(|| {
        let mut q = Element::new(NS_DISCO_INFO, "query").with_child(
            Element::new(NS_DISCO_INFO, "identity")
                .with_attr("category", "account")
                .with_attr("type", "registered"),
        );
        let mut features = vec![NS_DISCO_INFO];
        // The services every account hosts (XEP-0163 §6.1), from their registry entries so that what the account
        // advertises is what it serves.
        if iq.me.features.is_on(pep::FEATURE.name) {
            let (category, kind) = pep::IDENTITY;
            q = q.with_child(
                Element::new(NS_DISCO_INFO, "identity")
                    .with_attr("category", category)
                    .with_attr("type", kind),
            );
            features.extend(pep::FEATURE.disco);
        }
        if iq.me.features.is_on(app_push::FEATURE.name) {
            features.extend(app_push::FEATURE.disco);
        }
        for f in features {
            q = q.with_child(Element::new(NS_DISCO_INFO, "feature").with_attr("var", f));
        }
        iq.result(vec![q])
    })
}
