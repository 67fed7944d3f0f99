//! Subscription handling on both sides (RFC 6121 §3, Appendix A) with the policy of DESIGN §3: automatic
//! authorization, block/allow lists, "ask me", polite blocking, reciprocal add, contact and watcher limits.

use super::{Engine, Output, Work};
use crate::feature::{Push, roster};
use crate::jid::{BareJid, Jid};
use crate::policy::Decision;
use crate::roster::{Subscription, SubscriptionAction};
use crate::session::SessionId;
use crate::stanza::{ErrorAbout, ErrorCondition, Stanza, StanzaError};
use crate::store::StoreWrite;

impl Engine {
    /// The user (through `session`, or an administrator when `None`) sends a subscription stanza to `contact`.
    pub(super) fn outbound_subscription(
        &mut self,
        user: &BareJid,
        session: Option<SessionId>,
        contact: &BareJid,
        action: SubscriptionAction,
    ) {
        if contact == user {
            return;
        }
        let limits = self.config.limits.clone();
        let Some(u) = self.users.get(user) else {
            return;
        };
        let current = u.roster.subscription(contact);
        let refusal = match action {
            SubscriptionAction::Subscribe
                if u.roster.item(contact).is_none()
                    && !limits.max_contacts.allows(u.roster.listed_count()) =>
            {
                Some((ErrorCondition::NotAllowed, "the contact limit is reached"))
            }
            SubscriptionAction::Subscribed
                if current.pending_in()
                    && !limits.max_watchers.allows(u.roster.watcher_count()) =>
            {
                Some((
                    ErrorCondition::ResourceConstraint,
                    "the watcher limit is reached",
                ))
            }
            _ => None,
        };
        if let Some((condition, text)) = refusal {
            if let Some(jid) = session
                .and_then(|id| u.session(id))
                .map(|s| Jid::Full(s.jid.clone()))
            {
                self.reply_error(
                    &jid,
                    StanzaError {
                        to: jid.clone(),
                        about: ErrorAbout::Presence {
                            to: Jid::Bare(contact.clone()),
                        },
                        condition,
                        text: Some(text.to_owned()),
                    },
                );
            }
            return;
        }
        let next = current.after_outbound(action);
        // A pre-approval, and its cancellation, stay with the user's server: the contact has asked for nothing, so
        // it is told nothing (RFC 6121 §3.4.1) until it does ask and gets the approval then.
        if let Some(next) = next.filter(|n| n.approved() != current.approved()) {
            self.set_subscription(user, contact, next);
            return;
        }
        // Subscribe and unsubscribe are forwarded even when they change nothing here, so a contact whose state
        // drifted (another server, a lost stanza) can answer and bring both sides back in line (RFC 6121 §3.1.2).
        // Approvals and denials with nothing to approve or deny are dropped (§3.1.4, §3.2.2).
        let forward = next.is_some()
            || matches!(
                action,
                SubscriptionAction::Subscribe | SubscriptionAction::Unsubscribe
            );
        if let Some(next) = next {
            self.set_subscription(user, contact, next);
        }
        if !forward {
            return;
        }
        self.route(
            Stanza::Subscription {
                from: user.clone(),
                to: contact.clone(),
                action,
            },
            contact,
        );
        match action {
            SubscriptionAction::Subscribed => {
                self.send_current_presence(user, contact);
                if !self.config.auto_authorize {
                    self.reciprocal_add(user, contact);
                }
            }
            SubscriptionAction::Unsubscribed => self.send_unavailable(user, contact),
            _ => {}
        }
    }

    /// After `user` approved `contact` with automatic authorization off, `contact` also goes on `user`'s roster
    /// and `user` is subscribed to `contact`, approved without asking (DESIGN §3).
    fn reciprocal_add(&mut self, user: &BareJid, contact: &BareJid) {
        let Some(u) = self.users.get(user) else {
            return;
        };
        let current = u.roster.subscription(contact);
        let Some(next) = current.after_outbound(SubscriptionAction::Subscribe) else {
            return;
        };
        self.set_subscription(user, contact, next);
        if self.is_here(contact) {
            self.submit(Work::Reciprocal {
                from: user.clone(),
                to: contact.clone(),
            });
        } else {
            self.out(Output::Route(Stanza::Subscription {
                from: user.clone(),
                to: contact.clone(),
                action: SubscriptionAction::Subscribe,
            }));
        }
    }

