//! The binary encoding of a [`Stanza`] carried from one node of a cluster to another.
//!
//! A frame is a format version byte ([`VERSION`]), a tag naming the stanza's variant, then the variant's fields in
//! a fixed order. The primitives are the store's (`store::codec`): big-endian integers, strings with a `u32` length,
//! optional fields behind a presence byte, lists with a `u32` count; a message's fields are laid out exactly as in a
//! held message. Every enum variant has an explicit tag, matched both ways, so reordering a type in
//! `presence-core` cannot silently change the format. Addresses travel as their normalised text and are parsed
//! again on arrival.
//!
//! The version byte is the wire format's own, unrelated to the store's record versions: nodes of different builds
//! refuse each other's frames rather than misread them. Decoding never panics; every flaw is a [`WireError`].

use presence_core::compose::{PresenceState, Show};
use presence_core::engine::RoomTraffic;
use presence_core::feature::avatar::{AvatarHash, PhotoUpdate};
use presence_core::roster::SubscriptionAction;
use presence_core::stanza::{
    ErrorAbout, ErrorCondition, IqKind, PresenceKind, PresenceView, RequestId, RoutedIq, Stanza,
    StanzaError,
};
use presence_core::store::StoreError;
use presence_core::time::Timestamp;
use presence_core::{BareJid, FullJid, Jid, JidError};

use crate::store::codec::{Reader, Writer, read_message, write_message};

/// The frame format written today; readers reject any other. 3: an available presence carries its avatar hash
/// (XEP-0153/0398) after the extensions, and a routed IQ's sender is any address (a component's domain).
/// 4: rooms cross the cluster (issue 15): room stanzas toward occupants, room requests and session ends toward
/// the node serving a room (see [`rooms`]). 5: requests about users of other nodes, their answers and PEP
/// notifications cross the cluster (see [`queries`]), and so do room listings (tag 20, see [`rooms`]).
pub const VERSION: u8 = 5;

mod queries;
mod rooms;

/// What one frame carries: a stanza for a user served by the receiving node, or room traffic for a room it
/// serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A stanza (its recipient is a user of the receiving node).
    Stanza(Stanza),
    /// Room traffic (its room is served by the receiving node).
    Room(RoomTraffic),
}

/// Encodes room traffic as one frame.
pub fn encode_room(traffic: &RoomTraffic) -> Vec<u8> {
    let mut w = Writer::with_version(VERSION);
    rooms::write_traffic(&mut w, traffic);
    w.finish()
}

/// Why a frame from another node could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The frame is in a format version this build does not read.
    #[error("frame format version {found}, this build reads version {VERSION}")]
    Version {
        /// The version byte found.
        found: u8,
    },
    /// A tag byte names no variant of the type at that place.
    #[error("unknown tag {tag} for {field}")]
    UnknownTag {
        /// What the tag selects (`stanza`, `presence kind`, `error condition`, ...).
        field: &'static str,
        /// The tag byte found.
        tag: u8,
    },
    /// An address does not parse.
    #[error("bad jid {jid:?}: {source}")]
    BadJid {
        /// The text found.
        jid: String,
        /// Why it is not an address.
        source: JidError,
    },
    /// The frame is cut short (a length or count reaching past its end), has bytes left over, holds text that is
    /// not UTF-8, a flag that is neither 0 nor 1, or an unknown message kind.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The stanza is of a kind that stays on its node (an answer or a push to a session).
    #[error("a stanza of kind {0} is never routed to another node")]
    NotRoutable(&'static str),
}

/// Encodes a stanza as one frame, or says it is of a kind no node routes to another.
pub fn encode(stanza: &Stanza) -> Result<Vec<u8>, WireError> {
    let mut w = Writer::with_version(VERSION);
    match stanza {
        Stanza::Presence { from, to, kind } => {
            w.u8(0);
            jid(&mut w, from);
            jid(&mut w, to);
            match kind {
                PresenceKind::Available(view) => {
                    w.u8(0);
                    w.u8(show_tag(view.show));
                    w.opt_str(view.status.as_deref());
                    w.i8(view.priority);
                    w.u8(state_tag(view.composed));
                    w.strs(&view.extensions);
                    match &view.avatar {
                        None => w.u8(0),
                        Some(PhotoUpdate::NotReady) => w.u8(1),
                        Some(PhotoUpdate::NoPhoto) => w.u8(2),
                        Some(PhotoUpdate::Hash(h)) => {
                            w.u8(3);
                            w.str(h.as_str());
                        }
                    }
                }
                PresenceKind::Unavailable => w.u8(1),
                PresenceKind::Probe => w.u8(2),
            }
        }
        Stanza::Subscription { from, to, action } => {
            w.u8(1);
            w.str(from.as_str());
            w.str(to.as_str());
            w.u8(match action {
                SubscriptionAction::Subscribe => 0,
                SubscriptionAction::Subscribed => 1,
                SubscriptionAction::Unsubscribe => 2,
                SubscriptionAction::Unsubscribed => 3,
            });
        }
        Stanza::Message {
            from,
            to,
            message,
            delayed,
        } => {
            w.u8(2);
            jid(&mut w, from);
            jid(&mut w, to);
            write_message(&mut w, message);
            w.bool(delayed.is_some());
            if let Some(stamp) = delayed {
                w.u64(stamp.as_millis());
            }
        }
        Stanza::Iq { from, iq } => {
            w.u8(10);
            jid(&mut w, from);
            write_iq(&mut w, iq);
        }
        Stanza::Query(_) | Stanza::Reply(_) | Stanza::Notification(_) => {
            queries::write(&mut w, stanza)?
        }
        // An answer or a push goes to a session of this node and is never routed (answers to sessions of other
        // nodes travel as replies), so the wire has no form for them.
        Stanza::Answer { .. } => return Err(WireError::NotRoutable("answer")),
        Stanza::Push(_) => return Err(WireError::NotRoutable("push")),
        // A room served by one node speaks to an occupant whose session lives on another.
        Stanza::Room(room) => rooms::write_room_stanza(&mut w, room),
        // A push notification goes to an app server of another domain, never to another node.
        Stanza::AppPush(_) => return Err(WireError::NotRoutable("push notification")),
        Stanza::Error(e) => {
            w.u8(9);
            write_error(&mut w, e);
        }
    }
    Ok(w.finish())
}

