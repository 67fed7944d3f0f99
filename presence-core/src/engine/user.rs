//! What the engine keeps in memory about one loaded user.

use std::collections::VecDeque;
use std::time::Instant;

use hashbrown::HashMap;

use crate::compose::{ComposeSettings, Composed};
use crate::jid::BareJid;
use crate::policy::UserPolicy;
use crate::roster::Roster;
use crate::session::{Session, SessionId};
use crate::store::{DocumentKey, StoredMessage, UserRecord};

/// A conversation stuck to the session that last wrote in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sticky {
    pub session: SessionId,
    pub last: Instant,
}

/// A loaded user.
#[derive(Debug)]
pub(super) struct User {
    pub roster: Roster,
    pub policy: UserPolicy,
    pub sessions: Vec<Session>,
    pub offline: VecDeque<StoredMessage>,
    pub next_seq: u64,
    pub composed: Composed,
    /// Conversations keyed by the peer's bare address.
    pub sticky: HashMap<BareJid, Sticky>,
    /// The account features' documents (private XML, the vCard …), by key.
    pub documents: std::collections::BTreeMap<DocumentKey, String>,
    /// The highest id in the user's archive.
    pub archive_head: u64,
    /// What the server knows of the user's avatar (XEP-0398; `None`: nothing yet). Boxed: most users have none,
    /// and inline it made every loaded user's record 344 bytes, a size class above 320 (issue 17).
    pub avatar: Option<Box<crate::feature::avatar::Known>>,
}

impl User {
    pub fn from_record(rec: UserRecord) -> Self {
        let next_seq = rec.offline.iter().map(|m| m.seq).max().unwrap_or(0) + 1;
        let mut documents: std::collections::BTreeMap<_, _> = rec.documents.into_iter().collect();
        // The roster version is the roster's, not a document of a feature: it neither counts against the
        // user's document limit nor is reachable by any document feature. A record without one (an account
        // from before versioning was served; no `ver` was ever sent then) starts at 0.
        let version = documents
            .remove(&crate::feature::roster::version_key())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        // Likewise the avatar record: the conversion's own, not something a client stores.
        let avatar = documents
            .remove(&crate::feature::avatar::Known::key())
            .and_then(|d| crate::feature::avatar::Known::from_document(&d))
            .map(Box::new);
        User {
            roster: Roster::from_entries(rec.roster).at_version(version),
            policy: rec.policy,
            sessions: Vec::new(),
            offline: rec.offline.into(),
            next_seq,
            composed: Composed::UNAVAILABLE,
            sticky: HashMap::new(),
            documents,
            archive_head: rec.archive_head,
            avatar,
        }
    }

    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.sessions.iter().find(|s| s.id == id)
    }

    pub fn session_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        self.sessions.iter_mut().find(|s| s.id == id)
    }

    pub fn session_by_resource(&self, resource: &str) -> Option<&Session> {
        self.sessions.iter().find(|s| s.jid.resource() == resource)
    }

    pub fn available_sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.iter().filter(|s| s.is_available())
    }

    pub fn compose_settings(&self) -> ComposeSettings {
        ComposeSettings {
            dnd_on_phone: self.policy.dnd_on_phone,
            dnd_in_meeting: self.policy.dnd_in_meeting,
        }
    }
}
