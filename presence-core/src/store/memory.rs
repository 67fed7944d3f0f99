//! An in-memory store for tests and for embedders that keep state elsewhere.

use std::collections::BTreeMap;

use parking_lot::Mutex;

use super::{
    Account, AccountStore, ArchiveStore, DocumentKey, DocumentStore, OfflineStore,
    RoomArchiveStore, RoomStore, RosterStore, Store, StoreError, StoredMessage,
};
use crate::archive::{ArchivedMessage, Page, Query, select};
use crate::jid::BareJid;
use crate::policy::UserPolicy;
use crate::rooms::RoomRecord;
use crate::rooms::archive::RoomQuery;
use crate::roster::RosterEntry;

/// A [`Store`] held in memory; everything is lost when it is dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    accounts: BTreeMap<BareJid, Account>,
    rosters: BTreeMap<BareJid, BTreeMap<BareJid, RosterEntry>>,
    policies: BTreeMap<BareJid, UserPolicy>,
    offline: BTreeMap<BareJid, BTreeMap<u64, StoredMessage>>,
    documents: BTreeMap<BareJid, BTreeMap<DocumentKey, String>>,
    archives: BTreeMap<BareJid, BTreeMap<u64, ArchivedMessage>>,
    rooms: BTreeMap<BareJid, RoomRecord>,
    room_archives: BTreeMap<BareJid, BTreeMap<u64, ArchivedMessage>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl AccountStore for MemoryStore {
    fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        self.inner
            .lock()
            .accounts
            .insert(account.jid.clone(), account.clone());
        Ok(())
    }

    fn account(&self, user: &BareJid) -> Result<Option<Account>, StoreError> {
        Ok(self.inner.lock().accounts.get(user).cloned())
    }

    fn remove_account(&self, user: &BareJid) -> Result<bool, StoreError> {
        let mut g = self.inner.lock();
        g.rosters.remove(user);
        g.policies.remove(user);
        g.offline.remove(user);
        g.documents.remove(user);
        g.archives.remove(user);
        Ok(g.accounts.remove(user).is_some())
    }

    fn list_accounts(&self) -> Result<Vec<BareJid>, StoreError> {
        Ok(self.inner.lock().accounts.keys().cloned().collect())
    }
}

