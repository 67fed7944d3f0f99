//! Every presence-core store trait on PostgreSQL, for nodes that share one database.
//!
//! The tables are in `examples/migrations/` (applied at [`PgStore::connect`], see [`migrations`]); addresses are
//! text columns and records are the same binary encoding the embedded store keeps, in `bytea` columns.
//! [`Store::apply`] commits a whole group of engine writes in one transaction and [`Store::load_user`] reads a
//! user's account, roster, policy and held messages in one repeatable-read snapshot. Connections come from a
//! small [`pool`] that reconnects after PostgreSQL restarts; every failure is a [`StoreError::Backend`] naming the
//! database.
//!
//! The `postgres` client is synchronous, like the store traits: call the store from the engine thread or from
//! tokio's blocking pool, as the shells do.

pub mod migrations;
pub mod pool;

use std::sync::Arc;

use postgres::{GenericClient, IsolationLevel};
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

use super::codec;
use pool::Pool;

/// A [`Store`] in a PostgreSQL database, shared safely by any number of processes. Clones share one pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Arc<Pool>,
}

/// A sequence number as the `bigint` column holds it.
fn seq_column(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| {
        StoreError::Backend(format!(
            "offline sequence number {seq} does not fit PostgreSQL's bigint"
        ))
    })
}

