//! The room service (`conference.<domain>`): the rooms of this node, who is in which, creation on first entry,
//! the limits of DESIGN §5, and what the store must keep of persistent rooms.

use hashbrown::{HashMap, HashSet};

use super::RoomsConfig;
use super::archive::{ArchivedMessage, TRIM_STEP};
use super::directory::Directory;
use super::invite::Outbound;
use super::record::RoomRecord;
use super::request::{Mediated, RoomCall, RoomRequest};
use super::room::{Ctx, Delivery, Refusal, Room};
use super::stanza::{RoomAnswer, RoomStanza, StatusCode};
use crate::jid::{BareJid, FullJid, Jid};
use crate::message::MessageKind;
use crate::session::SessionId;
use crate::stanza::{ErrorAbout, ErrorCondition, IqKind, RoutedIq, StanzaError};
use crate::time::Timestamp;

/// The XEP-0199 ping element, forwarded to an occupant that another occupant pings.
const PING: &str = "<ping xmlns='urn:xmpp:ping'/>";

/// What the service asks the engine to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEffect {
    /// Deliver a room stanza to a session.
    Deliver(Delivery),
    /// Store (create or replace) a persistent room.
    Put(RoomRecord),
    /// Forget a stored room (destroyed, or no longer persistent) and its archive.
    Remove(BareJid),
    /// Append a message to a room's archive.
    Archive {
        /// The room.
        room: BareJid,
        /// The message, under the room's next archive id.
        entry: ArchivedMessage,
    },
    /// Drop a room's archived messages below `below` (beyond the per-room bound).
    ArchiveTrim {
        /// The room.
        room: BareJid,
        /// The first id kept.
        below: u64,
    },
    /// Send a message from the room to an address outside it (an invitation, a decline), routed like any
    /// user's message: to the user's sessions, held offline, or out to another domain.
    Send(Outbound),
    /// A room's listing in the service's disco#items changed: its name when it is now public and unlocked,
    /// `None` when it is no longer listed (made private, destroyed, vanished). Other engines are told, so
    /// that the service lists it whichever engine answers (see [`super::directory`]).
    Listed {
        /// The room.
        room: BareJid,
        /// Its name, if listed.
        name: Option<String>,
    },
}

/// Who sends a request: the session and its real address.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    /// The session.
    pub session: SessionId,
    /// Its full address.
    pub jid: &'a FullJid,
}

/// The rooms of this node.
#[derive(Debug)]
pub struct Rooms {
    config: RoomsConfig,
    rooms: HashMap<BareJid, Room>,
    /// The rooms each session entered (possibly since left: leaving through the room is not tracked here, and a
    /// room that no longer seats the session ignores it).
    joined: HashMap<SessionId, HashSet<BareJid>>,
    /// The public rooms other engines serve, as they announced them.
    elsewhere: Directory,
}

impl Rooms {
    /// The service with the persistent rooms the store kept.
    pub fn new(config: RoomsConfig, stored: Vec<RoomRecord>) -> Self {
        let rooms = stored
            .into_iter()
            .map(|r| (r.jid.clone(), Room::from_record(r)))
            .collect();
        let cap = config.limits.max_rooms;
        Rooms {
            config,
            rooms,
            joined: HashMap::new(),
            elsewhere: Directory::new(cap),
        }
    }

    /// The service's address.
    pub fn domain(&self) -> &str {
        &self.config.domain
    }

    /// A room by address.
    pub fn room(&self, jid: &BareJid) -> Option<&Room> {
        self.rooms.get(jid)
    }

    /// How many rooms exist.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// How `room` is listed in the service's disco#items: by name when it is here, public and unlocked.
    fn listing(&self, room: &BareJid) -> Option<String> {
        self.rooms
            .get(room)
            .filter(|r| r.config().public && !r.is_locked())
            .map(|r| r.config().name.clone())
    }

    /// Tells the engine when `room`'s listing is no longer `before`.
    fn relist(&self, room: &BareJid, before: Option<String>, effects: &mut Vec<RoomEffect>) {
        let after = self.listing(room);
        if after != before {
            effects.push(RoomEffect::Listed {
                room: room.clone(),
                name: after,
            });
        }
    }

