//! One room: its occupants, affiliations, configuration, subject and history, and the XEP-0045 state machine
//! over them. Every operation either refuses (a [`Refusal`], nothing changed) or changes the room and leaves what
//! it sends in the context's deliveries.

use std::collections::BTreeMap;

use super::affiliation::{Affiliation, Role};
use super::config::{ConfigChange, ConfigError, RoomConfig};
use super::history::{History, HistoryEntry};
use super::limits::RoomLimits;
use super::occupant_id::OccupantIdKey;
use super::occupants::{Occupant, OccupantPresence, Occupants, SeatError};
use super::permissions;
use super::record::{RoomRecord, Subject};
use super::request::{AffiliationChange, JoinOptions, RoleChange};
use super::stanza::{Destroyed, Item, RoomAnswer, RoomInfo, RoomStanza, StatusCode};
use crate::jid::{BareJid, FullJid, Jid};
use crate::message::{Message, MessageKind};
use crate::session::SessionId;
use crate::stanza::ErrorCondition;
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

    fn item_for(&self, about: &Occupant, viewer: &Occupant) -> Item {
        let shown = self.sees_jids(viewer.role) || about.session == viewer.session;
        Item {
            affiliation: self.affiliation(about.jid.bare()),
            role: about.role,
            jid: shown.then(|| Jid::Full(about.jid.clone())),
            nick: None,
            reason: None,
        }
    }

    /// `about`'s presence for `viewer`, with `codes` (and 110 added when it is the viewer's own).
    fn presence_for(
        &self,
        about: &Occupant,
        viewer: &Occupant,
        available: bool,
        mut codes: Vec<StatusCode>,
        edit: impl Fn(&mut Item),
    ) -> Delivery {
        let mut item = self.item_for(about, viewer);
        edit(&mut item);
        if about.session == viewer.session {
            codes.push(StatusCode::SelfPresence);
        }
        codes.sort_unstable();
        Delivery {
            session: viewer.session,
            stanza: RoomStanza::Presence {
                from: self.occupant_jid(&about.nick),
                to: viewer.jid.clone(),
                presence: available.then(|| about.presence.clone()),
                item,
                codes,
                destroyed: None,
                occupant_id: about.occupant_id.clone(),
            },
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
        let seated = self.occupants.by_session(about.session).is_some();
        let viewers = self.occupants.iter().chain((!seated).then_some(about));
        for viewer in viewers {
            let mut c = codes.to_vec();
            if viewer.session == about.session {
                c.extend_from_slice(self_codes);
            }
            ctx.out
                .push(self.presence_for(about, viewer, available, c, &edit));
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
        if self.occupants.get(&nick).is_some() {
            return Err(refuse(
                ErrorCondition::Conflict,
                "another occupant has that nickname",
            ));
        }
        // Admins and owners enter a full room (XEP-0045 §7.2.10).
        if self.occupants.len() >= self.config.max_occupants
            && affiliation.rank() < Affiliation::Admin.rank()
        {
            return Err(refuse(
                ErrorCondition::ServiceUnavailable,
                "the room is full",
            ));
        }
        let occupant = Occupant {
            occupant_id: ctx.key.occupant_id(&self.jid, real.bare()),
            nick,
            session,
            jid: real,
            role: permissions::entry_role(affiliation, self.config.moderated),
            presence,
        };
        self.occupants
            .insert(occupant.clone())
            .map_err(|e| match e {
                SeatError::NickTaken(_) => refuse(
                    ErrorCondition::Conflict,
                    "another occupant has that nickname",
                ),
                SeatError::AlreadyIn(_) => refuse(
                    ErrorCondition::Conflict,
                    "this session is in the room already",
                ),
            })?;
        // Existing occupants first, then the newcomer's own presence to all (XEP-0045 §7.2.3).
        for other in self.occupants.iter().filter(|o| o.session != session) {
            ctx.out
                .push(self.presence_for(other, &occupant, true, Vec::new(), |_| {}));
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
        self.broadcast_presence(ctx, &occupant, true, &[], &own, |_| {});
        for entry in self.history.select(&join.history, ctx.now) {
            ctx.out.push(Delivery {
                session,
                stanza: RoomStanza::Message {
                    from: Jid::Full(self.occupant_jid(&entry.nick)),
                    to: occupant.jid.clone(),
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
                to: occupant.jid,
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
            self.remove(ctx, &current.nick, &[], None);
            return Ok(());
        };
        if current.nick == nick {
            if let Some(o) = self.occupants.get_mut(nick) {
                o.presence = presence;
            }
            let updated = self.occupants.get(nick).cloned().expect("present");
            self.broadcast_presence(ctx, &updated, true, &[], &[], |_| {});
            return Ok(());
        }
        // A nickname change (XEP-0045 §7.6): unavailable as the old nickname naming the new one, then available.
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
        self.broadcast_presence(ctx, &renamed, true, &[], &[], |_| {});
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

    /// A session that ended leaves: the others see it go; it is told nothing.
    pub fn drop_session(&mut self, ctx: &mut Ctx<'_>, session: SessionId) {
        let Some(mut gone) = self.occupants.by_session(session).cloned() else {
            return;
        };
        self.occupants.remove(&gone.nick);
        gone.role = Role::None;
        for viewer in self.occupants.iter() {
            ctx.out
                .push(self.presence_for(&gone, viewer, false, Vec::new(), |_| {}));
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
        ctx.out.reserve(self.occupants.len());
        for viewer in self.occupants.iter() {
            ctx.out.push(Delivery {
                session: viewer.session,
                stanza: RoomStanza::Message {
                    from: from.clone(),
                    to: viewer.jid.clone(),
                    message: shared.clone(),
                    delayed: None,
                    occupant_id: Some(sender.occupant_id.clone()),
                    codes: Vec::new(),
                    private: false,
                },
            });
        }
        let entry = HistoryEntry {
            nick: sender.nick,
            sender: sender.jid.bare().clone(),
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
        ctx.out.push(Delivery {
            session: recipient.session,
            stanza: RoomStanza::Message {
                from: Jid::Full(self.occupant_jid(&sender.nick)),
                to: recipient.jid.clone(),
                message: message.into(),
                delayed: None,
                occupant_id: Some(sender.occupant_id.clone()),
                codes: Vec::new(),
                private: true,
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
                    affiliation: self.affiliation(o.jid.bare()),
                    role: o.role,
                    jid: Some(Jid::Full(o.jid.clone())),
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
            let target_standing = (self.affiliation(target.jid.bare()), target.role);
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
        let mut after = self.affiliations.clone();
        for c in changes {
            let target = self.affiliation(&c.jid);
            if !permissions::may_set_affiliation(actor, target, c.affiliation) {
                return Err(refuse(
                    ErrorCondition::NotAllowed,
                    "you may not give that user that affiliation",
                ));
            }
            match c.affiliation {
                Affiliation::None => after.remove(&c.jid),
                a => after.insert(c.jid.clone(), a),
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
        for c in changes {
            let present: Vec<String> = self
                .occupants
                .iter()
                .filter(|o| *o.jid.bare() == c.jid)
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
                .filter(|o| self.affiliation(o.jid.bare()).rank() < Affiliation::Member.rank())
                .map(|o| o.nick.clone())
                .collect();
            for nick in outsiders {
                self.remove(ctx, &nick, &[StatusCode::MembersOnly], None);
            }
        }
        if !was_locked {
            for viewer in self.occupants.iter() {
                ctx.out.push(Delivery {
                    session: viewer.session,
                    stanza: RoomStanza::Message {
                        from: Jid::Bare(self.jid.clone()),
                        to: viewer.jid.clone(),
                        message: Message {
                            kind: MessageKind::Groupchat,
                            stamp: ctx.now,
                            ..Message::default()
                        }
                        .into(),
                        delayed: None,
                        occupant_id: None,
                        codes: codes.clone(),
                        private: false,
                    },
                });
            }
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
        for o in &everyone {
            let mut codes = codes.to_vec();
            codes.push(StatusCode::SelfPresence);
            ctx.out.push(Delivery {
                session: o.session,
                stanza: RoomStanza::Presence {
                    from: self.occupant_jid(&o.nick),
                    to: o.jid.clone(),
                    presence: None,
                    item: Item {
                        affiliation: Affiliation::None,
                        role: Role::None,
                        jid: None,
                        nick: None,
                        reason: None,
                    },
                    codes,
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