/// What a query closure can fail with: the database, or decoding what it returned (see [`PgStore::query`]).
enum Failure {
    Db(postgres::Error),
    Store(StoreError),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

fn jid_column(what: &str, text: &str) -> Result<BareJid, StoreError> {
    BareJid::new(text).map_err(|e| StoreError::Corrupt {
        what: what.to_owned(),
        detail: format!("{text:?}: {e}"),
    })
}

fn put_roster(
    c: &mut impl GenericClient,
    user: &BareJid,
    contact: &BareJid,
    entry: &RosterEntry,
) -> Result<(), postgres::Error> {
    c.execute(
        "INSERT INTO roster (owner, contact, entry) VALUES ($1, $2, $3)
         ON CONFLICT (owner, contact) DO UPDATE SET entry = EXCLUDED.entry",
        &[
            &user.as_str(),
            &contact.as_str(),
            &codec::encode_roster_entry(entry),
        ],
    )?;
    Ok(())
}

fn remove_roster(
    c: &mut impl GenericClient,
    user: &BareJid,
    contact: &BareJid,
) -> Result<(), postgres::Error> {
    c.execute(
        "DELETE FROM roster WHERE owner = $1 AND contact = $2",
        &[&user.as_str(), &contact.as_str()],
    )?;
    Ok(())
}

fn put_policy(
    c: &mut impl GenericClient,
    user: &BareJid,
    policy: &UserPolicy,
) -> Result<(), postgres::Error> {
    c.execute(
        "INSERT INTO policies (owner, policy) VALUES ($1, $2)
         ON CONFLICT (owner) DO UPDATE SET policy = EXCLUDED.policy",
        &[&user.as_str(), &codec::encode_policy(policy)],
    )?;
    Ok(())
}

/// Re-pushing a sequence number replaces the held message, as in every store (the conformance suite's rule).
fn push_offline(
    c: &mut impl GenericClient,
    user: &BareJid,
    seq: i64,
    message: &StoredMessage,
) -> Result<(), postgres::Error> {
    c.execute(
        "INSERT INTO offline (owner, seq, message) VALUES ($1, $2, $3)
         ON CONFLICT (owner, seq) DO UPDATE SET message = EXCLUDED.message",
        &[&user.as_str(), &seq, &codec::encode_message(message)],
    )?;
    Ok(())
}

fn clear_offline(
    c: &mut impl GenericClient,
    user: &BareJid,
    up_to: u64,
) -> Result<u64, postgres::Error> {
    // Every stored seq is below 2^63, so anything beyond clears the whole queue.
    let up_to = i64::try_from(up_to).unwrap_or(i64::MAX);
    c.execute(
        "DELETE FROM offline WHERE owner = $1 AND seq <= $2",
        &[&user.as_str(), &up_to],
    )
}

fn read_account(c: &mut impl GenericClient, user: &BareJid) -> Result<Option<Account>, Failure> {
    let Some(row) = c.query_opt(
        "SELECT record FROM accounts WHERE jid = $1",
        &[&user.as_str()],
    )?
    else {
        return Ok(None);
    };
    let record: Vec<u8> = row.try_get(0)?;
    Ok(Some(codec::decode_account(
        &format!("account {user}"),
        &record,
    )?))
}

/// One roster row of `owner`, decoded.
fn roster_row(owner: &str, contact: &str, entry: &[u8]) -> Result<(BareJid, RosterEntry), Failure> {
    let contact = jid_column(&format!("roster contact of {owner}"), contact)?;
    let what = format!("roster entry {owner} -> {contact}");
    Ok((contact, codec::decode_roster_entry(&what, entry)?))
}

fn read_roster(
    c: &mut impl GenericClient,
    user: &BareJid,
) -> Result<Vec<(BareJid, RosterEntry)>, Failure> {
    let rows = c.query(
        "SELECT contact, entry FROM roster WHERE owner = $1 ORDER BY contact COLLATE \"C\"",
        &[&user.as_str()],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(roster_row(user.as_str(), row.try_get(0)?, row.try_get(1)?)?);
    }
    Ok(out)
}

fn read_policy(c: &mut impl GenericClient, user: &BareJid) -> Result<Option<UserPolicy>, Failure> {
    let Some(row) = c.query_opt(
        "SELECT policy FROM policies WHERE owner = $1",
        &[&user.as_str()],
    )?
    else {
        return Ok(None);
    };
    let policy: &[u8] = row.try_get(0)?;
    Ok(Some(codec::decode_policy(
        &format!("policy of {user}"),
        policy,
    )?))
}

fn put_document(
    c: &mut impl GenericClient,
    user: &BareJid,
    key: &DocumentKey,
    document: &str,
) -> Result<(), postgres::Error> {
    c.execute(
        "INSERT INTO documents (owner, key, document) VALUES ($1, $2, $3)
         ON CONFLICT (owner, key) DO UPDATE SET document = EXCLUDED.document",
        &[
            &user.as_str(),
            &key.as_str(),
            &codec::encode_document(document),
        ],
    )?;
    Ok(())
}

fn remove_document(
    c: &mut impl GenericClient,
    user: &BareJid,
    key: &DocumentKey,
) -> Result<(), postgres::Error> {
    c.execute(
        "DELETE FROM documents WHERE owner = $1 AND key = $2",
        &[&user.as_str(), &key.as_str()],
    )?;
    Ok(())
}

fn put_room(c: &mut impl GenericClient, room: &RoomRecord) -> Result<(), postgres::Error> {
    c.execute(
        "INSERT INTO rooms (jid, record) VALUES ($1, $2)
         ON CONFLICT (jid) DO UPDATE SET record = EXCLUDED.record",
        &[&room.jid.as_str(), &codec::encode_room(room)],
    )?;
    Ok(())
}

fn remove_room(c: &mut impl GenericClient, room: &BareJid) -> Result<(), postgres::Error> {
    c.execute("DELETE FROM rooms WHERE jid = $1", &[&room.as_str()])?;
    c.execute(
        "DELETE FROM room_archive WHERE owner = $1",
        &[&room.as_str()],
    )?;
    Ok(())
}

fn room_archive_put(
    c: &mut impl GenericClient,
    room: &BareJid,
    entry: &ArchivedMessage,
) -> Result<(), Failure> {
    let id = seq_column(entry.id)?;
    let stamp = i64::try_from(entry.message.stamp.as_millis()).unwrap_or(i64::MAX);
    let nick = presence_core::rooms::archive::nick_of(entry).unwrap_or_default();
    c.execute(
        "INSERT INTO room_archive (owner, id, peer, stamp, record) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (owner, id) DO UPDATE SET peer = EXCLUDED.peer, stamp = EXCLUDED.stamp,
         record = EXCLUDED.record",
        &[
            &room.as_str(),
            &id,
            &nick,
            &stamp,
            &codec::encode_archived(entry),
        ],
    )?;
    Ok(())
}

fn room_archive_trim(
    c: &mut impl GenericClient,
    room: &BareJid,
    below: u64,
) -> Result<(), postgres::Error> {
    let below = i64::try_from(below).unwrap_or(i64::MAX);
    c.execute(
        "DELETE FROM room_archive WHERE owner = $1 AND id < $2",
        &[&room.as_str(), &below],
    )?;
    Ok(())
}

fn document_row(owner: &str, key: &str, document: &[u8]) -> Result<(DocumentKey, String), Failure> {
    let key = DocumentKey::new(key).ok_or_else(|| StoreError::Corrupt {
        what: format!("document key of {owner}"),
        detail: format!("{} bytes is not a key", key.len()),
    })?;
    let what = format!("document {key} of {owner}");
    let document = codec::decode_document(&what, document)?;
    Ok((key, document))
}

fn archive_put(
    c: &mut impl GenericClient,
    user: &BareJid,
    entry: &ArchivedMessage,
) -> Result<(), Failure> {
    let id = seq_column(entry.id)?;
    let stamp = i64::try_from(entry.message.stamp.as_millis()).unwrap_or(i64::MAX);
    c.execute(
        "INSERT INTO archive (owner, id, peer, stamp, record) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (owner, id) DO UPDATE SET peer = EXCLUDED.peer, stamp = EXCLUDED.stamp,
         record = EXCLUDED.record",
        &[
            &user.as_str(),
            &id,
            &entry.with.as_str(),
            &stamp,
            &codec::encode_archived(entry),
        ],
    )?;
    Ok(())
}

fn archive_trim(
    c: &mut impl GenericClient,
    user: &BareJid,
    below: u64,
) -> Result<(), postgres::Error> {
    let below = i64::try_from(below).unwrap_or(i64::MAX);
    c.execute(
        "DELETE FROM archive WHERE owner = $1 AND id < $2",
        &[&user.as_str(), &below],
    )?;
    Ok(())
}

/// The query in SQL: the filters as conditions, the page as an ordered LIMIT one past `max` (to know whether the
/// page is complete).
fn archive_query(c: &mut impl GenericClient, user: &BareJid, q: &Query) -> Result<Page, Failure> {
    let with = q.with.as_ref().map(|w| w.as_str());
    archive_page(c, Table::Users, user, with, q)
}

/// The two archive tables, which share one shape (a room's `peer` is the sender's nickname).
#[derive(Clone, Copy)]
enum Table {
    Users,
    Rooms,
}

/// A page of `owner`'s rows of `table`, `peer` filtering instead of the query's `with`.
fn archive_page(
    c: &mut impl GenericClient,
    table: Table,
    owner: &BareJid,
    peer: Option<&str>,
    q: &Query,
) -> Result<Page, Failure> {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let user = owner;
    let owner = owner.as_str();
    let with = peer;
    let table = match table {
        Table::Users => "archive",
        Table::Rooms => "room_archive",
    };
    let start = q.start.map(|t| clamp(t.as_millis()));
    let end = q.end.map(|t| clamp(t.as_millis()));
    let after = q.after.map(clamp);
    let before = q.before.map(clamp);
    let ids: Option<Vec<i64>> = q
        .ids
        .as_ref()
        .map(|ids| ids.iter().copied().map(clamp).collect());
    let limit = i64::try_from(q.max).unwrap_or(i64::MAX).saturating_add(1);
    let order = if q.from_end { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT record FROM {table} WHERE owner = $1
           AND ($2::text IS NULL OR peer = $2)
           AND ($3::bigint IS NULL OR stamp >= $3)
           AND ($4::bigint IS NULL OR stamp <= $4)
           AND ($5::bigint IS NULL OR id > $5)
           AND ($6::bigint IS NULL OR id < $6)
           AND ($7::bigint[] IS NULL OR id = ANY($7))
         ORDER BY id {order} LIMIT $8"
    );
    let rows = c.query(
        &sql,
        &[&owner, &with, &start, &end, &after, &before, &ids, &limit],
    )?;
    let what = format!("archive of {user}");
    let mut messages = Vec::with_capacity(rows.len());
    for row in &rows {
        messages.push(codec::decode_archived(&what, row.try_get(0)?)?);
    }
    let complete = messages.len() <= q.max;
    messages.truncate(q.max);
    if q.from_end {
        messages.reverse();
    }
    Ok(Page { messages, complete })
}

fn read_offline(c: &mut impl GenericClient, user: &BareJid) -> Result<Vec<StoredMessage>, Failure> {
    let rows = c.query(
        "SELECT message FROM offline WHERE owner = $1 ORDER BY seq",
        &[&user.as_str()],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let message: &[u8] = row.try_get(0)?;
        out.push(codec::decode_message(
            &format!("offline message for {user}"),
            message,
        )?);
    }
    Ok(out)
}

/// The records of `users` (in order; `None` for a user without an account) from one repeatable-read snapshot.
fn read_users(
    c: &mut postgres::Client,
    users: &[BareJid],
) -> Result<Vec<Option<UserRecord>>, Failure> {
    use std::collections::HashMap;
    let names: Vec<&str> = users.iter().map(BareJid::as_str).collect();
    let mut tx = c
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let mut records: HashMap<String, UserRecord> = HashMap::with_capacity(users.len());
    for row in tx.query("SELECT jid FROM accounts WHERE jid = ANY($1)", &[&names])? {
        records.insert(row.try_get::<_, String>(0)?, UserRecord::default());
    }
    for row in tx.query(
        "SELECT owner, contact, entry FROM roster WHERE owner = ANY($1)
         ORDER BY owner, contact COLLATE \"C\"",
        &[&names],
    )? {
        let owner: &str = row.try_get(0)?;
        let Some(record) = records.get_mut(owner) else {
            continue;
        };
        record
            .roster
            .push(roster_row(owner, row.try_get(1)?, row.try_get(2)?)?);
    }
    for row in tx.query(
        "SELECT owner, policy FROM policies WHERE owner = ANY($1)",
        &[&names],
    )? {
        let owner: &str = row.try_get(0)?;
        if let Some(record) = records.get_mut(owner) {
            record.policy = codec::decode_policy(&format!("policy of {owner}"), row.try_get(1)?)?;
        }
    }
    for row in tx.query(
        "SELECT owner, message FROM offline WHERE owner = ANY($1) ORDER BY owner, seq",
        &[&names],
    )? {
        let owner: &str = row.try_get(0)?;
        if let Some(record) = records.get_mut(owner) {
            let what = format!("offline message for {owner}");
            record
                .offline
                .push(codec::decode_message(&what, row.try_get(1)?)?);
        }
    }
    for row in tx.query(
        "SELECT owner, max(id) FROM archive WHERE owner = ANY($1) GROUP BY owner",
        &[&names],
    )? {
        let owner: &str = row.try_get(0)?;
        if let Some(record) = records.get_mut(owner) {
            record.archive_head = u64::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0);
        }
    }
    // Keys in byte order, as the embedded store keeps them (the trait promises key order).
    for row in tx.query(
        "SELECT owner, key, document FROM documents WHERE owner = ANY($1)
         ORDER BY owner, key COLLATE \"C\"",
        &[&names],
    )? {
        let owner: &str = row.try_get(0)?;
        if let Some(record) = records.get_mut(owner) {
            record
                .documents
                .push(document_row(owner, row.try_get(1)?, row.try_get(2)?)?);
        }
    }
    tx.commit()?;
    Ok(users.iter().map(|u| records.remove(u.as_str())).collect())
}

