//! The room frames of the wire (format [`super::VERSION`] 4): a room's stanza toward an occupant on another
//! node (tag 11, a `Stanza::Room`), a request toward a room served by another node (tag 12), a session's end
//! toward a room it entered (tag 13) and a room's listing in the service's disco#items toward the node serving
//! another home (tag 20, issue 17; a node of an older build refuses it as an unknown tag), as `RoomTraffic`.
//! Laid out like the rest of the wire: fields in a fixed order, every enum behind an explicit tag (affiliations and roles by their XEP-0045 names, status codes by
//! their numbers), messages in the held-message layout.

use presence_core::archive::Query;
use presence_core::compose::Show;
use presence_core::engine::RoomTraffic;
use presence_core::rooms::{
    Affiliate, Affiliation, AffiliationChange, ArchiveRead, ConfigChange, Destroyed,
    HistoryRequest, Invite, Item, JoinOptions, Mediated, OccupantPresence, Role, RoleChange,
    RoomAnswer, RoomCall, RoomConfig, RoomInfo, RoomQuery, RoomRequest, RoomStanza, StatusCode,
    WhoIs,
};
use presence_core::time::Timestamp;

use super::{Frame, WireError, jid, malformed, show_tag, unknown};
use crate::store::codec::{Writer, read_message, write_message};

/// Every status code, to read one back by its number.
const CODES: [StatusCode; 13] = [
    StatusCode::NonAnonymous,
    StatusCode::ConfigChanged,
    StatusCode::SelfPresence,
    StatusCode::Logging,
    StatusCode::NotLogging,
    StatusCode::Created,
    StatusCode::NickModified,
    StatusCode::Banned,
    StatusCode::NickChanged,
    StatusCode::Kicked,
    StatusCode::AffiliationChanged,
    StatusCode::MembersOnly,
    StatusCode::Shutdown,
];

pub(super) fn write_room_stanza(w: &mut Writer, stanza: &RoomStanza) {
    w.u8(11);
    match stanza {
        RoomStanza::Presence {
            from,
            to,
            presence,
            item,
            codes,
            destroyed,
            occupant_id,
        } => {
            w.u8(0);
            w.str(&from.to_string());
            w.str(&to.to_string());
            opt_presence(w, presence.as_ref());
            write_item(w, item);
            write_codes(w, codes);
            w.bool(destroyed.is_some());
            if let Some(d) = destroyed {
                write_destroyed(w, d);
            }
            w.str(occupant_id);
        }
        RoomStanza::Message {
            from,
            to,
            message,
            delayed,
            occupant_id,
            codes,
            private,
        } => {
            w.u8(1);
            jid(w, from);
            w.str(&to.to_string());
            write_message(w, message);
            opt_u64(w, delayed.map(|d| d.as_millis()));
            w.opt_str(occupant_id.as_deref());
            write_codes(w, codes);
            w.bool(*private);
        }
        RoomStanza::Answer {
            id,
            from,
            to,
            answer,
        } => {
            w.u8(2);
            w.str(id);
            jid(w, from);
            w.str(&to.to_string());
            write_answer(w, answer);
        }
        RoomStanza::Error(e) => {
            w.u8(3);
            // The error's own layout is the stanza error's (tag 9), written whole after this tag.
            super::write_error(w, e);
        }
        RoomStanza::Iq { from, iq } => {
            w.u8(4);
            w.str(&from.to_string());
            super::write_iq(w, iq);
        }
        RoomStanza::VoiceRequest {
            from,
            to,
            nick,
            jid,
        } => {
            w.u8(5);
            w.str(from.as_str());
            w.str(&to.to_string());
            w.str(nick);
            w.str(&jid.to_string());
        }
    }
}

pub(super) fn write_traffic(w: &mut Writer, traffic: &RoomTraffic) {
    match traffic {
        RoomTraffic::Request {
            from,
            room,
            stamp,
            request,
        } => {
            w.u8(12);
            w.str(&from.to_string());
            w.str(room.as_str());
            w.u64(stamp.as_millis());
            write_request(w, request);
        }
        RoomTraffic::Left { from, room } => {
            w.u8(13);
            w.str(&from.to_string());
            w.str(room.as_str());
        }
        RoomTraffic::Listed { home, room, name } => {
            w.u8(LISTED);
            w.str(home);
            w.str(room.as_str());
            w.opt_str(name.as_deref());
        }
    }
}

