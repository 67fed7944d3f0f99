//! Group chat helpers shared by the room tests (`rooms`, `cluster_rooms`, `room_archive`): the engine
//! configuration with a room service, sending room requests, and reading what the room delivered.
#![allow(dead_code)]

use presence_core::message::{Message, MessageKind};
use presence_core::rooms::{
    Affiliate, Affiliation, AffiliationChange, ConfigChange, JoinOptions, OccupantIdKey,
    OccupantPresence, RoomAnswer, RoomCall, RoomRequest, RoomStanza, RoomsConfig,
};
use presence_core::stanza::{ErrorCondition, Stanza};
use presence_core::time::Timestamp;
use presence_core::{BareJid, EngineConfig, Input, SessionId};

use super::{Harness, j};

/// The room most tests use.
pub const ROOM: &str = "room@conference.x";

/// A room service at `conference.x`.
pub fn rooms_config() -> RoomsConfig {
    RoomsConfig::new("conference.x", OccupantIdKey::new(b"k".to_vec()))
}

/// Domain `x` with the room service of `rooms_config`.
pub fn config() -> EngineConfig {
    EngineConfig {
        rooms: Some(rooms_config()),
        ..EngineConfig::for_domain("x")
    }
}

/// Alice, bob, carol and dave on domain `x`, with the room service.
pub fn harness() -> Harness {
    Harness::with_users(config(), &["alice@x", "bob@x", "carol@x", "dave@x"])
}

/// A new engine over `h`'s store, with the stored rooms read back (a restart).
pub fn restarted(h: &Harness) -> Harness {
    let mut h2 = Harness::new(config());
    h2.store = h.store.clone();
    h2.engine = presence_core::Engine::new(config())
        .with_rooms(presence_core::store::load_rooms(&*h.store).expect("rooms"));
    h2
}

/// The room jid `ROOM`.
pub fn the_room() -> BareJid {
    j(ROOM)
}

pub fn send(h: &mut Harness, session: SessionId, room: &BareJid, request: RoomRequest) {
    h.input(Input::Room {
        session,
        room: room.clone(),
        stamp: Timestamp(1_000_000),
        request,
    });
}

pub fn join_with(
    h: &mut Harness,
    session: SessionId,
    room: &BareJid,
    nick: &str,
    join: JoinOptions,
) {
    send(
        h,
        session,
        room,
        RoomRequest::Presence {
            nick: nick.into(),
            presence: Some(OccupantPresence::default()),
            join,
        },
    );
}

pub fn join(h: &mut Harness, session: SessionId, room: &BareJid, nick: &str) {
    join_with(h, session, room, nick, JoinOptions::default());
}

pub fn iq(h: &mut Harness, session: SessionId, room: &BareJid, call: RoomCall) {
    send(
        h,
        session,
        room,
        RoomRequest::Iq {
            id: "q".into(),
            nick: None,
            call,
        },
    );
}

/// A groupchat message with id `m-<body>`.
pub fn groupchat_message(body: &str) -> Message {
    Message {
        id: Some(format!("m-{body}")),
        kind: MessageKind::Groupchat,
        body: Some(body.into()),
        ..Message::default()
    }
}

pub fn groupchat(h: &mut Harness, session: SessionId, room: &BareJid, body: &str) {
    send(
        h,
        session,
        room,
        RoomRequest::Message {
            nick: None,
            message: groupchat_message(body),
        },
    );
}

/// Sets `jid`'s affiliation, no reason given.
pub fn affiliate(jid: &str, affiliation: Affiliation) -> RoomCall {
    RoomCall::SetAffiliations(vec![AffiliationChange {
        who: Affiliate::Jid(j(jid)),
        affiliation,
        reason: None,
    }])
}

/// Makes the room members-only.
pub fn members_only() -> RoomCall {
    RoomCall::SetConfig(ConfigChange {
        members_only: Some(true),
        ..ConfigChange::default()
    })
}

/// Makes the room moderated.
pub fn moderated() -> RoomCall {
    RoomCall::SetConfig(ConfigChange {
        moderated: Some(true),
        ..ConfigChange::default()
    })
}

/// The room stanzas delivered to `s`, taken.
pub fn room_stanzas(h: &mut Harness, s: SessionId) -> Vec<RoomStanza> {
    h.take(s)
        .into_iter()
        .filter_map(|st| match st {
            Stanza::Room(r) => Some(*r),
            _ => None,
        })
        .collect()
}

/// (from nick, available, codes) of the room presences among `got`.
pub fn presences(got: &[RoomStanza]) -> Vec<(String, bool, Vec<u16>)> {
    got.iter()
        .filter_map(|r| match r {
            RoomStanza::Presence {
                from,
                presence,
                codes,
                ..
            } => Some((
                from.resource().to_owned(),
                presence.is_some(),
                codes.iter().map(|c| c.code()).collect(),
            )),
            _ => None,
        })
        .collect()
}

/// (from, body, private) of the room messages among `got`.
pub fn messages(got: &[RoomStanza]) -> Vec<(String, String, bool)> {
    got.iter()
        .filter_map(|r| match r {
            RoomStanza::Message {
                from,
                message,
                private,
                ..
            } => Some((
                from.to_string(),
                message.body.clone().unwrap_or_default(),
                *private,
            )),
            _ => None,
        })
        .collect()
}

pub fn error_of(got: &[RoomStanza]) -> Option<ErrorCondition> {
    got.iter().find_map(|r| match r {
        RoomStanza::Error(e) => Some(e.condition),
        _ => None,
    })
}

pub fn answered(got: &[RoomStanza]) -> Option<&RoomAnswer> {
    got.iter().find_map(|r| match r {
        RoomStanza::Answer { answer, .. } => Some(answer),
        _ => None,
    })
}

/// `join`, `join_with`, `iq` and `groupchat` for `ROOM`.
pub mod at_room {
    use presence_core::SessionId;
    use presence_core::rooms::{JoinOptions, RoomCall};

    use super::{Harness, the_room};

    pub fn join_with(h: &mut Harness, session: SessionId, nick: &str, join: JoinOptions) {
        super::join_with(h, session, &the_room(), nick, join);
    }

    pub fn join(h: &mut Harness, session: SessionId, nick: &str) {
        super::join(h, session, &the_room(), nick);
    }

    pub fn iq(h: &mut Harness, session: SessionId, call: RoomCall) {
        super::iq(h, session, &the_room(), call);
    }

    pub fn groupchat(h: &mut Harness, session: SessionId, body: &str) {
        super::groupchat(h, session, &the_room(), body);
    }
}