impl PgStore {
    /// Connects to the database at `url` (`postgresql://user[:password]@host:port/dbname`) with a pool of at most
    /// `pool_size` connections, and brings its schema up to date.
    pub fn connect(url: &str, pool_size: usize) -> Result<PgStore, StoreError> {
        let store = PgStore {
            pool: Arc::new(Pool::new(url, pool_size)?),
        };
        let applied = store
            .with_client(migrations::migrate)
            .map_err(|e| match e {
                StoreError::Backend(m) => {
                    StoreError::Backend(format!("cannot prepare the schema: {m}"))
                }
                other => other,
            })?;
        tracing::debug!(db = %store.pool.target(), ?applied, "PostgreSQL store ready");
        Ok(store)
    }

    /// Runs `f` on a pooled connection, for modules that keep their own tables in the same database. An error
    /// becomes [`StoreError::Backend`] naming the database; a broken connection is replaced on the next use.
    pub fn with_client<T: Send>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, StoreError> {
        self.pool.run(f)
    }

    /// `with_client` for closures that may also fail decoding.
    fn query<T: Send>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, Failure> + Send,
    ) -> Result<T, StoreError> {
        let mut decode_error = None;
        let out = self.pool.run(|c| match f(c) {
            Ok(v) => Ok(Some(v)),
            Err(Failure::Db(e)) => Err(e),
            Err(Failure::Store(e)) => {
                decode_error = Some(e);
                Ok(None)
            }
        })?;
        match (out, decode_error) {
            (Some(v), _) => Ok(v),
            (None, Some(e)) => Err(e),
            (None, None) => unreachable!("a missing value always comes with its error"),
        }
    }

    /// Runs `f` in one read-write transaction and commits it if `f` succeeds.
    fn write<T: Send>(
        &self,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, Failure> + Send,
    ) -> Result<T, StoreError> {
        self.query(|c| {
            let mut tx = c.transaction()?;
            // Dropping an uncommitted transaction rolls it back, so an error leaves nothing half-written.
            let out = f(&mut tx)?;
            tx.commit()?;
            Ok(out)
        })
    }
}

