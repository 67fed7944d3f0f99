//! The account features that keep documents (private XML storage, vCards): read from the loaded user, written
//! through the store like every other change, within the configured size and count limits.

use super::Engine;
use crate::feature::{Answer, private, vcard};
use crate::jid::BareJid;
use crate::session::SessionId;
use crate::stanza::{ErrorCondition, RequestId};
use crate::store::{DocumentKey, StoreWrite};

impl Engine {
    pub(super) fn private_storage(
        &mut self,
        id: SessionId,
        request: RequestId,
        call: private::Call,
    ) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        match call {
            private::Call::Get { namespace, element } => {
                let xml = private::key(&namespace)
                    .and_then(|k| self.users.get(&user)?.documents.get(&k).cloned());
                let answer = private::Answer {
                    namespace,
                    element,
                    xml,
                };
                self.answer(id, request, Answer::Private(answer));
            }
            private::Call::Set { namespace, xml } => {
                let Some(key) = private::key(&namespace) else {
                    return self.request_error(
                        id,
                        &user,
                        request,
                        ErrorCondition::NotAcceptable,
                        "the namespace is too long to store",
                    );
                };
                self.put_document(id, &user, request, key, xml);
            }
        }
    }

    pub(super) fn vcard(&mut self, id: SessionId, request: RequestId, call: vcard::Call) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        match call {
            vcard::Call::Get { of } => {
                let of = of.unwrap_or_else(|| user.clone());
                if !self.is_here(&of) {
                    // A user of another domain: their server answers, once federation forwards requests (a
                    // user of another engine of this node or cluster is asked in `queries.rs` before this).
                    return self.request_error(
                        id,
                        &user,
                        request,
                        ErrorCondition::ServiceUnavailable,
                        "that user's vCard is not kept on this server",
                    );
                }
                match self.card_of(&of) {
                    Ok(card) => self.answer(id, request, Answer::VCard(card)),
                    Err((condition, text)) => {
                        self.request_error(id, &user, request, condition, &text)
                    }
                }
                // Looking at someone's card does not keep them in memory.
                self.released.push(of);
            }
            vcard::Call::Set { xml, photo } => self.vcard_set(id, &user, request, xml, photo),
        }
    }

    /// The vCard of `of`, a user served here (loaded, if they have an account).
    pub(super) fn card_of(&self, of: &BareJid) -> Result<vcard::Answer, (ErrorCondition, String)> {
        let Some(target) = self.users.get(of) else {
            return Err((ErrorCondition::ItemNotFound, "no such user".to_owned()));
        };
        Ok(vcard::Answer {
            of: of.clone(),
            xml: target.documents.get(&vcard::key()).cloned(),
            photo: super::avatar::card_photo(target),
        })
    }

    /// Stores a document of `user` for a session's request, within the limits, and answers it.
    pub(super) fn put_document(
        &mut self,
        id: SessionId,
        user: &BareJid,
        request: RequestId,
        key: DocumentKey,
        document: String,
    ) {
        match self.store_document(user, key, document) {
            Ok(()) => self.answer(id, request, Answer::Done),
            Err((condition, text)) => self.request_error(id, user, request, condition, &text),
        }
    }

    /// Stores a document of `user` within the limits, or says which one it would break.
    pub(super) fn store_document(
        &mut self,
        user: &BareJid,
        key: DocumentKey,
        document: String,
    ) -> Result<(), (ErrorCondition, String)> {
        let limits = &self.config.limits;
        let (max_bytes, max_count) = (limits.max_document_bytes, limits.max_documents_per_user);
        let Some(u) = self.users.get_mut(user) else {
            return Err((ErrorCondition::ItemNotFound, "no such user".to_owned()));
        };
        if document.len() > max_bytes {
            let text = format!(
                "the document is {} bytes; at most {max_bytes} are kept",
                document.len()
            );
            return Err((ErrorCondition::NotAcceptable, text));
        }
        if !u.documents.contains_key(&key) && u.documents.len() >= max_count {
            let text = format!("at most {max_count} documents are kept per user");
            return Err((ErrorCondition::ResourceConstraint, text));
        }
        self.keep_document(user, key, document);
        Ok(())
    }

    /// Keeps a document of a loaded user, in memory and through the store (limits are the caller's to check).
    pub(super) fn keep_document(&mut self, user: &BareJid, key: DocumentKey, document: String) {
        let Some(u) = self.users.get_mut(user) else {
            return;
        };
        u.documents.insert(key.clone(), document.clone());
        self.out(super::Output::Store(StoreWrite::DocumentPut {
            user: user.clone(),
            key,
            document,
        }));
    }

    /// Drops a document of a loaded user, in memory and through the store.
    pub(super) fn drop_document(&mut self, user: &BareJid, key: DocumentKey) {
        let Some(u) = self.users.get_mut(user) else {
            return;
        };
        u.documents.remove(&key);
        self.out(super::Output::Store(StoreWrite::DocumentRemove {
            user: user.clone(),
            key,
        }));
    }
}
