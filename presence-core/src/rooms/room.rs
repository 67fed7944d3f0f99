//! One room: its occupants, affiliations, configuration, subject and history, and the XEP-0045 state machine
//! over them. Every operation either refuses (a [`Refusal`], nothing changed) or changes the room and leaves what
//! it sends in the context's deliveries.

use std::collections::BTreeMap;

use super::affiliation::{Affiliation, Role};
use super::config::{ConfigChange, ConfigError, RoomConfig};
use super::forward::{Forwarded, Pending};
use super::history::{History, HistoryEntry};
use super::invite::{self, Outbound};
use super::limits::RoomLimits;
use super::nick as nickname;
use super::occupant_id::OccupantIdKey;
use super::occupants::{Occupant, OccupantPresence, Occupants, Seat, SeatError, Unseated};
use super::permissions;
use super::permissions::VoiceStep;
use super::record::{RoomRecord, Subject};
use super::request::{Affiliate, AffiliationChange, Invite, JoinOptions, RoleChange};
use super::stanza::{Destroyed, Item, RoomAnswer, RoomInfo, RoomStanza, StatusCode};
use crate::jid::{BareJid, FullJid, Jid};
use crate::message::{Message, MessageKind};
use crate::session::SessionId;
use crate::stanza::{ErrorCondition, RoutedIq};
use crate::time::Timestamp;

/// A stanza for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The recipient session.
    pub session: SessionId,
    /// What it gets.
    pub stanza: RoomStanza,
}

/// Why a room refused a request: the condition and a text for the requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The error condition.
    pub condition: ErrorCondition,
    /// Why, in words.
    pub text: &'static str,
}

const fn refuse(condition: ErrorCondition, text: &'static str) -> Refusal {
    Refusal { condition, text }
}

impl From<ConfigError> for Refusal {
    fn from(e: ConfigError) -> Self {
        let text = match e {
            ConfigError::MaxOccupants { .. } => "the occupant limit is above the service's",
            ConfigError::HistoryLength { .. } => "the history length is above the service's",
            ConfigError::NoPassword => "a password-protected room needs a password",
        };
        refuse(ErrorCondition::NotAcceptable, text)
    }
}

/// What an operation needs from the service: the time, the limits, the occupant-id key and where deliveries go.
pub struct Ctx<'a> {
    /// The wall-clock time of the request.
    pub now: Timestamp,
    /// The service's limits.
    pub limits: &'a RoomLimits,
    /// The occupant-id key.
    pub key: &'a OccupantIdKey,
    /// Deliveries, in order.
    pub out: &'a mut Vec<Delivery>,
}

/// A room.
#[derive(Debug, Clone)]
pub struct Room {
    jid: BareJid,
    config: RoomConfig,
    /// Users whose affiliation is not `none`.
    affiliations: BTreeMap<BareJid, Affiliation>,
    occupants: Occupants,
    subject: Option<Subject>,
    history: History,
    /// A new room waits for its owner's configuration (XEP-0045 §10.1.1); nobody else may enter.
    locked: bool,
    /// Whether something the store keeps changed since the service last took a record.
    dirty: bool,
    /// The highest id in the room's archive: the next archived message gets the one above.
    archive_head: u64,
    /// Messages archived since the service last took them, to be appended to the store.
    archived: Vec<super::archive::ArchivedMessage>,
    /// IQs forwarded between occupants, waiting for their answers.
    forwarded: Forwarded,
}

impl Room {
    /// A new, locked room owned by `owner`.
    pub fn create(jid: BareJid, owner: BareJid, limits: &RoomLimits) -> Self {
        Room {
            jid,
            config: RoomConfig::new(limits),
            affiliations: BTreeMap::from([(owner, Affiliation::Owner)]),
            occupants: Occupants::default(),
            subject: None,
            history: History::default(),
            locked: true,
            dirty: false,
            archive_head: 0,
            archived: Vec::new(),
            forwarded: Forwarded::default(),
        }
    }

    /// A persistent room as the store kept it; unlocked and empty.
    pub fn from_record(record: RoomRecord) -> Self {
        let keep = record.config.history_length;
        Room {
            jid: record.jid,
            config: record.config,
            affiliations: record
                .affiliations
                .into_iter()
                .filter(|(_, a)| *a != Affiliation::None)
                .collect(),
            occupants: Occupants::default(),
            subject: record.subject,
            history: History::from_entries(record.history, keep),
            locked: false,
            dirty: false,
            archive_head: record.archive_head,
            archived: Vec::new(),
            forwarded: Forwarded::default(),
        }
    }

    /// What the store keeps of it.
    pub fn record(&self) -> RoomRecord {
        RoomRecord {
            jid: self.jid.clone(),
            config: self.config.clone(),
            affiliations: self
                .affiliations
                .iter()
                .map(|(j, a)| (j.clone(), *a))
                .collect(),
            subject: self.subject.clone(),
            // An archiving room's history lives in its archive, so its record is not rewritten per message.
            // (A room whose archive is still empty keeps writing what an older record held.)
            history: if self.archives() && self.archive_head > 0 {
                Vec::new()
            } else {
                self.history.entries().cloned().collect()
            },
            archive_head: self.archive_head,
        }
    }