impl AccountStore for PgStore {
    fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        let record = codec::encode_account(account);
        self.with_client(|c| {
            c.execute(
                "INSERT INTO accounts (jid, record) VALUES ($1, $2)
                 ON CONFLICT (jid) DO UPDATE SET record = EXCLUDED.record",
                &[&account.jid.as_str(), &record],
            )
            .map(drop)
        })
    }

    fn account(&self, user: &BareJid) -> Result<Option<Account>, StoreError> {
        self.query(|c| read_account(c, user))
    }

    fn remove_account(&self, user: &BareJid) -> Result<bool, StoreError> {
        self.write(|tx| {
            let u = user.as_str();
            let existed = tx.execute("DELETE FROM accounts WHERE jid = $1", &[&u])? > 0;
            tx.execute("DELETE FROM roster WHERE owner = $1", &[&u])?;
            tx.execute("DELETE FROM policies WHERE owner = $1", &[&u])?;
            tx.execute("DELETE FROM offline WHERE owner = $1", &[&u])?;
            tx.execute("DELETE FROM documents WHERE owner = $1", &[&u])?;
            tx.execute("DELETE FROM archive WHERE owner = $1", &[&u])?;
            // A deleted user has no home in the cluster any more (the table exists whether or not a cluster runs).
            tx.execute("DELETE FROM cluster_placement WHERE jid = $1", &[&u])?;
            Ok(existed)
        })
    }

    fn list_accounts(&self) -> Result<Vec<BareJid>, StoreError> {
        let mut out = self.query(|c| {
            let rows = c.query("SELECT jid FROM accounts", &[])?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let jid: &str = row.try_get(0)?;
                out.push(jid_column("account key", jid)?);
            }
            Ok(out)
        })?;
        // The trait promises the address order, which no SQL collation states.
        out.sort();
        Ok(out)
    }
}

