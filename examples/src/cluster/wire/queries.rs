//! The query frames of the wire (format [`super::VERSION`] 5): a session's request about a user served by
//! another node (tag 14, `Stanza::Query`), its answer (tag 15, `Stanza::Reply`) and a PEP notification for
//! sessions of another node (tag 16, `Stanza::Notification`); see `presence_core::query`. Laid out like the rest
//! of the wire: fields in a fixed order, every enum behind an explicit tag.

use presence_core::feature::Answer;
use presence_core::feature::avatar::MimeType;
use presence_core::feature::pep::{self, Change, Event, Item};
use presence_core::feature::vcard::{self, CardPhoto};
use presence_core::query::{Ask, Audience, Notification, Query, Read, Reply};
use presence_core::stanza::Stanza;

use super::{Cursor, WireError, malformed, unknown};
use crate::store::codec::Writer;

/// Writes a query, a reply or a notification with its tag; any other stanza is not this module's.
pub(super) fn write(w: &mut Writer, stanza: &Stanza) -> Result<(), WireError> {
    match stanza {
        Stanza::Query(q) => {
            w.u8(14);
            w.str(&q.from.to_string());
            w.str(q.to.as_str());
            match &q.ask {
                Ask::Request { request, read } => {
                    w.u8(0);
                    w.str(&request.0);
                    write_read(w, read);
                }
                Ask::LastItems { nodes } => {
                    w.u8(1);
                    w.strs(nodes);
                }
            }
        }
        Stanza::Reply(r) => {
            w.u8(15);
            w.str(&r.to.to_string());
            w.str(&r.request.0);
            write_answer(w, &r.answer)?;
        }
        Stanza::Notification(n) => {
            w.u8(16);
            match &n.audience {
                Audience::Session(jid) => {
                    w.u8(0);
                    w.str(&jid.to_string());
                }
                Audience::Subscriber(user) => {
                    w.u8(1);
                    w.str(user.as_str());
                }
                Audience::Interested(user) => {
                    w.u8(2);
                    w.str(user.as_str());
                }
            }
            write_event(w, &n.event);
        }
        _ => unreachable!("only queries, replies and notifications are written here"),
    }
    Ok(())
}

/// Reads what [`write`] wrote after tag `tag` (14 to 16).
pub(super) fn read(tag: u8, r: &mut Cursor<'_>) -> Result<Stanza, WireError> {
    Ok(match tag {
        14 => {
            let from = r.full_jid()?;
            let to = r.bare_jid()?;
            let ask = match r.u8()? {
                0 => Ask::Request {
                    request: r.request()?,
                    read: read_read(r)?,
                },
                1 => Ask::LastItems {
                    nodes: r.0.strs().map_err(malformed)?,
                },
                tag => return Err(unknown("query", tag)),
            };
            Stanza::Query(Box::new(Query { from, to, ask }))
        }
        15 => Stanza::Reply(Box::new(Reply {
            to: r.full_jid()?,
            request: r.request()?,
            answer: read_answer(r)?,
        })),
        16 => {
            let audience = match r.u8()? {
                0 => Audience::Session(r.full_jid()?),
                1 => Audience::Subscriber(r.bare_jid()?),
                2 => Audience::Interested(r.bare_jid()?),
                tag => return Err(unknown("notification audience", tag)),
            };
            Stanza::Notification(Box::new(Notification {
                audience,
                event: read_event(r)?,
            }))
        }
        tag => return Err(unknown("stanza", tag)),
    })
}

fn write_read(w: &mut Writer, read: &Read) {
    match read {
        Read::VCard => w.u8(0),
        Read::Items { node, ids, max } => {
            w.u8(1);
            w.str(node);
            w.strs(ids);
            w.bool(max.is_some());
            if let Some(max) = max {
                w.u64(*max as u64);
            }
        }
        Read::Subscribe { node, on } => {
            w.u8(2);
            w.str(node);
            w.bool(*on);
        }
    }
}