    /// Whether the stored state changed since the last call (and forgets that it did).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Whether the room archives its messages: persistent with archiving on.
    pub fn archives(&self) -> bool {
        self.config.persistent && self.config.archiving
    }

    /// The messages archived since the last call, in id order.
    pub fn take_archived(&mut self) -> Vec<super::archive::ArchivedMessage> {
        std::mem::take(&mut self.archived)
    }

    /// Whether `user` may read the room's archive: anyone not banned, and only members (or above) of a
    /// members-only room (Prosody's rule); a room that does not archive has nothing to read.
    pub fn may_read_archive(&self, user: &BareJid) -> Result<(), Refusal> {
        if !self.archives() {
            return Err(refuse(
                ErrorCondition::FeatureNotImplemented,
                "this room does not archive its messages",
            ));
        }
        let affiliation = self.affiliation(user);
        let member = affiliation.rank() >= Affiliation::Member.rank();
        if affiliation == Affiliation::Outcast || (self.config.members_only && !member) {
            return Err(refuse(
                ErrorCondition::Forbidden,
                "you may not read this room's archive",
            ));
        }
        Ok(())
    }

    /// The room's address.
    pub fn jid(&self) -> &BareJid {
        &self.jid
    }

    /// The configuration.
    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// The occupants.
    pub fn occupants(&self) -> &Occupants {
        &self.occupants
    }

    /// Whether it waits for its owner's configuration.
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// The affiliation of a real bare address.
    pub fn affiliation(&self, user: &BareJid) -> Affiliation {
        self.affiliations
            .get(user)
            .copied()
            .unwrap_or(Affiliation::None)
    }

    /// Whether some user owns it.
    pub fn has_owner(&self) -> bool {
        self.affiliations.values().any(|a| *a == Affiliation::Owner)
    }

    /// The room address of an occupant.
    fn occupant_jid(&self, nick: &str) -> FullJid {
        self.jid
            .with_resource(nick)
            .expect("nicknames are checked as resources on entry")
    }

    /// The affiliation and role of whoever `session` is (role none when not in the room).
    fn standing(&self, session: SessionId, user: &BareJid) -> (Affiliation, Role) {
        let role = self
            .occupants
            .by_session(session)
            .map_or(Role::None, |o| o.role);
        (self.affiliation(user), role)
    }

    /// Whether an occupant with `role` sees real addresses.
    fn sees_jids(&self, role: Role) -> bool {
        self.config.non_anonymous() || role == Role::Moderator
    }

    /// `about` as `viewer` sees it through `seat`: its own self shows the seat's address, others the occupant's.
    fn item_for(&self, about: &Occupant, viewer: &Occupant, seat: &Seat) -> Item {
        let own = about.nick == viewer.nick;
        let shown = self.sees_jids(viewer.role) || own;
        let jid = if own { &seat.jid } else { about.jid() };
        Item {
            affiliation: self.affiliation(about.bare()),
            role: about.role,
            jid: shown.then(|| Jid::Full(jid.clone())),
            nick: None,
            reason: None,
        }
    }

    /// `about`'s presence for one `seat` of `viewer`, with `codes` (and 110 added when it is the viewer's own).
    fn presence_to_seat(
        &self,
        about: &Occupant,
        viewer: &Occupant,
        seat: &Seat,
        available: bool,
        mut codes: Vec<StatusCode>,
        edit: &impl Fn(&mut Item),
    ) -> Delivery {
        let mut item = self.item_for(about, viewer, seat);
        edit(&mut item);
        if about.nick == viewer.nick {
            codes.push(StatusCode::SelfPresence);
        }
        codes.sort_unstable();
        Delivery {
            session: seat.session,
            stanza: RoomStanza::Presence {
                from: self.occupant_jid(&about.nick),
                to: seat.jid.clone(),
                presence: available.then(|| about.presence.clone()),
                item,
                codes,
                destroyed: None,
                occupant_id: about.occupant_id.clone(),
            },
        }
    }

    /// `about`'s presence for every session of `viewer`.
    fn presence_for(
        &self,
        out: &mut Vec<Delivery>,
        about: &Occupant,
        viewer: &Occupant,
        available: bool,
        codes: &[StatusCode],
        edit: &impl Fn(&mut Item),
    ) {
        for seat in &viewer.seats {
            out.push(self.presence_to_seat(about, viewer, seat, available, codes.to_vec(), edit));
        }
    }

    /// Sends `about`'s presence to every occupant (and to `about` itself when it has left already).
    fn broadcast_presence(
        &self,
        ctx: &mut Ctx<'_>,
        about: &Occupant,
        available: bool,
        codes: &[StatusCode],
        self_codes: &[StatusCode],
        edit: impl Fn(&mut Item),
    ) {
        let seated = self.occupants.get(&about.nick).is_some();
        let viewers = self.occupants.iter().chain((!seated).then_some(about));
        for viewer in viewers {
            let mut c = codes.to_vec();
            if viewer.nick == about.nick {
                c.extend_from_slice(self_codes);
            }
            self.presence_for(ctx.out, about, viewer, available, &c, &edit);
        }
    }