    /// The public rooms other engines serve, as this one knows them.
    pub fn elsewhere(&self) -> &Directory {
        &self.elsewhere
    }

    /// Another engine's word on a room it serves (`name`: listed under it; `None`: not listed).
    pub fn note_elsewhere(&mut self, room: BareJid, name: Option<String>) {
        self.elsewhere.note(room, name);
    }

    /// The engine learnt how many homes rooms are spread over: the directory holds at most `max_rooms` for
    /// each, and forgets the rooms `elsewhere` refuses (they are served here now).
    pub fn homes_changed(&mut self, homes: usize, elsewhere: impl Fn(&BareJid) -> bool) {
        self.elsewhere
            .set_cap(self.config.limits.max_rooms.saturating_mul(homes.max(1)));
        self.elsewhere.retain(elsewhere);
    }

    fn persistent_count(&self) -> usize {
        self.rooms
            .values()
            .filter(|r| r.config().persistent)
            .count()
    }

    /// Handles one request of `from` to `room` (the service itself when it has no local part) at `now`.
    pub fn handle(
        &mut self,
        now: Timestamp,
        from: Sender<'_>,
        room: BareJid,
        request: RoomRequest,
    ) -> Vec<RoomEffect> {
        let mut out = Vec::new();
        let mut sent = Vec::new();
        let was_persistent = self.rooms.get(&room).is_some_and(|r| r.config().persistent);
        // Only entering or leaving (which creates or empties a room) and the owner's calls to the room itself
        // can change how it is listed: messages, the busiest path, are spared the name's copy.
        let relists = matches!(
            request,
            RoomRequest::Presence { .. } | RoomRequest::Iq { nick: None, .. }
        );
        let listed = if relists { self.listing(&room) } else { None };
        let (addressed, about) = address_of(&room, &request);
        let result = if room.local().is_none() {
            self.service_request(from, &room, request)
        } else {
            self.room_request(now, from, &room, request, &mut out, &mut sent)
        };
        let mut effects: Vec<RoomEffect> = out.into_iter().map(RoomEffect::Deliver).collect();
        effects.extend(sent.into_iter().map(RoomEffect::Send));
        match result {
            Ok(Some(answer)) => {
                let RoomAbout::Iq(id) = about else {
                    unreachable!("only IQs are answered")
                };
                effects.push(RoomEffect::Deliver(Delivery {
                    session: from.session,
                    stanza: RoomStanza::Answer {
                        id,
                        from: addressed,
                        to: from.jid.clone(),
                        answer,
                    },
                }));
            }
            Ok(None) => {}
            Err(refusal) => {
                effects.push(RoomEffect::Deliver(error(from, addressed, about, refusal)))
            }
        }
        self.settle(&room, was_persistent, &mut effects);
        // Ahead of the answer: the engine sends what comes first first, so by the time the asker hears that
        // its configuration (or destruction) is done, every other engine has the listing queued before
        // anything the asker sends next (a disco#items right after creating a room lists it).
        if relists {
            let mut relisted = Vec::new();
            self.relist(&room, listed, &mut relisted);
            effects.splice(0..0, relisted);
        }
        effects
    }

    /// A session ended: it leaves every room it is in, and the others see it go.
    pub fn session_ended(&mut self, now: Timestamp, session: SessionId) -> Vec<RoomEffect> {
        let mut effects = Vec::new();
        for room in self.joined.remove(&session).unwrap_or_default() {
            let was_persistent = self.rooms.get(&room).is_some_and(|r| r.config().persistent);
            let listed = self.listing(&room);
            let mut out = Vec::new();
            if let Some(r) = self.rooms.get_mut(&room) {
                let mut ctx = Ctx {
                    now,
                    limits: &self.config.limits,
                    key: &self.config.key,
                    out: &mut out,
                };
                r.drop_session(&mut ctx, session);
            }
            effects.extend(out.into_iter().map(RoomEffect::Deliver));
            self.settle(&room, was_persistent, &mut effects);
            self.relist(&room, listed, &mut effects);
        }
        effects
    }