/// Decodes a frame that must hold a stanza (what [`encode`] wrote).
pub fn decode(frame: &[u8]) -> Result<Stanza, WireError> {
    match decode_frame(frame)? {
        Frame::Stanza(s) => Ok(s),
        Frame::Room(_) => Err(WireError::Malformed(
            "room traffic where a stanza was expected".into(),
        )),
    }
}

/// Decodes what [`encode`] or [`encode_room`] wrote.
pub fn decode_frame(frame: &[u8]) -> Result<Frame, WireError> {
    // The store's reader checks a version range; the wire's version is checked here to report it as such.
    let (reader, found) =
        Reader::versioned("stanza frame", frame, 0..=u8::MAX).map_err(malformed)?;
    if found != VERSION {
        return Err(WireError::Version { found });
    }
    let mut r = Cursor(reader);
    let stanza = match r.u8()? {
        0 => {
            let from = r.jid()?;
            let to = r.jid()?;
            let kind = match r.u8()? {
                0 => PresenceKind::Available(std::sync::Arc::new(PresenceView {
                    show: r.show()?,
                    status: r.opt_str()?,
                    priority: r.i8()?,
                    composed: r.state()?,
                    extensions: r.0.strs().map_err(malformed)?.into(),
                    avatar: r.avatar()?,
                })),
                1 => PresenceKind::Unavailable,
                2 => PresenceKind::Probe,
                tag => return Err(unknown("presence kind", tag)),
            };
            Stanza::Presence { from, to, kind }
        }
        1 => Stanza::Subscription {
            from: r.bare_jid()?,
            to: r.bare_jid()?,
            action: match r.u8()? {
                0 => SubscriptionAction::Subscribe,
                1 => SubscriptionAction::Subscribed,
                2 => SubscriptionAction::Unsubscribe,
                3 => SubscriptionAction::Unsubscribed,
                tag => return Err(unknown("subscription action", tag)),
            },
        },
        2 => Stanza::Message {
            from: r.jid()?,
            to: r.jid()?,
            message: read_message(&mut r.0, crate::store::codec::MESSAGE_VERSION)
                .map_err(malformed)?,
            delayed: if r.bool()? {
                Some(Timestamp::from_millis(r.u64()?))
            } else {
                None
            },
        },
        9 => Stanza::Error(read_error(&mut r)?),
        10 => Stanza::Iq {
            from: r.jid()?,
            iq: read_iq(&mut r)?,
        },
        tag @ 14..=16 => queries::read(tag, &mut r)?,
        tag @ (11..=13 | rooms::LISTED) => {
            let frame = rooms::read_room(tag, &mut r)?;
            r.0.end().map_err(malformed)?;
            return Ok(frame);
        }
        tag => return Err(unknown("stanza", tag)),
    };
    r.0.end().map_err(malformed)?;
    Ok(Frame::Stanza(stanza))
}

/// A stanza error's fields (after its tag).
fn read_error(r: &mut Cursor<'_>) -> Result<StanzaError, WireError> {
    let to = r.jid()?;
    let about = match r.u8()? {
        0 => ErrorAbout::Request(r.request()?),
        1 => ErrorAbout::Message {
            id: r.opt_str()?,
            to: r.jid()?,
        },
        2 => ErrorAbout::Presence { to: r.jid()? },
        3 => ErrorAbout::Iq {
            id: r.str()?,
            to: r.jid()?,
        },
        tag => return Err(unknown("error subject", tag)),
    };
    Ok(StanzaError {
        to,
        about,
        condition: r.condition()?,
        text: r.opt_str()?,
    })
}

/// A stanza error's fields (after its tag).
/// A routed IQ after its sender: recipient, id, type, payload.
fn write_iq(w: &mut Writer, iq: &RoutedIq) {
    jid(w, &iq.to);
    w.str(&iq.id);
    w.u8(match iq.kind {
        IqKind::Get => 0,
        IqKind::Set => 1,
        IqKind::Result => 2,
        IqKind::Error => 3,
    });
    w.strs(&iq.payload);
}

fn read_iq(r: &mut Cursor<'_>) -> Result<RoutedIq, WireError> {
    let to = r.jid()?;
    let id = r.str()?;
    let kind = match r.u8()? {
        0 => IqKind::Get,
        1 => IqKind::Set,
        2 => IqKind::Result,
        3 => IqKind::Error,
        tag => return Err(unknown("iq type", tag)),
    };
    let payload = r.0.strs().map_err(malformed)?;
    Ok(RoutedIq {
        to,
        id,
        kind,
        payload,
    })
}

fn write_error(w: &mut Writer, e: &StanzaError) {
    jid(w, &e.to);
    match &e.about {
        ErrorAbout::Request(request) => {
            w.u8(0);
            w.str(&request.0);
        }
        ErrorAbout::Message { id, to } => {
            w.u8(1);
            w.opt_str(id.as_deref());
            jid(w, to);
        }
        ErrorAbout::Presence { to } => {
            w.u8(2);
            jid(w, to);
        }
        ErrorAbout::Iq { id, to } => {
            w.u8(3);
            w.str(id);
            jid(w, to);
        }
    }
    w.u8(condition_tag(e.condition));
    w.opt_str(e.text.as_deref());
}