    /// A message for every session of every occupant.
    fn to_everyone(&self, ctx: &mut Ctx<'_>, stanza: impl Fn(&Seat) -> RoomStanza) {
        for viewer in self.occupants.iter() {
            for seat in &viewer.seats {
                ctx.out.push(Delivery {
                    session: seat.session,
                    stanza: stanza(seat),
                });
            }
        }
    }

    /// Enters `from` (a session and its real address) as `nick`. `created`: the room was made by this join.
    pub fn join(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: super::service::Sender<'_>,
        nick: String,
        presence: OccupantPresence,
        join: &JoinOptions,
        created: bool,
    ) -> Result<(), Refusal> {
        let (session, real) = (from.session, from.jid.clone());
        let (nick, modified) = self.enforce_nick(&nick)?;
        let affiliation = self.affiliation(real.bare());
        if self.locked && affiliation != Affiliation::Owner {
            return Err(refuse(
                ErrorCondition::ItemNotFound,
                "the room is locked until its owner configures it",
            ));
        }
        if affiliation == Affiliation::Outcast {
            return Err(refuse(
                ErrorCondition::Forbidden,
                "you are banned from this room",
            ));
        }
        if self.config.members_only && affiliation.rank() < Affiliation::Member.rank() {
            return Err(refuse(
                ErrorCondition::RegistrationRequired,
                "this room is for members only",
            ));
        }
        if let Some(password) = &self.config.password
            && join.password.as_ref() != Some(password)
        {
            return Err(refuse(
                ErrorCondition::NotAuthorized,
                "this room needs the right password",
            ));
        }
        let seat = Seat {
            session,
            jid: real.clone(),
        };
        // The same user under the same nickname through another session is the same occupant (XEP-0045 §7.2):
        // the new session gets the room as a newcomer would, the others see nobody new.
        let same_user = match self.occupants.get(&nick) {
            Some(o) if o.bare() == real.bare() => true,
            Some(_) => {
                return Err(refuse(
                    ErrorCondition::Conflict,
                    "another occupant has that nickname",
                ));
            }
            None => false,
        };
        // Admins and owners enter a full room (XEP-0045 §7.2.10); another session of an occupant takes no place.
        if !same_user
            && self.occupants.len() >= self.config.max_occupants
            && affiliation.rank() < Affiliation::Admin.rank()
        {
            return Err(refuse(
                ErrorCondition::ServiceUnavailable,
                "the room is full",
            ));
        }
        let seated = if same_user {
            self.occupants.add_seat(&nick, seat.clone())
        } else {
            self.occupants.insert(Occupant {
                occupant_id: ctx.key.occupant_id(&self.jid, real.bare()),
                nick: nick.clone(),
                seats: vec![seat.clone()],
                role: permissions::entry_role(affiliation, self.config.moderated),
                presence,
            })
        };
        seated.map_err(|e| match e {
            SeatError::AlreadyIn(_) => refuse(
                ErrorCondition::Conflict,
                "this session is in the room already",
            ),
            _ => refuse(
                ErrorCondition::Conflict,
                "another occupant has that nickname",
            ),
        })?;
        let occupant = self.occupants.get(&nick).cloned().expect("just seated");
        // Existing occupants first, then the newcomer's own presence (XEP-0045 §7.2.3).
        for other in self.occupants.iter().filter(|o| o.nick != nick) {
            ctx.out
                .push(self.presence_to_seat(other, &occupant, &seat, true, Vec::new(), &|_| {}));
        }
        let mut own = Vec::new();
        if self.config.non_anonymous() {
            own.push(StatusCode::NonAnonymous);
        }
        if created {
            own.push(StatusCode::Created);
        }
        if self.archives() {
            own.push(StatusCode::Logging);
        }
        if modified {
            own.push(StatusCode::NickModified);
        }
        if same_user {
            ctx.out
                .push(self.presence_to_seat(&occupant, &occupant, &seat, true, own, &|_| {}));
        } else {
            self.broadcast_presence(ctx, &occupant, true, &[], &own, |_| {});
        }
        for entry in self.history.select(&join.history, ctx.now) {
            ctx.out.push(Delivery {
                session,
                stanza: RoomStanza::Message {
                    from: Jid::Full(self.occupant_jid(&entry.nick)),
                    to: seat.jid.clone(),
                    message: entry.message.clone().into(),
                    delayed: Some(entry.message.stamp),
                    occupant_id: Some(ctx.key.occupant_id(&self.jid, &entry.sender)),
                    codes: Vec::new(),
                    private: false,
                },
            });
        }
        // The subject always comes last, empty when there is none: it tells the client the join is complete.
        let (from, text) = match &self.subject {
            Some(s) if !s.nick.is_empty() => {
                (Jid::Full(self.occupant_jid(&s.nick)), s.text.clone())
            }
            Some(s) => (Jid::Bare(self.jid.clone()), s.text.clone()),
            None => (Jid::Bare(self.jid.clone()), String::new()),
        };
        ctx.out.push(Delivery {
            session,
            stanza: RoomStanza::Message {
                from,
                to: seat.jid,
                message: Message {
                    kind: MessageKind::Groupchat,
                    subject: Some(text),
                    stamp: self.subject.as_ref().map_or(ctx.now, |s| s.stamp),
                    ..Message::default()
                }
                .into(),
                delayed: None,
                occupant_id: None,
                codes: Vec::new(),
                private: false,
            },
        });
        Ok(())
    }