    /// The service stops (the node shuts down): every occupant is told it was removed because of a system
    /// shutdown (XEP-0045 status 332), ad hoc rooms vanish (other engines hear that those they list are
    /// gone), persistent ones stay stored as they are.
    pub fn shutdown(&mut self, now: Timestamp) -> Vec<RoomEffect> {
        let mut out = Vec::new();
        let mut names: Vec<BareJid> = self.rooms.keys().cloned().collect();
        // In a stable order, so that what sessions get does not depend on the map's.
        names.sort();
        let vanishing: Vec<BareJid> = names
            .iter()
            .filter(|n| {
                self.rooms
                    .get(*n)
                    .is_some_and(|r| !r.config().persistent && self.listing(n).is_some())
            })
            .cloned()
            .collect();
        for name in names {
            let Some(r) = self.rooms.get_mut(&name) else {
                continue;
            };
            let mut ctx = Ctx {
                now,
                limits: &self.config.limits,
                key: &self.config.key,
                out: &mut out,
            };
            r.evacuate(&mut ctx, None, &[StatusCode::Shutdown]);
        }
        self.rooms.retain(|_, r| r.config().persistent);
        self.joined.clear();
        let mut effects: Vec<RoomEffect> = out.into_iter().map(RoomEffect::Deliver).collect();
        effects.extend(
            vanishing
                .into_iter()
                .map(|room| RoomEffect::Listed { room, name: None }),
        );
        effects
    }

    /// Whether `session` is an occupant of any room.
    pub fn is_seated(&self, session: SessionId) -> bool {
        self.joined.get(&session).is_some_and(|rooms| {
            rooms.iter().any(|r| {
                self.rooms
                    .get(r)
                    .is_some_and(|room| room.occupants().by_session(session).is_some())
            })
        })
    }

    /// Takes in stored persistent rooms that are not in memory (this node starts serving them: a takeover, or
    /// a failback to it). A room already here is kept as it is: it is the live one. Each room taken in that
    /// is listed is announced (other engines list it, and forget whoever served it before).
    pub fn adopt(&mut self, stored: Vec<RoomRecord>) -> Vec<RoomEffect> {
        let mut effects = Vec::new();
        for record in stored {
            if !self.rooms.contains_key(&record.jid) {
                let jid = record.jid.clone();
                self.elsewhere.note(jid.clone(), None);
                self.rooms.insert(jid.clone(), Room::from_record(record));
                self.relist(&jid, None, &mut effects);
            }
        }
        effects
    }

    /// Drops every room `keep` refuses (another node serves it now): its occupants are told the room went
    /// away for a system shutdown (332), so their clients rejoin where it is served. Nothing is written: a
    /// persistent room stays in the store for the node that serves it now, and in this service's directory
    /// of rooms served elsewhere if it is listed (this is how every engine learns of the stored rooms of the
    /// others at start: it is given them all, and releases those it does not serve); a listed ad hoc room is
    /// gone for good, and other engines hear so.
    pub fn release(&mut self, now: Timestamp, keep: impl Fn(&BareJid) -> bool) -> Vec<RoomEffect> {
        let mut gone: Vec<BareJid> = self.rooms.keys().filter(|j| !keep(j)).cloned().collect();
        gone.sort();
        let mut out = Vec::new();
        let mut unlisted = Vec::new();
        for jid in gone {
            if let Some(name) = self.listing(&jid) {
                if self.rooms.get(&jid).is_some_and(|r| r.config().persistent) {
                    self.elsewhere.note(jid.clone(), Some(name));
                } else {
                    unlisted.push(RoomEffect::Listed {
                        room: jid.clone(),
                        name: None,
                    });
                }
            }
            if let Some(mut r) = self.rooms.remove(&jid) {
                let mut ctx = Ctx {
                    now,
                    limits: &self.config.limits,
                    key: &self.config.key,
                    out: &mut out,
                };
                r.evacuate(&mut ctx, None, &[super::stanza::StatusCode::Shutdown]);
            }
            for set in self.joined.values_mut() {
                set.remove(&jid);
            }
        }
        self.joined.retain(|_, set| !set.is_empty());
        let mut effects: Vec<RoomEffect> = out.into_iter().map(RoomEffect::Deliver).collect();
        effects.extend(unlisted);
        effects
    }