/// The tag of a room's listing toward another home's node (issue 17), apart from the tags stanzas may take.
pub(super) const LISTED: u8 = 20;

/// Reads the frame body after a room tag (11, 12, 13 or [`LISTED`]).
pub(super) fn read_room(tag: u8, r: &mut super::Cursor<'_>) -> Result<Frame, WireError> {
    Ok(match tag {
        11 => Frame::Stanza(presence_core::stanza::Stanza::Room(Box::new(
            read_room_stanza(r)?,
        ))),
        12 => Frame::Room(RoomTraffic::Request {
            from: r.full_jid()?,
            room: r.bare_jid()?,
            stamp: Timestamp::from_millis(r.u64()?),
            request: read_request(r)?,
        }),
        13 => Frame::Room(RoomTraffic::Left {
            from: r.full_jid()?,
            room: r.bare_jid()?,
        }),
        LISTED => Frame::Room(RoomTraffic::Listed {
            home: r.str()?,
            room: r.bare_jid()?,
            name: r.opt_str()?,
        }),
        tag => return Err(unknown("stanza", tag)),
    })
}

fn read_room_stanza(r: &mut super::Cursor<'_>) -> Result<RoomStanza, WireError> {
    Ok(match r.u8()? {
        0 => RoomStanza::Presence {
            from: r.full_jid()?,
            to: r.full_jid()?,
            presence: read_opt_presence(r)?,
            item: read_item(r)?,
            codes: read_codes(r)?,
            destroyed: if r.bool()? {
                Some(read_destroyed(r)?)
            } else {
                None
            },
            occupant_id: r.str()?,
        },
        1 => RoomStanza::Message {
            from: r.jid()?,
            to: r.full_jid()?,
            message: read_message(&mut r.0, crate::store::codec::MESSAGE_VERSION)
                .map_err(malformed)?
                .into(),
            delayed: read_opt_u64(r)?.map(Timestamp::from_millis),
            occupant_id: r.opt_str()?,
            codes: read_codes(r)?,
            private: r.bool()?,
        },
        2 => RoomStanza::Answer {
            id: r.str()?,
            from: r.jid()?,
            to: r.full_jid()?,
            answer: read_answer(r)?,
        },
        3 => RoomStanza::Error(super::read_error(r)?),
        4 => RoomStanza::Iq {
            from: r.full_jid()?,
            iq: super::read_iq(r)?,
        },
        5 => RoomStanza::VoiceRequest {
            from: r.bare_jid()?,
            to: r.full_jid()?,
            nick: r.str()?,
            jid: r.full_jid()?,
        },
        tag => return Err(unknown("room stanza", tag)),
    })
}

fn opt_u64(w: &mut Writer, v: Option<u64>) {
    w.bool(v.is_some());
    if let Some(v) = v {
        w.u64(v);
    }
}

fn read_opt_u64(r: &mut super::Cursor<'_>) -> Result<Option<u64>, WireError> {
    Ok(if r.bool()? { Some(r.u64()?) } else { None })
}

fn opt_usize(w: &mut Writer, v: Option<usize>) {
    opt_u64(w, v.map(|v| v as u64));
}

fn read_usize(r: &mut super::Cursor<'_>) -> Result<usize, WireError> {
    let v = r.u64()?;
    usize::try_from(v).map_err(|_| WireError::Malformed(format!("count {v} does not fit")))
}

fn read_opt_usize(r: &mut super::Cursor<'_>) -> Result<Option<usize>, WireError> {
    Ok(if r.bool()? {
        Some(read_usize(r)?)
    } else {
        None
    })
}

fn opt_bool(w: &mut Writer, v: Option<bool>) {
    w.u8(match v {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    });
}

fn read_opt_bool(r: &mut super::Cursor<'_>) -> Result<Option<bool>, WireError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(false)),
        2 => Ok(Some(true)),
        tag => Err(unknown("optional flag", tag)),
    }
}

fn opt_presence(w: &mut Writer, p: Option<&OccupantPresence>) {
    w.bool(p.is_some());
    if let Some(p) = p {
        w.u8(show_tag(p.show));
        w.opt_str(p.status.as_deref());
    }
}

fn read_opt_presence(r: &mut super::Cursor<'_>) -> Result<Option<OccupantPresence>, WireError> {
    if !r.bool()? {
        return Ok(None);
    }
    let show: Show = r.show()?;
    Ok(Some(OccupantPresence {
        show,
        status: r.opt_str()?,
    }))
}