    /// A subscription stanza from `peer` reaches local user `me`. `preapproved` marks the second half of a
    /// reciprocal add.
    pub(super) fn inbound_subscription(
        &mut self,
        me: &BareJid,
        peer: &BareJid,
        action: SubscriptionAction,
        preapproved: bool,
    ) {
        if me == peer {
            return;
        }
        let federated = !self.is_local(peer);
        let auto = self.config.auto_authorize;
        let max_watchers = self.config.limits.max_watchers;
        let Some(u) = self.users.get(me) else {
            // No such account: a request is denied so the requester's state does not stay pending (RFC 6121 §3.1.3).
            if action == SubscriptionAction::Subscribe {
                self.reply_subscription(me, peer, SubscriptionAction::Unsubscribed);
            }
            return;
        };
        let current = u.roster.subscription(peer);
        if action == SubscriptionAction::Subscribe {
            if current.shares_to_contact() {
                // Already approved: answer for the user (RFC 6121 §3.1.3).
                self.reply_subscription(me, peer, SubscriptionAction::Subscribed);
                return;
            }
            if current.pending_in() {
                return;
            }
            // A request the user approved in advance (RFC 6121 §3.4.2) or the second half of a reciprocal add.
            let decision = if preapproved || current.approved() {
                Decision::Approve
            } else {
                u.policy.decide_subscription(peer, federated, auto)
            };
            match decision {
                Decision::Ignore => {}
                Decision::Approve if !max_watchers.allows(u.roster.watcher_count()) => {
                    self.reply_subscription(me, peer, SubscriptionAction::Unsubscribed);
                }
                Decision::Approve => {
                    let next = Subscription {
                        inbound: crate::roster::Link::On,
                        ..current
                    };
                    self.set_subscription(me, peer, next);
                    self.reply_subscription(me, peer, SubscriptionAction::Subscribed);
                    self.send_current_presence(me, peer);
                }
                Decision::Ask => {
                    if let Some(next) = current.after_inbound(action) {
                        self.set_subscription(me, peer, next);
                    }
                    self.deliver_subscription(me, peer, action);
                }
            }
            return;
        }
        let Some(next) = current.after_inbound(action) else {
            return;
        };
        self.set_subscription(me, peer, next);
        self.deliver_subscription(me, peer, action);
        if action == SubscriptionAction::Unsubscribe {
            // The peer no longer wants `me`'s presence: it learns `me` is gone (RFC 6121 §3.3.3).
            self.send_unavailable(me, peer);
        }
    }

    /// A subscription stanza from `peer` for `me`, whose data could not be loaded: `peer` gets a temporary error.
    /// Not the `unsubscribed` a missing account answers with: `me` may well exist, and `peer`'s state stays as it
    /// is so the request can be sent again.
    pub(super) fn fail_subscription(&mut self, me: &BareJid, peer: &BareJid) {
        let error = StanzaError {
            to: Jid::Bare(peer.clone()),
            about: ErrorAbout::Presence {
                to: Jid::Bare(me.clone()),
            },
            condition: ErrorCondition::InternalServerError,
            text: Some(format!(
                "the data of {me} could not be loaded; try again later"
            )),
        };
        if !self.is_here(peer) {
            return self.reply_error(&Jid::Bare(peer.clone()), error);
        }
        // A local peer's subscription stanzas come from its roster, not from one session: its sessions that take
        // subscription stanzas learn of the failure, as they would of an answer.
        let Some(u) = self.users.get(peer) else {
            return;
        };
        let ids: Vec<SessionId> = u.available_sessions().map(|s| s.id).collect();
        for id in ids {
            self.deliver(id, Stanza::Error(error.clone()));
        }
    }

    /// Sends `me`'s answer back to `peer` without touching `me`'s state.
    fn reply_subscription(&mut self, me: &BareJid, peer: &BareJid, action: SubscriptionAction) {
        self.route(
            Stanza::Subscription {
                from: me.clone(),
                to: peer.clone(),
                action,
            },
            peer,
        );
    }

    fn deliver_subscription(&mut self, me: &BareJid, peer: &BareJid, action: SubscriptionAction) {
        let Some(u) = self.users.get(me) else { return };
        let ids: Vec<SessionId> = u.available_sessions().map(|s| s.id).collect();
        for id in ids {
            self.deliver(
                id,
                Stanza::Subscription {
                    from: peer.clone(),
                    to: me.clone(),
                    action,
                },
            );
        }
    }

    /// Changes one roster entry's subscription, persisting it and pushing the change to interested sessions.
    pub(super) fn set_subscription(
        &mut self,
        user: &BareJid,
        contact: &BareJid,
        sub: Subscription,
    ) {
        let Some(u) = self.users.get_mut(user) else {
            return;
        };
        let update = u.roster.set_subscription(contact, sub);
        self.commit_roster_update(user, contact, update);
    }

    /// Persists a roster entry change and pushes it to the user's interested sessions.
    pub(super) fn commit_roster_update(
        &mut self,
        user: &BareJid,
        contact: &BareJid,
        update: crate::roster::EntryUpdate,
    ) {
        self.out(Output::Store(match update.stored {
            Some(entry) => StoreWrite::RosterPut {
                user: user.clone(),
                contact: contact.clone(),
                entry,
            },
            None => StoreWrite::RosterRemove {
                user: user.clone(),
                contact: contact.clone(),
            },
        }));
        // Every roster change passes here, whichever side caused it: the one place a watch's authorisation moves.
        self.update_watches(user, super::Scope::Roster(contact));
        let Some(change) = update.push else { return };
        let Some(u) = self.users.get(user) else {
            return;
        };
        let version = u.roster.version();
        // A change clients see moved the version: it is kept with the change, in the same commit.
        self.out(Output::Store(StoreWrite::DocumentPut {
            user: user.clone(),
            key: roster::version_key(),
            document: version.to_string(),
        }));
        let Some(u) = self.users.get(user) else {
            return;
        };
        let ids: Vec<SessionId> = u
            .sessions
            .iter()
            .filter(|s| s.interested)
            .map(|s| s.id)
            .collect();
        for id in ids {
            self.deliver(
                id,
                Stanza::Push(Push::Roster(roster::Push {
                    change: change.clone(),
                    version,
                })),
            );
        }
    }
}
