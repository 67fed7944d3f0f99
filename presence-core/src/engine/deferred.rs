//! Work parked behind a user's load, one FIFO queue per user.
//!
//! A load answers for one user, so it must release that user's work and nothing else: with one queue per user a
//! load costs as much as the work it releases, where one shared queue made every load rescan all parked work
//! (quadratic during a login storm, when many loads are outstanding at once).
//!
//! A user has a queue exactly while a load of that user is outstanding: the first work parked for a user is what
//! asks for the load, and the load's answer takes the whole queue.

use std::collections::VecDeque;

use hashbrown::HashMap;

use super::Work;
use crate::jid::BareJid;

/// The parked work, by the user it waits for.
#[derive(Debug, Default)]
pub(super) struct Deferred {
    queues: HashMap<BareJid, VecDeque<Work>>,
}

impl Deferred {
    /// Whether work waits for `user` (and so a load of `user` is outstanding).
    pub(super) fn is_waiting(&self, user: &BareJid) -> bool {
        self.queues.contains_key(user)
    }

    /// Parks `work` behind everything already waiting for `user`. Returns `true` when it is the first, so the
    /// caller asks for the load.
    pub(super) fn push(&mut self, user: BareJid, work: Work) -> bool {
        let queue = self.queues.entry(user).or_default();
        queue.push_back(work);
        queue.len() == 1
    }

    /// Takes everything waiting for `user`, oldest first; `None` when nothing waits (no load is outstanding).
    pub(super) fn take(&mut self, user: &BareJid) -> Option<VecDeque<Work>> {
        self.queues.remove(user)
    }
}