fn read_affiliation(r: &mut super::Cursor<'_>) -> Result<Affiliation, WireError> {
    let name = r.str()?;
    Affiliation::from_name(&name)
        .ok_or_else(|| WireError::Malformed(format!("unknown affiliation {name:?}")))
}

fn read_role(r: &mut super::Cursor<'_>) -> Result<Role, WireError> {
    let name = r.str()?;
    Role::from_name(&name).ok_or_else(|| WireError::Malformed(format!("unknown role {name:?}")))
}

fn write_item(w: &mut Writer, item: &Item) {
    w.str(item.affiliation.name());
    w.str(item.role.name());
    w.opt_str(item.jid.as_ref().map(ToString::to_string).as_deref());
    w.opt_str(item.nick.as_deref());
    w.opt_str(item.reason.as_deref());
}

fn read_item(r: &mut super::Cursor<'_>) -> Result<Item, WireError> {
    Ok(Item {
        affiliation: read_affiliation(r)?,
        role: read_role(r)?,
        jid: match r.opt_str()? {
            None => None,
            Some(text) => Some(
                presence_core::Jid::new(&text)
                    .map_err(|source| WireError::BadJid { jid: text, source })?,
            ),
        },
        nick: r.opt_str()?,
        reason: r.opt_str()?,
    })
}

fn write_codes(w: &mut Writer, codes: &[StatusCode]) {
    w.len(codes.len());
    for c in codes {
        w.u64(u64::from(c.code()));
    }
}

fn read_codes(r: &mut super::Cursor<'_>) -> Result<Vec<StatusCode>, WireError> {
    let n = r.0.len().map_err(malformed)?;
    let mut codes = Vec::new();
    for _ in 0..n {
        let number = r.u64()?;
        let code = CODES
            .into_iter()
            .find(|c| u64::from(c.code()) == number)
            .ok_or_else(|| WireError::Malformed(format!("unknown status code {number}")))?;
        codes.push(code);
    }
    Ok(codes)
}

fn write_destroyed(w: &mut Writer, d: &Destroyed) {
    w.opt_str(d.reason.as_deref());
    w.opt_str(d.alternate.as_ref().map(|a| a.as_str()));
    w.opt_str(d.password.as_deref());
}

fn read_destroyed(r: &mut super::Cursor<'_>) -> Result<Destroyed, WireError> {
    Ok(Destroyed {
        reason: r.opt_str()?,
        alternate: match r.opt_str()? {
            None => None,
            Some(text) => Some(
                presence_core::BareJid::new(&text)
                    .map_err(|source| WireError::BadJid { jid: text, source })?,
            ),
        },
        password: r.opt_str()?,
    })
}

fn whois_tag(w: WhoIs) -> u8 {
    match w {
        WhoIs::Anyone => 0,
        WhoIs::Moderators => 1,
    }
}

fn read_whois(tag: u8) -> Result<WhoIs, WireError> {
    match tag {
        0 => Ok(WhoIs::Anyone),
        1 => Ok(WhoIs::Moderators),
        tag => Err(unknown("whois", tag)),
    }
}

fn write_answer(w: &mut Writer, answer: &RoomAnswer) {
    match answer {
        RoomAnswer::Done => w.u8(0),
        RoomAnswer::Config(c) => {
            w.u8(1);
            write_config(w, c);
        }
        RoomAnswer::Items(items) => {
            w.u8(2);
            w.len(items.len());
            for i in items {
                write_item(w, i);
            }
        }
        RoomAnswer::Info(i) => {
            w.u8(3);
            w.str(&i.name);
            w.str(&i.description);
            for flag in [
                i.persistent,
                i.public,
                i.members_only,
                i.moderated,
                i.password_protected,
                i.non_anonymous,
                i.archived,
            ] {
                w.bool(flag);
            }
            w.u64(i.occupants as u64);
            w.opt_str(i.subject.as_deref());
        }
        RoomAnswer::Rooms(rooms) => {
            w.u8(4);
            w.len(rooms.len());
            for (jid, name) in rooms {
                w.str(jid.as_str());
                w.str(name);
            }
        }
        RoomAnswer::Service => w.u8(5),
        RoomAnswer::ArchiveRead(read) => {
            w.u8(6);
            write_archive_read(w, read);
        }
    }
}

