//! Answers a client's archive query (XEP-0313) from the store: one `<message/>` per result, then the final
//! `<iq type='result'><fin/></iq>` with the RSM summary. The read runs on the blocking pool, as SASL's do.
//!
//! A room's archive is read the same way, once the room (in the engine) has said the requester may read it: the
//! engine answers the IQ with [`RoomAnswer::ArchiveRead`], which the connection takes out of its deliveries
//! ([`room_read`]) and answers here ([`answer_room`]). The room's state decides, the read stays off the engine.

use std::sync::Arc;

use presence_core::archive::Page;
use presence_core::rooms::{ArchiveRead, RoomAnswer, RoomStanza};
use presence_core::stanza::ErrorCondition;
use presence_core::stanza::Stanza as CoreStanza;
use presence_core::store::Store;
use presence_core::{BareJid, FullJid};
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
        Ok(Ok(page)) => render(page, me, me.bare(), request),
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

/// A room's permission to read its archive, if the engine delivery `stanza` is one (it is then answered by
/// [`answer_room`] instead of being rendered).
pub fn room_read(stanza: &CoreStanza) -> Option<RoomRead> {
    let CoreStanza::Room(room) = stanza else {
        return None;
    };
    let RoomStanza::Answer {
        id,
        from,
        answer: RoomAnswer::ArchiveRead(read),
        ..
    } = &**room
    else {
        return None;
    };
    Some(RoomRead {
        id: id.clone(),
        room: from.bare().clone(),
        read: (**read).clone(),
    })
}

/// A room archive query the room allowed.
#[derive(Debug)]
pub struct RoomRead {
    /// The IQ's id.
    id: String,
    /// The room.
    room: BareJid,
    /// The query.
    read: ArchiveRead,
}

/// The stanzas answering a room archive query of the session `me`, in the order they are sent.
pub async fn answer_room<S: Store + Send + Sync + 'static>(
    store: Arc<S>,
    me: &FullJid,
    request: RoomRead,
) -> Vec<Element> {
    let RoomRead { id, room, read } = request;
    let query = read.query.clone();
    let at = room.clone();
    let result = tokio::task::spawn_blocking(move || store.room_archive_query(&at, &query)).await;
    let request = ArchiveRequest {
        id,
        queryid: read.queryid,
        query: read.query.query,
        flip: read.flip,
    };
    match result {
        Ok(Ok(page)) => render(page, me, &room, request),
        Ok(Err(e)) => {
            warn!(error = %e, room = %room, "room archive query failed");
            vec![unavailable_from(me, Some(room.as_str()), &request)]
        }
        Err(e) => {
            warn!(error = %e, "room archive query task failed");
            vec![unavailable_from(me, Some(room.as_str()), &request)]
        }
    }
}

fn unavailable(me: &FullJid, request: &ArchiveRequest) -> Element {
    unavailable_from(me, None, request)
}

fn unavailable_from(me: &FullJid, from: Option<&str>, request: &ArchiveRequest) -> Element {
    iq_error(
        Some(&request.id),
        &me.to_string(),
        from,
        ErrorCondition::InternalServerError,
        Some("the archive could not be read; try again later"),
    )
}

/// The results of `archive` (the user's own bare address, or a room) for `me`.
fn render(page: Page, me: &FullJid, archive: &BareJid, request: ArchiveRequest) -> Vec<Element> {
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
                .with_attr("from", archive.as_str())
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
    let mut iq = Element::new(ns::CLIENT, "iq")
        .with_attr("type", "result")
        .with_attr("id", &request.id);
    if archive != me.bare() {
        iq = iq.with_attr("from", archive.as_str());
    }
    out.push(iq.with_attr("to", &me_s).with_child(fin));
    out
}