    /// The nickname the room uses for `asked`, and whether that differs from what was asked (status 210).
    fn enforce_nick(&self, asked: &str) -> Result<(String, bool), Refusal> {
        let nick = nickname::enforce(asked)
            .filter(|n| self.jid.with_resource(n).is_ok())
            .ok_or(refuse(
                ErrorCondition::NotAcceptable,
                "that is not a nickname this room takes",
            ))?;
        let modified = nick != asked;
        Ok((nick, modified))
    }

    /// Presence from an occupant: a new `<show/>`, a new nickname, or (`None`) leaving.
    pub fn occupant_presence(
        &mut self,
        ctx: &mut Ctx<'_>,
        session: SessionId,
        nick: &str,
        presence: Option<OccupantPresence>,
    ) -> Result<(), Refusal> {
        let Some(current) = self.occupants.by_session(session).cloned() else {
            return Ok(());
        };
        let Some(presence) = presence else {
            if current.seats.len() > 1 {
                // One of several sessions leaves: only it is told; the occupant stays for the others.
                let seat = current
                    .seats
                    .iter()
                    .find(|s| s.session == session)
                    .cloned()
                    .expect("seated through it");
                self.occupants.remove_seat(session);
                let mut gone = current.clone();
                gone.role = Role::None;
                ctx.out.push(self.presence_to_seat(
                    &gone,
                    &gone,
                    &seat,
                    false,
                    Vec::new(),
                    &|_| {},
                ));
            } else {
                self.remove(ctx, &current.nick, &[], None);
            }
            return Ok(());
        };
        let (nick, modified) = self.enforce_nick(nick)?;
        let nick = nick.as_str();
        if current.nick == nick {
            if let Some(o) = self.occupants.get_mut(nick) {
                o.presence = presence;
            }
            let updated = self.occupants.get(nick).cloned().expect("present");
            self.broadcast_presence(ctx, &updated, true, &[], &[], |_| {});
            return Ok(());
        }
        // A nickname change (XEP-0045 §7.6): unavailable as the old nickname naming the new one, then available.
        // An occupant of several sessions keeps its nickname: one session renaming would drag the others along.
        if current.seats.len() > 1 {
            return Err(refuse(
                ErrorCondition::NotAcceptable,
                "other sessions of yours share this nickname; leave with them first",
            ));
        }
        if self.occupants.get(nick).is_some() {
            return Err(refuse(
                ErrorCondition::Conflict,
                "another occupant has that nickname",
            ));
        }
        let new_nick = nick.to_owned();
        self.broadcast_presence(
            ctx,
            &current,
            false,
            &[StatusCode::NickChanged],
            &[],
            |item| {
                item.nick = Some(new_nick.clone());
            },
        );
        self.occupants.rename(&current.nick, nick).map_err(|_| {
            refuse(
                ErrorCondition::Conflict,
                "another occupant has that nickname",
            )
        })?;
        if let Some(o) = self.occupants.get_mut(nick) {
            o.presence = presence;
        }
        let renamed = self.occupants.get(nick).cloned().expect("renamed");
        let own: &[StatusCode] = if modified {
            &[StatusCode::NickModified]
        } else {
            &[]
        };
        self.broadcast_presence(ctx, &renamed, true, &[], own, |_| {});
        Ok(())
    }

    /// Takes an occupant out, telling everyone (and them) with `codes` and an optional reason.
    fn remove(
        &mut self,
        ctx: &mut Ctx<'_>,
        nick: &str,
        codes: &[StatusCode],
        reason: Option<&str>,
    ) {
        let Some(mut gone) = self.occupants.remove(nick) else {
            return;
        };
        gone.role = Role::None;
        let reason = reason.map(str::to_owned);
        self.broadcast_presence(ctx, &gone, false, codes, &[], |item| {
            item.reason.clone_from(&reason)
        });
    }

    /// A session that ended leaves: it is told nothing, and the others see the occupant go with its last session.
    pub fn drop_session(&mut self, ctx: &mut Ctx<'_>, session: SessionId) {
        let Some(Unseated::Gone(mut gone)) = self.occupants.remove_seat(session) else {
            return;
        };
        gone.role = Role::None;
        for viewer in self.occupants.iter() {
            self.presence_for(ctx.out, &gone, viewer, false, &[], &|_| {});
        }
    }