fn read_answer(r: &mut super::Cursor<'_>) -> Result<RoomAnswer, WireError> {
    Ok(match r.u8()? {
        0 => RoomAnswer::Done,
        1 => RoomAnswer::Config(read_config(r)?),
        2 => {
            let n = r.0.len().map_err(malformed)?;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(read_item(r)?);
            }
            RoomAnswer::Items(items)
        }
        3 => RoomAnswer::Info(RoomInfo {
            name: r.str()?,
            description: r.str()?,
            persistent: r.bool()?,
            public: r.bool()?,
            members_only: r.bool()?,
            moderated: r.bool()?,
            password_protected: r.bool()?,
            non_anonymous: r.bool()?,
            archived: r.bool()?,
            occupants: read_usize(r)?,
            subject: r.opt_str()?,
        }),
        4 => {
            let n = r.0.len().map_err(malformed)?;
            let mut rooms = Vec::new();
            for _ in 0..n {
                rooms.push((r.bare_jid()?, r.str()?));
            }
            RoomAnswer::Rooms(rooms)
        }
        5 => RoomAnswer::Service,
        6 => RoomAnswer::ArchiveRead(Box::new(read_archive_read(r)?)),
        tag => return Err(unknown("room answer", tag)),
    })
}

fn write_config(w: &mut Writer, c: &RoomConfig) {
    w.str(&c.name);
    w.str(&c.description);
    for flag in [
        c.persistent,
        c.public,
        c.members_only,
        c.moderated,
        c.allow_private_messages,
        c.change_subject,
        c.archiving,
        c.allow_invites,
    ] {
        w.bool(flag);
    }
    w.opt_str(c.password.as_deref());
    w.u64(c.max_occupants as u64);
    w.u8(whois_tag(c.whois));
    w.u64(c.history_length as u64);
}

fn read_config(r: &mut super::Cursor<'_>) -> Result<RoomConfig, WireError> {
    let name = r.str()?;
    let description = r.str()?;
    let mut flags = [false; 8];
    for f in &mut flags {
        *f = r.bool()?;
    }
    let [
        persistent,
        public,
        members_only,
        moderated,
        allow_private_messages,
        change_subject,
        archiving,
        allow_invites,
    ] = flags;
    Ok(RoomConfig {
        name,
        description,
        persistent,
        public,
        members_only,
        moderated,
        password: r.opt_str()?,
        max_occupants: read_usize(r)?,
        whois: read_whois(r.u8()?)?,
        history_length: read_usize(r)?,
        allow_private_messages,
        change_subject,
        archiving,
        allow_invites,
    })
}

fn write_request(w: &mut Writer, request: &RoomRequest) {
    match request {
        RoomRequest::Presence {
            nick,
            presence,
            join,
        } => {
            w.u8(0);
            w.str(nick);
            opt_presence(w, presence.as_ref());
            w.opt_str(join.password.as_deref());
            let h = &join.history;
            opt_usize(w, h.max_stanzas);
            opt_u64(w, h.seconds);
            opt_u64(w, h.since.map(|s| s.as_millis()));
            w.bool(h.none);
        }
        RoomRequest::Message { nick, message } => {
            w.u8(1);
            w.opt_str(nick.as_deref());
            write_message(w, message);
        }
        RoomRequest::Iq { id, nick, call } => {
            w.u8(2);
            w.str(id);
            w.opt_str(nick.as_deref());
            write_call(w, call);
        }
        RoomRequest::Mediated { id, what } => {
            w.u8(3);
            w.opt_str(id.as_deref());
            write_mediated(w, what);
        }
        RoomRequest::OccupantIq { nick, iq } => {
            w.u8(4);
            w.str(nick);
            super::write_iq(w, iq);
        }
    }
}

fn write_mediated(w: &mut Writer, what: &Mediated) {
    match what {
        Mediated::Invite(invites) => {
            w.u8(0);
            w.len(invites.len());
            for i in invites {
                super::jid(w, &i.to);
                w.opt_str(i.reason.as_deref());
            }
        }
        Mediated::Decline { to, reason } => {
            w.u8(1);
            super::jid(w, to);
            w.opt_str(reason.as_deref());
        }
        Mediated::RequestVoice => w.u8(2),
        Mediated::AnswerVoice { nick, allow } => {
            w.u8(3);
            w.str(nick);
            w.bool(*allow);
        }
    }
}

