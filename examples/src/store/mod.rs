//! The bundled server's durable stores: every presence-core store trait on one redb file ([`RedbStore`], the
//! default), or on a PostgreSQL database shared by several nodes ([`PgStore`]); [`OpenStore`] is whichever the
//! configuration chose.
//!
//! The rest of this page is about the redb store. redb commits with copy-on-write pages and an fsync, so a write
//! acknowledged by a commit survives a crash and a crash mid-commit leaves the previous state. [`Store::apply`] puts a whole group of engine writes in one
//! transaction, so a burst of roster and offline changes costs one sync.

pub(crate) mod codec;
pub mod faulty;
mod keys;
mod open;
pub mod postgres;

use std::path::Path;

pub use faulty::FaultyStore;
pub use open::OpenStore;
pub use postgres::PgStore;

use presence_core::BareJid;
use presence_core::archive::{ArchivedMessage, Page, Query};
use presence_core::policy::UserPolicy;
use presence_core::rooms::RoomQuery;
use presence_core::rooms::RoomRecord;
use presence_core::roster::RosterEntry;
use presence_core::store::{
    Account, AccountStore, ArchiveStore, DocumentKey, DocumentStore, OfflineStore,
    RoomArchiveStore, RoomStore, RosterStore, Store, StoreError, StoreWrite, StoredMessage,
};
use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};

/// Accounts by bare JID.
const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
/// Roster entries by user prefix + contact.
const ROSTER: TableDefinition<&[u8], &[u8]> = TableDefinition::new("roster");
/// Privacy policies by bare JID.
const POLICIES: TableDefinition<&str, &[u8]> = TableDefinition::new("policies");
/// Held messages by user prefix + big-endian sequence number.
const OFFLINE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("offline");
/// Running totals kept in the same transactions as the rows they count.
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const DOCUMENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("documents");
const ARCHIVE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("archive");
/// Persistent rooms by room address.
const ROOMS: TableDefinition<&str, &[u8]> = TableDefinition::new("rooms");
/// Each room's archive by room prefix + big-endian id (the keys of [`ARCHIVE`], with the room for the user).
const ROOM_ARCHIVE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("room_archive");
/// The counter of held messages over all users.
const OFFLINE_TOTAL: &str = "offline_total";

/// Wraps any redb error as a backend failure.
fn backend(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Backend(format!("redb: {}", e.into()))
}

/// How much of the database file the embedded store keeps in memory unless configured (`[store] cache_mib`).
///
/// redb's own default is 1 GiB, filled by every page ever read: at 10,000 signed-in users its cache held 1.5 KiB
/// per user (benches/IDLE.md, round 5) of pages the engine already keeps in its own form while the user is
/// online. 4 MiB holds the tables' upper levels, which every lookup walks; a miss is a read from the operating
/// system's page cache, and logins cost the same server CPU with either size.
pub const DEFAULT_CACHE_BYTES: usize = 4 << 20;

