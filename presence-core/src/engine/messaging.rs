//! Messages (DESIGN §4, RFC 6121 §8.5): forking to every session that can take a bare-address message,
//! stickiness to the session that replied, offline storage with per-user and per-node caps, ordered late delivery
//! with the original stamp (XEP-0160/0203), and errors to the sender for anything refused.

use super::user::Sticky;
use super::{Engine, Output, Timer};
use crate::feature::carbons::Direction;
use crate::jid::{BareJid, Jid};
use crate::message::{Message, MessageKind};
use crate::session::SessionId;
use crate::stanza::{ErrorAbout, ErrorCondition, Stanza, StanzaError};
use crate::store::{StoreWrite, StoredMessage};

impl Engine {
    pub(super) fn message_from_session(&mut self, id: SessionId, to: Jid, message: Message) {
        let Some((user, from)) = self.session_address(id) else {
            return;
        };
        let from = Jid::Full(from);
        if !self.config.im_enabled {
            return self.refuse(&from, &to, &message, ErrorCondition::ServiceUnavailable);
        }
        // Writing in a conversation sticks it to this session: the peer's next bare-address messages come here.
        if to.bare().local().is_some()
            && matches!(message.kind, MessageKind::Chat | MessageKind::Normal)
        {
            let now = self.now();
            let idle = self.config.conversation_idle;
            let u = self
                .users
                .get_mut(&user)
                .expect("a bound session's user is loaded");
            let fresh = u
                .sticky
                .insert(
                    to.bare().clone(),
                    Sticky {
                        session: id,
                        last: now,
                    },
                )
                .is_none();
            if fresh {
                self.arm(
                    now + idle,
                    Timer::Sticky {
                        user: user.clone(),
                        peer: to.bare().clone(),
                    },
                );
            }
        }
        // The user's other devices see what this one wrote (a message to the user's own account reaches them
        // anyway), and it goes into the sender's archive (the recipient's archive takes it on arrival).
        // A message leaving the local domains is archived here, as nobody else on this side will see it again; one
        // for a local user (on this node or another of the cluster) is archived where the recipient accepts it.
        if !self.config.is_local_domain(to.bare().domain()) {
            self.comply(&from, vec![to.clone()], None, &message);
        }
        if to.bare() != &user {
            let peer = to.bare().clone();
            self.archive(&user, &peer, &from, &to, &message);
            self.copy_to_carbons(&user, &[id], Direction::Sent, &from, &to, &message);
        }
        let target = to.bare().clone();
        self.route(
            Stanza::Message {
                from,
                to,
                message,
                delayed: None,
            },
            &target,
        );
    }

    pub(super) fn expire_sticky(
        &mut self,
        user: &BareJid,
        peer: &BareJid,
        now: std::time::Instant,
    ) {
        let idle = self.config.conversation_idle;
        let Some(u) = self.users.get_mut(user) else {
            return;
        };
        let Some(s) = u.sticky.get(peer) else { return };
        let due = s.last + idle;
        if due <= now {
            u.sticky.remove(peer);
        } else {
            self.arm(
                due,
                Timer::Sticky {
                    user: user.clone(),
                    peer: peer.clone(),
                },
            );
        }
    }

    /// A message for a local user, from a session or another domain.
    pub(super) fn inbound_message(&mut self, from: Jid, to: Jid, message: Message) {
        if !self.config.im_enabled {
            return self.refuse(&from, &to, &message, ErrorCondition::ServiceUnavailable);
        }
        let Some(u) = self.users.get(to.bare()) else {
            return self.refuse(&from, &to, &message, ErrorCondition::ServiceUnavailable);
        };
        let is_contact = u.roster.item(from.bare()).is_some();
        if !u.policy.accepts_message_from(from.bare(), is_contact) {
            // Indistinguishable from an address nobody can take messages at (XEP-0016 §2.13).
            return self.refuse(&from, &to, &message, ErrorCondition::ServiceUnavailable);
        }
        // Archived on arrival, whether delivered now or held: the archive id is the message's stanza-id.
        let mut message = message;
        let (owner, peer) = (to.bare().clone(), from.bare().clone());
        message.archive_id = self
            .archive(&owner, &peer, &from, &to, &message)
            .and_then(std::num::NonZeroU64::new);
        let Some(u) = self.users.get(to.bare()) else {
            return;
        };
        // A full address with a live session gets exactly that session (RFC 6121 §8.5.3.1).
        if let Jid::Full(f) = &to
            && let Some(s) = u.session_by_resource(f.resource())
        {
            let id = s.id;
            let user = to.bare().clone();
            self.comply(&from, vec![to.clone()], None, &message);
            self.copy_to_carbons(&user, &[id], Direction::Received, &from, &to, &message);
            self.delivered_while_detached(&user, id, &from, &message);
            return self.deliver(
                id,
                Stanza::Message {
                    from,
                    to,
                    message,
                    delayed: None,
                },
            );
        }
        if message.kind == MessageKind::Groupchat {
            return self.refuse(&from, &to, &message, ErrorCondition::ServiceUnavailable);
        }
        let candidates: Vec<SessionId> = u
            .sessions
            .iter()
            .filter(|s| s.takes_bare_messages())
            .map(|s| s.id)
            .collect();
        let sticky = u
            .sticky
            .get(from.bare())
            .map(|s| s.session)
            .filter(|id| candidates.contains(id));
        let targets = match sticky {
            Some(id) => vec![id],
            None => candidates,
        };
        let user = to.bare().clone();
        if !targets.is_empty() {
            self.comply(&from, vec![to.clone()], None, &message);
        }
        self.copy_to_carbons(&user, &targets, Direction::Received, &from, &to, &message);
        if !targets.is_empty() {
            for id in targets {
                self.delivered_while_detached(&user, id, &from, &message);
                self.deliver(
                    id,
                    Stanza::Message {
                        from: from.clone(),
                        to: to.clone(),
                        message: message.clone(),
                        delayed: None,
                    },
                );
            }
            return;
        }
        // Held for a user with no session that takes it: every registered device is woken.
        let wake = self
            .has_registrations(&user)
            .then(|| (from.clone(), message.clone()));
        // Archived only once held: a message refused here (caps, offline storage off) was never accepted. The
        // record follows the offline write in the same commit group, which fails or succeeds with it.
        let record = self.compliance_record(&from, vec![to.clone()], None, &message);
        let held = self.hold_or_refuse(from, to, message);
        if held && let Some(record) = record {
            self.out(Output::Comply(record));
        }
        if held && let Some((from, message)) = wake {
            let waiting = self.users.get(&user).map_or(0, |u| u.offline.len());
            let waking = super::app_push::Waking::All { waiting };
            self.wake_devices(&user, waking, &from, &message);
        }
    }