fn read_mediated(r: &mut super::Cursor<'_>) -> Result<Mediated, WireError> {
    Ok(match r.u8()? {
        0 => {
            let n = r.0.len().map_err(malformed)?;
            let mut invites = Vec::new();
            for _ in 0..n {
                invites.push(Invite {
                    to: r.jid()?,
                    reason: r.opt_str()?,
                });
            }
            Mediated::Invite(invites)
        }
        1 => Mediated::Decline {
            to: r.jid()?,
            reason: r.opt_str()?,
        },
        2 => Mediated::RequestVoice,
        3 => Mediated::AnswerVoice {
            nick: r.str()?,
            allow: r.bool()?,
        },
        tag => return Err(unknown("mediated request", tag)),
    })
}

fn write_archive_read(w: &mut Writer, read: &ArchiveRead) {
    w.opt_str(read.query.nick.as_deref());
    let q = &read.query.query;
    w.opt_str(q.with.as_ref().map(|j| j.as_str()));
    opt_u64(w, q.start.map(|t| t.as_millis()));
    opt_u64(w, q.end.map(|t| t.as_millis()));
    opt_u64(w, q.after);
    opt_u64(w, q.before);
    w.bool(q.ids.is_some());
    if let Some(ids) = &q.ids {
        w.len(ids.len());
        for id in ids {
            w.u64(*id);
        }
    }
    w.bool(q.from_end);
    w.u64(q.max as u64);
    w.opt_str(read.queryid.as_deref());
    w.bool(read.flip);
}

fn read_archive_read(r: &mut super::Cursor<'_>) -> Result<ArchiveRead, WireError> {
    let nick = r.opt_str()?;
    let with = match r.opt_str()? {
        None => None,
        Some(text) => Some(
            presence_core::BareJid::new(&text)
                .map_err(|source| WireError::BadJid { jid: text, source })?,
        ),
    };
    let start = read_opt_u64(r)?.map(Timestamp::from_millis);
    let end = read_opt_u64(r)?.map(Timestamp::from_millis);
    let after = read_opt_u64(r)?;
    let before = read_opt_u64(r)?;
    let ids = if r.bool()? {
        let n = r.0.len().map_err(malformed)?;
        let mut ids = Vec::new();
        for _ in 0..n {
            ids.push(r.u64()?);
        }
        Some(ids)
    } else {
        None
    };
    Ok(ArchiveRead {
        query: RoomQuery {
            nick,
            query: Query {
                with,
                start,
                end,
                after,
                before,
                ids,
                from_end: r.bool()?,
                max: read_usize(r)?,
            },
        },
        queryid: r.opt_str()?,
        flip: r.bool()?,
    })
}

fn read_request(r: &mut super::Cursor<'_>) -> Result<RoomRequest, WireError> {
    Ok(match r.u8()? {
        0 => RoomRequest::Presence {
            nick: r.str()?,
            presence: read_opt_presence(r)?,
            join: JoinOptions {
                password: r.opt_str()?,
                history: HistoryRequest {
                    max_stanzas: read_opt_usize(r)?,
                    seconds: read_opt_u64(r)?,
                    since: read_opt_u64(r)?.map(Timestamp::from_millis),
                    none: r.bool()?,
                },
            },
        },
        1 => RoomRequest::Message {
            nick: r.opt_str()?,
            message: read_message(&mut r.0, crate::store::codec::MESSAGE_VERSION)
                .map_err(malformed)?,
        },
        2 => RoomRequest::Iq {
            id: r.str()?,
            nick: r.opt_str()?,
            call: read_call(r)?,
        },
        3 => RoomRequest::Mediated {
            id: r.opt_str()?,
            what: read_mediated(r)?,
        },
        4 => RoomRequest::OccupantIq {
            nick: r.str()?,
            iq: super::read_iq(r)?,
        },
        tag => return Err(unknown("room request", tag)),
    })
}

