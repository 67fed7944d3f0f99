//! Rooms across the nodes of a cluster (issue 15): which rooms this engine serves, how a session of this node
//! reaches a room served by another, and how an occupant whose session lives elsewhere sits in a room here.
//!
//! - **Placement.** Each room has a home node, `cluster::room_home` over the cluster's node names. The runtime
//!   tells the engine the node names and whose rooms it serves now (`Input::RoomPlacement`: its own, plus its
//!   failed peer's during a takeover, or none while failed over). Without that input every room is local, so a
//!   single node behaves as before.
//! - **Requests to a room served elsewhere** leave as `Output::ToRoom(RoomTraffic::Request)` with the sender's
//!   real address; the runtime carries them to the node serving the room, or answers the sender with an error
//!   (`RoomTraffic::bounce`). The engine remembers which remote rooms each of its sessions entered, so when a
//!   session ends or goes unavailable it sends a `RoomTraffic::Left` for each.
//! - **Proxy sessions.** On the serving node an occupant from another node is seated under a proxy
//!   [`SessionId`] with [`PROXY_BIT`] set, mapped to and from its real full address; the room service
//!   (`rooms/`) is unchanged and does not know. A delivery to a proxy session is routed (`Output::Route` of a
//!   `Stanza::Room` addressed to the real full address) and the occupant's node delivers it to the session.
//! - **Moves.** When this engine stops serving a home it drops that home's rooms from memory, telling their
//!   occupants with status 332 (their clients rejoin, XEP-0410, and reach the new serving node); when it starts
//!   serving one it asks for the persistent rooms again (`Output::LoadRooms`), since the store may have changed
//!   since it last read them. Ad hoc rooms live in memory only and are lost with a node that dies.
//! - **The service's listing** (issue 17). The service itself (disco#items, disco#info of
//!   `conference.<domain>`) is answered by the requester's own engine, which lists the public rooms it serves
//!   and those its directory says other engines serve (`rooms::directory`, which says why): each change of a
//!   room's listing goes to every other home as `RoomTraffic::Listed`, addressed to the home rather than to
//!   a room ([`RoomTraffic::home`]).
//!
//! Known limits, as decided for issue 15:
//! - A node killed outright tells nobody: its remote occupants learn the room went by XEP-0410 self-ping
//!   (answered `not-acceptable` by the new serving node) and rejoin. An orderly stop or a failover releases the
//!   rooms with 332 if the node still runs when the placement changes. Nor does it say its ad hoc rooms are
//!   gone: the node taking its rooms over stops listing them (it lists what it serves), but a third node lists
//!   them until each changes again (entering one creates it anew).
//! - XEP-0421 occupant ids are keyed per node (the key file in each node's data directory), so they change
//!   when a room moves to the peer; a cluster-wide key would keep them stable.
//! - Proxy sessions exist while seated (one that only asked something is forgotten at once); a remote
//!   session that ends sends a leave for each remote room it entered, and a room stanza for a session that is
//!   gone is answered with a leave, so a lost leave heals at the next delivery.

use std::collections::VecDeque;

use hashbrown::{HashMap, HashSet};

use super::Engine;
use crate::cluster::room_home;
use crate::engine::{Input, Output};
use crate::jid::{BareJid, FullJid, Jid};
use crate::rooms::{RoomRecord, RoomRequest, RoomStanza, Sender};
use crate::session::SessionId;
use crate::stanza::{ErrorAbout, ErrorCondition, Stanza, StanzaError};
use crate::time::Timestamp;

/// The bit that marks a proxy session id. Shells allocate session ids counting up from 1 (the runtime's
/// `Handle::new_session`), so they never reach it, and proxy ids never collide with a local session's.
pub const PROXY_BIT: u64 = 1 << 63;

/// Room traffic between the nodes of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomTraffic {
    /// A request of a session of one node to a room (or an occupant of it) served by another.
    Request {
        /// The sender's real full address.
        from: FullJid,
        /// The room addressed.
        room: BareJid,
        /// When it arrived at the sender's node (history stamps).
        stamp: Timestamp,
        /// What it asks.
        request: RoomRequest,
    },
    /// The session at `from` left the network (ended, or went unavailable): it leaves every room it is in on
    /// the node serving `room`.
    Left {
        /// The session's real full address.
        from: FullJid,
        /// A room it entered there (the node routes by it).
        room: BareJid,
    },
    /// The engine serving `room` tells the one serving `home` how the service's disco#items lists the room
    /// now (see `rooms::directory`). Carried to `home`'s engine, not to the room's.
    Listed {
        /// The home whose engine is told.
        home: String,
        /// The room.
        room: BareJid,
        /// Its name when it is public and unlocked; `None` when it is not listed (or is gone).
        name: Option<String>,
    },
}

