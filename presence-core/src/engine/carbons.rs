//! Message carbons (XEP-0280): copies of a user's conversations for the user's other sessions that asked for
//! them, so every device shows the whole conversation.

use super::Engine;
use crate::feature::carbons::{self, Copy, Direction};
use crate::feature::{Answer, Push};
use crate::jid::{BareJid, Jid};
use crate::message::Message;
use crate::session::SessionId;
use crate::stanza::{RequestId, Stanza};

impl Engine {
    pub(super) fn carbons(&mut self, id: SessionId, request: RequestId, call: carbons::Call) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        if let Some(s) = self.users.get_mut(&user).and_then(|u| u.session_mut(id)) {
            s.carbons = call == carbons::Call::Enable;
        }
        self.answer(id, request, Answer::Done);
    }

    /// Copies a message to `user`'s sessions that enabled carbons, except those in `skip` (the sender, or the
    /// sessions the message itself went to).
    pub(super) fn copy_to_carbons(
        &mut self,
        user: &BareJid,
        skip: &[SessionId],
        direction: Direction,
        from: &Jid,
        to: &Jid,
        message: &Message,
    ) {
        if !carbons::eligible(message) {
            return;
        }
        let Some(u) = self.users.get(user) else {
            return;
        };
        let targets: Vec<SessionId> = u
            .sessions
            .iter()
            .filter(|s| s.carbons && !skip.contains(&s.id))
            .map(|s| s.id)
            .collect();
        for id in targets {
            let copy = Copy {
                direction,
                from: from.clone(),
                to: to.clone(),
                message: message.clone(),
            };
            self.deliver(id, Stanza::Push(Push::Carbon(copy)));
        }
    }
}