    /// A message from `session` to everyone: text, or a new subject.
    pub fn groupchat(
        &mut self,
        ctx: &mut Ctx<'_>,
        session: SessionId,
        mut message: Message,
    ) -> Result<(), Refusal> {
        let Some(sender) = self.occupants.by_session(session).cloned() else {
            return Err(refuse(
                ErrorCondition::NotAcceptable,
                "only occupants may send messages to the room",
            ));
        };
        let size = message.body.as_ref().map_or(0, String::len)
            + message.subject.as_ref().map_or(0, String::len);
        if size > ctx.limits.max_message_bytes {
            return Err(refuse(
                ErrorCondition::NotAcceptable,
                "the message is too long for this room",
            ));
        }
        message.stamp = ctx.now;
        let subject_only = message.subject.is_some() && message.body.is_none();
        if subject_only {
            if !permissions::may_change_subject(sender.role, self.config.change_subject) {
                return Err(refuse(
                    ErrorCondition::Forbidden,
                    "you may not change the subject of this room",
                ));
            }
            self.subject = Some(Subject {
                text: message.subject.clone().unwrap_or_default(),
                nick: sender.nick.clone(),
                stamp: ctx.now,
            });
            self.dirty = true;
        } else if !permissions::may_speak(sender.role) {
            return Err(refuse(
                ErrorCondition::Forbidden,
                "visitors may not speak in this room",
            ));
        }
        let archived = message.body.is_some()
            && !message.marks.no_store
            && self.archives()
            && ctx.limits.max_archive_per_room > 0;
        // The archive id travels with the broadcast as its stanza-id (`by` the room); nothing else may set one.
        message.archive_id = None;
        if archived {
            self.archive_head += 1;
            message.archive_id = std::num::NonZeroU64::new(self.archive_head);
        }
        let from = Jid::Full(self.occupant_jid(&sender.nick));
        // One copy for all recipients (the history keeps its own).
        let shared = std::sync::Arc::new(message.clone());
        self.to_everyone(ctx, |seat| RoomStanza::Message {
            from: from.clone(),
            to: seat.jid.clone(),
            message: shared.clone(),
            delayed: None,
            occupant_id: Some(sender.occupant_id.clone()),
            codes: Vec::new(),
            private: false,
        });
        let entry = HistoryEntry {
            sender: sender.bare().clone(),
            nick: sender.nick,
            message,
        };
        if archived && let Some(kept) = super::archive::entry(self.archive_head, &self.jid, &entry)
        {
            self.archived.push(kept);
        }
        if entry.message.body.is_some() && self.config.history_length > 0 {
            self.history.push(entry, self.config.history_length);
            // An archiving room's history comes back from its archive; only others rewrite their record.
            self.dirty |= !self.archives();
        }
        Ok(())
    }

    /// A private message from `session` to the occupant `to`.
    pub fn private(
        &mut self,
        ctx: &mut Ctx<'_>,
        session: SessionId,
        to: &str,
        message: Message,
    ) -> Result<(), Refusal> {
        let Some(sender) = self.occupants.by_session(session) else {
            return Err(refuse(
                ErrorCondition::NotAcceptable,
                "only occupants may send private messages",
            ));
        };
        if message.kind == MessageKind::Groupchat {
            return Err(refuse(
                ErrorCondition::BadRequest,
                "a private message cannot be of type groupchat",
            ));
        }
        if !self.config.allow_private_messages || !permissions::may_send_private(sender.role) {
            return Err(refuse(
                ErrorCondition::Forbidden,
                "private messages are not allowed in this room",
            ));
        }
        let Some(recipient) = self.occupants.get(to) else {
            return Err(refuse(
                ErrorCondition::ItemNotFound,
                "no occupant has that nickname",
            ));
        };
        // Every session of the recipient gets it, as every session of an occupant is that occupant.
        let message = std::sync::Arc::new(message);
        for seat in &recipient.seats {
            ctx.out.push(Delivery {
                session: seat.session,
                stanza: RoomStanza::Message {
                    from: Jid::Full(self.occupant_jid(&sender.nick)),
                    to: seat.jid.clone(),
                    message: message.clone(),
                    delayed: None,
                    occupant_id: Some(sender.occupant_id.clone()),
                    codes: Vec::new(),
                    private: true,
                },
            });
        }
        Ok(())
    }

    /// A mediated invitation (XEP-0045 §7.8.2) from `from`: the messages for the invitees, who become members of
    /// a members-only room.
    pub fn invite(
        &mut self,
        ctx: &Ctx<'_>,
        from: super::service::Sender<'_>,
        invites: &[Invite],
    ) -> Result<Vec<Outbound>, Refusal> {
        let actor = self.standing(from.session, from.jid.bare());
        if !permissions::may_invite(actor, self.config.members_only, self.config.allow_invites) {
            return Err(refuse(
                ErrorCondition::Forbidden,
                "you may not invite others into this room",
            ));
        }
        let mut sent = Vec::new();
        for i in invites {
            let invitee = i.to.bare();
            if self.config.members_only && self.affiliation(invitee) == Affiliation::None {
                self.affiliations
                    .insert(invitee.clone(), Affiliation::Member);
                self.dirty = true;
            }
            sent.push(invite::invitation(
                &self.jid,
                from.jid,
                &i.to,
                i.reason.as_deref(),
                self.config.password.as_deref(),
                ctx.now,
            ));
        }
        Ok(sent)
    }