    /// After a request: an ad hoc room with nobody left vanishes, a persistent room's changes are stored, and a
    /// room that stopped being persistent (or is gone) leaves the store.
    fn settle(&mut self, room: &BareJid, was_persistent: bool, effects: &mut Vec<RoomEffect>) {
        let Some(r) = self.rooms.get_mut(room) else {
            if was_persistent {
                effects.push(RoomEffect::Remove(room.clone()));
            }
            return;
        };
        let dirty = r.take_dirty();
        let archived = r.take_archived();
        if r.config().persistent {
            if dirty || !was_persistent {
                effects.push(RoomEffect::Put(r.record()));
            }
            // Ids grow by one, so the oldest kept id is arithmetic; trimming every TRIM_STEP ids spares a range
            // delete per message once the archive is full (as for user archives).
            let cap = self.config.limits.max_archive_per_room;
            for entry in archived {
                let id = entry.id;
                effects.push(RoomEffect::Archive {
                    room: room.clone(),
                    entry,
                });
                if cap > 0 && id > cap && id % TRIM_STEP == 0 {
                    effects.push(RoomEffect::ArchiveTrim {
                        room: room.clone(),
                        below: id - cap + 1,
                    });
                }
            }
            return;
        }
        if was_persistent {
            effects.push(RoomEffect::Remove(room.clone()));
        }
        if r.occupants().is_empty() {
            self.rooms.remove(room);
        }
    }

    fn service_request(
        &self,
        _from: Sender<'_>,
        _service: &BareJid,
        request: RoomRequest,
    ) -> Result<Option<RoomAnswer>, Refusal> {
        match request {
            RoomRequest::Iq {
                call: RoomCall::Info,
                nick: None,
                ..
            } => Ok(Some(RoomAnswer::Service)),
            RoomRequest::Iq {
                call: RoomCall::Items,
                nick: None,
                ..
            } => {
                let mut rooms: Vec<(BareJid, String)> = self
                    .rooms
                    .values()
                    .filter(|r| r.config().public && !r.is_locked())
                    .map(|r| (r.jid().clone(), r.config().name.clone()))
                    .collect();
                // Rooms other engines serve; one served here too (an announcement not yet heard after a
                // move) is listed as this engine has it.
                rooms.extend(
                    self.elsewhere
                        .iter()
                        .filter(|(room, _)| !self.rooms.contains_key(*room))
                        .map(|(room, name)| (room.clone(), name.clone())),
                );
                rooms.sort();
                Ok(Some(RoomAnswer::Rooms(rooms)))
            }
            RoomRequest::Iq {
                call: RoomCall::Ping,
                nick: None,
                ..
            } => Ok(Some(RoomAnswer::Done)),
            RoomRequest::Iq { .. } => Err(Refusal {
                condition: ErrorCondition::ServiceUnavailable,
                text: "the room service does not answer that",
            }),
            // Presence and messages for the service itself mean nothing.
            RoomRequest::Presence { .. }
            | RoomRequest::Message { .. }
            | RoomRequest::Mediated { .. }
            | RoomRequest::OccupantIq { .. } => Ok(None),
        }
    }