impl RoomTraffic {
    /// The room it is for: where it must be carried.
    pub fn room(&self) -> &BareJid {
        match self {
            RoomTraffic::Request { room, .. }
            | RoomTraffic::Left { room, .. }
            | RoomTraffic::Listed { room, .. } => room,
        }
    }

    /// The home whose engine it is for, when it is addressed to a home rather than to the engine serving
    /// [`RoomTraffic::room`].
    pub fn home(&self) -> Option<&str> {
        match self {
            RoomTraffic::Listed { home, .. } => Some(home),
            RoomTraffic::Request { .. } | RoomTraffic::Left { .. } => None,
        }
    }

    /// What its sender is told when it cannot be carried: a room error for a request (an IQ always gets its
    /// answer), nothing for a leave (the serving node is gone or will drop the occupant when a delivery to it
    /// fails).
    pub fn bounce(self, condition: ErrorCondition, text: &str) -> Option<Stanza> {
        let RoomTraffic::Request {
            from,
            room,
            request,
            ..
        } = self
        else {
            return None;
        };
        Some(Stanza::Room(Box::new(RoomStanza::Error(StanzaError {
            to: Jid::Full(from),
            about: about(room, &request),
            condition,
            text: Some(text.to_owned()),
        }))))
    }
}

/// What an error about `request` to `room` refers to.
pub(super) fn about(room: BareJid, request: &RoomRequest) -> ErrorAbout {
    let at = |nick: Option<&str>| match nick.and_then(|n| room.with_resource(n).ok()) {
        Some(full) => Jid::Full(full),
        None => Jid::Bare(room.clone()),
    };
    match request {
        RoomRequest::Presence { nick, .. } => ErrorAbout::Presence { to: at(Some(nick)) },
        RoomRequest::Message { nick, message } => ErrorAbout::Message {
            id: message.id.clone(),
            to: at(nick.as_deref()),
        },
        RoomRequest::Mediated { id, .. } => ErrorAbout::Message {
            id: id.clone(),
            to: at(None),
        },
        RoomRequest::OccupantIq { nick, iq } => ErrorAbout::Iq {
            id: iq.id.clone(),
            to: at(Some(nick)),
        },
        RoomRequest::Iq { id, nick, .. } => ErrorAbout::Iq {
            id: id.clone(),
            to: at(nick.as_deref()),
        },
    }
}

/// Whose rooms this engine serves.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placement {
    nodes: Vec<String>,
    served: HashSet<String>,
}

/// Whether the persistent rooms are in memory for every home served.
#[derive(Debug, Default)]
enum RoomLoad {
    /// They are.
    #[default]
    Ready,
    /// A read was asked for (`Output::LoadRooms`); room work waits behind it, in order, so that nothing runs
    /// against a room not read yet (a join would create a fresh room over the stored one).
    Loading(VecDeque<Input>),
    /// The last read failed: the next room work asks again.
    Stale,
}

/// The engine's cluster-wide room state.
#[derive(Debug, Default)]
pub(super) struct RoomNet {
    load: RoomLoad,
    /// `None`: every room is local (not a node of a cluster).
    placement: Option<Placement>,
    /// The proxy session of each remote occupant, by its real address (a room's deliveries carry the real
    /// address, so the way back needs no map).
    by_jid: HashMap<FullJid, SessionId>,
    /// The last proxy number handed out.
    next: u64,
    /// The remote rooms each local session entered (possibly since left: the serving node ignores a leave from
    /// a session that is not seated), with the session's address.
    remote: HashMap<SessionId, (FullJid, HashSet<BareJid>)>,
}

impl RoomNet {
    /// Whether room work must wait for (or ask for) a read of the persistent rooms.
    pub(super) fn waits(&self) -> bool {
        !matches!(self.load, RoomLoad::Ready)
    }

    /// Whether `room` is served here.
    pub(super) fn serves(&self, room: &BareJid) -> bool {
        let Some(p) = &self.placement else {
            return true;
        };
        room_home(room, &p.nodes).is_none_or(|home| p.served.contains(home))
    }

    fn proxy(&mut self, jid: &FullJid) -> SessionId {
        if let Some(id) = self.by_jid.get(jid) {
            return *id;
        }
        self.next += 1;
        let id = SessionId(PROXY_BIT | self.next);
        self.by_jid.insert(jid.clone(), id);
        id
    }

    fn forget_proxy(&mut self, jid: &FullJid) -> Option<SessionId> {
        self.by_jid.remove(jid)
    }
}

/// Whether a session id is a proxy's.
pub(super) fn is_proxy(session: SessionId) -> bool {
    session.0 & PROXY_BIT != 0
}

