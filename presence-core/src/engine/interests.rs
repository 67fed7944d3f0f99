//! PEP interests (XEP-0163 §4.3.3, §4.3.4): the nodes a session's client wants notifications of without
//! subscribing to each contact's node. XMPP clients say so through entity capabilities (`+notify` features); the
//! shell reads those and hands the engine plain node names (`Input::Interests`), kept with the session while it
//! is available.
//!
//! What an interest brings:
//! - On a change of node N by owner A (see `pep.rs`), every available session interested in N of each contact B
//!   A shares presence with (`from`/`both` on A's side), not blocked by A and admitted by N's access model. A's own
//!   sessions hear of every change of A's nodes whatever their interests.
//! - When a session names a node it did not name before (its first available presence, or new capabilities), the
//!   last item of that node of its own account and of every contact whose presence it receives (`to`/`both` on
//!   its user's side) that would notify it, as Prosody does when a contact comes online.
//!
//! Only users in memory are reached, both ways: a contact that is offline (not in memory) or on another domain
//! is neither notified nor read for last items (loading every contact of a roster at each sign-in would cost a
//! store read per contact; federation does not carry PEP yet). Such a contact's client reads the items itself
//! when it needs them, and a loaded contact's next publish reaches the session. A contact served by another
//! engine (a shard of this node, another node) is reached through it (`queries.rs`): notifications are routed
//! there, and last items are asked of it; that engine answers from memory too.

use super::Engine;
use super::pep::may_read;
use super::user::User;
use crate::feature::Push;
use crate::feature::pep::{Change, Event, NodeConfig};
use crate::jid::BareJid;
use crate::session::SessionId;
use crate::stanza::Stanza;

/// The most node names one session keeps: clients advertise a few dozen at most, and each costs a look at every
/// contact's node at sign-in.
pub const MAX_INTERESTS: usize = 256;

impl Engine {
    /// Replaces a session's interests and sends the last items of the nodes it names for the first time. A session
    /// that is not available has none (a late answer about one that went unavailable is dropped).
    pub(super) fn set_interests(&mut self, id: SessionId, mut notify: Vec<String>) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        let Some(s) = self
            .users
            .get_mut(&user)
            .and_then(|u| u.session_mut(id))
            .filter(|s| s.is_available())
        else {
            return;
        };
        notify.sort_unstable();
        notify.dedup();
        notify.truncate(MAX_INTERESTS);
        let new: Vec<String> = notify
            .iter()
            .filter(|n| s.interests.binary_search(n).is_err())
            .cloned()
            .collect();
        s.interests = notify;
        if !new.is_empty() {
            self.send_last_items(&user, id, &new);
        }
    }

    /// XEP-0163 §4.3.4: the last item of each of `nodes` of the user's own account, then of each contact whose
    /// presence the user receives and whose node would notify the session.
    fn send_last_items(&mut self, user: &BareJid, id: SessionId, nodes: &[String]) {
        let Some(u) = self.users.get(user) else {
            return;
        };
        let owners: Vec<BareJid> = std::iter::once(user.clone())
            .chain(
                u.roster
                    .watched()
                    .filter(|c| *c != user && self.is_here(c))
                    .cloned(),
            )
            .collect();
        // Contacts served by other engines of the node or cluster are asked there (`queries.rs`).
        let elsewhere: Vec<BareJid> = u
            .roster
            .watched()
            .filter(|c| *c != user && self.is_local(c) && !self.is_here(c))
            .cloned()
            .collect();
        if !elsewhere.is_empty()
            && let Some((_, from)) = self.session_address(id)
        {
            for owner in elsewhere {
                let ask = crate::query::Ask::LastItems {
                    nodes: nodes.to_vec(),
                };
                self.ask(from.clone(), owner, ask);
            }
        }
        let mut events = Vec::new();
        for owner in owners {
            let Some(o) = self.users.get(&owner) else {
                continue;
            };
            for node in nodes {
                let Some((config, item)) = self.pep_last_item(&owner, node) else {
                    continue;
                };
                if owner == *user || admits_interest(o, &owner, &config, user) {
                    events.push(Event {
                        owner: owner.clone(),
                        node: node.clone(),
                        change: Change::Items(vec![item]),
                    });
                }
            }
        }
        for event in events {
            self.deliver(id, Stanza::Push(Push::Pep(event)));
        }
    }

    /// The available sessions, interested in `node`, of the contacts `owner`'s node configured `config` notifies
    /// by interest.
    pub(super) fn interested_contacts(
        &self,
        owner: &BareJid,
        config: &NodeConfig,
        node: &str,
    ) -> Vec<SessionId> {
        let Some(o) = self.users.get(owner) else {
            return Vec::new();
        };
        o.roster
            .watchers()
            .filter(|c| *c != owner && admits_interest(o, owner, config, c))
            .filter_map(|c| self.users.get(c).map(|u| &**u))
            .flat_map(User::available_sessions)
            .filter(|s| s.wants(node))
            .map(|s| s.id)
            .collect()
    }
}

/// Whether the owner's node configured `config` notifies contact `who` by interest: `who` receives the owner's
/// presence (XEP-0163 §4.3.3 notifies contacts, not strangers, whatever the access model), is not blocked, and the
/// access model lets them read the node.
pub(super) fn admits_interest(
    o: &User,
    owner: &BareJid,
    config: &NodeConfig,
    who: &BareJid,
) -> bool {
    o.roster.subscription(who).shares_to_contact()
        && o.policy.listing(who) != crate::policy::Listing::Blocked
        && may_read(o, owner, config, who)
}