    fn room_request(
        &mut self,
        now: Timestamp,
        from: Sender<'_>,
        room: &BareJid,
        request: RoomRequest,
        out: &mut Vec<Delivery>,
        sent: &mut Vec<Outbound>,
    ) -> Result<Option<RoomAnswer>, Refusal> {
        let limits = &self.config.limits;
        let key = &self.config.key;
        let user = from.jid.bare();
        let missing = Refusal {
            condition: ErrorCondition::ItemNotFound,
            text: "there is no such room",
        };
        match request {
            RoomRequest::Presence {
                nick,
                presence,
                join,
            } => {
                let seated = self
                    .rooms
                    .get(room)
                    .is_some_and(|r| r.occupants().by_session(from.session).is_some());
                if seated {
                    let r = self.rooms.get_mut(room).expect("seated in it");
                    let mut ctx = Ctx {
                        now,
                        limits,
                        key,
                        out,
                    };
                    r.occupant_presence(&mut ctx, from.session, &nick, presence)?;
                    if r.occupants().by_session(from.session).is_none()
                        && let Some(set) = self.joined.get_mut(&from.session)
                    {
                        set.remove(room);
                    }
                    return Ok(None);
                }
                // Unavailable presence to a room one is not in needs nothing.
                let Some(presence) = presence else {
                    return Ok(None);
                };
                let created = !self.rooms.contains_key(room);
                if created {
                    if self.rooms.len() >= limits.max_rooms {
                        return Err(Refusal {
                            condition: ErrorCondition::NotAllowed,
                            text: "this service holds as many rooms as it may",
                        });
                    }
                    self.rooms.insert(
                        room.clone(),
                        Room::create(room.clone(), user.clone(), limits),
                    );
                }
                let r = self.rooms.get_mut(room).expect("exists or created");
                let mut ctx = Ctx {
                    now,
                    limits,
                    key,
                    out,
                };
                r.join(&mut ctx, from, nick, presence, &join, created)?;
                self.joined
                    .entry(from.session)
                    .or_default()
                    .insert(room.clone());
                Ok(None)
            }
            RoomRequest::Message { nick, message } => {
                let r = self.rooms.get_mut(room).ok_or(missing)?;
                let mut ctx = Ctx {
                    now,
                    limits,
                    key,
                    out,
                };
                match nick {
                    Some(nick) => r.private(&mut ctx, from.session, &nick, message)?,
                    None if message.kind == MessageKind::Groupchat => {
                        r.groupchat(&mut ctx, from.session, message)?
                    }
                    // Invitations and voice requests arrive as `RoomRequest::Mediated`; nothing else but
                    // groupchat is for the room.
                    None => {
                        return Err(Refusal {
                            condition: ErrorCondition::BadRequest,
                            text: "only groupchat messages are sent to the room",
                        });
                    }
                }
                Ok(None)
            }
            RoomRequest::OccupantIq { nick, iq } => {
                let request = iq.kind.is_request();
                let Some(r) = self.rooms.get_mut(room) else {
                    // An answer for a room that is gone reaches nobody and is not answered.
                    return if request { Err(missing) } else { Ok(None) };
                };
                let mut ctx = Ctx {
                    now,
                    limits,
                    key,
                    out,
                };
                r.occupant_iq(&mut ctx, from.session, &nick, iq)?;
                Ok(None)
            }
            RoomRequest::Mediated { what, .. } => {
                let r = self.rooms.get_mut(room).ok_or(missing)?;
                let mut ctx = Ctx {
                    now,
                    limits,
                    key,
                    out,
                };
                match what {
                    Mediated::Invite(invites) => sent.extend(r.invite(&ctx, from, &invites)?),
                    Mediated::Decline { to, reason } => {
                        sent.push(r.decline(&ctx, from, &to, reason.as_deref()))
                    }
                    Mediated::RequestVoice => r.request_voice(&mut ctx, from.session)?,
                    Mediated::AnswerVoice { nick, allow } => {
                        r.answer_voice(&mut ctx, from.session, user, &nick, allow)?
                    }
                }
                Ok(None)
            }
            RoomRequest::Iq {
                id,
                nick: Some(nick),
                call,
            } => {
                let r = self.rooms.get_mut(room).ok_or(missing)?;
                match call {
                    // XEP-0410: answered by the service for the occupant's own address only.
                    RoomCall::Ping if r.is_occupant_as(from.session, &nick) => {
                        Ok(Some(RoomAnswer::Done))
                    }
                    // A ping from an occupant to another occupant is that occupant's to answer: it is forwarded
                    // like any IQ between occupants (XEP-0410 §3), so the asker learns whether that client is
                    // still there.
                    RoomCall::Ping if r.occupants().by_session(from.session).is_some() => {
                        let mut ctx = Ctx {
                            now,
                            limits,
                            key,
                            out,
                        };
                        let iq = RoutedIq {
                            // Readdressed by the room to the occupant's real address.
                            to: Jid::Bare(room.clone()),
                            id,
                            kind: IqKind::Get,
                            payload: vec![PING.to_owned()],
                        };
                        r.occupant_iq(&mut ctx, from.session, &nick, iq)?;
                        Ok(None)
                    }
                    RoomCall::Ping => Err(Refusal {
                        condition: ErrorCondition::NotAcceptable,
                        text: "you are not in the room with that nickname",
                    }),
                    _ => Err(Refusal {
                        condition: ErrorCondition::ServiceUnavailable,
                        text: "requests to occupants are not forwarded",
                    }),
                }
            }
            RoomRequest::Iq {
                nick: None, call, ..
            } => {
                // Counted only when a configuration may make one more persistent room.
                let persistent_now = if matches!(call, RoomCall::SetConfig(_)) {
                    self.persistent_count()
                } else {
                    0
                };
                let r = self.rooms.get_mut(room).ok_or(missing)?;
                let mut ctx = Ctx {
                    now,
                    limits,
                    key,
                    out,
                };
                match call {
                    RoomCall::Ping => Ok(Some(RoomAnswer::Done)),
                    RoomCall::Info => Ok(Some(RoomAnswer::Info(r.info()))),
                    RoomCall::Items => Ok(Some(RoomAnswer::Rooms(Vec::new()))),
                    RoomCall::GetRoles(role) => r.roles(from.session, user, role).map(Some),
                    RoomCall::GetAffiliations(a) => r.affiliations(from.session, user, a).map(Some),
                    RoomCall::SetRoles(changes) => {
                        r.set_roles(&mut ctx, from.session, user, &changes)?;
                        Ok(Some(RoomAnswer::Done))
                    }
                    RoomCall::SetAffiliations(changes) => {
                        r.set_affiliations(&mut ctx, from.session, user, &changes)?;
                        Ok(Some(RoomAnswer::Done))
                    }
                    RoomCall::GetConfig => r.get_config(user).map(Some),
                    RoomCall::SetConfig(change) => {
                        let next = r.proposed_config(user, &change, limits)?;
                        if next.persistent
                            && !r.config().persistent
                            && persistent_now >= limits.max_persistent_rooms
                        {
                            return Err(Refusal {
                                condition: ErrorCondition::NotAllowed,
                                text: "this service holds as many persistent rooms as it may",
                            });
                        }
                        r.set_config(&mut ctx, next);
                        Ok(Some(RoomAnswer::Done))
                    }
                    RoomCall::CancelConfig => {
                        r.get_config(user)?;
                        if r.is_locked() {
                            r.evacuate(&mut ctx, None, &[]);
                            self.rooms.remove(room);
                        }
                        Ok(Some(RoomAnswer::Done))
                    }
                    RoomCall::ArchiveQuery(read) => {
                        r.may_read_archive(user)?;
                        Ok(Some(RoomAnswer::ArchiveRead(read)))
                    }
                    RoomCall::Destroy(destroyed) => {
                        r.destroy(&mut ctx, user, &destroyed)?;
                        self.rooms.remove(room);
                        Ok(Some(RoomAnswer::Done))
                    }
                }
            }
        }
    }
}

