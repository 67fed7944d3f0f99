//! The engine's side of group chat: hands a session's room requests to the room service with the session's real
//! address, carries out what the service asks (deliveries as `Stanza::Room`, store writes for persistent rooms),
//! and takes a session out of its rooms when it ends or goes unavailable.

use super::Engine;
use crate::engine::Output;
use crate::jid::{BareJid, Jid};
use crate::rooms::{RoomEffect, RoomRecord, RoomRequest, RoomStanza, Rooms, Sender};
use crate::session::SessionId;
use crate::stanza::{ErrorCondition, Stanza, StanzaError};
use crate::store::StoreWrite;
use crate::time::Timestamp;

impl Engine {
    /// This engine with the persistent rooms the store kept (read once at start). Without a room service in the
    /// configuration they are ignored.
    pub fn with_rooms(mut self, stored: Vec<RoomRecord>) -> Self {
        if let Some(config) = self.config.rooms.clone() {
            self.rooms = Some(Rooms::new(config, stored));
        }
        self
    }

    /// The room service, if configured.
    pub fn rooms(&self) -> Option<&Rooms> {
        self.rooms.as_ref()
    }

    pub(super) fn room_request(
        &mut self,
        session: SessionId,
        room: BareJid,
        stamp: Timestamp,
        request: RoomRequest,
    ) {
        let Some((_, jid)) = self.session_address(session) else {
            return;
        };
        self.room_stamp = self.room_stamp.max(stamp);
        if self
            .rooms
            .as_ref()
            .is_none_or(|r| r.domain() != room.domain())
        {
            // An IQ answer is never answered, not even by an error (no error loops).
            if let RoomRequest::OccupantIq { iq, .. } = &request
                && !iq.kind.is_request()
            {
                return;
            }
            // No room service at that domain: the request is answered as one to an unknown entity.
            let error = StanzaError {
                to: Jid::Full(jid),
                about: super::room_proxies::about(room, &request),
                condition: ErrorCondition::ServiceUnavailable,
                text: Some("there is no room service here".into()),
            };
            self.deliver(session, Stanza::Room(Box::new(RoomStanza::Error(error))));
            return;
        }
        if self.room_elsewhere(&room) {
            self.room_request_remote(session, jid, room, stamp, request);
            return;
        }
        self.run_room_request(Sender { session, jid: &jid }, room, stamp, request);
    }

    /// Hands a request to the room service (which serves `room`) and carries out what it asks.
    pub(super) fn run_room_request(
        &mut self,
        from: Sender<'_>,
        room: BareJid,
        stamp: Timestamp,
        request: RoomRequest,
    ) {
        self.room_stamp = self.room_stamp.max(stamp);
        let Some(rooms) = self.rooms.as_mut() else {
            return;
        };
        let spoke = matches!(request, RoomRequest::Message { .. });
        let effects = rooms.handle(stamp, from, room.clone(), request);
        if spoke && self.config.compliance {
            self.comply_room(from.jid, &room, &effects);
        }
        self.room_effects(effects);
    }

    /// The compliance record of a message a room accepted (before its deliveries go out): the sender's real
    /// address, the real addresses it reaches (every occupant, or one for a private message) and the room.
    fn comply_room(
        &mut self,
        sender: &crate::jid::FullJid,
        room: &BareJid,
        effects: &[RoomEffect],
    ) {
        let mut spoken = None;
        let mut recipients = Vec::new();
        for effect in effects {
            if let RoomEffect::Deliver(d) = effect
                && let RoomStanza::Message {
                    to,
                    message,
                    delayed: None,
                    ..
                } = &d.stanza
            {
                spoken.get_or_insert(message);
                recipients.push(Jid::Full(to.clone()));
            }
        }
        if let Some(message) = spoken.cloned() {
            self.comply(&Jid::Full(sender.clone()), recipients, Some(room), &message);
        }
    }

    /// A session left the network (ended, or sent unavailable presence): it leaves every room it is in.
    pub(super) fn leave_rooms(&mut self, session: SessionId) {
        self.leave_remote_rooms(session);
        let stamp = self.room_stamp;
        let Some(rooms) = self.rooms.as_mut() else {
            return;
        };
        let effects = rooms.session_ended(stamp, session);
        self.room_effects(effects);
    }

    /// The node stops: every occupant of every room is told it was removed because of a system shutdown
    /// (XEP-0045 status 332) before its session is closed. Called by the runtime's driver on shutdown, before
    /// its last batch of outputs is carried out.
    pub fn shutdown_rooms(&mut self) {
        let stamp = self.room_stamp;
        let Some(rooms) = self.rooms.as_mut() else {
            return;
        };
        let effects = rooms.shutdown(stamp);
        self.room_effects(effects);
    }

    pub(super) fn room_effects(&mut self, effects: Vec<RoomEffect>) {
        for effect in effects {
            match effect {
                RoomEffect::Deliver(d) => self.deliver_room(d.session, d.stanza),
                RoomEffect::Put(record) => self.out(Output::Store(StoreWrite::RoomPut(record))),
                RoomEffect::Remove(room) => {
                    self.out(Output::Store(StoreWrite::RoomRemove { room }))
                }
                RoomEffect::Listed { room, name } => self.announce_listing(room, name),
                RoomEffect::Archive { room, entry } => {
                    self.out(Output::Store(StoreWrite::RoomArchivePut { room, entry }))
                }
                RoomEffect::ArchiveTrim { room, below } => {
                    self.out(Output::Store(StoreWrite::RoomArchiveTrim { room, below }))
                }
                // An ordinary message from the room's address: a local invitee gets it as any message (sessions,
                // or held offline), anyone else through the router.
                RoomEffect::Send(o) => {
                    let target = o.to.bare().clone();
                    self.route(
                        Stanza::Message {
                            from: Jid::Bare(o.room),
                            to: o.to,
                            message: o.message,
                            delayed: None,
                        },
                        &target,
                    );
                }
            }
        }
    }
}
