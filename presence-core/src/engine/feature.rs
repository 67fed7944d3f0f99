//! Dispatches a session's request to the module that serves its feature (the registry is `crate::feature`).

use super::Engine;
use crate::feature::{Answer, Call, blocking, roster, settings};
use crate::session::SessionId;
use crate::stanza::{RequestId, Stanza};

impl Engine {
    pub(super) fn request(&mut self, session: SessionId, request: RequestId, call: Call) {
        let Some((request, call)) = self.ask_elsewhere(session, request, call) else {
            return;
        };
        match call {
            Call::Roster(roster::Call::Get { known }) => self.roster_get(session, request, known),
            Call::Roster(roster::Call::Set { jid, details }) => {
                self.roster_set(session, request, jid, details)
            }
            Call::Roster(roster::Call::Remove { jid }) => self.roster_remove(session, request, jid),
            Call::Blocking(blocking::Call::Get) => self.block_list_get(session, request),
            Call::Blocking(blocking::Call::Block(items)) => self.block(session, request, items),
            Call::Blocking(blocking::Call::Unblock(items)) => self.unblock(session, request, items),
            Call::Settings(settings::Call::Get) => self.presence_settings_get(session, request),
            Call::Settings(settings::Call::Set(change)) => {
                self.presence_settings_set(session, request, change)
            }
            Call::Private(call) => self.private_storage(session, request, call),
            Call::VCard(call) => self.vcard(session, request, call),
            Call::Carbons(call) => self.carbons(session, request, call),
            Call::Mam(call) => self.mam(session, request, call),
            Call::Pep(call) => self.pep(session, request, call),
            Call::AppPush(call) => self.app_push(session, request, call),
        }
    }

    /// Answers a request of `session`.
    pub(super) fn answer(&mut self, session: SessionId, request: RequestId, answer: Answer) {
        self.deliver(session, Stanza::Answer { request, answer });
    }
}