fn write_call(w: &mut Writer, call: &RoomCall) {
    match call {
        RoomCall::Ping => w.u8(0),
        RoomCall::Info => w.u8(1),
        RoomCall::Items => w.u8(2),
        RoomCall::GetRoles(role) => {
            w.u8(3);
            w.str(role.name());
        }
        RoomCall::GetAffiliations(a) => {
            w.u8(4);
            w.str(a.name());
        }
        RoomCall::SetRoles(changes) => {
            w.u8(5);
            w.len(changes.len());
            for c in changes {
                w.str(&c.nick);
                w.str(c.role.name());
                w.opt_str(c.reason.as_deref());
            }
        }
        RoomCall::SetAffiliations(changes) => {
            w.u8(6);
            w.len(changes.len());
            for c in changes {
                match &c.who {
                    Affiliate::Jid(j) => {
                        w.u8(0);
                        w.str(j.as_str());
                    }
                    Affiliate::Nick(n) => {
                        w.u8(1);
                        w.str(n);
                    }
                }
                w.str(c.affiliation.name());
                w.opt_str(c.reason.as_deref());
            }
        }
        RoomCall::GetConfig => w.u8(7),
        RoomCall::SetConfig(c) => {
            w.u8(8);
            write_change(w, c);
        }
        RoomCall::CancelConfig => w.u8(9),
        RoomCall::Destroy(d) => {
            w.u8(10);
            write_destroyed(w, d);
        }
        RoomCall::ArchiveQuery(read) => {
            w.u8(11);
            write_archive_read(w, read);
        }
    }
}

fn read_call(r: &mut super::Cursor<'_>) -> Result<RoomCall, WireError> {
    Ok(match r.u8()? {
        0 => RoomCall::Ping,
        1 => RoomCall::Info,
        2 => RoomCall::Items,
        3 => RoomCall::GetRoles(read_role(r)?),
        4 => RoomCall::GetAffiliations(read_affiliation(r)?),
        5 => {
            let n = r.0.len().map_err(malformed)?;
            let mut changes = Vec::new();
            for _ in 0..n {
                changes.push(RoleChange {
                    nick: r.str()?,
                    role: read_role(r)?,
                    reason: r.opt_str()?,
                });
            }
            RoomCall::SetRoles(changes)
        }
        6 => {
            let n = r.0.len().map_err(malformed)?;
            let mut changes = Vec::new();
            for _ in 0..n {
                changes.push(AffiliationChange {
                    who: match r.u8()? {
                        0 => Affiliate::Jid(r.bare_jid()?),
                        1 => Affiliate::Nick(r.str()?),
                        tag => return Err(unknown("affiliate", tag)),
                    },
                    affiliation: read_affiliation(r)?,
                    reason: r.opt_str()?,
                });
            }
            RoomCall::SetAffiliations(changes)
        }
        7 => RoomCall::GetConfig,
        8 => RoomCall::SetConfig(read_change(r)?),
        9 => RoomCall::CancelConfig,
        10 => RoomCall::Destroy(read_destroyed(r)?),
        11 => RoomCall::ArchiveQuery(Box::new(read_archive_read(r)?)),
        tag => return Err(unknown("room call", tag)),
    })
}

fn write_change(w: &mut Writer, c: &ConfigChange) {
    w.opt_str(c.name.as_deref());
    w.opt_str(c.description.as_deref());
    for flag in [
        c.persistent,
        c.public,
        c.members_only,
        c.moderated,
        c.password_protected,
        c.allow_private_messages,
        c.change_subject,
        c.archiving,
        c.allow_invites,
    ] {
        opt_bool(w, flag);
    }
    w.opt_str(c.password.as_deref());
    opt_usize(w, c.max_occupants);
    w.u8(c.whois.map_or(0, |x| whois_tag(x) + 1));
    opt_usize(w, c.history_length);
}

fn read_change(r: &mut super::Cursor<'_>) -> Result<ConfigChange, WireError> {
    let name = r.opt_str()?;
    let description = r.opt_str()?;
    let mut flags = [None; 9];
    for f in &mut flags {
        *f = read_opt_bool(r)?;
    }
    let [
        persistent,
        public,
        members_only,
        moderated,
        password_protected,
        allow_private_messages,
        change_subject,
        archiving,
        allow_invites,
    ] = flags;
    Ok(ConfigChange {
        name,
        description,
        persistent,
        public,
        members_only,
        moderated,
        password_protected,
        password: r.opt_str()?,
        max_occupants: read_opt_usize(r)?,
        whois: match r.u8()? {
            0 => None,
            tag => Some(read_whois(tag - 1)?),
        },
        history_length: read_opt_usize(r)?,
        allow_private_messages,
        change_subject,
        archiving,
        allow_invites,
    })
}