impl RosterStore for PgStore {
    fn roster(&self, user: &BareJid) -> Result<Vec<(BareJid, RosterEntry)>, StoreError> {
        self.query(|c| read_roster(c, user))
    }

    fn put_roster_entry(
        &self,
        user: &BareJid,
        contact: &BareJid,
        entry: &RosterEntry,
    ) -> Result<(), StoreError> {
        self.with_client(|c| put_roster(c, user, contact, entry))
    }

    fn remove_roster_entry(&self, user: &BareJid, contact: &BareJid) -> Result<(), StoreError> {
        self.with_client(|c| remove_roster(c, user, contact))
    }

    fn policy(&self, user: &BareJid) -> Result<Option<UserPolicy>, StoreError> {
        self.query(|c| read_policy(c, user))
    }

    fn put_policy(&self, user: &BareJid, policy: &UserPolicy) -> Result<(), StoreError> {
        self.with_client(|c| put_policy(c, user, policy))
    }
}

impl OfflineStore for PgStore {
    fn push_offline(&self, user: &BareJid, message: &StoredMessage) -> Result<(), StoreError> {
        let seq = seq_column(message.seq)?;
        self.with_client(|c| push_offline(c, user, seq, message))
    }

    fn offline(&self, user: &BareJid) -> Result<Vec<StoredMessage>, StoreError> {
        self.query(|c| read_offline(c, user))
    }