impl Engine {
    /// Whether a room of the local service is served by another node (so requests to it leave as
    /// `Output::ToRoom`). The service itself (no local part) is always answered here.
    pub(super) fn room_elsewhere(&self, room: &BareJid) -> bool {
        room.local().is_some() && !self.room_net.serves(room)
    }

    /// Sends a session's request to a room served by another node, remembering a join so that the session's
    /// end reaches that room.
    pub(super) fn room_request_remote(
        &mut self,
        session: SessionId,
        from: FullJid,
        room: BareJid,
        stamp: Timestamp,
        request: RoomRequest,
    ) {
        if matches!(
            request,
            RoomRequest::Presence {
                presence: Some(_),
                ..
            }
        ) {
            self.room_net
                .remote
                .entry(session)
                .or_insert_with(|| (from.clone(), HashSet::new()))
                .1
                .insert(room.clone());
        }
        self.out(Output::ToRoom(RoomTraffic::Request {
            from,
            room,
            stamp,
            request,
        }));
    }

    /// A local session left the network: every remote room it entered hears it.
    pub(super) fn leave_remote_rooms(&mut self, session: SessionId) {
        let Some((from, rooms)) = self.room_net.remote.remove(&session) else {
            return;
        };
        let mut rooms: Vec<BareJid> = rooms.into_iter().collect();
        rooms.sort();
        for room in rooms {
            self.out(Output::ToRoom(RoomTraffic::Left {
                from: from.clone(),
                room,
            }));
        }
    }

    /// Room traffic another node sent here.
    pub(super) fn remote_room(&mut self, traffic: RoomTraffic) {
        match traffic {
            RoomTraffic::Request {
                from,
                room,
                stamp,
                request,
            } => {
                let served = self
                    .rooms
                    .as_ref()
                    .is_some_and(|r| r.domain() == room.domain())
                    && !self.room_elsewhere(&room);
                if !served {
                    // The sender's node has a stale view (the room moved on): it hears so and its client
                    // tries again.
                    let bounce = RoomTraffic::Request {
                        from,
                        room,
                        stamp,
                        request,
                    }
                    .bounce(
                        ErrorCondition::ServiceUnavailable,
                        "the room is not served by this node; try again shortly",
                    );
                    if let Some(Stanza::Room(stanza)) = bounce {
                        self.room_stanza_to(*stanza);
                    }
                    return;
                }
                let proxy = self.room_net.proxy(&from);
                self.run_room_request(
                    Sender {
                        session: proxy,
                        jid: &from,
                    },
                    room,
                    stamp,
                    request,
                );
                // A proxy lives while it sits in a room: one that only asked something (disco, a refused join)
                // or has just left its last room is forgotten, so proxies cannot pile up.
                if !self.rooms.as_ref().is_some_and(|r| r.is_seated(proxy)) {
                    self.room_net.forget_proxy(&from);
                }
            }
            RoomTraffic::Left { from, .. } => {
                if let Some(proxy) = self.room_net.forget_proxy(&from) {
                    self.leave_rooms(proxy);
                }
            }
            RoomTraffic::Listed { room, name, .. } => {
                // A room served here is listed from the room itself: an announcement about it is stale (the
                // room moved here since) or this engine's own, carried back.
                if self.room_elsewhere(&room)
                    && let Some(rooms) = self.rooms.as_mut()
                    && rooms.domain() == room.domain()
                {
                    rooms.note_elsewhere(room, name);
                }
            }
        }
    }

    /// A room served here changed how the service lists it: every other home's engine hears so (none when
    /// every room is local).
    pub(super) fn announce_listing(&mut self, room: BareJid, name: Option<String>) {
        let Some(p) = &self.room_net.placement else {
            return;
        };
        let homes: Vec<String> = p
            .nodes
            .iter()
            .filter(|home| !p.served.contains(*home))
            .cloned()
            .collect();
        for home in homes {
            self.out(Output::ToRoom(RoomTraffic::Listed {
                home,
                room: room.clone(),
                name: name.clone(),
            }));
        }
    }

    /// A room stanza another node's room sent to a session of this node.
    pub(super) fn room_stanza_from_remote(&mut self, stanza: RoomStanza) {
        let Some(to) = stanza.addressee_session().cloned() else {
            return;
        };
        let session = self
            .users
            .get(to.bare())
            .and_then(|u| u.session_by_resource(to.resource()))
            .map(|s| s.id);
        match session {
            Some(session) => self.deliver(session, Stanza::Room(Box::new(stanza))),
            // The session is gone: the room forgets it (its leave was lost or crossed this delivery).
            None => {
                if let RoomStanza::Presence { from, .. } = &stanza {
                    self.out(Output::ToRoom(RoomTraffic::Left {
                        from: to,
                        room: from.bare().clone(),
                    }));
                }
            }
        }
    }

