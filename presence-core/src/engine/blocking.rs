//! The blocking command (XEP-0191): a session reads and edits its user's block list without knowing the rest of
//! the policy. Every change goes through `set_policy`, so it is stored and watchers whose view flips are told,
//! exactly as for an administrator's policy change.

use super::Engine;
use crate::feature::blocking::{Answer as BlockList, Push as BlockChange};
use crate::feature::{Answer, Push};
use crate::jid::BareJid;
use crate::policy::PolicyEntry;
use crate::session::SessionId;
use crate::stanza::{ErrorCondition, RequestId, Stanza};

impl Engine {
    pub(super) fn block_list_get(&mut self, id: SessionId, request: RequestId) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        let Some(u) = self.users.get_mut(&user) else {
            return;
        };
        let Some(s) = u.session_mut(id) else { return };
        // XEP-0191 §3.2: asking for the list is what subscribes a session to later pushes.
        s.blocklist_interested = true;
        let items = u.policy.block.clone();
        self.answer(id, request, Answer::Blocking(BlockList { items }));
    }

    pub(super) fn block(&mut self, id: SessionId, request: RequestId, items: Vec<PolicyEntry>) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        if items.is_empty() {
            // XEP-0191 §3.3: a block with no items is malformed (unlike an unblock, it has no "all" meaning).
            return self.request_error(
                id,
                &user,
                request,
                ErrorCondition::BadRequest,
                "a block carries at least one item",
            );
        }
        let Some(u) = self.users.get(&user) else {
            return;
        };
        let items = dedup(items);
        let mut policy = u.policy.clone();
        for item in &items {
            if !policy.block.contains(item) {
                policy.block.push(item.clone());
            }
        }
        if policy != u.policy {
            self.set_policy(&user, policy);
        }
        self.answer(id, request, Answer::Done);
        self.push_block_change(&user, BlockChange::Blocked(items));
    }

    pub(super) fn unblock(&mut self, id: SessionId, request: RequestId, items: Vec<PolicyEntry>) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        let Some(u) = self.users.get(&user) else {
            return;
        };
        let mut policy = u.policy.clone();
        let change = if items.is_empty() {
            policy.block.clear();
            BlockChange::UnblockedAll
        } else {
            let items = dedup(items);
            policy.block.retain(|e| !items.contains(e));
            BlockChange::Unblocked(items)
        };
        if policy != u.policy {
            self.set_policy(&user, policy);
        }
        self.answer(id, request, Answer::Done);
        self.push_block_change(&user, change);
    }

    /// Tells every session of `user` that asked for the block list what changed, the requester included: its
    /// client learns the outcome the same way as the others (XEP-0191 §3.3).
    fn push_block_change(&mut self, user: &BareJid, change: BlockChange) {
        let Some(u) = self.users.get(user) else {
            return;
        };
        let targets: Vec<SessionId> = u
            .sessions
            .iter()
            .filter(|s| s.blocklist_interested)
            .map(|s| s.id)
            .collect();
        for sid in targets {
            self.deliver(sid, Stanza::Push(Push::Blocking(change.clone())));
        }
    }
}

/// The entries in first-seen order without repeats, so pushes and the stored list never name one twice.
fn dedup(items: Vec<PolicyEntry>) -> Vec<PolicyEntry> {
    let mut out: Vec<PolicyEntry> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}