/// A [`Store`] in a redb database file.
pub struct RedbStore {
    db: Database,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens the database at `path` with the default page cache ([`DEFAULT_CACHE_BYTES`]), creating the file and
    /// its tables if they do not exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens the database at `path` keeping at most `cache_bytes` of its pages in memory, creating the file and
    /// its tables if they do not exist.
    pub fn open_with_cache(path: impl AsRef<Path>, cache_bytes: usize) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| {
                StoreError::Backend(format!("cannot open database {}: {e}", path.display()))
            })?;
        let store = RedbStore { db };
        // Creating every table up front lets read transactions open them without a "does not exist" case.
        store.write(|tx| {
            tx.open_table(ACCOUNTS).map_err(backend)?;
            tx.open_table(ROSTER).map_err(backend)?;
            tx.open_table(POLICIES).map_err(backend)?;
            tx.open_table(OFFLINE).map_err(backend)?;
            tx.open_table(COUNTERS).map_err(backend)?;
            tx.open_table(DOCUMENTS).map_err(backend)?;
            tx.open_table(ARCHIVE).map_err(backend)?;
            tx.open_table(ROOMS).map_err(backend)?;
            tx.open_table(ROOM_ARCHIVE).map_err(backend)?;
            Ok(())
        })?;
        Ok(store)
    }

    /// Runs `f` in one write transaction and commits it if `f` succeeds.
    fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self.db.begin_write().map_err(backend)?;
        // Dropping an uncommitted transaction aborts it, so an error leaves nothing half-written.
        let out = f(&tx)?;
        tx.commit().map_err(backend)?;
        Ok(out)
    }

    fn read(&self) -> Result<redb::ReadTransaction, StoreError> {
        self.db.begin_read().map_err(backend)
    }

    /// Every row of `user` in one of the per-user tables, in key order, each read by `row` from the rest of its
    /// key (after the user prefix) and its value.
    fn user_rows<T>(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        user: &BareJid,
        mut row: impl FnMut(&[u8], &[u8]) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let t = self.read()?.open_table(table).map_err(backend)?;
        let prefix = keys::user_prefix(user);
        let end = keys::prefix_end(&prefix);
        let mut out = Vec::new();
        for r in t
            .range(prefix.as_slice()..end.as_slice())
            .map_err(backend)?
        {
            let (k, v) = r.map_err(backend)?;
            let rest = k.value().get(prefix.len()..).unwrap_or_default();
            out.push(row(rest, v.value())?);
        }
        Ok(out)
    }
}

fn add_offline_total(tx: &WriteTransaction, delta: i64) -> Result<(), StoreError> {
    if delta == 0 {
        return Ok(());
    }
    let mut t = tx.open_table(COUNTERS).map_err(backend)?;
    let now = t
        .get(OFFLINE_TOTAL)
        .map_err(backend)?
        .map_or(0, |v| v.value());
    let next = now.saturating_add_signed(delta);
    t.insert(OFFLINE_TOTAL, next).map_err(backend)?;
    Ok(())
}

fn put_roster_tx(
    tx: &WriteTransaction,
    user: &BareJid,
    contact: &BareJid,
    entry: &RosterEntry,
) -> Result<(), StoreError> {
    let mut t = tx.open_table(ROSTER).map_err(backend)?;
    t.insert(
        keys::roster(user, contact).as_slice(),
        codec::encode_roster_entry(entry).as_slice(),
    )
    .map_err(backend)?;
    Ok(())
}

fn remove_roster_tx(
    tx: &WriteTransaction,
    user: &BareJid,
    contact: &BareJid,
) -> Result<(), StoreError> {
    let mut t = tx.open_table(ROSTER).map_err(backend)?;
    t.remove(keys::roster(user, contact).as_slice())
        .map_err(backend)?;
    Ok(())
}

fn put_policy_tx(
    tx: &WriteTransaction,
    user: &BareJid,
    policy: &UserPolicy,
) -> Result<(), StoreError> {
    let mut t = tx.open_table(POLICIES).map_err(backend)?;
    t.insert(user.as_str(), codec::encode_policy(policy).as_slice())
        .map_err(backend)?;
    Ok(())
}

fn push_offline_tx(
    tx: &WriteTransaction,
    user: &BareJid,
    message: &StoredMessage,
) -> Result<(), StoreError> {
    let replaced = {
        let mut t = tx.open_table(OFFLINE).map_err(backend)?;
        t.insert(
            keys::offline(user, message.seq).as_slice(),
            codec::encode_message(message).as_slice(),
        )
        .map_err(backend)?
        .is_some()
    };
    // Re-pushing a sequence number replaces the message; only a new one grows the total.
    if !replaced {
        add_offline_total(tx, 1)?;
    }
    Ok(())
}

/// Removes every key in `[from, to)` of `table`; returns how many there were.
fn remove_range(
    tx: &WriteTransaction,
    table: TableDefinition<&[u8], &[u8]>,
    from: &[u8],
    to: &[u8],
) -> Result<u64, StoreError> {
    let mut t = tx.open_table(table).map_err(backend)?;
    remove_range_in(&mut t, from, to)
}