impl RosterStore for MemoryStore {
    fn roster(&self, user: &BareJid) -> Result<Vec<(BareJid, RosterEntry)>, StoreError> {
        let g = self.inner.lock();
        Ok(g.rosters
            .get(user)
            .map(|r| r.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    fn put_roster_entry(
        &self,
        user: &BareJid,
        contact: &BareJid,
        entry: &RosterEntry,
    ) -> Result<(), StoreError> {
        self.inner
            .lock()
            .rosters
            .entry(user.clone())
            .or_default()
            .insert(contact.clone(), entry.clone());
        Ok(())
    }

    fn remove_roster_entry(&self, user: &BareJid, contact: &BareJid) -> Result<(), StoreError> {
        if let Some(r) = self.inner.lock().rosters.get_mut(user) {
            r.remove(contact);
        }
        Ok(())
    }

    fn policy(&self, user: &BareJid) -> Result<Option<UserPolicy>, StoreError> {
        Ok(self.inner.lock().policies.get(user).cloned())
    }

    fn put_policy(&self, user: &BareJid, policy: &UserPolicy) -> Result<(), StoreError> {
        self.inner
            .lock()
            .policies
            .insert(user.clone(), policy.clone());
        Ok(())
    }
}

impl OfflineStore for MemoryStore {
    fn push_offline(&self, user: &BareJid, message: &StoredMessage) -> Result<(), StoreError> {
        self.inner
            .lock()
            .offline
            .entry(user.clone())
            .or_default()
            .insert(message.seq, message.clone());
        Ok(())
    }

    fn offline(&self, user: &BareJid) -> Result<Vec<StoredMessage>, StoreError> {
        let g = self.inner.lock();
        Ok(g.offline
            .get(user)
            .map(|q| q.values().cloned().collect())
            .unwrap_or_default())
    }

    fn clear_offline(&self, user: &BareJid, up_to: u64) -> Result<u64, StoreError> {
        let mut g = self.inner.lock();
        let Some(q) = g.offline.get_mut(user) else {
            return Ok(0);
        };
        let keep = q.split_off(&up_to.saturating_add(1));
        let dropped = q.len() as u64;
        *q = keep;
        Ok(dropped)
    }

    fn offline_total(&self) -> Result<u64, StoreError> {
        Ok(self
            .inner
            .lock()
            .offline
            .values()
            .map(|q| q.len() as u64)
            .sum())
    }
}

impl Store for MemoryStore {}

impl RoomStore for MemoryStore {
    fn put_room(&self, room: &RoomRecord) -> Result<(), StoreError> {
        self.inner
            .lock()
            .rooms
            .insert(room.jid.clone(), room.clone());
        Ok(())
    }

    fn remove_room(&self, room: &BareJid) -> Result<(), StoreError> {
        let mut g = self.inner.lock();
        g.rooms.remove(room);
        g.room_archives.remove(room);
        Ok(())
    }

    fn rooms(&self) -> Result<Vec<RoomRecord>, StoreError> {
        Ok(self.inner.lock().rooms.values().cloned().collect())
    }
}

impl DocumentStore for MemoryStore {
    fn documents(&self, user: &BareJid) -> Result<Vec<(DocumentKey, String)>, StoreError> {
        Ok(self
            .inner
            .lock()
            .documents
            .get(user)
            .map(|d| d.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    fn put_document(
        &self,
        user: &BareJid,
        key: &DocumentKey,
        document: &str,
    ) -> Result<(), StoreError> {
        self.inner
            .lock()
            .documents
            .entry(user.clone())
            .or_default()
            .insert(key.clone(), document.to_owned());
        Ok(())
    }

    fn remove_document(&self, user: &BareJid, key: &DocumentKey) -> Result<(), StoreError> {
        let mut g = self.inner.lock();
        if let Some(d) = g.documents.get_mut(user) {
            d.remove(key);
            if d.is_empty() {
                g.documents.remove(user);
                g.archives.remove(user);
            }
        }
        Ok(())
    }
}

impl ArchiveStore for MemoryStore {
    fn archive_put(&self, user: &BareJid, entry: &ArchivedMessage) -> Result<(), StoreError> {
        self.inner
            .lock()
            .archives
            .entry(user.clone())
            .or_default()
            .insert(entry.id, entry.clone());
        Ok(())
    }

    fn archive_trim(&self, user: &BareJid, below: u64) -> Result<(), StoreError> {
        if let Some(a) = self.inner.lock().archives.get_mut(user) {
            *a = a.split_off(&below);
        }
        Ok(())
    }

    fn archive_head(&self, user: &BareJid) -> Result<u64, StoreError> {
        let g = self.inner.lock();
        Ok(g.archives
            .get(user)
            .and_then(|a| a.keys().next_back().copied())
            .unwrap_or(0))
    }

    fn archive_query(&self, user: &BareJid, query: &Query) -> Result<Page, StoreError> {
        let g = self.inner.lock();
        Ok(match g.archives.get(user) {
            Some(a) => select(a.values(), query),
            None => Page {
                messages: Vec::new(),
                complete: true,
            },
        })
    }
}

impl RoomArchiveStore for MemoryStore {
    fn room_archive_put(&self, room: &BareJid, entry: &ArchivedMessage) -> Result<(), StoreError> {
        self.inner
            .lock()
            .room_archives
            .entry(room.clone())
            .or_default()
            .insert(entry.id, entry.clone());
        Ok(())
    }

    fn room_archive_trim(&self, room: &BareJid, below: u64) -> Result<(), StoreError> {
        if let Some(a) = self.inner.lock().room_archives.get_mut(room) {
            *a = a.split_off(&below);
        }
        Ok(())
    }

    fn room_archive_head(&self, room: &BareJid) -> Result<u64, StoreError> {
        let g = self.inner.lock();
        Ok(g.room_archives
            .get(room)
            .and_then(|a| a.keys().next_back().copied())
            .unwrap_or(0))
    }

    fn room_archive_query(&self, room: &BareJid, query: &RoomQuery) -> Result<Page, StoreError> {
        let g = self.inner.lock();
        Ok(match g.room_archives.get(room) {
            Some(a) => crate::rooms::archive::select(a.values(), query),
            None => Page {
                messages: Vec::new(),
                complete: true,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_the_conformance_suite() {
        super::super::conformance::run(super::MemoryStore::new);
    }
}