    /// A declined invitation (XEP-0045 §7.8.3), for the inviter. Anyone invited may decline, in the room or not.
    pub fn decline(
        &self,
        ctx: &Ctx<'_>,
        from: super::service::Sender<'_>,
        to: &Jid,
        reason: Option<&str>,
    ) -> Outbound {
        invite::decline(&self.jid, from.jid, to, reason, ctx.now)
    }

    /// A visitor asks for voice (XEP-0045 §7.13): every moderator's sessions get the approval form.
    pub fn request_voice(&self, ctx: &mut Ctx<'_>, session: SessionId) -> Result<(), Refusal> {
        let Some(asker) = self.occupants.by_session(session) else {
            return Err(refuse(
                ErrorCondition::NotAcceptable,
                "only occupants may ask for voice",
            ));
        };
        if !permissions::may_voice(VoiceStep::Ask, asker.role) {
            return Err(refuse(
                ErrorCondition::NotAcceptable,
                "only visitors ask for voice",
            ));
        }
        let jid = seat_jid(asker, session);
        for moderator in self
            .occupants
            .iter()
            .filter(|o| permissions::may_voice(VoiceStep::Receive, o.role))
        {
            for seat in &moderator.seats {
                ctx.out.push(Delivery {
                    session: seat.session,
                    stanza: RoomStanza::VoiceRequest {
                        from: self.jid.clone(),
                        to: seat.jid.clone(),
                        nick: asker.nick.clone(),
                        jid: jid.clone(),
                    },
                });
            }
        }
        Ok(())
    }

    /// A moderator's answer to a voice request (XEP-0045 §8.6): granting is giving the occupant the participant
    /// role, by the role rules; a refusal changes nothing.
    pub fn answer_voice(
        &mut self,
        ctx: &mut Ctx<'_>,
        session: SessionId,
        user: &BareJid,
        nick: &str,
        allow: bool,
    ) -> Result<(), Refusal> {
        if !allow {
            return Ok(());
        }
        let change = RoleChange {
            nick: nick.to_owned(),
            role: Role::Participant,
            reason: None,
        };
        self.set_roles(ctx, session, user, &[change])
    }

    /// An IQ `session` sends to the occupant `nick`: a request goes to that occupant's first session from the
    /// asker's occupant address (so a semi-anonymous room stays so); an answer to a forwarded request goes back
    /// to its asker. Answers that match nothing are dropped, never answered (no error loops).
    pub fn occupant_iq(
        &mut self,
        ctx: &mut Ctx<'_>,
        session: SessionId,
        nick: &str,
        iq: RoutedIq,
    ) -> Result<(), Refusal> {
        if !iq.kind.is_request() {
            let Some(answerer) = self.occupants.by_session(session) else {
                return Ok(());
            };
            let from = self.occupant_jid(&answerer.nick);
            let Some(p) = self.forwarded.take(&iq.id, session) else {
                return Ok(());
            };
            ctx.out.push(Delivery {
                session: p.asker,
                stanza: RoomStanza::Iq {
                    from,
                    iq: RoutedIq {
                        to: Jid::Full(p.asker_jid),
                        id: p.id,
                        ..iq
                    },
                },
            });
            return Ok(());
        }
        let Some(asker) = self.occupants.by_session(session) else {
            return Err(refuse(
                ErrorCondition::NotAcceptable,
                "only occupants send requests to occupants",
            ));
        };
        let Some(target) = self.occupants.get(nick) else {
            return Err(refuse(
                ErrorCondition::ItemNotFound,
                "no occupant has that nickname",
            ));
        };
        let from = self.occupant_jid(&asker.nick);
        let asker_jid = seat_jid(asker, session);
        let seat = target.seats[0].clone();
        let id = self.forwarded.insert(Pending {
            asker: session,
            asker_jid,
            id: iq.id.clone(),
            answerer: seat.session,
        });
        ctx.out.push(Delivery {
            session: seat.session,
            stanza: RoomStanza::Iq {
                from,
                iq: RoutedIq {
                    to: Jid::Full(seat.jid),
                    id,
                    ..iq
                },
            },
        });
        Ok(())
    }

    /// Whether `session` is in the room as `nick` (XEP-0410 self-ping).
    pub fn is_occupant_as(&self, session: SessionId, nick: &str) -> bool {
        self.occupants
            .by_session(session)
            .is_some_and(|o| o.nick == nick)
    }

    /// The occupants with `role`, if the requester may read that list.
    pub fn roles(
        &self,
        session: SessionId,
        user: &BareJid,
        role: Role,
    ) -> Result<RoomAnswer, Refusal> {
        if !permissions::may_read_roles(self.standing(session, user), role) {
            return Err(refuse(
                ErrorCondition::Forbidden,
                "you may not read that list",
            ));
        }
        Ok(RoomAnswer::Items(
            self.occupants
                .iter()
                .filter(|o| o.role == role)
                .map(|o| Item {
                    affiliation: self.affiliation(o.bare()),
                    role: o.role,
                    jid: Some(Jid::Full(o.jid().clone())),
                    nick: Some(o.nick.clone()),
                    reason: None,
                })
                .collect(),
        ))
    }

