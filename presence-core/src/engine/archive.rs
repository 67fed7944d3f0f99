//! Archiving (XEP-0313): every archivable message a local user sends or receives goes into that user's archive,
//! as the user's preferences say, under the next id of the archive; the recipient's id travels with the message as
//! its stanza-id. The archive is trimmed to its configured size as it grows.

use super::{Engine, Output};
use crate::archive::{self, ArchivedMessage, Prefs};
use crate::feature::{Answer, mam};
use crate::jid::{BareJid, Jid};
use crate::message::Message;
use crate::session::SessionId;
use crate::stanza::RequestId;
use crate::store::StoreWrite;

impl Engine {
    /// Puts a message into `owner`'s archive (a conversation with `peer`) if it is archived; returns its id there.
    pub(super) fn archive(
        &mut self,
        owner: &BareJid,
        peer: &BareJid,
        from: &Jid,
        to: &Jid,
        message: &Message,
    ) -> Option<u64> {
        let cap = self.config.limits.max_archive_per_user;
        if cap == 0 || !archive::archivable(message) {
            return None;
        }
        let u = self.users.get_mut(owner)?;
        let prefs = prefs_of(u);
        if !prefs.archives(peer, u.roster.item(peer).is_some()) {
            return None;
        }
        u.archive_head += 1;
        let id = u.archive_head;
        let mut kept = message.clone();
        kept.archive_id = None;
        self.out(Output::Store(StoreWrite::ArchivePut {
            user: owner.clone(),
            entry: ArchivedMessage {
                id,
                with: peer.clone(),
                from: from.clone(),
                to: to.clone(),
                message: kept,
            },
        }));
        // Ids grow by one, so the oldest kept id is plain arithmetic; trimming in steps of a few hundred spares a
        // range delete on every message once the archive is full.
        const STEP: u64 = 256;
        if id > cap && id % STEP == 0 {
            self.out(Output::Store(StoreWrite::ArchiveTrim {
                user: owner.clone(),
                below: id - cap + 1,
            }));
        }
        Some(id)
    }

    pub(super) fn mam(&mut self, id: SessionId, request: RequestId, call: mam::Call) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        let prefs = match call {
            mam::Call::GetPrefs => match self.users.get(&user) {
                Some(u) => prefs_of(u),
                None => return,
            },
            mam::Call::SetPrefs(prefs) => {
                self.keep_document(&user, mam::prefs_key(), prefs.to_text());
                prefs
            }
        };
        self.answer(id, request, Answer::Mam(prefs));
    }
}

fn prefs_of(u: &super::user::User) -> Prefs {
    u.documents
        .get(&mam::prefs_key())
        .and_then(|t| Prefs::from_text(t))
        .unwrap_or_default()
}
