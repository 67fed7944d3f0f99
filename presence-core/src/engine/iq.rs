//! IQs between entities (RFC 6120 §8.5.3): the server routes a request to the addressed full JID and the answer
//! back; a request that reaches no session is answered with `service-unavailable` on the recipient's behalf, as
//! is one from a sender the recipient blocks (XEP-0191, polite: it looks like nobody is there). Answers that reach
//! nobody are dropped (no error loops).

use super::Engine;
use crate::jid::Jid;
use crate::session::SessionId;
use crate::stanza::{ErrorAbout, ErrorCondition, RoutedIq, Stanza, StanzaError};

impl Engine {
    pub(super) fn iq_from_session(&mut self, id: SessionId, iq: RoutedIq) {
        let Some((_, from)) = self.session_address(id) else {
            return;
        };
        let target = iq.to.bare().clone();
        let from = Jid::Full(from);
        self.route(Stanza::Iq { from, iq }, &target);
    }

    /// An IQ for a local address, from a session here or another node or domain.
    pub(super) fn inbound_iq(&mut self, from: Jid, iq: RoutedIq) {
        let target = match (&iq.to, self.users.get(iq.to.bare())) {
            (Jid::Full(f), Some(u)) => {
                let is_contact = u.roster.item(from.bare()).is_some();
                u.session_by_resource(f.resource())
                    .filter(|_| u.policy.accepts_message_from(from.bare(), is_contact))
                    .map(|s| s.id)
            }
            _ => None,
        };
        match target {
            Some(session) => self.deliver(session, Stanza::Iq { from, iq }),
            None if iq.kind.is_request() => {
                let to = from;
                self.reply_error(
                    &to.clone(),
                    StanzaError {
                        to,
                        about: ErrorAbout::Iq {
                            id: iq.id,
                            to: iq.to,
                        },
                        condition: ErrorCondition::ServiceUnavailable,
                        text: None,
                    },
                );
            }
            None => {}
        }
    }
}