fn read_read(r: &mut Cursor<'_>) -> Result<Read, WireError> {
    Ok(match r.u8()? {
        0 => Read::VCard,
        1 => Read::Items {
            node: r.str()?,
            ids: r.0.strs().map_err(malformed)?,
            max: if r.bool()? {
                Some(usize::try_from(r.u64()?).unwrap_or(usize::MAX))
            } else {
                None
            },
        },
        2 => Read::Subscribe {
            node: r.str()?,
            on: r.bool()?,
        },
        tag => return Err(unknown("query read", tag)),
    })
}

/// The answers a query gets (`Engine::answer_query`): done, a vCard, PEP items, a PEP subscription.
fn write_answer(w: &mut Writer, answer: &Answer) -> Result<(), WireError> {
    match answer {
        Answer::Done => w.u8(0),
        Answer::VCard(card) => {
            w.u8(1);
            w.str(card.of.as_str());
            w.opt_str(card.xml.as_deref());
            match &card.photo {
                CardPhoto::AsStored => w.u8(0),
                CardPhoto::Without => w.u8(1),
                CardPhoto::Image { mime, data } => {
                    w.u8(2);
                    w.str(mime.as_str());
                    w.str(data);
                }
            }
        }
        Answer::Pep(pep::Answer::Items { owner, node, items }) => {
            w.u8(2);
            w.str(owner.as_str());
            w.str(node);
            write_items(w, items);
        }
        Answer::Pep(pep::Answer::Subscribed { owner, node, jid }) => {
            w.u8(3);
            w.str(owner.as_str());
            w.str(node);
            w.str(jid.as_str());
        }
        // No query is answered with anything else.
        _ => return Err(WireError::NotRoutable("answer other than a query's")),
    }
    Ok(())
}

fn read_answer(r: &mut Cursor<'_>) -> Result<Answer, WireError> {
    Ok(match r.u8()? {
        0 => Answer::Done,
        1 => Answer::VCard(vcard::Answer {
            of: r.bare_jid()?,
            xml: r.opt_str()?,
            photo: match r.u8()? {
                0 => CardPhoto::AsStored,
                1 => CardPhoto::Without,
                2 => CardPhoto::Image {
                    mime: MimeType::parse(&r.str()?)
                        .map_err(|e| WireError::Malformed(e.to_string()))?,
                    data: r.str()?,
                },
                tag => return Err(unknown("card photo", tag)),
            },
        }),
        2 => Answer::Pep(pep::Answer::Items {
            owner: r.bare_jid()?,
            node: r.str()?,
            items: read_items(r)?,
        }),
        3 => Answer::Pep(pep::Answer::Subscribed {
            owner: r.bare_jid()?,
            node: r.str()?,
            jid: r.bare_jid()?,
        }),
        tag => return Err(unknown("query answer", tag)),
    })
}

fn write_event(w: &mut Writer, event: &Event) {
    w.str(event.owner.as_str());
    w.str(&event.node);
    match &event.change {
        Change::Items(items) => {
            w.u8(0);
            write_items(w, items);
        }
        Change::Retracted(ids) => {
            w.u8(1);
            w.strs(ids);
        }
        Change::Deleted => w.u8(2),
    }
}

fn read_event(r: &mut Cursor<'_>) -> Result<Event, WireError> {
    Ok(Event {
        owner: r.bare_jid()?,
        node: r.str()?,
        change: match r.u8()? {
            0 => Change::Items(read_items(r)?),
            1 => Change::Retracted(r.0.strs().map_err(malformed)?),
            2 => Change::Deleted,
            tag => return Err(unknown("pep change", tag)),
        },
    })
}

fn write_items(w: &mut Writer, items: &[Item]) {
    w.len(items.len());
    for item in items {
        w.str(&item.id);
        w.str(&item.payload);
    }
}

fn read_items(r: &mut Cursor<'_>) -> Result<Vec<Item>, WireError> {
    let n = r.0.len().map_err(malformed)?;
    (0..n)
        .map(|_| {
            Ok(Item {
                id: r.str()?,
                payload: r.str()?,
            })
        })
        .collect()
}