/// Removes every key in `[from, to)` of an open table; returns how many there were.
fn remove_range_in(
    t: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    from: &[u8],
    to: &[u8],
) -> Result<u64, StoreError> {
    let doomed = t
        .range(from..to)
        .map_err(backend)?
        .map(|r| r.map(|(k, _)| k.value().to_vec()).map_err(backend))
        .collect::<Result<Vec<_>, _>>()?;
    for k in &doomed {
        t.remove(k.as_slice()).map_err(backend)?;
    }
    Ok(doomed.len() as u64)
}

fn clear_offline_tx(tx: &WriteTransaction, user: &BareJid, up_to: u64) -> Result<u64, StoreError> {
    let from = keys::offline(user, 0);
    // `up_to` is inclusive; past u64::MAX the whole queue goes.
    let to = match up_to.checked_add(1) {
        Some(next) => keys::offline(user, next),
        None => keys::prefix_end(&keys::user_prefix(user)),
    };
    let dropped = remove_range(tx, OFFLINE, &from, &to)?;
    add_offline_total(tx, -i64::try_from(dropped).unwrap_or(i64::MAX))?;
    Ok(dropped)
}

fn put_document_tx(
    tx: &WriteTransaction,
    user: &BareJid,
    key: &DocumentKey,
    document: &str,
) -> Result<(), StoreError> {
    let mut t = tx.open_table(DOCUMENTS).map_err(backend)?;
    t.insert(
        keys::document(user, key).as_slice(),
        codec::encode_document(document).as_slice(),
    )
    .map_err(backend)?;
    Ok(())
}

fn remove_document_tx(
    tx: &WriteTransaction,
    user: &BareJid,
    key: &DocumentKey,
) -> Result<(), StoreError> {
    let mut t = tx.open_table(DOCUMENTS).map_err(backend)?;
    t.remove(keys::document(user, key).as_slice())
        .map_err(backend)?;
    Ok(())
}

/// One row of the archive table as redb yields it.
type ArchiveRow<'a> = (
    redb::AccessGuard<'a, &'static [u8]>,
    redb::AccessGuard<'a, &'static [u8]>,
);