    /// Nobody can take the message now: keep it for the next sign-in (`true`), or tell the sender why not.
    pub(super) fn hold_or_refuse(&mut self, from: Jid, to: Jid, message: Message) -> bool {
        let limits = &self.config.limits;
        let (per_user, per_node) = (limits.offline_per_user, limits.offline_per_node);
        if !message.kind.storable() {
            // Headlines are dropped and errors never answered (RFC 6121 §8.5.2.2.1).
            if message.kind != MessageKind::Error && message.kind != MessageKind::Headline {
                self.refuse(&from, &to, &message, ErrorCondition::ServiceUnavailable);
            }
            return false;
        }
        let user = to.bare().clone();
        let Some(u) = self.users.get_mut(&user) else {
            return false;
        };
        if !self.config.offline_storage {
            self.refuse(&from, &to, &message, ErrorCondition::ServiceUnavailable);
            return false;
        }
        if u.offline.len() >= per_user || self.offline_total >= per_node {
            self.refuse(&from, &to, &message, ErrorCondition::ResourceConstraint);
            return false;
        }
        let stored = StoredMessage {
            seq: u.next_seq,
            from,
            to,
            message,
        };
        u.next_seq += 1;
        u.offline.push_back(stored.clone());
        self.offline_total += 1;
        self.out(Output::Store(StoreWrite::OfflinePush {
            user,
            message: stored,
        }));
        true
    }

    /// The shell says whether it can hand the session messages while it is unavailable (`Input::Reachable`).
    /// Only message routing changes: nothing is broadcast, watchers keep seeing the session's presence. A session
    /// that becomes able to take bare-address messages this way gets those held for the user, as it would on
    /// becoming available.
    pub(super) fn set_reachable(&mut self, id: SessionId, reachable: bool) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        let Some(s) = self.users.get_mut(&user).and_then(|u| u.session_mut(id)) else {
            return;
        };
        let took = s.takes_bare_messages();
        s.reachable = reachable;
        if !took && s.takes_bare_messages() {
            self.flush_offline(&user, id);
        }
    }

    /// Hands every held message to a session that just became able to take them, oldest first, with its stamp.
    pub(super) fn flush_offline(&mut self, user: &BareJid, id: SessionId) {
        let Some(u) = self.users.get_mut(user) else {
            return;
        };
        if u.offline.is_empty() {
            return;
        }
        let held: Vec<StoredMessage> = u.offline.drain(..).collect();
        let up_to = held.last().map(|m| m.seq).unwrap_or(0);
        self.offline_total = self.offline_total.saturating_sub(held.len());
        for m in held {
            let delayed = Some(m.message.stamp);
            self.deliver(
                id,
                Stanza::Message {
                    from: m.from,
                    to: m.to,
                    message: m.message,
                    delayed,
                },
            );
        }
        self.out(Output::Store(StoreWrite::OfflineClear {
            user: user.clone(),
            up_to,
        }));
    }

    /// A message whose recipient could not be loaded: the sender gets a temporary error, never the
    /// `service-unavailable` of a missing account, and nothing is held for a recipient who may not exist.
    pub(super) fn fail_message(&mut self, from: Jid, to: Jid, message: Message) {
        let text = format!(
            "the data of {} could not be loaded; try again later",
            to.bare()
        );
        self.refuse_with(
            &from,
            &to,
            &message,
            ErrorCondition::InternalServerError,
            text,
        );
    }

    /// Sends the sender an error for a message with the configured text (never for an error message).
    fn refuse(&mut self, from: &Jid, to: &Jid, message: &Message, condition: ErrorCondition) {
        let text = self.config.undeliverable_text.clone();
        self.refuse_with(from, to, message, condition, text);
    }

    /// Sends the sender an error for a message (never for an error message: no error loops).
    fn refuse_with(
        &mut self,
        from: &Jid,
        to: &Jid,
        message: &Message,
        condition: ErrorCondition,
        text: String,
    ) {
        if message.kind == MessageKind::Error {
            return;
        }
        self.reply_error(
            from,
            StanzaError {
                to: from.clone(),
                about: ErrorAbout::Message {
                    id: message.id.clone(),
                    to: to.clone(),
                },
                condition,
                text: Some(text),
            },
        );
    }
}
