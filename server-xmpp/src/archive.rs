//! Answers a client's archive query (XEP-0313) from the store: one `<message/>` per result, then the final
//! `<iq type='result'><fin/></iq>` with the RSM summary. The read runs on the blocking pool, as SASL's do.

use std::sync::Arc;

use presence_core::FullJid;
use presence_core::archive::Page;
use presence_core::stanza::ErrorCondition;
use presence_core::store::Store;
use tracing::warn;
use xmpp_codec::{Element, ns};

use crate::translate::features::carbons::NS_FORWARD;
use crate::translate::features::mam::{ArchiveRequest, NS_MAM, NS_RSM};
use crate::translate::features::offline::NS_DELAY;
use crate::translate::{format_stamp, iq_error, message_element};

/// The stanzas answering `request` of the session `me`, in the order they are sent.
pub async fn answer<S: Store + Send + Sync + 'static>(
    store: Arc<S>,
    me: &FullJid,
    request: ArchiveRequest,
) -> Vec<Element> {
    let user = me.bare().clone();
    let query = request.query.clone();
    let read = tokio::task::spawn_blocking(move || store.archive_query(&user, &query)).await;
    match read {
        Ok(Ok(page)) => render(page, me, request),
        Ok(Err(e)) => {
            warn!(error = %e, user = %me.bare(), "archive query failed");
            vec![unavailable(me, &request)]
        }
        Err(e) => {
            warn!(error = %e, "archive query task failed");
            vec![unavailable(me, &request)]
        }
    }
}

fn unavailable(me: &FullJid, request: &ArchiveRequest) -> Element {
    iq_error(
        Some(&request.id),
        &me.to_string(),
        None,
        ErrorCondition::InternalServerError,
        Some("the archive could not be read; try again later"),
    )
}

fn render(page: Page, me: &FullJid, request: ArchiveRequest) -> Vec<Element> {
    let me_s = me.to_string();
    let domain = me.bare().domain();
    let first = page.messages.first().map(|m| m.id);
    let last = page.messages.last().map(|m| m.id);
    let mut messages = page.messages;
    if request.flip {
        messages.reverse();
    }
    let mut out: Vec<Element> = messages
        .into_iter()
        .map(|m| {
            let stamp = m.message.stamp;
            let mut result = Element::new(NS_MAM, "result").with_attr("id", m.id.to_string());
            if let Some(q) = &request.queryid {
                result = result.with_attr("queryid", q);
            }
            let forwarded = Element::new(NS_FORWARD, "forwarded")
                .with_child(Element::new(NS_DELAY, "delay").with_attr("stamp", format_stamp(stamp)))
                .with_child(message_element(&m.from, &m.to, m.message, domain));
            Element::new(ns::CLIENT, "message")
                .with_attr("from", me.bare().as_str())
                .with_attr("to", &me_s)
                .with_child(result.with_child(forwarded))
        })
        .collect();
    let mut set = Element::new(NS_RSM, "set");
    if let (Some(first), Some(last)) = (first, last) {
        set = set
            .with_child(Element::new(NS_RSM, "first").with_text(first.to_string()))
            .with_child(Element::new(NS_RSM, "last").with_text(last.to_string()));
    } else {
        set = set.with_child(Element::new(NS_RSM, "count").with_text("0"));
    }
    let mut fin = Element::new(NS_MAM, "fin").with_child(set);
    if page.complete {
        fin = fin.with_attr("complete", "true");
    }
    out.push(
        Element::new(ns::CLIENT, "iq")
            .with_attr("type", "result")
            .with_attr("id", &request.id)
            .with_attr("to", &me_s)
            .with_child(fin),
    );
    out
}