fn jid(w: &mut Writer, j: &Jid) {
    w.str(&j.to_string());
}

fn show_tag(s: Show) -> u8 {
    match s {
        Show::Chat => 0,
        Show::Available => 1,
        Show::Away => 2,
        Show::Xa => 3,
        Show::Dnd => 4,
    }
}

fn state_tag(s: PresenceState) -> u8 {
    match s {
        PresenceState::Available => 0,
        PresenceState::Idle => 1,
        PresenceState::Busy => 2,
        PresenceState::OnThePhone => 3,
        PresenceState::InAMeeting => 4,
        PresenceState::Dnd => 5,
        PresenceState::OutOfOffice => 6,
        PresenceState::Unavailable => 7,
    }
}

fn condition_tag(c: ErrorCondition) -> u8 {
    match c {
        ErrorCondition::BadRequest => 0,
        ErrorCondition::Conflict => 1,
        ErrorCondition::InternalServerError => 2,
        ErrorCondition::ItemNotFound => 3,
        ErrorCondition::NotAllowed => 4,
        ErrorCondition::NotAcceptable => 5,
        ErrorCondition::PolicyViolation => 6,
        ErrorCondition::RecipientUnavailable => 7,
        ErrorCondition::RemoteServerNotFound => 8,
        ErrorCondition::ResourceConstraint => 9,
        ErrorCondition::ServiceUnavailable => 10,
        ErrorCondition::Forbidden => 11,
        ErrorCondition::PreconditionNotMet => 12,
        ErrorCondition::NotAuthorized => 13,
        ErrorCondition::RegistrationRequired => 14,
        ErrorCondition::FeatureNotImplemented => 15,
        ErrorCondition::RemoteServerTimeout => 16,
    }
}

fn unknown(field: &'static str, tag: u8) -> WireError {
    WireError::UnknownTag { field, tag }
}

/// The store reader's complaints (a shortfall, a bad flag or length, non-UTF-8 text, leftovers) as wire errors.
fn malformed(e: StoreError) -> WireError {
    match e {
        StoreError::Corrupt { detail, .. } => WireError::Malformed(detail),
        other => WireError::Malformed(other.to_string()),
    }
}

/// The store's reader over one frame, with the wire's errors and the wire's composite fields.
struct Cursor<'a>(Reader<'a>);

