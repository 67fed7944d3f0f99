//! Messages a shell hands back because a session took them but its client never confirmed them (XEP-0198: a
//! stream-managed session that ended, or was not resumed in time, with stanzas still unacknowledged).
//!
//! The engine delivered them, so as far as the sender knows they arrived; dropping them now would lose them
//! silently. They go where a message for the user goes when nobody can take it right now: to the user's other
//! available sessions (stamped with their first arrival, since they are late), or else into offline storage
//! through the same path, caps and errors as any other held message. A message the caps refuse comes back to
//! its sender as an error, never vanishes. Only messages worth holding are taken (chat or normal with a body):
//! a chat-state notification or a headline is stale by now.

use super::{Engine, Work};
use crate::jid::{BareJid, Jid};
use crate::message::Message;
use crate::session::SessionId;
use crate::stanza::Stanza;

/// One message a session was given and its client never confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    /// The sender, as delivered.
    pub from: Jid,
    /// The recipient as addressed (the user, bare or at the lost session's resource).
    pub to: Jid,
    /// The message, with its original stamp.
    pub message: Message,
}

impl Undelivered {
    /// Whether holding it is worth anything: a chat or normal message with a body.
    fn worth_holding(&self) -> bool {
        self.message.kind.storable() && self.message.body.is_some()
    }
}

impl Engine {
    /// Takes back `messages` for `user` (see the module docs). Messages addressed to anybody else are ignored:
    /// a shell may only hand back what the engine delivered to that user's session.
    pub(super) fn hold_undelivered(&mut self, user: BareJid, messages: Vec<Undelivered>) {
        for m in messages {
            if m.to.bare() != &user || !m.worth_holding() {
                continue;
            }
            if !self.is_here(&user) {
                // The user moved to another node meanwhile: that node holds or delivers it.
                self.out(super::Output::Route(Stanza::Message {
                    from: m.from,
                    to: m.to,
                    message: m.message,
                    delayed: None,
                }));
                continue;
            }
            let takers: Vec<SessionId> = self
                .users
                .get(&user)
                .map(|u| {
                    u.sessions
                        .iter()
                        .filter(|s| s.takes_bare_messages())
                        .map(|s| s.id)
                        .collect()
                })
                .unwrap_or_default();
            if takers.is_empty() {
                // Its device was woken when the session detached; holding it wakes nobody again.
                self.hold_or_refuse(m.from, m.to, m.message);
                continue;
            }
            let delayed = Some(m.message.stamp);
            for id in takers {
                self.deliver(
                    id,
                    Stanza::Message {
                        from: m.from.clone(),
                        to: m.to.clone(),
                        message: m.message.clone(),
                        delayed,
                    },
                );
            }
        }
    }

    /// The user's data could not be loaded: the senders learn their messages may not have arrived (a temporary
    /// error), rather than nothing at all.
    pub(super) fn fail_undelivered(&mut self, messages: Vec<Undelivered>) {
        for m in messages.into_iter().filter(Undelivered::worth_holding) {
            self.fail_message(m.from, m.to, m.message);
        }
    }
}

/// Whether `work` is a hand-back, and for whom (it needs the user loaded, like a message for them).
pub(super) fn needs(work: &Work) -> Option<&BareJid> {
    match work {
        Work::Input(super::Input::HoldUndelivered { user, .. }) => Some(user),
        _ => None,
    }
}