    /// The users with `affiliation`, if the requester may read that list.
    pub fn affiliations(
        &self,
        session: SessionId,
        user: &BareJid,
        affiliation: Affiliation,
    ) -> Result<RoomAnswer, Refusal> {
        if !permissions::may_read_affiliations(self.standing(session, user), affiliation) {
            return Err(refuse(
                ErrorCondition::Forbidden,
                "you may not read that list",
            ));
        }
        Ok(RoomAnswer::Items(
            self.affiliations
                .iter()
                .filter(|(_, a)| **a == affiliation)
                .map(|(j, a)| Item {
                    affiliation: *a,
                    role: Role::None,
                    jid: Some(Jid::Bare(j.clone())),
                    nick: None,
                    reason: None,
                })
                .collect(),
        ))
    }

    /// Role changes by `session` (real `user`), all checked before any is made.
    pub fn set_roles(
        &mut self,
        ctx: &mut Ctx<'_>,
        session: SessionId,
        user: &BareJid,
        changes: &[RoleChange],
    ) -> Result<(), Refusal> {
        let actor = self.standing(session, user);
        for c in changes {
            let Some(target) = self.occupants.get(&c.nick) else {
                return Err(refuse(
                    ErrorCondition::ItemNotFound,
                    "no occupant has that nickname",
                ));
            };
            let target_standing = (self.affiliation(target.bare()), target.role);
            if !permissions::may_set_role(actor, target_standing, c.role) {
                return Err(refuse(
                    ErrorCondition::NotAllowed,
                    "you may not give that occupant that role",
                ));
            }
        }
        for c in changes {
            if c.role == Role::None {
                self.remove(ctx, &c.nick, &[StatusCode::Kicked], c.reason.as_deref());
                continue;
            }
            let Some(o) = self.occupants.get_mut(&c.nick) else {
                continue;
            };
            if o.role == c.role {
                continue;
            }
            o.role = c.role;
            let changed = o.clone();
            let reason = c.reason.clone();
            self.broadcast_presence(ctx, &changed, true, &[], &[], |item| {
                item.reason.clone_from(&reason)
            });
        }
        Ok(())
    }

    /// Affiliation changes by `user` (through `session`), all checked before any is made. A room never loses its
    /// last owner this way.
    pub fn set_affiliations(
        &mut self,
        ctx: &mut Ctx<'_>,
        session: SessionId,
        user: &BareJid,
        changes: &[AffiliationChange],
    ) -> Result<(), Refusal> {
        let (actor, _) = self.standing(session, user);
        // Nicknames name the occupant's user now; the changes then stand by real address.
        let mut changes_by_jid = Vec::with_capacity(changes.len());
        for c in changes {
            let jid = match &c.who {
                Affiliate::Jid(j) => j.clone(),
                Affiliate::Nick(n) => match self.occupants.get(n) {
                    Some(o) => o.bare().clone(),
                    None => {
                        return Err(refuse(
                            ErrorCondition::ItemNotFound,
                            "no occupant has that nickname",
                        ));
                    }
                },
            };
            changes_by_jid.push((jid, c));
        }
        let mut after = self.affiliations.clone();
        for (jid, c) in &changes_by_jid {
            let target = self.affiliation(jid);
            if !permissions::may_set_affiliation(actor, target, c.affiliation) {
                return Err(refuse(
                    ErrorCondition::NotAllowed,
                    "you may not give that user that affiliation",
                ));
            }
            match c.affiliation {
                Affiliation::None => after.remove(jid),
                a => after.insert(jid.clone(), a),
            };
        }
        if !after.values().any(|a| *a == Affiliation::Owner) {
            return Err(refuse(
                ErrorCondition::Conflict,
                "a room keeps at least one owner",
            ));
        }
        self.affiliations = after;
        self.dirty = true;
        for (jid, c) in changes_by_jid {
            let present: Vec<String> = self
                .occupants
                .iter()
                .filter(|o| *o.bare() == jid)
                .map(|o| o.nick.clone())
                .collect();
            for nick in present {
                let removal = match c.affiliation {
                    Affiliation::Outcast => Some(StatusCode::Banned),
                    Affiliation::None if self.config.members_only => {
                        Some(StatusCode::AffiliationChanged)
                    }
                    _ => None,
                };
                if let Some(code) = removal {
                    self.remove(ctx, &nick, &[code], c.reason.as_deref());
                    continue;
                }
                let role = permissions::entry_role(c.affiliation, self.config.moderated);
                let Some(o) = self.occupants.get_mut(&nick) else {
                    continue;
                };
                o.role = role;
                let changed = o.clone();
                let reason = c.reason.clone();
                self.broadcast_presence(ctx, &changed, true, &[], &[], |item| {
                    item.reason.clone_from(&reason)
                });
            }
        }
        Ok(())
    }

