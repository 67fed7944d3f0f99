//! Storage behind traits (DESIGN §1). The engine never calls a store: it emits [`StoreWrite`]s and
//! `Output::Load` requests, and the shell answers loads with a [`UserRecord`]. The traits here are what the shell
//! talks to; [`Store::apply`] and [`Store::load_user`] turn the engine's outputs into trait calls, so a shell is a
//! loop of "apply writes, answer loads". Implementations: [`MemoryStore`] here (tests and embedders), an embedded
//! crash-safe database with the bundled server; every implementation runs [`conformance`].

pub mod conformance;
mod layer;
mod memory;

pub use layer::Layer;
pub use memory::MemoryStore;

use crate::archive::{ArchivedMessage, Page, Query};
use crate::jid::{BareJid, Jid};
use crate::message::Message;
use crate::policy::UserPolicy;
use crate::rooms::RoomRecord;
use crate::rooms::archive::RoomQuery;
use crate::roster::RosterEntry;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend reported an error (I/O, transaction, connection).
    #[error("store backend failed: {0}")]
    Backend(String),
    /// Stored data could not be decoded.
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt {
        /// Which record.
        what: String,
        /// What was wrong with it.
        detail: String,
    },
}

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramHash {
    /// SCRAM-SHA-1 (RFC 5802).
    Sha1,
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
}

/// A SCRAM verifier: what the server keeps instead of a password (RFC 5802 §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScramCredentials {
    /// The mechanism's hash.
    pub hash: ScramHash,
    /// The salt.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

/// The hash function of a SIP digest secret (RFC 3261 §22.4 MD5, RFC 8760 SHA-256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestHash {
    /// MD5, what every SIP phone speaks.
    Md5,
    /// SHA-256 (RFC 8760).
    Sha256,
}

/// `H(username:realm:password)` in lowercase hex: what a SIP registrar keeps so it can check digest responses
/// without the password. It is password-equivalent for digest in that realm only, unlike a SCRAM verifier, which
/// is why it is a separate, realm-bound secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DigestSecret {
    /// The hash function.
    pub hash: DigestHash,
    /// The realm the secret is bound to.
    pub realm: String,
    /// The HA1 value in lowercase hex.
    pub ha1: String,
}

/// An account and its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account {
    /// The user's address.
    pub jid: BareJid,
    /// One verifier per supported mechanism.
    pub credentials: Vec<ScramCredentials>,
    /// SIP digest secrets, one per hash and realm (empty: the account cannot use SIP).
    pub digest: Vec<DigestSecret>,
}

/// A message held for a user who could not take it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredMessage {
    /// Position in the user's queue; strictly increasing per user.
    pub seq: u64,
    /// The sender.
    pub from: Jid,
    /// The address it was sent to.
    pub to: Jid,
    /// The message, with its original timestamp.
    pub message: Message,
}

/// What the engine needs about a user it loads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserRecord {
    /// Every roster entry.
    pub roster: Vec<(BareJid, RosterEntry)>,
    /// The privacy policy (the default when none was stored).
    pub policy: UserPolicy,
    /// Held messages in queue order.
    pub offline: Vec<StoredMessage>,
    /// The user's documents (see [`DocumentStore`]), by key.
    pub documents: Vec<(DocumentKey, String)>,
    /// The highest id in the user's message archive (0: empty); the next archived message gets a higher one.
    pub archive_head: u64,
}