    fn clear_offline(&self, user: &BareJid, up_to: u64) -> Result<u64, StoreError> {
        self.with_client(|c| clear_offline(c, user, up_to))
    }

    fn offline_total(&self) -> Result<u64, StoreError> {
        let n: i64 =
            self.with_client(|c| c.query_one("SELECT count(*) FROM offline", &[])?.try_get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl DocumentStore for PgStore {
    fn documents(&self, user: &BareJid) -> Result<Vec<(DocumentKey, String)>, StoreError> {
        self.query(|c| {
            let rows = c.query(
                "SELECT key, document FROM documents WHERE owner = $1 ORDER BY key COLLATE \"C\"",
                &[&user.as_str()],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(document_row(
                    user.as_str(),
                    row.try_get(0)?,
                    row.try_get(1)?,
                )?);
            }
            Ok(out)
        })
    }

    fn put_document(
        &self,
        user: &BareJid,
        key: &DocumentKey,
        document: &str,
    ) -> Result<(), StoreError> {
        self.with_client(|c| put_document(c, user, key, document))
    }

    fn remove_document(&self, user: &BareJid, key: &DocumentKey) -> Result<(), StoreError> {
        self.with_client(|c| remove_document(c, user, key))
    }
}

impl ArchiveStore for PgStore {
    fn archive_put(&self, user: &BareJid, entry: &ArchivedMessage) -> Result<(), StoreError> {
        self.query(|c| archive_put(c, user, entry))
    }

    fn archive_trim(&self, user: &BareJid, below: u64) -> Result<(), StoreError> {
        self.with_client(|c| archive_trim(c, user, below))
    }

    fn archive_head(&self, user: &BareJid) -> Result<u64, StoreError> {
        let head: Option<i64> = self.with_client(|c| {
            c.query_one(
                "SELECT max(id) FROM archive WHERE owner = $1",
                &[&user.as_str()],
            )?
            .try_get(0)
        })?;
        Ok(head.map_or(0, |h| u64::try_from(h).unwrap_or(0)))
    }

    fn archive_query(&self, user: &BareJid, query: &Query) -> Result<Page, StoreError> {
        self.query(|c| archive_query(c, user, query))
    }
}

impl RoomArchiveStore for PgStore {
    fn room_archive_put(&self, room: &BareJid, entry: &ArchivedMessage) -> Result<(), StoreError> {
        self.query(|c| room_archive_put(c, room, entry))
    }

    fn room_archive_trim(&self, room: &BareJid, below: u64) -> Result<(), StoreError> {
        self.with_client(|c| room_archive_trim(c, room, below))
    }

    fn room_archive_head(&self, room: &BareJid) -> Result<u64, StoreError> {
        let head: Option<i64> = self.with_client(|c| {
            c.query_one(
                "SELECT max(id) FROM room_archive WHERE owner = $1",
                &[&room.as_str()],
            )?
            .try_get(0)
        })?;
        Ok(head.map_or(0, |h| u64::try_from(h).unwrap_or(0)))
    }

    fn room_archive_query(&self, room: &BareJid, query: &RoomQuery) -> Result<Page, StoreError> {
        self.query(|c| archive_page(c, Table::Rooms, room, query.nick.as_deref(), &query.query))
    }
}

impl RoomStore for PgStore {
    fn put_room(&self, room: &RoomRecord) -> Result<(), StoreError> {
        self.with_client(|c| put_room(c, room))
    }

    fn remove_room(&self, room: &BareJid) -> Result<(), StoreError> {
        self.with_client(|c| remove_room(c, room))
    }

    fn rooms(&self) -> Result<Vec<RoomRecord>, StoreError> {
        let mut rooms = self.query(|c| {
            let mut out = Vec::new();
            for row in c.query("SELECT jid, record FROM rooms", &[])? {
                let jid: &str = row.try_get(0)?;
                out.push(codec::decode_room(&format!("room {jid}"), row.try_get(1)?)?);
            }
            Ok(out)
        })?;
        // Sorted as addresses, whatever the database's collation.
        rooms.sort_by(|a, b| a.jid.cmp(&b.jid));
        Ok(rooms)
    }
}

impl Store for PgStore {
    fn apply(&self, writes: &[StoreWrite]) -> Result<(), StoreError> {
        // Sequence numbers are checked before anything is sent, so a bad one fails the group before it starts.
        for w in writes {
            if let StoreWrite::OfflinePush { message, .. } = w {
                seq_column(message.seq)?;
            }
            if let StoreWrite::ArchivePut { entry, .. } | StoreWrite::RoomArchivePut { entry, .. } =
                w
            {
                seq_column(entry.id)?;
            }
        }
        self.write(|tx| {
            for w in writes {
                match w {
                    StoreWrite::RosterPut {
                        user,
                        contact,
                        entry,
                    } => put_roster(tx, user, contact, entry)?,
                    StoreWrite::RosterRemove { user, contact } => remove_roster(tx, user, contact)?,
                    StoreWrite::PolicyPut { user, policy } => put_policy(tx, user, policy)?,
                    StoreWrite::OfflinePush { user, message } => {
                        push_offline(tx, user, seq_column(message.seq)?, message)?
                    }
                    StoreWrite::OfflineClear { user, up_to } => {
                        clear_offline(tx, user, *up_to)?;
                    }
                    StoreWrite::DocumentPut {
                        user,
                        key,
                        document,
                    } => put_document(tx, user, key, document)?,
                    StoreWrite::DocumentRemove { user, key } => remove_document(tx, user, key)?,
                    StoreWrite::ArchivePut { user, entry } => archive_put(tx, user, entry)?,
                    StoreWrite::ArchiveTrim { user, below } => archive_trim(tx, user, *below)?,
                    StoreWrite::RoomPut(room) => put_room(tx, room)?,
                    StoreWrite::RoomRemove { room } => remove_room(tx, room)?,
                    StoreWrite::RoomArchivePut { room, entry } => {
                        room_archive_put(tx, room, entry)?
                    }
                    StoreWrite::RoomArchiveTrim { room, below } => {
                        room_archive_trim(tx, room, *below)?
                    }
                }
            }
            Ok(())
        })
    }

    /// Many users in one snapshot and four queries, whatever their number (a login storm after a failover
    /// would otherwise cost six round trips per user on the engine thread).
    fn load_users(&self, users: &[BareJid]) -> Vec<Result<Option<UserRecord>, StoreError>> {
        match self.query(|c| read_users(c, users)) {
            Ok(records) => records.into_iter().map(Ok).collect(),
            Err(e) => users.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    fn load_user(&self, user: &BareJid) -> Result<Option<UserRecord>, StoreError> {
        let mut records = self.query(|c| read_users(c, std::slice::from_ref(user)))?;
        Ok(records.pop().flatten())
    }
}