    /// The configuration, for an owner.
    pub fn get_config(&self, user: &BareJid) -> Result<RoomAnswer, Refusal> {
        if self.affiliation(user) != Affiliation::Owner {
            return Err(refuse(
                ErrorCondition::Forbidden,
                "only owners configure the room",
            ));
        }
        Ok(RoomAnswer::Config(self.config.clone()))
    }

    /// What the configuration would become with `change`, checked (the service checks its own limits on it).
    pub fn proposed_config(
        &self,
        user: &BareJid,
        change: &ConfigChange,
        limits: &RoomLimits,
    ) -> Result<RoomConfig, Refusal> {
        if self.affiliation(user) != Affiliation::Owner {
            return Err(refuse(
                ErrorCondition::Forbidden,
                "only owners configure the room",
            ));
        }
        Ok(self.config.with(change, limits)?)
    }

    /// Takes a checked configuration (from [`Room::proposed_config`]) and unlocks the room.
    pub fn set_config(&mut self, ctx: &mut Ctx<'_>, config: RoomConfig) {
        let was_locked = std::mem::replace(&mut self.locked, false);
        let now_members_only = config.members_only && !self.config.members_only;
        let archived_before = self.archives();
        self.config = config;
        // XEP-0045 §10.2.1: occupants are told when logging starts (170) or stops (171).
        let mut codes = vec![StatusCode::ConfigChanged];
        match (archived_before, self.archives()) {
            (false, true) => codes.push(StatusCode::Logging),
            (true, false) => codes.push(StatusCode::NotLogging),
            _ => {}
        }
        self.history.trim(self.config.history_length);
        self.dirty = true;
        if now_members_only {
            let outsiders: Vec<String> = self
                .occupants
                .iter()
                .filter(|o| self.affiliation(o.bare()).rank() < Affiliation::Member.rank())
                .map(|o| o.nick.clone())
                .collect();
            for nick in outsiders {
                self.remove(ctx, &nick, &[StatusCode::MembersOnly], None);
            }
        }
        if !was_locked {
            let from = Jid::Bare(self.jid.clone());
            let notice = std::sync::Arc::new(Message {
                kind: MessageKind::Groupchat,
                stamp: ctx.now,
                ..Message::default()
            });
            self.to_everyone(ctx, |seat| RoomStanza::Message {
                from: from.clone(),
                to: seat.jid.clone(),
                message: notice.clone(),
                delayed: None,
                occupant_id: None,
                codes: codes.clone(),
                private: false,
            });
        }
    }

    /// Destroys the room on an owner's request: everyone leaves with the reason and the alternate venue.
    pub fn destroy(
        &mut self,
        ctx: &mut Ctx<'_>,
        user: &BareJid,
        destroyed: &Destroyed,
    ) -> Result<(), Refusal> {
        if self.affiliation(user) != Affiliation::Owner {
            return Err(refuse(
                ErrorCondition::Forbidden,
                "only owners destroy the room",
            ));
        }
        self.evacuate(ctx, Some(destroyed), &[]);
        Ok(())
    }

    /// Everyone leaves, told with `destroyed` when the room goes and with `codes`.
    pub fn evacuate(
        &mut self,
        ctx: &mut Ctx<'_>,
        destroyed: Option<&Destroyed>,
        codes: &[StatusCode],
    ) {
        let everyone: Vec<Occupant> = self.occupants.iter().cloned().collect();
        let mut codes = codes.to_vec();
        codes.push(StatusCode::SelfPresence);
        codes.sort_unstable();
        for (o, seat) in everyone
            .iter()
            .flat_map(|o| o.seats.iter().map(move |s| (o, s)))
        {
            ctx.out.push(Delivery {
                session: seat.session,
                stanza: RoomStanza::Presence {
                    from: self.occupant_jid(&o.nick),
                    to: seat.jid.clone(),
                    presence: None,
                    item: Item {
                        affiliation: Affiliation::None,
                        role: Role::None,
                        jid: None,
                        nick: None,
                        reason: None,
                    },
                    codes: codes.clone(),
                    destroyed: destroyed.cloned(),
                    occupant_id: o.occupant_id.clone(),
                },
            });
        }
        for o in everyone {
            self.occupants.remove(&o.nick);
        }
    }

    /// What disco#info says of the room.
    pub fn info(&self) -> RoomInfo {
        RoomInfo {
            name: self.config.name.clone(),
            description: self.config.description.clone(),
            persistent: self.config.persistent,
            public: self.config.public,
            members_only: self.config.members_only,
            moderated: self.config.moderated,
            password_protected: self.config.password.is_some(),
            non_anonymous: self.config.non_anonymous(),
            occupants: self.occupants.len(),
            subject: self.subject.as_ref().map(|s| s.text.clone()),
            archived: self.archives(),
        }
    }
}

/// The real address of `occupant`'s seat through `session` (its first seat's if it has no such seat).
fn seat_jid(occupant: &Occupant, session: SessionId) -> FullJid {
    occupant
        .seats
        .iter()
        .find(|s| s.session == session)
        .map_or_else(|| occupant.jid().clone(), |s| s.jid.clone())
}
