//! A store in front of another one: the way to add behaviour around a store (count commits, inject faults, time
//! calls) without writing every trait method again.
//!
//! Implement [`Layer`] with [`Layer::inner`] and override only what the layer changes; every method of
//! [`AccountStore`], [`RosterStore`], [`OfflineStore`] and [`Store`] goes to the inner store otherwise.

use super::{
    Account, AccountStore, ArchiveStore, DocumentKey, DocumentStore, OfflineStore,
    RoomArchiveStore, RoomStore, RosterStore, Store, StoreError, StoreWrite, StoredMessage,
    UserRecord,
};
use crate::archive::{ArchivedMessage, Page, Query};
use crate::jid::BareJid;
use crate::policy::UserPolicy;
use crate::rooms::RoomRecord;
use crate::rooms::archive::RoomQuery;
use crate::roster::RosterEntry;

/// A store that wraps another; the store traits come with it.
pub trait Layer {
    /// The wrapped store.
    type Inner: Store;

    /// The wrapped store.
    fn inner(&self) -> &Self::Inner;

    /// What [`Store::apply`] does: a group of writes, one transaction. (Named apart from the store traits'
    /// methods so that calls on a layer are never ambiguous.)
    fn commit(&self, writes: &[StoreWrite]) -> Result<(), StoreError> {
        self.inner().apply(writes)
    }

    /// What [`Store::load_users`] and [`Store::load_user`] do: the engine's loads, one result per user.
    fn load(&self, users: &[BareJid]) -> Vec<Result<Option<UserRecord>, StoreError>> {
        self.inner().load_users(users)
    }

    /// What [`AccountStore::account`] does: what sign-in reads.
    fn lookup_account(&self, user: &BareJid) -> Result<Option<Account>, StoreError> {
        self.inner().account(user)
    }
}

impl<L: Layer> AccountStore for L {
    fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        self.inner().put_account(account)
    }
    fn account(&self, user: &BareJid) -> Result<Option<Account>, StoreError> {
        self.lookup_account(user)
    }
    fn remove_account(&self, user: &BareJid) -> Result<bool, StoreError> {
        self.inner().remove_account(user)
    }
    fn list_accounts(&self) -> Result<Vec<BareJid>, StoreError> {
        self.inner().list_accounts()
    }
}

impl<L: Layer> RosterStore for L {
    fn roster(&self, user: &BareJid) -> Result<Vec<(BareJid, RosterEntry)>, StoreError> {
        self.inner().roster(user)
    }
    fn put_roster_entry(
        &self,
        user: &BareJid,
        contact: &BareJid,
        entry: &RosterEntry,
    ) -> Result<(), StoreError> {
        self.inner().put_roster_entry(user, contact, entry)
    }
    fn remove_roster_entry(&self, user: &BareJid, contact: &BareJid) -> Result<(), StoreError> {
        self.inner().remove_roster_entry(user, contact)
    }
    fn policy(&self, user: &BareJid) -> Result<Option<UserPolicy>, StoreError> {
        self.inner().policy(user)
    }
    fn put_policy(&self, user: &BareJid, policy: &UserPolicy) -> Result<(), StoreError> {
        self.inner().put_policy(user, policy)
    }
}

impl<L: Layer> OfflineStore for L {
    fn push_offline(&self, user: &BareJid, message: &StoredMessage) -> Result<(), StoreError> {
        self.inner().push_offline(user, message)
    }
    fn offline(&self, user: &BareJid) -> Result<Vec<StoredMessage>, StoreError> {
        self.inner().offline(user)
    }
    fn clear_offline(&self, user: &BareJid, up_to: u64) -> Result<u64, StoreError> {
        self.inner().clear_offline(user, up_to)
    }
    fn offline_total(&self) -> Result<u64, StoreError> {
        self.inner().offline_total()
    }
}

impl<L: Layer> DocumentStore for L {
    fn documents(&self, user: &BareJid) -> Result<Vec<(DocumentKey, String)>, StoreError> {
        self.inner().documents(user)
    }
    fn put_document(
        &self,
        user: &BareJid,
        key: &DocumentKey,
        document: &str,
    ) -> Result<(), StoreError> {
        self.inner().put_document(user, key, document)
    }
    fn remove_document(&self, user: &BareJid, key: &DocumentKey) -> Result<(), StoreError> {
        self.inner().remove_document(user, key)
    }
}

impl<L: Layer> ArchiveStore for L {
    fn archive_put(&self, user: &BareJid, entry: &ArchivedMessage) -> Result<(), StoreError> {
        self.inner().archive_put(user, entry)
    }
    fn archive_trim(&self, user: &BareJid, below: u64) -> Result<(), StoreError> {
        self.inner().archive_trim(user, below)
    }
    fn archive_head(&self, user: &BareJid) -> Result<u64, StoreError> {
        self.inner().archive_head(user)
    }
    fn archive_query(&self, user: &BareJid, query: &Query) -> Result<Page, StoreError> {
        self.inner().archive_query(user, query)
    }
}

impl<L: Layer> RoomArchiveStore for L {
    fn room_archive_put(&self, room: &BareJid, entry: &ArchivedMessage) -> Result<(), StoreError> {
        self.inner().room_archive_put(room, entry)
    }
    fn room_archive_trim(&self, room: &BareJid, below: u64) -> Result<(), StoreError> {
        self.inner().room_archive_trim(room, below)
    }
    fn room_archive_head(&self, room: &BareJid) -> Result<u64, StoreError> {
        self.inner().room_archive_head(room)
    }
    fn room_archive_query(&self, room: &BareJid, query: &RoomQuery) -> Result<Page, StoreError> {
        self.inner().room_archive_query(room, query)
    }
}

impl<L: Layer> RoomStore for L {
    fn put_room(&self, room: &RoomRecord) -> Result<(), StoreError> {
        self.inner().put_room(room)
    }
    fn remove_room(&self, room: &BareJid) -> Result<(), StoreError> {
        self.inner().remove_room(room)
    }
    fn rooms(&self) -> Result<Vec<RoomRecord>, StoreError> {
        self.inner().rooms()
    }
}

impl<L: Layer> Store for L {
    fn apply(&self, writes: &[StoreWrite]) -> Result<(), StoreError> {
        self.commit(writes)
    }
    fn load_users(&self, users: &[BareJid]) -> Vec<Result<Option<UserRecord>, StoreError>> {
        self.load(users)
    }

    fn load_user(&self, user: &BareJid) -> Result<Option<UserRecord>, StoreError> {
        self.load(std::slice::from_ref(user))
            .pop()
            .unwrap_or_else(|| Err(StoreError::Backend("a load answered nothing".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, conformance};

    /// A layer that changes nothing is the store it wraps: it passes the same conformance suite.
    struct Transparent(MemoryStore);

    impl Layer for Transparent {
        type Inner = MemoryStore;
        fn inner(&self) -> &MemoryStore {
            &self.0
        }
    }

    #[test]
    fn a_transparent_layer_passes_the_conformance_suite() {
        conformance::run(|| Transparent(MemoryStore::new()));
    }
}