/// What a request was: which kind of stanza an error must answer.
enum RoomAbout {
    Presence,
    Message(Option<String>),
    Iq(String),
}

/// The address a request was sent to (errors and answers come from it) and its kind.
fn address_of(room: &BareJid, request: &RoomRequest) -> (Jid, RoomAbout) {
    let at = |nick: Option<&str>| match nick.and_then(|n| room.with_resource(n).ok()) {
        Some(full) => Jid::Full(full),
        None => Jid::Bare(room.clone()),
    };
    match request {
        RoomRequest::Presence { nick, .. } => (at(Some(nick)), RoomAbout::Presence),
        RoomRequest::Message { nick, message } => {
            (at(nick.as_deref()), RoomAbout::Message(message.id.clone()))
        }
        RoomRequest::Mediated { id, .. } => (at(None), RoomAbout::Message(id.clone())),
        RoomRequest::OccupantIq { nick, iq } => (at(Some(nick)), RoomAbout::Iq(iq.id.clone())),
        RoomRequest::Iq { id, nick, .. } => (at(nick.as_deref()), RoomAbout::Iq(id.clone())),
    }
}

fn error(from: Sender<'_>, addressed: Jid, about: RoomAbout, refusal: Refusal) -> Delivery {
    let about = match about {
        RoomAbout::Presence => ErrorAbout::Presence { to: addressed },
        RoomAbout::Message(id) => ErrorAbout::Message { id, to: addressed },
        RoomAbout::Iq(id) => ErrorAbout::Iq { id, to: addressed },
    };
    Delivery {
        session: from.session,
        stanza: RoomStanza::Error(StanzaError {
            to: Jid::Full(from.jid.clone()),
            about,
            condition: refusal.condition,
            text: Some(refusal.text.to_owned()),
        }),
    }
}
