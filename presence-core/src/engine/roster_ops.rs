//! Roster management requests (RFC 6121 §2): get, set, remove, and the administrator's bulk add.

use super::{AddRefusal, Engine, Output};
use crate::directory::ContactEdit;
use crate::feature::{Answer, roster};
use crate::jid::{BareJid, Jid};
use crate::roster::{ItemDetails, MAX_NAME_BYTES, SubscriptionAction};
use crate::session::SessionId;
use crate::stanza::{ErrorAbout, ErrorCondition, RequestId, Stanza, StanzaError};

impl Engine {
    pub(super) fn roster_get(&mut self, id: SessionId, request: RequestId, known: Option<u64>) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        let Some(u) = self.users.get_mut(&user) else {
            return;
        };
        let Some(s) = u.session_mut(id) else { return };
        s.interested = true;
        let version = u.roster.version();
        // The whole roster is sent whenever the client's copy is not the current one: RFC 6121 §2.6.3 allows that
        // instead of the pushes since its version, and this server keeps no history of changes.
        let items = (known != Some(version)).then(|| {
            let mut items: Vec<_> = u.roster.items().collect();
            items.sort_by(|a, b| a.jid.cmp(&b.jid));
            items
        });
        self.answer(
            id,
            request,
            Answer::Roster(roster::Answer { items, version }),
        );
    }

    pub(super) fn roster_set(
        &mut self,
        id: SessionId,
        request: RequestId,
        jid: BareJid,
        details: ItemDetails,
    ) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        let Some(u) = self.users.get_mut(&user) else {
            return;
        };
        let mut groups = details.groups.clone();
        groups.sort();
        groups.dedup();
        let refusal = if groups.len() != details.groups.len() {
            Some((ErrorCondition::BadRequest, "a group is named twice"))
        } else if details
            .name
            .as_deref()
            .is_some_and(|n| n.len() > MAX_NAME_BYTES)
            || details
                .groups
                .iter()
                .any(|g| g.is_empty() || g.len() > MAX_NAME_BYTES)
        {
            Some((
                ErrorCondition::NotAcceptable,
                "a name or group is empty or too long",
            ))
        } else if u.roster.item(&jid).is_none()
            && !self
                .config
                .limits
                .max_contacts
                .allows(u.roster.listed_count())
        {
            // RFC 6121 §2.5.3: a roster at its size limit refuses new items with not-allowed.
            Some((ErrorCondition::NotAllowed, "the contact limit is reached"))
        } else {
            None
        };
        if let Some((condition, text)) = refusal {
            return self.request_error(id, &user, request, condition, text);
        }
        let update = u.roster.upsert(&jid, details);
        self.commit_roster_update(&user, &jid, update);
        self.answer(id, request, Answer::Done);
    }

    pub(super) fn roster_remove(&mut self, id: SessionId, request: RequestId, jid: BareJid) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        let Some(u) = self.users.get(&user) else {
            return;
        };
        if u.roster.item(&jid).is_none() {
            return self.request_error(
                id,
                &user,
                request,
                ErrorCondition::ItemNotFound,
                "no such roster item",
            );
        }
        // Removing an item cancels both directions first (RFC 6121 §2.5.2).
        let sub = u.roster.subscription(&jid);
        if sub.outbound != crate::roster::Link::Off {
            self.outbound_subscription(&user, Some(id), &jid, SubscriptionAction::Unsubscribe);
        }
        // A mere pre-approval goes with the item: nobody is subscribed, so nothing is sent.
        if !sub.inbound_off() {
            self.outbound_subscription(&user, Some(id), &jid, SubscriptionAction::Unsubscribed);
        }
        let Some(u) = self.users.get_mut(&user) else {
            return;
        };
        let update = u.roster.remove(&jid);
        self.commit_roster_update(&user, &jid, update);
        self.answer(id, request, Answer::Done);
    }

    /// Adds contacts in order and subscribes to each, until the contact limit; the rest are refused.
    pub(super) fn add_contacts(&mut self, user: &BareJid, contacts: Vec<(BareJid, ItemDetails)>) {
        let mut added = Vec::new();
        let mut refused = Vec::new();
        for (jid, details) in contacts {
            let Some(u) = self.users.get_mut(user) else {
                return;
            };
            if &jid == user {
                refused.push(AddRefusal::SelfAdd(jid));
                continue;
            }
            if u.roster.item(&jid).is_none()
                && !self
                    .config
                    .limits
                    .max_contacts
                    .allows(u.roster.listed_count())
            {
                refused.push(AddRefusal::OverLimit(jid));
                continue;
            }
            let update = u.roster.upsert(&jid, details);
            self.commit_roster_update(user, &jid, update);
            self.outbound_subscription(user, None, &jid, SubscriptionAction::Subscribe);
            added.push(jid);
        }
        if self.users.contains_key(user) {
            self.out(Output::ContactsAdded {
                user: user.clone(),
                added,
                refused,
            });
        }
        self.evict_if_idle(user);
    }

    /// Renames or removes items as an administrator (a directory sync): no subscription stanza is sent, because
    /// a removed contact's account is gone and a rename changes no subscription.
    pub(super) fn edit_contacts(&mut self, user: &BareJid, edits: Vec<ContactEdit>) {
        for edit in edits {
            let Some(u) = self.users.get_mut(user) else {
                return;
            };
            let (contact, update) = match edit {
                ContactEdit::Rename { contact, name } => {
                    let Some(item) = u.roster.item(&contact) else {
                        continue;
                    };
                    if item.details.name == name {
                        continue;
                    }
                    let details = ItemDetails {
                        name,
                        groups: item.details.groups,
                    };
                    let update = u.roster.upsert(&contact, details);
                    (contact, update)
                }
                ContactEdit::Remove { contact } => {
                    if u.roster.item(&contact).is_none() {
                        continue;
                    }
                    let update = u.roster.remove(&contact);
                    (contact, update)
                }
            };
            self.commit_roster_update(user, &contact, update);
        }
        self.evict_if_idle(user);
    }

    pub(super) fn request_error(
        &mut self,
        id: SessionId,
        user: &BareJid,
        request: RequestId,
        condition: ErrorCondition,
        text: &str,
    ) {
        let to = self
            .users
            .get(user)
            .and_then(|u| u.session(id))
            .map(|s| Jid::Full(s.jid.clone()))
            .unwrap_or_else(|| Jid::Bare(user.clone()));
        self.deliver(
            id,
            Stanza::Error(StanzaError {
                to,
                about: ErrorAbout::Request(request),
                condition,
                text: Some(text.to_owned()),
            }),
        );
    }
}