    /// Delivers a room stanza to a session: a local one directly, a proxy's by the router to its real address.
    pub(super) fn deliver_room(&mut self, session: SessionId, stanza: RoomStanza) {
        if is_proxy(session) {
            self.room_stanza_to(stanza);
        } else {
            self.deliver(session, Stanza::Room(Box::new(stanza)));
        }
    }

    /// Sends a room stanza to its real addressee: a session of a user served here, or the router.
    fn room_stanza_to(&mut self, stanza: RoomStanza) {
        let here = self.is_here(stanza.addressee());
        if here {
            self.room_stanza_from_remote(stanza);
        } else {
            self.out(Output::Route(Stanza::Room(Box::new(stanza))));
        }
    }

    /// The cluster says whose rooms this engine serves. Rooms it no longer serves go (their occupants are told,
    /// 332); if it serves a home it did not, the persistent rooms are read again.
    pub(super) fn room_placement(&mut self, nodes: Vec<String>, served: Vec<String>) {
        let next = Placement {
            nodes,
            served: served.into_iter().collect(),
        };
        let gained = match &self.room_net.placement {
            None => !next.served.is_empty(),
            Some(p) => next.served.iter().any(|h| !p.served.contains(h)) || p.nodes != next.nodes,
        };
        let homes = next.nodes.len();
        self.room_net.placement = Some(next);
        let stamp = self.room_stamp;
        let net = &self.room_net;
        if let Some(rooms) = self.rooms.as_mut() {
            let effects = rooms.release(stamp, |room| net.serves(room));
            rooms.homes_changed(homes, |room| !net.serves(room));
            self.room_effects(effects);
        }
        if gained && self.rooms.is_some() {
            self.ask_rooms();
        }
    }

    /// Asks for the persistent rooms; room work from now on waits for them.
    fn ask_rooms(&mut self) {
        if !matches!(self.room_net.load, RoomLoad::Loading(_)) {
            self.room_net.load = RoomLoad::Loading(VecDeque::new());
        }
        self.out(Output::LoadRooms);
    }

    /// Room work (`Input::Room`, `Input::FromRemoteRoom`) that came while the rooms are being read, or after a
    /// read failed (which asks again).
    pub(super) fn room_wait(&mut self, input: Input) {
        if matches!(self.room_net.load, RoomLoad::Stale) {
            self.ask_rooms();
        }
        if let RoomLoad::Loading(queue) = &mut self.room_net.load {
            queue.push_back(input);
        }
    }

    /// The store could not be read (`Input::RoomsLoadFailed`): the room work that waited is answered with a
    /// temporary error, in order, never run against rooms that are missing; the next room work asks again.
    pub(super) fn rooms_load_failed(&mut self) {
        let RoomLoad::Loading(queue) = std::mem::replace(&mut self.room_net.load, RoomLoad::Stale)
        else {
            return;
        };
        const TEXT: &str = "the rooms could not be read; try again later";
        for input in queue {
            match input {
                Input::Room {
                    session,
                    room,
                    request,
                    ..
                } => {
                    let Some((_, jid)) = self.session_address(session) else {
                        continue;
                    };
                    let error = StanzaError {
                        to: Jid::Full(jid),
                        about: about(room, &request),
                        condition: ErrorCondition::InternalServerError,
                        text: Some(TEXT.into()),
                    };
                    self.deliver(session, Stanza::Room(Box::new(RoomStanza::Error(error))));
                }
                Input::FromRemoteRoom(traffic) => match *traffic {
                    // A leave or a listing needs no stored room: it runs.
                    other @ (RoomTraffic::Left { .. } | RoomTraffic::Listed { .. }) => {
                        self.remote_room(other)
                    }
                    request => {
                        if let Some(Stanza::Room(stanza)) =
                            request.bounce(ErrorCondition::InternalServerError, TEXT)
                        {
                            self.room_stanza_to(*stanza);
                        }
                    }
                },
                _ => {}
            }
        }
    }

    /// The persistent rooms the store holds (the answer to `Output::LoadRooms`): those served here and not in
    /// memory yet are taken in.
    pub(super) fn rooms_loaded(&mut self, stored: Vec<RoomRecord>) {
        let net = &self.room_net;
        let stored: Vec<RoomRecord> = stored.into_iter().filter(|r| net.serves(&r.jid)).collect();
        if let Some(rooms) = self.rooms.as_mut() {
            let effects = rooms.adopt(stored);
            self.room_effects(effects);
        }
        if let RoomLoad::Loading(queue) = std::mem::take(&mut self.room_net.load) {
            for input in queue {
                self.submit(super::Work::Input(input));
            }
        }
    }
}
