//! [`OpenStore`]: the store the configuration chose, as one type the server and the CLI can be generic over.

use presence_core::BareJid;
use presence_core::archive::{ArchivedMessage, Page, Query};
use presence_core::policy::UserPolicy;
use presence_core::rooms::{RoomQuery, RoomRecord};
use presence_core::roster::RosterEntry;
use presence_core::store::{
    Account, AccountStore, ArchiveStore, DocumentKey, DocumentStore, OfflineStore,
    RoomArchiveStore, RoomStore, RosterStore, Store, StoreError, StoreWrite, StoredMessage,
    UserRecord,
};

use super::{PgStore, RedbStore};

/// Either store, delegating every call (including the group commit and the one-snapshot load) to it.
#[derive(Debug)]
pub enum OpenStore {
    /// The redb file in the data directory (`[store] kind = "embedded"`, the default).
    Embedded(RedbStore),
    /// A PostgreSQL database (`[store] kind = "postgres"`).
    Postgres(PgStore),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            OpenStore::Embedded($s) => $call,
            OpenStore::Postgres($s) => $call,
        }
    };
}

impl AccountStore for OpenStore {
    fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        delegate!(self, s => s.put_account(account))
    }

    fn account(&self, user: &BareJid) -> Result<Option<Account>, StoreError> {
        delegate!(self, s => s.account(user))
    }

    fn remove_account(&self, user: &BareJid) -> Result<bool, StoreError> {
        delegate!(self, s => s.remove_account(user))
    }

    fn list_accounts(&self) -> Result<Vec<BareJid>, StoreError> {
        delegate!(self, s => s.list_accounts())
    }
}

impl RosterStore for OpenStore {
    fn roster(&self, user: &BareJid) -> Result<Vec<(BareJid, RosterEntry)>, StoreError> {
        delegate!(self, s => s.roster(user))
    }

    fn put_roster_entry(
        &self,
        user: &BareJid,
        contact: &BareJid,
        entry: &RosterEntry,
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.put_roster_entry(user, contact, entry))
    }

    fn remove_roster_entry(&self, user: &BareJid, contact: &BareJid) -> Result<(), StoreError> {
        delegate!(self, s => s.remove_roster_entry(user, contact))
    }

    fn policy(&self, user: &BareJid) -> Result<Option<UserPolicy>, StoreError> {
        delegate!(self, s => s.policy(user))
    }

    fn put_policy(&self, user: &BareJid, policy: &UserPolicy) -> Result<(), StoreError> {
        delegate!(self, s => s.put_policy(user, policy))
    }
}

impl OfflineStore for OpenStore {
    fn push_offline(&self, user: &BareJid, message: &StoredMessage) -> Result<(), StoreError> {
        delegate!(self, s => s.push_offline(user, message))
    }

    fn offline(&self, user: &BareJid) -> Result<Vec<StoredMessage>, StoreError> {
        delegate!(self, s => s.offline(user))
    }

    fn clear_offline(&self, user: &BareJid, up_to: u64) -> Result<u64, StoreError> {
        delegate!(self, s => s.clear_offline(user, up_to))
    }

    fn offline_total(&self) -> Result<u64, StoreError> {
        delegate!(self, s => s.offline_total())
    }
}

impl DocumentStore for OpenStore {
    fn documents(&self, user: &BareJid) -> Result<Vec<(DocumentKey, String)>, StoreError> {
        delegate!(self, s => s.documents(user))
    }

    fn put_document(
        &self,
        user: &BareJid,
        key: &DocumentKey,
        document: &str,
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.put_document(user, key, document))
    }

    fn remove_document(&self, user: &BareJid, key: &DocumentKey) -> Result<(), StoreError> {
        delegate!(self, s => s.remove_document(user, key))
    }
}

impl ArchiveStore for OpenStore {
    fn archive_put(&self, user: &BareJid, entry: &ArchivedMessage) -> Result<(), StoreError> {
        delegate!(self, s => s.archive_put(user, entry))
    }

    fn archive_trim(&self, user: &BareJid, below: u64) -> Result<(), StoreError> {
        delegate!(self, s => s.archive_trim(user, below))
    }

    fn archive_head(&self, user: &BareJid) -> Result<u64, StoreError> {
        delegate!(self, s => s.archive_head(user))
    }

    fn archive_query(&self, user: &BareJid, query: &Query) -> Result<Page, StoreError> {
        delegate!(self, s => s.archive_query(user, query))
    }
}

impl RoomArchiveStore for OpenStore {
    fn room_archive_put(&self, room: &BareJid, entry: &ArchivedMessage) -> Result<(), StoreError> {
        delegate!(self, s => s.room_archive_put(room, entry))
    }

    fn room_archive_trim(&self, room: &BareJid, below: u64) -> Result<(), StoreError> {
        delegate!(self, s => s.room_archive_trim(room, below))
    }

    fn room_archive_head(&self, room: &BareJid) -> Result<u64, StoreError> {
        delegate!(self, s => s.room_archive_head(room))
    }

    fn room_archive_query(&self, room: &BareJid, query: &RoomQuery) -> Result<Page, StoreError> {
        delegate!(self, s => s.room_archive_query(room, query))
    }
}

impl RoomStore for OpenStore {
    fn put_room(&self, room: &RoomRecord) -> Result<(), StoreError> {
        delegate!(self, s => s.put_room(room))
    }

    fn remove_room(&self, room: &BareJid) -> Result<(), StoreError> {
        delegate!(self, s => s.remove_room(room))
    }

    fn rooms(&self) -> Result<Vec<RoomRecord>, StoreError> {
        delegate!(self, s => s.rooms())
    }
}

impl Store for OpenStore {
    fn apply(&self, writes: &[StoreWrite]) -> Result<(), StoreError> {
        delegate!(self, s => s.apply(writes))
    }

    fn load_user(&self, user: &BareJid) -> Result<Option<UserRecord>, StoreError> {
        delegate!(self, s => s.load_user(user))
    }

    fn load_users(&self, users: &[BareJid]) -> Vec<Result<Option<UserRecord>, StoreError>> {
        delegate!(self, s => s.load_users(users))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_variant_passes_the_conformance_suite() {
        let dirs = std::cell::RefCell::new(Vec::new());
        presence_core::store::conformance::run(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let store =
                OpenStore::Embedded(RedbStore::open(dir.path().join("s.redb")).expect("open"));
            dirs.borrow_mut().push(dir);
            store
        });
    }
}