/// A change the engine asks the shell to make durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreWrite {
    /// Create or replace a roster entry.
    RosterPut {
        /// Whose roster.
        user: BareJid,
        /// Which contact.
        contact: BareJid,
        /// The entry.
        entry: RosterEntry,
    },
    /// Delete a roster entry.
    RosterRemove {
        /// Whose roster.
        user: BareJid,
        /// Which contact.
        contact: BareJid,
    },
    /// Replace a user's policy.
    PolicyPut {
        /// Whose policy.
        user: BareJid,
        /// The policy.
        policy: UserPolicy,
    },
    /// Hold a message for a user.
    OfflinePush {
        /// The recipient.
        user: BareJid,
        /// The message.
        message: StoredMessage,
    },
    /// Drop a user's held messages up to and including `up_to` (they were delivered).
    OfflineClear {
        /// The recipient.
        user: BareJid,
        /// The last delivered sequence number.
        up_to: u64,
    },
    /// Stores one of the user's documents, replacing any under the same key.
    DocumentPut {
        /// Whose.
        user: BareJid,
        /// Which.
        key: DocumentKey,
        /// The document (XML text the feature wrote).
        document: String,
    },
    /// Removes one of the user's documents (nothing if there is none).
    DocumentRemove {
        /// Whose.
        user: BareJid,
        /// Which.
        key: DocumentKey,
    },
    /// Adds a message to the user's archive.
    ArchivePut {
        /// Whose archive.
        user: BareJid,
        /// The message, with an id above every id in the archive.
        entry: ArchivedMessage,
    },
    /// Drops the user's archived messages with ids below `below` (the oldest, beyond the archive's size limit).
    ArchiveTrim {
        /// Whose archive.
        user: BareJid,
        /// The first id kept.
        below: u64,
    },
    /// Creates or replaces a persistent room.
    RoomPut(RoomRecord),
    /// Forgets a room (destroyed, or no longer persistent) with its archive; nothing if there is none.
    RoomRemove {
        /// The room's address.
        room: BareJid,
    },
    /// Adds a message to a room's archive.
    RoomArchivePut {
        /// The room's address.
        room: BareJid,
        /// The message, with an id above every id in the room's archive.
        entry: ArchivedMessage,
    },
    /// Drops a room's archived messages with ids below `below` (the oldest, beyond the per-room bound).
    RoomArchiveTrim {
        /// The room's address.
        room: BareJid,
        /// The first id kept.
        below: u64,
    },
}

/// Accounts and credentials.
pub trait AccountStore {
    /// Creates or replaces an account.
    fn put_account(&self, account: &Account) -> Result<(), StoreError>;
    /// Looks an account up.
    fn account(&self, user: &BareJid) -> Result<Option<Account>, StoreError>;
    /// Deletes an account with its roster, policy and held messages; `false` if there was none.
    fn remove_account(&self, user: &BareJid) -> Result<bool, StoreError>;
    /// Every account, sorted.
    fn list_accounts(&self) -> Result<Vec<BareJid>, StoreError>;
}

/// Rosters and privacy policies.
pub trait RosterStore {
    /// Every roster entry of `user`.
    fn roster(&self, user: &BareJid) -> Result<Vec<(BareJid, RosterEntry)>, StoreError>;
    /// Creates or replaces one entry.
    fn put_roster_entry(
        &self,
        user: &BareJid,
        contact: &BareJid,
        entry: &RosterEntry,
    ) -> Result<(), StoreError>;
    /// Deletes one entry (no error if absent).
    fn remove_roster_entry(&self, user: &BareJid, contact: &BareJid) -> Result<(), StoreError>;
    /// The stored policy, if any.
    fn policy(&self, user: &BareJid) -> Result<Option<UserPolicy>, StoreError>;
    /// Replaces the policy.
    fn put_policy(&self, user: &BareJid, policy: &UserPolicy) -> Result<(), StoreError>;
}

/// Held (offline) messages.
pub trait OfflineStore {
    /// Appends a message to a user's queue.
    fn push_offline(&self, user: &BareJid, message: &StoredMessage) -> Result<(), StoreError>;
    /// A user's queue in sequence order.
    fn offline(&self, user: &BareJid) -> Result<Vec<StoredMessage>, StoreError>;
    /// Drops the messages with `seq <= up_to`; returns how many were dropped.
    fn clear_offline(&self, user: &BareJid, up_to: u64) -> Result<u64, StoreError>;
    /// How many messages are held for all users together (the node cap is checked against it at start).
    fn offline_total(&self) -> Result<u64, StoreError>;
}

