//! IQs between occupants (XEP-0045 §7.5 style, as Prosody forwards vCard, version and ping requests): a request
//! to `room/nick` goes to the occupant's session from the asker's occupant address, under an id of the room's, and
//! the answer comes back to the asker under the original id. The room remembers which id is whose here; the
//! table is bounded, the oldest forgotten first (its late answer is then dropped, and the asker times out as it
//! would with a silent peer).

use std::collections::VecDeque;

use crate::jid::FullJid;
use crate::session::SessionId;

/// How many forwarded requests a room waits answers for at once.
pub const MAX_PENDING: usize = 64;

/// A forwarded request waiting for its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The asker's session.
    pub asker: SessionId,
    /// The asker's real address, where the answer goes.
    pub asker_jid: FullJid,
    /// The asker's id for it.
    pub id: String,
    /// The session it was forwarded to, the only one whose answer counts.
    pub answerer: SessionId,
}

/// The requests a room forwarded, by the id it gave them.
#[derive(Debug, Clone, Default)]
pub struct Forwarded {
    next: u64,
    pending: VecDeque<(String, Pending)>,
}

impl Forwarded {
    /// Records a request and returns the id to forward it under.
    pub fn insert(&mut self, pending: Pending) -> String {
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.next += 1;
        let id = format!("muc-fwd-{}", self.next);
        self.pending.push_back((id.clone(), pending));
        id
    }

    /// The request an answer with `id` from `session` is for, forgotten once found.
    pub fn take(&mut self, id: &str, session: SessionId) -> Option<Pending> {
        let at = self
            .pending
            .iter()
            .position(|(i, p)| i == id && p.answerer == session)?;
        self.pending.remove(at).map(|(_, p)| p)
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(n: u64) -> Pending {
        Pending {
            asker: SessionId(n),
            asker_jid: FullJid::new("a@x/r").expect("valid"),
            id: format!("q{n}"),
            answerer: SessionId(100),
        }
    }

    #[test]
    fn answers_match_their_forwarded_id_and_session_and_the_table_stays_bounded() {
        let mut f = Forwarded::default();
        let first = f.insert(pending(0));
        assert_eq!(f.take(&first, SessionId(7)), None, "not the answerer");
        assert_eq!(
            f.take(&first, SessionId(100)).map(|p| p.id),
            Some("q0".into())
        );
        assert_eq!(f.take(&first, SessionId(100)), None, "answered once");
        let oldest = f.insert(pending(1));
        for n in 2..(MAX_PENDING as u64 + 10) {
            f.insert(pending(n));
        }
        assert_eq!(f.len(), MAX_PENDING);
        assert_eq!(f.take(&oldest, SessionId(100)), None, "forgotten first");
    }
}