impl Cursor<'_> {
    fn u8(&mut self) -> Result<u8, WireError> {
        self.0.u8().map_err(malformed)
    }

    fn i8(&mut self) -> Result<i8, WireError> {
        self.0.i8().map_err(malformed)
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        self.0.u64().map_err(malformed)
    }

    fn bool(&mut self) -> Result<bool, WireError> {
        self.0.bool().map_err(malformed)
    }

    fn str(&mut self) -> Result<String, WireError> {
        self.0.str().map_err(malformed)
    }

    fn opt_str(&mut self) -> Result<Option<String>, WireError> {
        self.0.opt_str().map_err(malformed)
    }

    fn request(&mut self) -> Result<RequestId, WireError> {
        self.str().map(RequestId)
    }

    fn jid(&mut self) -> Result<Jid, WireError> {
        let text = self.str()?;
        Jid::new(&text).map_err(|source| WireError::BadJid { jid: text, source })
    }

    fn full_jid(&mut self) -> Result<FullJid, WireError> {
        let text = self.str()?;
        FullJid::new(&text).map_err(|source| WireError::BadJid { jid: text, source })
    }

    fn bare_jid(&mut self) -> Result<BareJid, WireError> {
        let text = self.str()?;
        BareJid::new(&text).map_err(|source| WireError::BadJid { jid: text, source })
    }

    fn show(&mut self) -> Result<Show, WireError> {
        match self.u8()? {
            0 => Ok(Show::Chat),
            1 => Ok(Show::Available),
            2 => Ok(Show::Away),
            3 => Ok(Show::Xa),
            4 => Ok(Show::Dnd),
            tag => Err(unknown("show", tag)),
        }
    }

    fn avatar(&mut self) -> Result<Option<PhotoUpdate>, WireError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(PhotoUpdate::NotReady)),
            2 => Ok(Some(PhotoUpdate::NoPhoto)),
            3 => AvatarHash::parse(&self.str()?)
                .map(|h| Some(PhotoUpdate::Hash(h)))
                .map_err(|e| WireError::Malformed(e.to_string())),
            tag => Err(unknown("avatar", tag)),
        }
    }

    fn state(&mut self) -> Result<PresenceState, WireError> {
        match self.u8()? {
            0 => Ok(PresenceState::Available),
            1 => Ok(PresenceState::Idle),
            2 => Ok(PresenceState::Busy),
            3 => Ok(PresenceState::OnThePhone),
            4 => Ok(PresenceState::InAMeeting),
            5 => Ok(PresenceState::Dnd),
            6 => Ok(PresenceState::OutOfOffice),
            7 => Ok(PresenceState::Unavailable),
            tag => Err(unknown("presence state", tag)),
        }
    }

    fn condition(&mut self) -> Result<ErrorCondition, WireError> {
        match self.u8()? {
            0 => Ok(ErrorCondition::BadRequest),
            1 => Ok(ErrorCondition::Conflict),
            2 => Ok(ErrorCondition::InternalServerError),
            3 => Ok(ErrorCondition::ItemNotFound),
            4 => Ok(ErrorCondition::NotAllowed),
            5 => Ok(ErrorCondition::NotAcceptable),
            6 => Ok(ErrorCondition::PolicyViolation),
            7 => Ok(ErrorCondition::RecipientUnavailable),
            8 => Ok(ErrorCondition::RemoteServerNotFound),
            9 => Ok(ErrorCondition::ResourceConstraint),
            10 => Ok(ErrorCondition::ServiceUnavailable),
            11 => Ok(ErrorCondition::Forbidden),
            12 => Ok(ErrorCondition::PreconditionNotMet),
            13 => Ok(ErrorCondition::NotAuthorized),
            14 => Ok(ErrorCondition::RegistrationRequired),
            15 => Ok(ErrorCondition::FeatureNotImplemented),
            16 => Ok(ErrorCondition::RemoteServerTimeout),
            tag => Err(unknown("error condition", tag)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_core::message::{Message, MessageKind};
    use presence_core::rooms::{
        Affiliate, Affiliation, AffiliationChange, ArchiveRead, ConfigChange, Destroyed,
        HistoryRequest, Invite, Item, JoinOptions, Mediated, OccupantPresence, Role, RoleChange,
        RoomAnswer, RoomCall, RoomConfig, RoomInfo, RoomQuery, RoomRequest, RoomStanza, StatusCode,
        WhoIs,
    };
    use proptest::prelude::*;
    use std::sync::Arc;

    fn bare_jid() -> impl Strategy<Value = BareJid> {
        (
            proptest::option::of("[a-c]{1,3}"),
            "[a-c]{1,3}(\\.[a-c]{1,2})?",
        )
            .prop_map(|(local, domain)| {
                BareJid::from_parts(local.as_deref(), &domain).expect("valid bare jid")
            })
    }

    fn any_jid() -> impl Strategy<Value = Jid> {
        (bare_jid(), proptest::option::of("[a-c0-9]{1,3}")).prop_map(|(bare, resource)| {
            match resource {
                None => Jid::Bare(bare),
                Some(r) => Jid::Full(bare.with_resource(&r).expect("valid resource")),
            }
        })
    }

    fn text() -> impl Strategy<Value = String> {
        "\\PC{0,8}"
    }

    fn opt_text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(text())
    }

    fn request() -> impl Strategy<Value = RequestId> {
        text().prop_map(RequestId)
    }

    fn show() -> impl Strategy<Value = Show> {
        prop::sample::select(vec![
            Show::Chat,
            Show::Available,
            Show::Away,
            Show::Xa,
            Show::Dnd,
        ])
    }

    fn state() -> impl Strategy<Value = PresenceState> {
        prop::sample::select(vec![
            PresenceState::Available,
            PresenceState::Idle,
            PresenceState::Busy,
            PresenceState::OnThePhone,
            PresenceState::InAMeeting,
            PresenceState::Dnd,
            PresenceState::OutOfOffice,
            PresenceState::Unavailable,
        ])
    }

    fn presence_kind() -> impl Strategy<Value = PresenceKind> {
        prop_oneof![
            (
                show(),
                opt_text(),
                any::<i8>(),
                state(),
                prop::collection::vec(text(), 0..3),
                prop_oneof![
                    Just(None),
                    Just(Some(PhotoUpdate::NotReady)),
                    Just(Some(PhotoUpdate::NoPhoto)),
                    any::<Vec<u8>>().prop_map(|b| Some(PhotoUpdate::Hash(AvatarHash::of(&b)))),
                ],
            )
                .prop_map(|(show, status, priority, composed, extensions, avatar)| {
                    PresenceKind::Available(Arc::new(PresenceView {
                        show,
                        status,
                        priority,
                        composed,
                        extensions: extensions.into(),
                        avatar,
                    }))
                }),
            Just(PresenceKind::Unavailable),
            Just(PresenceKind::Probe),
        ]
    }

    fn action() -> impl Strategy<Value = SubscriptionAction> {
        prop::sample::select(vec![
            SubscriptionAction::Subscribe,
            SubscriptionAction::Subscribed,
            SubscriptionAction::Unsubscribe,
            SubscriptionAction::Unsubscribed,
        ])
    }

    fn message() -> impl Strategy<Value = Message> {
        (
            opt_text(),
            prop::sample::select(vec![
                MessageKind::Chat,
                MessageKind::Normal,
                MessageKind::Headline,
                MessageKind::Groupchat,
                MessageKind::Error,
            ]),
            opt_text(),
            opt_text(),
            opt_text(),
            any::<u64>(),
            prop::collection::vec(text(), 0..3),
        )
            .prop_map(
                |(id, kind, body, subject, thread, stamp, extensions)| Message {
                    id,
                    kind,
                    body,
                    subject,
                    thread,
                    stamp: Timestamp::from_millis(stamp),
                    extensions,
                    marks: Default::default(),
                    archive_id: None,
                },
            )
    }

    fn condition() -> impl Strategy<Value = ErrorCondition> {
        prop::sample::select(vec![
            ErrorCondition::BadRequest,
            ErrorCondition::Conflict,
            ErrorCondition::InternalServerError,
            ErrorCondition::ItemNotFound,
            ErrorCondition::NotAllowed,
            ErrorCondition::NotAcceptable,
            ErrorCondition::PolicyViolation,
            ErrorCondition::RecipientUnavailable,
            ErrorCondition::RemoteServerNotFound,
            ErrorCondition::ResourceConstraint,
            ErrorCondition::ServiceUnavailable,
            ErrorCondition::Forbidden,
            ErrorCondition::PreconditionNotMet,
            ErrorCondition::NotAuthorized,
            ErrorCondition::RegistrationRequired,
            ErrorCondition::FeatureNotImplemented,
            ErrorCondition::RemoteServerTimeout,
        ])
    }

    fn error_about() -> impl Strategy<Value = ErrorAbout> {
        prop_oneof![
            request().prop_map(ErrorAbout::Request),
            (opt_text(), any_jid()).prop_map(|(id, to)| ErrorAbout::Message { id, to }),
            any_jid().prop_map(|to| ErrorAbout::Presence { to }),
            (text(), any_jid()).prop_map(|(id, to)| ErrorAbout::Iq { id, to }),
        ]
    }

    fn stanza() -> impl Strategy<Value = Stanza> {
        prop_oneof![
            (any_jid(), any_jid(), presence_kind()).prop_map(|(from, to, kind)| Stanza::Presence {
                from,
                to,
                kind
            }),
            (bare_jid(), bare_jid(), action())
                .prop_map(|(from, to, action)| Stanza::Subscription { from, to, action }),
            (
                any_jid(),
                any_jid(),
                message(),
                proptest::option::of(any::<u64>())
            )
                .prop_map(|(from, to, message, delayed)| Stanza::Message {
                    from,
                    to,
                    message,
                    delayed: delayed.map(Timestamp::from_millis),
                }),
            (
                bare_jid(),
                "[a-c]{1,3}",
                any_jid(),
                text(),
                prop::sample::select(vec![
                    IqKind::Get,
                    IqKind::Set,
                    IqKind::Result,
                    IqKind::Error
                ]),
                prop::collection::vec(text(), 0..3)
            )
                .prop_map(|(bare, resource, to, id, kind, payload)| Stanza::Iq {
                    from: Jid::Full(bare.with_resource(&resource).expect("valid resource")),
                    iq: RoutedIq {
                        to,
                        id,
                        kind,
                        payload,
                    },
                }),
            (any_jid(), error_about(), condition(), opt_text()).prop_map(
                |(to, about, condition, text)| {
                    Stanza::Error(StanzaError {
                        to,
                        about,
                        condition,
                        text,
                    })
                }
            ),
        ]
    }

    fn pep_items() -> impl Strategy<Value = Vec<presence_core::feature::pep::Item>> {
        prop::collection::vec(
            (text(), text())
                .prop_map(|(id, payload)| presence_core::feature::pep::Item { id, payload }),
            0..3,
        )
    }

    fn query_stanza() -> impl Strategy<Value = Stanza> {
        use presence_core::feature::pep::{self, Change, Event};
        use presence_core::feature::vcard::{self, CardPhoto};
        use presence_core::feature::{Answer, avatar::MimeType};
        use presence_core::query::{Ask, Audience, Notification, Query, Read, Reply};
        let read = prop_oneof![
            Just(Read::VCard),
            (
                text(),
                prop::collection::vec(text(), 0..3),
                proptest::option::of(0usize..1000)
            )
                .prop_map(|(node, ids, max)| Read::Items { node, ids, max }),
            (text(), any::<bool>()).prop_map(|(node, on)| Read::Subscribe { node, on }),
        ];
        let ask = prop_oneof![
            (request(), read).prop_map(|(request, read)| Ask::Request { request, read }),
            prop::collection::vec(text(), 0..3).prop_map(|nodes| Ask::LastItems { nodes }),
        ];
        let photo = prop_oneof![
            Just(CardPhoto::AsStored),
            Just(CardPhoto::Without),
            text().prop_map(|data| CardPhoto::Image {
                mime: MimeType::parse("image/png").expect("a valid type"),
                data
            }),
        ];
        let answer = prop_oneof![
            Just(Answer::Done),
            (bare_jid(), opt_text(), photo)
                .prop_map(|(of, xml, photo)| Answer::VCard(vcard::Answer { of, xml, photo })),
            (bare_jid(), text(), pep_items()).prop_map(|(owner, node, items)| Answer::Pep(
                pep::Answer::Items { owner, node, items }
            )),
            (bare_jid(), text(), bare_jid()).prop_map(|(owner, node, jid)| Answer::Pep(
                pep::Answer::Subscribed { owner, node, jid }
            )),
        ];
        let audience = prop_oneof![
            full_jid().prop_map(Audience::Session),
            bare_jid().prop_map(Audience::Subscriber),
            bare_jid().prop_map(Audience::Interested),
        ];
        let change = prop_oneof![
            pep_items().prop_map(Change::Items),
            prop::collection::vec(text(), 0..3).prop_map(Change::Retracted),
            Just(Change::Deleted),
        ];
        prop_oneof![
            (full_jid(), bare_jid(), ask)
                .prop_map(|(from, to, ask)| Stanza::Query(Box::new(Query { from, to, ask }))),
            (full_jid(), request(), answer).prop_map(|(to, request, answer)| Stanza::Reply(
                Box::new(Reply {
                    to,
                    request,
                    answer
                })
            )),
            (audience, bare_jid(), text(), change).prop_map(|(audience, owner, node, change)| {
                Stanza::Notification(Box::new(Notification {
                    audience,
                    event: Event {
                        owner,
                        node,
                        change,
                    },
                }))
            }),
        ]
    }

    fn full_jid() -> impl Strategy<Value = FullJid> {
        (bare_jid(), "[a-c0-9]{1,3}")
            .prop_map(|(bare, r)| bare.with_resource(&r).expect("valid resource"))
    }

    fn occupant_presence() -> impl Strategy<Value = Option<OccupantPresence>> {
        proptest::option::of(
            (show(), opt_text()).prop_map(|(show, status)| OccupantPresence { show, status }),
        )
    }

    fn room_traffic() -> impl Strategy<Value = RoomTraffic> {
        prop_oneof![
            (full_jid(), bare_jid(), any::<u64>(), opt_text(), message()).prop_map(
                |(from, room, stamp, nick, message)| RoomTraffic::Request {
                    from,
                    room,
                    stamp: Timestamp::from_millis(stamp),
                    request: RoomRequest::Message { nick, message },
                }
            ),
            (
                full_jid(),
                bare_jid(),
                text(),
                occupant_presence(),
                opt_text(),
                proptest::option::of(0usize..100),
                proptest::option::of(any::<u64>()),
                any::<bool>()
            )
                .prop_map(
                    |(from, room, nick, presence, password, max, since, none)| {
                        RoomTraffic::Request {
                            from,
                            room,
                            stamp: Timestamp::from_millis(7),
                            request: RoomRequest::Presence {
                                nick,
                                presence,
                                join: JoinOptions {
                                    password,
                                    history: HistoryRequest {
                                        max_stanzas: max,
                                        seconds: since,
                                        since: since.map(Timestamp::from_millis),
                                        none,
                                    },
                                },
                            },
                        }
                    }
                ),
            (full_jid(), bare_jid()).prop_map(|(from, room)| RoomTraffic::Left { from, room }),
            ("[a-c]{1,3}", bare_jid(), opt_text())
                .prop_map(|(home, room, name)| RoomTraffic::Listed { home, room, name }),
        ]
    }

    fn room_stanza() -> impl Strategy<Value = Stanza> {
        prop_oneof![
            (
                full_jid(),
                full_jid(),
                occupant_presence(),
                opt_text(),
                prop::collection::vec(prop::sample::select(rooms_codes()), 0..3),
                text()
            )
                .prop_map(|(from, to, presence, nick, codes, occupant_id)| {
                    Stanza::Room(Box::new(RoomStanza::Presence {
                        from,
                        to,
                        presence,
                        item: Item {
                            affiliation: Affiliation::Member,
                            role: Role::Participant,
                            jid: None,
                            nick,
                            reason: None,
                        },
                        codes,
                        destroyed: None,
                        occupant_id,
                    }))
                }),
            (
                any_jid(),
                full_jid(),
                message(),
                proptest::option::of(any::<u64>()),
                opt_text(),
                any::<bool>()
            )
                .prop_map(|(from, to, message, delayed, occupant_id, private)| {
                    Stanza::Room(Box::new(RoomStanza::Message {
                        from,
                        to,
                        message: message.into(),
                        delayed: delayed.map(Timestamp::from_millis),
                        occupant_id,
                        codes: vec![],
                        private,
                    }))
                }),
        ]
    }

    fn rooms_codes() -> Vec<StatusCode> {
        vec![
            StatusCode::SelfPresence,
            StatusCode::Created,
            StatusCode::Shutdown,
            StatusCode::NickChanged,
        ]
    }

    proptest! {
        #[test]
        fn every_stanza_survives_the_round_trip(s in stanza()) {
            let frame = encode(&s).expect("routable");
            prop_assert_eq!(frame[0], VERSION);
            prop_assert_eq!(decode(&frame).expect("decodes"), s);
        }

        #[test]
        fn room_traffic_survives_the_round_trip(t in room_traffic()) {
            let frame = encode_room(&t);
            prop_assert_eq!(frame[0], VERSION);
            prop_assert_eq!(decode_frame(&frame).expect("decodes"), Frame::Room(t));
        }

        #[test]
        fn queries_replies_and_notifications_survive_the_round_trip(s in query_stanza()) {
            let frame = encode(&s).expect("a query stanza crosses the wire");
            prop_assert_eq!(decode(&frame).expect("decodes"), s);
        }

        #[test]
        fn room_stanzas_survive_the_round_trip(s in room_stanza()) {
            let frame = encode(&s).expect("a room stanza crosses the wire");
            prop_assert_eq!(decode(&frame).expect("decodes"), s);
        }
    }

    /// One frame of every room shape: each room stanza, answer, request and call.
    fn room_samples() -> Vec<Frame> {
        let alice = FullJid::new("alice@example.com/pc").expect("valid");
        let room = bare("room@conference.example.com");
        let nick = FullJid::new("room@conference.example.com/Alice").expect("valid");
        let item = Item {
            affiliation: Affiliation::Owner,
            role: Role::Moderator,
            jid: Some(jid("alice@example.com/pc")),
            nick: Some("Al".into()),
            reason: Some("why".into()),
        };
        let config = RoomConfig {
            name: "Lobby".into(),
            description: "d".into(),
            persistent: true,
            public: false,
            members_only: true,
            moderated: false,
            password: Some("pw".into()),
            max_occupants: 50,
            whois: WhoIs::Moderators,
            history_length: 15,
            allow_private_messages: false,
            change_subject: true,
            archiving: false,
            allow_invites: true,
        };
        let destroyed = Destroyed {
            reason: Some("bye".into()),
            alternate: Some(bare("other@conference.example.com")),
            password: None,
        };
        let msg = || Message {
            id: Some("m".into()),
            kind: MessageKind::Groupchat,
            body: Some("hello".into()),
            ..Message::default()
        };
        let archive_read = ArchiveRead {
            query: RoomQuery {
                nick: Some("Al".into()),
                query: presence_core::archive::Query {
                    with: Some(bare("alice@example.com")),
                    start: Some(Timestamp::from_millis(1)),
                    end: None,
                    after: Some(3),
                    before: None,
                    ids: Some(vec![4, 5]),
                    from_end: true,
                    max: 50,
                },
            },
            queryid: Some("qid".into()),
            flip: true,
        };
        let iq = RoutedIq {
            to: jid("room@conference.example.com/Bob"),
            id: "v1".into(),
            kind: IqKind::Get,
            payload: vec!["<query xmlns='jabber:iq:version'/>".into()],
        };
        let answer = |answer| {
            Frame::Stanza(Stanza::Room(Box::new(RoomStanza::Answer {
                id: "q".into(),
                from: Jid::Bare(room.clone()),
                to: alice.clone(),
                answer,
            })))
        };
        let call = |call| {
            Frame::Room(RoomTraffic::Request {
                from: alice.clone(),
                room: room.clone(),
                stamp: Timestamp::from_millis(5),
                request: RoomRequest::Iq {
                    id: "q".into(),
                    nick: Some("Al".into()),
                    call,
                },
            })
        };
        let mut frames = vec![
            Frame::Stanza(Stanza::Room(Box::new(RoomStanza::Presence {
                from: nick.clone(),
                to: alice.clone(),
                presence: Some(OccupantPresence {
                    show: Show::Away,
                    status: Some("out".into()),
                }),
                item: item.clone(),
                codes: vec![
                    StatusCode::SelfPresence,
                    StatusCode::Shutdown,
                    StatusCode::NotLogging,
                ],
                destroyed: Some(destroyed.clone()),
                occupant_id: "oid".into(),
            }))),
            Frame::Stanza(Stanza::Room(Box::new(RoomStanza::Message {
                from: Jid::Full(nick.clone()),
                to: alice.clone(),
                message: msg().into(),
                delayed: Some(Timestamp::from_millis(9)),
                occupant_id: Some("oid".into()),
                codes: vec![StatusCode::ConfigChanged],
                private: true,
            }))),
            Frame::Stanza(Stanza::Room(Box::new(RoomStanza::Error(StanzaError {
                to: Jid::Full(alice.clone()),
                about: ErrorAbout::Presence {
                    to: Jid::Full(nick.clone()),
                },
                condition: ErrorCondition::Conflict,
                text: Some("taken".into()),
            })))),
            answer(RoomAnswer::Done),
            answer(RoomAnswer::Config(config)),
            answer(RoomAnswer::Items(vec![item])),
            answer(RoomAnswer::Info(RoomInfo {
                name: "Lobby".into(),
                description: String::new(),
                persistent: true,
                public: true,
                members_only: false,
                moderated: true,
                password_protected: false,
                non_anonymous: true,
                archived: true,
                occupants: 3,
                subject: Some("s".into()),
            })),
            answer(RoomAnswer::Rooms(vec![(room.clone(), "Lobby".into())])),
            answer(RoomAnswer::Service),
            answer(RoomAnswer::ArchiveRead(Box::new(archive_read.clone()))),
            Frame::Stanza(Stanza::Room(Box::new(RoomStanza::Iq {
                from: nick.clone(),
                iq: iq.clone(),
            }))),
            Frame::Stanza(Stanza::Room(Box::new(RoomStanza::VoiceRequest {
                from: room.clone(),
                to: alice.clone(),
                nick: "Visitor".into(),
                jid: FullJid::new("vic@example.com/phone").expect("valid"),
            }))),
            Frame::Room(RoomTraffic::Request {
                from: alice.clone(),
                room: room.clone(),
                stamp: Timestamp::from_millis(5),
                request: RoomRequest::OccupantIq {
                    nick: "Bob".into(),
                    iq,
                },
            }),
            Frame::Room(RoomTraffic::Request {
                from: alice.clone(),
                room: room.clone(),
                stamp: Timestamp::from_millis(5),
                request: RoomRequest::Presence {
                    nick: "Al".into(),
                    presence: None,
                    join: JoinOptions::default(),
                },
            }),
            Frame::Room(RoomTraffic::Request {
                from: alice.clone(),
                room: room.clone(),
                stamp: Timestamp::from_millis(5),
                request: RoomRequest::Message {
                    nick: None,
                    message: msg(),
                },
            }),
            Frame::Room(RoomTraffic::Left {
                from: alice.clone(),
                room: room.clone(),
            }),
        ];
        for what in [
            Mediated::Invite(vec![Invite {
                to: jid("carol@example.com"),
                reason: Some("join us".into()),
            }]),
            Mediated::Decline {
                to: jid("alice@example.com/pc"),
                reason: None,
            },
            Mediated::RequestVoice,
            Mediated::AnswerVoice {
                nick: "Visitor".into(),
                allow: true,
            },
        ] {
            frames.push(Frame::Room(RoomTraffic::Request {
                from: alice.clone(),
                room: room.clone(),
                stamp: Timestamp::from_millis(5),
                request: RoomRequest::Mediated {
                    id: Some("m".into()),
                    what,
                },
            }));
        }
        frames.extend(
            [
                RoomCall::Ping,
                RoomCall::Info,
                RoomCall::Items,
                RoomCall::GetRoles(Role::Visitor),
                RoomCall::GetAffiliations(Affiliation::Outcast),
                RoomCall::SetRoles(vec![RoleChange {
                    nick: "Bob".into(),
                    role: Role::None,
                    reason: Some("kick".into()),
                }]),
                RoomCall::SetAffiliations(vec![
                    AffiliationChange {
                        who: Affiliate::Jid(bare("bob@example.com")),
                        affiliation: Affiliation::Admin,
                        reason: None,
                    },
                    AffiliationChange {
                        who: Affiliate::Nick("Bobby".into()),
                        affiliation: Affiliation::Member,
                        reason: Some("by nick".into()),
                    },
                ]),
                RoomCall::ArchiveQuery(Box::new(archive_read.clone())),
                RoomCall::GetConfig,
                RoomCall::SetConfig(ConfigChange {
                    name: Some("n".into()),
                    persistent: Some(true),
                    public: Some(false),
                    max_occupants: Some(10),
                    whois: Some(WhoIs::Anyone),
                    history_length: Some(0),
                    archiving: Some(false),
                    allow_invites: Some(true),
                    ..ConfigChange::default()
                }),
                RoomCall::SetConfig(ConfigChange::default()),
                RoomCall::CancelConfig,
                RoomCall::Destroy(destroyed),
            ]
            .into_iter()
            .map(call),
        );
        frames
    }

    fn encode_frame(f: &Frame) -> Vec<u8> {
        match f {
            Frame::Stanza(s) => encode(s).expect("routable"),
            Frame::Room(t) => encode_room(t),
        }
    }

    #[test]
    fn every_room_frame_survives_the_round_trip_and_every_truncation_is_an_error() {
        for f in room_samples() {
            let frame = encode_frame(&f);
            assert_eq!(decode_frame(&frame).expect("decodes"), f);
            for cut in 0..frame.len() {
                let err = decode_frame(&frame[..cut]).expect_err("truncated");
                assert!(
                    matches!(err, WireError::Malformed(_)),
                    "{f:?} cut at {cut}: {err}"
                );
            }
        }
    }

    #[test]
    fn room_traffic_is_not_read_as_a_stanza() {
        let frame = encode_room(&RoomTraffic::Left {
            from: FullJid::new("alice@example.com/pc").expect("valid"),
            room: bare("room@conference.example.com"),
        });
        assert!(matches!(decode(&frame), Err(WireError::Malformed(_))));
        let mut frame = frame;
        frame[0] = 3;
        assert!(matches!(
            decode_frame(&frame),
            Err(WireError::Version { found: 3 })
        ));
    }

    fn jid(s: &str) -> Jid {
        Jid::new(s).expect("valid jid")
    }

    fn bare(s: &str) -> BareJid {
        BareJid::new(s).expect("valid bare jid")
    }

    fn subscribe() -> Stanza {
        Stanza::Subscription {
            from: bare("alice@example.com"),
            to: bare("bob@example.org"),
            action: SubscriptionAction::Subscribe,
        }
    }

    #[test]
    fn answers_and_pushes_are_never_routed() {
        let answer = Stanza::Answer {
            request: RequestId("r".into()),
            answer: presence_core::feature::Answer::Done,
        };
        let err = encode(&answer).expect_err("an answer stays on its node");
        assert_eq!(
            err.to_string(),
            "a stanza of kind answer is never routed to another node"
        );
    }

    fn samples() -> Vec<Stanza> {
        vec![
            Stanza::Presence {
                from: jid("alice@example.com/phone"),
                to: jid("bob@example.org"),
                kind: PresenceKind::Available(Arc::new(PresenceView {
                    show: Show::Dnd,
                    status: Some("In a meeting".into()),
                    priority: -5,
                    composed: PresenceState::InAMeeting,
                    extensions: Default::default(),
                    avatar: Some(PhotoUpdate::Hash(AvatarHash::of(b"picture"))),
                })),
            },
            Stanza::Message {
                from: jid("alice@example.com/phone"),
                to: jid("bob@example.org"),
                message: Message {
                    id: Some("m1".into()),
                    kind: MessageKind::Chat,
                    body: Some("hello".into()),
                    subject: Some("hi".into()),
                    thread: Some("t".into()),
                    stamp: Timestamp::from_millis(1_700_000_000_000),
                    extensions: vec!["<x/>".into()],
                    marks: Default::default(),
                    archive_id: None,
                },
                delayed: Some(Timestamp::from_millis(1_700_000_000_001)),
            },
            Stanza::Error(StanzaError {
                to: jid("alice@example.com/phone"),
                about: ErrorAbout::Message {
                    id: Some("m1".into()),
                    to: jid("bob@example.org"),
                },
                condition: ErrorCondition::ServiceUnavailable,
                text: Some("gone".into()),
            }),
        ]
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for s in samples() {
            let frame = encode(&s).expect("routable");
            for cut in 0..frame.len() {
                let err = decode(&frame[..cut]).expect_err("truncated");
                assert!(
                    matches!(err, WireError::Malformed(_)),
                    "{s:?} cut at {cut}: {err}"
                );
            }
            assert_eq!(decode(&frame).expect("whole frame decodes"), s);
        }
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut frame = encode(&subscribe()).expect("routable");
        frame.push(0);
        let err = decode(&frame).expect_err("trailing byte");
        assert!(err.to_string().contains("left over"), "{err}");
    }

    #[test]
    fn an_unknown_variant_tag_is_named_in_the_error() {
        let mut frame = encode(&subscribe()).expect("routable");
        frame[1] = 200;
        let err = decode(&frame).expect_err("unknown tag");
        assert!(
            matches!(
                err,
                WireError::UnknownTag {
                    field: "stanza",
                    tag: 200
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "unknown tag 200 for stanza");

        // A nested enum: the error condition is the byte before the (absent) text's presence byte.
        let mut frame = encode(&Stanza::Error(StanzaError {
            to: jid("alice@example.com"),
            about: ErrorAbout::Presence {
                to: jid("bob@example.org"),
            },
            condition: ErrorCondition::Conflict,
            text: None,
        }))
        .expect("routable");
        let at = frame.len() - 2;
        frame[at] = 99;
        assert_eq!(
            decode(&frame).expect_err("unknown condition").to_string(),
            "unknown tag 99 for error condition"
        );
    }

    #[test]
    fn another_version_and_a_bad_jid_are_named() {
        let mut frame = encode(&subscribe()).expect("routable");
        frame[0] = 1;
        let err = decode(&frame).expect_err("version");
        assert!(matches!(err, WireError::Version { found: 1 }), "{err:?}");

        let mut w = Writer::with_version(VERSION);
        w.u8(1);
        w.str("@example.com");
        w.str("bob@example.org");
        w.u8(0);
        let err = decode(&w.finish()).expect_err("bad jid");
        assert!(
            matches!(&err, WireError::BadJid { jid, .. } if jid == "@example.com"),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("bad jid \"@example.com\""),
            "{err}"
        );
    }
}
