//! HTTP File Upload (XEP-0363): the slot request. The server's own domain is the upload service (it carries the
//! `store/file` identity, the feature and the `max-file-size` form in its disco#info), so clients find it without a
//! separate component address. Slots are made by a [`SlotIssuer`] the embedding process supplies: the HTTP side
//! (where files are stored, how URLs are signed, quotas) is not the XMPP shell's business. Issuing may read the
//! disk (quota), so it runs on the blocking pool ([`FromClient::Upload`], answered by the connection).

use std::sync::Arc;

use presence_core::stanza::ErrorCondition;
use presence_core::{BareJid, FullJid};
use xmpp_codec::{Element, IqType, Node, ns};

use super::{Feature, FromClient, Iq};
use crate::translate::iq_error;

/// XEP-0363.
pub const NS_UPLOAD: &str = "urn:xmpp:http:upload:0";
/// XEP-0004, for the `max-file-size` form of disco#info (XEP-0128).
const NS_DATA: &str = "jabber:x:data";

/// The registry's entry; on only when the process supplies an issuer ([`super::Features::with_upload`]).
pub const FEATURE: Feature = Feature {
    name: "upload",
    disco: &[NS_UPLOAD],
    payloads: &[(NS_UPLOAD, "request")],
    iq,
};

/// The disco#info identity of an upload service (XEP-0363 §3), which clients look for.
pub const IDENTITY: (&str, &str) = ("store", "file");

/// A client's slot request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRequest {
    /// The IQ's id.
    pub id: String,
    /// Whom the request was addressed to (echoed as `from`).
    pub to: Option<String>,
    /// The file's name as the client gave it.
    pub filename: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its MIME type, if the client named one.
    pub content_type: Option<String>,
}

/// A granted slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Where the client PUTs the file.
    pub put: String,
    /// Where it is fetched from afterwards.
    pub get: String,
    /// Headers the PUT must carry (XEP-0363 §5 allows only a few).
    pub headers: Vec<(String, String)>,
}

/// Why a slot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The file is larger than the service takes (XEP-0363 §4, `<file-too-large/>`).
    #[error("the file is larger than the largest allowed, {max} bytes")]
    TooLarge {
        /// The largest file taken.
        max: u64,
    },
    /// The user's quota would be exceeded.
    #[error("the upload quota of {quota} bytes would be exceeded")]
    Quota {
        /// The quota.
        quota: u64,
    },
    /// The request cannot be served as asked.
    #[error("{0}")]
    BadRequest(String),
    /// The service failed (the disk); try later.
    #[error("the upload service failed")]
    Internal,
}

/// What makes slots. Called on the blocking pool.
pub trait SlotIssuer: Send + Sync + std::fmt::Debug {
    /// The largest file taken, advertised in disco#info.
    fn max_file_size(&self) -> u64;
    /// A slot for `user`'s file, or why not.
    fn issue(&self, user: &BareJid, request: &SlotRequest) -> Result<Slot, Refusal>;
}

fn iq(iq: &Iq<'_>) -> Option<FromClient> {
    if !iq.for_domain() {
        return None;
    }
    if iq.iq_type != IqType::Get {
        return Some(iq.error(
            ErrorCondition::BadRequest,
            Some("a slot is requested with an iq get"),
        ));
    }
    let p = iq.payload;
    let filename = p.attr("filename").unwrap_or_default().trim();
    let Some(size) = p.attr("size").and_then(|s| s.trim().parse::<u64>().ok()) else {
        return Some(iq.error(
            ErrorCondition::BadRequest,
            Some("the request needs a numeric 'size'"),
        ));
    };
    if filename.is_empty() {
        return Some(iq.error(
            ErrorCondition::BadRequest,
            Some("the request needs a 'filename'"),
        ));
    }
    Some(FromClient::Upload(SlotRequest {
        id: iq.id.to_owned(),
        to: iq.stanza.to().map(str::to_owned),
        filename: filename.to_owned(),
        size,
        content_type: p
            .attr("content-type")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
    }))
}

/// The disco#info extension of the service (XEP-0363 §3, XEP-0128): the largest file taken.
pub fn disco_form(max_file_size: u64) -> Element {
    let field = |var: &str, value: &str| {
        Element::new(NS_DATA, "field")
            .with_attr("var", var)
            .with_child(Element::new(NS_DATA, "value").with_text(value))
    };
    Element::new(NS_DATA, "x")
        .with_attr("type", "result")
        .with_child(field("FORM_TYPE", NS_UPLOAD).with_attr("type", "hidden"))
        .with_child(field("max-file-size", &max_file_size.to_string()))
}

/// Asks `issuer` for a slot off the I/O workers and renders the answer.
pub async fn answer(issuer: Arc<dyn SlotIssuer>, me: &FullJid, request: SlotRequest) -> Element {
    let user = me.bare().clone();
    let asked = request.clone();
    let granted = tokio::task::spawn_blocking(move || issuer.issue(&user, &asked))
        .await
        .unwrap_or(Err(Refusal::Internal));
    render(me, &request, granted)
}

fn render(me: &FullJid, request: &SlotRequest, granted: Result<Slot, Refusal>) -> Element {
    let error = |condition, text: &str| {
        iq_error(
            Some(&request.id),
            &me.to_string(),
            request.to.as_deref(),
            condition,
            Some(text),
        )
    };
    match granted {
        Ok(slot) => {
            let mut put = Element::new(NS_UPLOAD, "put").with_attr("url", slot.put);
            for (name, value) in slot.headers {
                put = put.with_child(
                    Element::new(NS_UPLOAD, "header")
                        .with_attr("name", name)
                        .with_text(value),
                );
            }
            let mut el = Element::new(ns::CLIENT, "iq")
                .with_attr("type", "result")
                .with_attr("id", &request.id)
                .with_attr("to", me.to_string());
            if let Some(t) = &request.to {
                el = el.with_attr("from", t);
            }
            el.with_child(
                Element::new(NS_UPLOAD, "slot")
                    .with_child(put)
                    .with_child(Element::new(NS_UPLOAD, "get").with_attr("url", slot.get)),
            )
        }
        Err(r @ Refusal::TooLarge { max }) => {
            // XEP-0363 §4: not-acceptable with the service's limit, so the client can tell the user.
            let mut el = error(ErrorCondition::NotAcceptable, &r.to_string());
            if let Some(Node::Element(e)) = el.children.last_mut() {
                e.children.push(Node::Element(
                    Element::new(NS_UPLOAD, "file-too-large").with_child(
                        Element::new(NS_UPLOAD, "max-file-size").with_text(max.to_string()),
                    ),
                ));
            }
            el
        }
        // XEP-0363 §4: a quota reached is a temporary resource-constraint (files expire, space comes back).
        Err(r @ Refusal::Quota { .. }) => error(ErrorCondition::ResourceConstraint, &r.to_string()),
        Err(Refusal::BadRequest(text)) => error(ErrorCondition::BadRequest, &text),
        Err(r @ Refusal::Internal) => error(ErrorCondition::InternalServerError, &r.to_string()),
    }
}