/// A batch's archive writes, in their order, on the archive table opened once: a chat batch puts two rows per
/// message, and opening the table for each of them cost more than the inserts.
fn archive_tx(tx: &WriteTransaction, writes: &[&StoreWrite]) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Ok(());
    }
    let mut t = tx.open_table(ARCHIVE).map_err(backend)?;
    for w in writes {
        match w {
            StoreWrite::ArchivePut { user, entry } => {
                t.insert(
                    keys::archived(user, entry.id).as_slice(),
                    codec::encode_archived(entry).as_slice(),
                )
                .map_err(backend)?;
            }
            StoreWrite::ArchiveTrim { user, below } => {
                remove_range_in(
                    &mut t,
                    &keys::archived(user, 0),
                    &keys::archived(user, *below),
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn put_room_tx(tx: &WriteTransaction, room: &RoomRecord) -> Result<(), StoreError> {
    let mut t = tx.open_table(ROOMS).map_err(backend)?;
    t.insert(room.jid.as_str(), codec::encode_room(room).as_slice())
        .map_err(backend)?;
    Ok(())
}

fn remove_room_tx(tx: &WriteTransaction, room: &BareJid) -> Result<(), StoreError> {
    let mut t = tx.open_table(ROOMS).map_err(backend)?;
    t.remove(room.as_str()).map_err(backend)?;
    let prefix = keys::user_prefix(room);
    remove_range(tx, ROOM_ARCHIVE, &prefix, &keys::prefix_end(&prefix))?;
    Ok(())
}

fn room_archive_put_tx(
    tx: &WriteTransaction,
    room: &BareJid,
    entry: &ArchivedMessage,
) -> Result<(), StoreError> {
    let mut t = tx.open_table(ROOM_ARCHIVE).map_err(backend)?;
    t.insert(
        keys::archived(room, entry.id).as_slice(),
        codec::encode_archived(entry).as_slice(),
    )
    .map_err(backend)?;
    Ok(())
}

fn room_archive_trim_tx(
    tx: &WriteTransaction,
    room: &BareJid,
    below: u64,
) -> Result<(), StoreError> {
    remove_range(
        tx,
        ROOM_ARCHIVE,
        &keys::archived(room, 0),
        &keys::archived(room, below),
    )?;
    Ok(())
}

impl RoomArchiveStore for RedbStore {
    fn room_archive_put(&self, room: &BareJid, entry: &ArchivedMessage) -> Result<(), StoreError> {
        self.write(|tx| room_archive_put_tx(tx, room, entry))
    }

    fn room_archive_trim(&self, room: &BareJid, below: u64) -> Result<(), StoreError> {
        self.write(|tx| room_archive_trim_tx(tx, room, below))
    }

    fn room_archive_head(&self, room: &BareJid) -> Result<u64, StoreError> {
        self.head(ROOM_ARCHIVE, room)
    }

    fn room_archive_query(&self, room: &BareJid, query: &RoomQuery) -> Result<Page, StoreError> {
        let q = Query {
            with: None,
            ..query.query.clone()
        };
        let nick = query.nick.as_deref();
        self.page(ROOM_ARCHIVE, room, &q, |m| {
            nick.is_none_or(|n| presence_core::rooms::archive::nick_of(m) == Some(n))
        })
    }
}

impl RoomStore for RedbStore {
    fn put_room(&self, room: &RoomRecord) -> Result<(), StoreError> {
        self.write(|tx| put_room_tx(tx, room))
    }

    fn remove_room(&self, room: &BareJid) -> Result<(), StoreError> {
        self.write(|tx| remove_room_tx(tx, room))
    }

    fn rooms(&self) -> Result<Vec<RoomRecord>, StoreError> {
        let t = self.read()?.open_table(ROOMS).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            out.push(codec::decode_room(
                &format!("room {}", k.value()),
                v.value(),
            )?);
        }
        // The table is in byte order; the trait promises the address order.
        out.sort_by(|a, b| a.jid.cmp(&b.jid));
        Ok(out)
    }
}

impl AccountStore for RedbStore {
    fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut t = tx.open_table(ACCOUNTS).map_err(backend)?;
            t.insert(
                account.jid.as_str(),
                codec::encode_account(account).as_slice(),
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn account(&self, user: &BareJid) -> Result<Option<Account>, StoreError> {
        let t = self.read()?.open_table(ACCOUNTS).map_err(backend)?;
        let Some(v) = t.get(user.as_str()).map_err(backend)? else {
            return Ok(None);
        };
        codec::decode_account(&format!("account {user}"), v.value()).map(Some)
    }

    fn remove_account(&self, user: &BareJid) -> Result<bool, StoreError> {
        self.write(|tx| {
            let existed = tx
                .open_table(ACCOUNTS)
                .map_err(backend)?
                .remove(user.as_str())
                .map_err(backend)?
                .is_some();
            tx.open_table(POLICIES)
                .map_err(backend)?
                .remove(user.as_str())
                .map_err(backend)?;
            let prefix = keys::user_prefix(user);
            let end = keys::prefix_end(&prefix);
            remove_range(tx, ROSTER, &prefix, &end)?;
            remove_range(tx, DOCUMENTS, &prefix, &end)?;
            remove_range(tx, ARCHIVE, &prefix, &end)?;
            let dropped = remove_range(tx, OFFLINE, &prefix, &end)?;
            add_offline_total(tx, -i64::try_from(dropped).unwrap_or(i64::MAX))?;
            Ok(existed)
        })
    }

    fn list_accounts(&self) -> Result<Vec<BareJid>, StoreError> {
        let t = self.read()?.open_table(ACCOUNTS).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(backend)? {
            let (k, _) = row.map_err(backend)?;
            let jid = BareJid::new(k.value()).map_err(|e| StoreError::Corrupt {
                what: "account key".into(),
                detail: e.to_string(),
            })?;
            out.push(jid);
        }
        // The table is in byte order; the trait promises the address order.
        out.sort();
        Ok(out)
    }
}

impl RosterStore for RedbStore {
    fn roster(&self, user: &BareJid) -> Result<Vec<(BareJid, RosterEntry)>, StoreError> {
        self.user_rows(ROSTER, user, |rest, value| {
            let contact = keys::roster_contact(rest, 0)?;
            let what = format!("roster entry {user} -> {contact}");
            Ok((contact, codec::decode_roster_entry(&what, value)?))
        })
    }

    fn put_roster_entry(
        &self,
        user: &BareJid,
        contact: &BareJid,
        entry: &RosterEntry,
    ) -> Result<(), StoreError> {
        self.write(|tx| put_roster_tx(tx, user, contact, entry))
    }

    fn remove_roster_entry(&self, user: &BareJid, contact: &BareJid) -> Result<(), StoreError> {
        self.write(|tx| remove_roster_tx(tx, user, contact))
    }

    fn policy(&self, user: &BareJid) -> Result<Option<UserPolicy>, StoreError> {
        let t = self.read()?.open_table(POLICIES).map_err(backend)?;
        let Some(v) = t.get(user.as_str()).map_err(backend)? else {
            return Ok(None);
        };
        codec::decode_policy(&format!("policy of {user}"), v.value()).map(Some)
    }

    fn put_policy(&self, user: &BareJid, policy: &UserPolicy) -> Result<(), StoreError> {
        self.write(|tx| put_policy_tx(tx, user, policy))
    }
}

impl OfflineStore for RedbStore {
    fn push_offline(&self, user: &BareJid, message: &StoredMessage) -> Result<(), StoreError> {
        self.write(|tx| push_offline_tx(tx, user, message))
    }

    fn offline(&self, user: &BareJid) -> Result<Vec<StoredMessage>, StoreError> {
        let what = format!("offline message for {user}");
        self.user_rows(OFFLINE, user, |_, value| {
            codec::decode_message(&what, value)
        })
    }

    fn clear_offline(&self, user: &BareJid, up_to: u64) -> Result<u64, StoreError> {
        self.write(|tx| clear_offline_tx(tx, user, up_to))
    }

    fn offline_total(&self) -> Result<u64, StoreError> {
        let t = self.read()?.open_table(COUNTERS).map_err(backend)?;
        Ok(t.get(OFFLINE_TOTAL)
            .map_err(backend)?
            .map_or(0, |v| v.value()))
    }
}

impl DocumentStore for RedbStore {
    fn documents(&self, user: &BareJid) -> Result<Vec<(DocumentKey, String)>, StoreError> {
        self.user_rows(DOCUMENTS, user, |rest, value| {
            let key = keys::document_key(rest, 0)?;
            let what = format!("document {key} of {user}");
            Ok((key, codec::decode_document(&what, value)?))
        })
    }

    fn put_document(
        &self,
        user: &BareJid,
        key: &DocumentKey,
        document: &str,
    ) -> Result<(), StoreError> {
        self.write(|tx| put_document_tx(tx, user, key, document))
    }

    fn remove_document(&self, user: &BareJid, key: &DocumentKey) -> Result<(), StoreError> {
        self.write(|tx| remove_document_tx(tx, user, key))
    }
}

impl ArchiveStore for RedbStore {
    fn archive_put(&self, user: &BareJid, entry: &ArchivedMessage) -> Result<(), StoreError> {
        let w = StoreWrite::ArchivePut {
            user: user.clone(),
            entry: entry.clone(),
        };
        self.write(|tx| archive_tx(tx, &[&w]))
    }

    fn archive_trim(&self, user: &BareJid, below: u64) -> Result<(), StoreError> {
        let w = StoreWrite::ArchiveTrim {
            user: user.clone(),
            below,
        };
        self.write(|tx| archive_tx(tx, &[&w]))
    }

    fn archive_head(&self, user: &BareJid) -> Result<u64, StoreError> {
        self.head(ARCHIVE, user)
    }

    fn archive_query(&self, user: &BareJid, query: &Query) -> Result<Page, StoreError> {
        self.page(ARCHIVE, user, query, |_| true)
    }
}

impl RedbStore {
    /// The highest id in `owner`'s part of an archive table (a user's or a room's), 0 when empty.
    fn head(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        user: &BareJid,
    ) -> Result<u64, StoreError> {
        let t = self.read()?.open_table(table).map_err(backend)?;
        let prefix = keys::user_prefix(user);
        let end = keys::prefix_end(&prefix);
        let last = t
            .range(prefix.as_slice()..end.as_slice())
            .map_err(backend)?
            .next_back();
        match last {
            None => Ok(0),
            Some(row) => {
                let (_, v) = row.map_err(backend)?;
                Ok(codec::decode_archived(&format!("archive of {user}"), v.value())?.id)
            }
        }
    }

    /// A page of `user`'s part of an archive table, of the messages `query` and `also` both let through. Walks
    /// only the id range the query allows, from the end it pages from, decoding as it goes, and stops one match
    /// past the page (to know whether the page is complete).
    fn page(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        user: &BareJid,
        query: &Query,
        also: impl Fn(&ArchivedMessage) -> bool,
    ) -> Result<Page, StoreError> {
        let t = self.read()?.open_table(table).map_err(backend)?;
        let from = keys::archived(user, query.after.map_or(0, |a| a.saturating_add(1)));
        let to = match query.before {
            Some(b) => keys::archived(user, b),
            None => keys::prefix_end(&keys::user_prefix(user)),
        };
        if from >= to {
            return Ok(Page {
                messages: Vec::new(),
                complete: true,
            });
        }
        let range = t.range(from.as_slice()..to.as_slice()).map_err(backend)?;
        let what = format!("archive of {user}");
        let decode = |row: Result<ArchiveRow<'_>, redb::StorageError>| {
            let (_, v) = row.map_err(backend)?;
            codec::decode_archived(&what, v.value())
        };
        let mut messages = Vec::new();
        let mut complete = true;
        let mut take = |m: ArchivedMessage| {
            if !query.matches(&m) || !also(&m) {
                return true;
            }
            if messages.len() == query.max {
                complete = false;
                return false;
            }
            messages.push(m);
            true
        };
        if query.from_end {
            for row in range.rev() {
                if !take(decode(row)?) {
                    break;
                }
            }
            messages.reverse();
        } else {
            for row in range {
                if !take(decode(row)?) {
                    break;
                }
            }
        }
        Ok(Page { messages, complete })
    }
}

impl Store for RedbStore {
    fn apply(&self, writes: &[StoreWrite]) -> Result<(), StoreError> {
        self.write(|tx| {
            // Archive rows touch no other table, so they keep their order among themselves and go last.
            let mut archive = Vec::new();
            for w in writes {
                match w {
                    StoreWrite::RosterPut {
                        user,
                        contact,
                        entry,
                    } => put_roster_tx(tx, user, contact, entry)?,
                    StoreWrite::RosterRemove { user, contact } => {
                        remove_roster_tx(tx, user, contact)?
                    }
                    StoreWrite::PolicyPut { user, policy } => put_policy_tx(tx, user, policy)?,
                    StoreWrite::OfflinePush { user, message } => {
                        push_offline_tx(tx, user, message)?
                    }
                    StoreWrite::OfflineClear { user, up_to } => {
                        clear_offline_tx(tx, user, *up_to)?;
                    }
                    StoreWrite::DocumentPut {
                        user,
                        key,
                        document,
                    } => put_document_tx(tx, user, key, document)?,
                    StoreWrite::DocumentRemove { user, key } => remove_document_tx(tx, user, key)?,
                    StoreWrite::ArchivePut { .. } | StoreWrite::ArchiveTrim { .. } => {
                        archive.push(w)
                    }
                    StoreWrite::RoomPut(room) => put_room_tx(tx, room)?,
                    StoreWrite::RoomRemove { room } => remove_room_tx(tx, room)?,
                    StoreWrite::RoomArchivePut { room, entry } => {
                        room_archive_put_tx(tx, room, entry)?
                    }
                    StoreWrite::RoomArchiveTrim { room, below } => {
                        room_archive_trim_tx(tx, room, *below)?
                    }
                }
            }
            archive_tx(tx, &archive)
        })
    }
}