/// The key of a user's document: the feature's own naming (`private/{namespace}`, `vcard`, `pep/{node}/{item}` …).
/// At most [`DocumentKey::MAX_LEN`] bytes of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentKey(String);

impl DocumentKey {
    /// The longest key, in bytes: a namespace or a node name and an item id fit, and stores can index it.
    pub const MAX_LEN: usize = 1024;

    /// A key, if `key` is not empty and not longer than [`Self::MAX_LEN`].
    pub fn new(key: impl Into<String>) -> Option<Self> {
        let key = key.into();
        (!key.is_empty() && key.len() <= Self::MAX_LEN).then_some(DocumentKey(key))
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DocumentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Small documents of a user that the account features keep — private XML storage (XEP-0049), the vCard
/// (XEP-0054), PEP nodes and their items (XEP-0163) — each under a key its feature chooses. They are loaded with
/// the user ([`UserRecord::documents`]), written through [`StoreWrite::DocumentPut`] and
/// [`StoreWrite::DocumentRemove`], and removed with the account.
pub trait DocumentStore {
    /// Every document of `user`, ordered by key.
    fn documents(&self, user: &BareJid) -> Result<Vec<(DocumentKey, String)>, StoreError>;
    /// Stores a document, replacing any under the same key.
    fn put_document(
        &self,
        user: &BareJid,
        key: &DocumentKey,
        document: &str,
    ) -> Result<(), StoreError>;
    /// Removes a document; removing one that does not exist is not an error.
    fn remove_document(&self, user: &BareJid, key: &DocumentKey) -> Result<(), StoreError>;
}

/// Each user's message archive (XEP-0313), queried by the shells directly (a page of history is a read, not work
/// for the engine) and written through [`StoreWrite::ArchivePut`] and [`StoreWrite::ArchiveTrim`]; removed with the
/// account.
pub trait ArchiveStore {
    /// Adds `entry` to `user`'s archive.
    fn archive_put(&self, user: &BareJid, entry: &ArchivedMessage) -> Result<(), StoreError>;
    /// Drops `user`'s archived messages with ids below `below`.
    fn archive_trim(&self, user: &BareJid, below: u64) -> Result<(), StoreError>;
    /// The highest id in `user`'s archive, 0 when it is empty.
    fn archive_head(&self, user: &BareJid) -> Result<u64, StoreError>;
    /// A page of `user`'s archive, exactly as [`crate::archive::select`] would answer it.
    fn archive_query(&self, user: &BareJid, query: &Query) -> Result<Page, StoreError>;
}

/// Persistent rooms (XEP-0045, DESIGN §5), written through [`StoreWrite::RoomPut`] and [`StoreWrite::RoomRemove`]
/// and read all at once when the server starts (a node holds at most 1500).
pub trait RoomStore {
    /// Creates or replaces a room.
    fn put_room(&self, room: &RoomRecord) -> Result<(), StoreError>;
    /// Forgets a room and its archive; forgetting one that does not exist is not an error.
    fn remove_room(&self, room: &BareJid) -> Result<(), StoreError>;
    /// Every stored room, sorted by address (their `archive_head` is 0: see [`load_rooms`]).
    fn rooms(&self) -> Result<Vec<RoomRecord>, StoreError>;
}

/// Each persistent room's message archive (XEP-0313 on rooms, [`crate::rooms::archive`]), written through
/// [`StoreWrite::RoomArchivePut`] and [`StoreWrite::RoomArchiveTrim`], queried by the shells directly (as user
/// archives are), and removed with the room ([`RoomStore::remove_room`]).
pub trait RoomArchiveStore {
    /// Adds `entry` to `room`'s archive.
    fn room_archive_put(&self, room: &BareJid, entry: &ArchivedMessage) -> Result<(), StoreError>;
    /// Drops `room`'s archived messages with ids below `below`.
    fn room_archive_trim(&self, room: &BareJid, below: u64) -> Result<(), StoreError>;
    /// The highest id in `room`'s archive, 0 when it is empty.
    fn room_archive_head(&self, room: &BareJid) -> Result<u64, StoreError>;
    /// A page of `room`'s archive, exactly as [`crate::rooms::archive::select`] would answer it.
    fn room_archive_query(&self, room: &BareJid, query: &RoomQuery) -> Result<Page, StoreError>;
}

/// Every stored room as the room service starts with it: the record, with each room's archive head and, when its
/// archive holds messages, its history taken from the archive's last messages. A record written before rooms had
/// archives (its history inside) keeps that history until the room archives its first message.
pub fn load_rooms<S: RoomStore + RoomArchiveStore + ?Sized>(
    store: &S,
) -> Result<Vec<RoomRecord>, StoreError> {
    let mut rooms = store.rooms()?;
    for r in &mut rooms {
        r.archive_head = store.room_archive_head(&r.jid)?;
        if r.archive_head == 0 || r.config.history_length == 0 {
            continue;
        }
        let query = RoomQuery {
            nick: None,
            query: Query {
                from_end: true,
                max: r.config.history_length,
                ..Query::default()
            },
        };
        let page = store.room_archive_query(&r.jid, &query)?;
        r.history = page
            .messages
            .iter()
            .filter_map(crate::rooms::archive::history_entry)
            .collect();
    }
    Ok(rooms)
}

/// A complete store, as the shells use it.
pub trait Store:
    AccountStore
    + RosterStore
    + OfflineStore
    + DocumentStore
    + ArchiveStore
    + RoomStore
    + RoomArchiveStore
{
    /// Makes a group of writes durable, in order. Implementations should commit the group at once (one
    /// transaction) so durability does not cost a sync per write; the default applies them one by one.
    fn apply(&self, writes: &[StoreWrite]) -> Result<(), StoreError> {
        for w in writes {
            match w {
                StoreWrite::RosterPut {
                    user,
                    contact,
                    entry,
                } => self.put_roster_entry(user, contact, entry)?,
                StoreWrite::RosterRemove { user, contact } => {
                    self.remove_roster_entry(user, contact)?
                }
                StoreWrite::PolicyPut { user, policy } => self.put_policy(user, policy)?,
                StoreWrite::OfflinePush { user, message } => self.push_offline(user, message)?,
                StoreWrite::OfflineClear { user, up_to } => {
                    self.clear_offline(user, *up_to)?;
                }
                StoreWrite::DocumentPut {
                    user,
                    key,
                    document,
                } => self.put_document(user, key, document)?,
                StoreWrite::DocumentRemove { user, key } => self.remove_document(user, key)?,
                StoreWrite::ArchivePut { user, entry } => self.archive_put(user, entry)?,
                StoreWrite::ArchiveTrim { user, below } => self.archive_trim(user, *below)?,
                StoreWrite::RoomPut(room) => self.put_room(room)?,
                StoreWrite::RoomRemove { room } => self.remove_room(room)?,
                StoreWrite::RoomArchivePut { room, entry } => self.room_archive_put(room, entry)?,
                StoreWrite::RoomArchiveTrim { room, below } => {
                    self.room_archive_trim(room, *below)?
                }
            }
        }
        Ok(())
    }

    /// Answers several of the engine's load requests at once, one result per user in order. The runtime asks
    /// for every load the engine emitted in one round, so a store that can read many users in one round trip
    /// (a database over the network) should override this; the default loads them one by one.
    fn load_users(&self, users: &[BareJid]) -> Vec<Result<Option<UserRecord>, StoreError>> {
        users.iter().map(|u| self.load_user(u)).collect()
    }

    /// Answers the engine's load request: `None` when there is no such account.
    fn load_user(&self, user: &BareJid) -> Result<Option<UserRecord>, StoreError> {
        if self.account(user)?.is_none() {
            return Ok(None);
        }
        Ok(Some(UserRecord {
            roster: self.roster(user)?,
            policy: self.policy(user)?.unwrap_or_default(),
            offline: self.offline(user)?,
            documents: self.documents(user)?,
            archive_head: self.archive_head(user)?,
        }))
    }
}
