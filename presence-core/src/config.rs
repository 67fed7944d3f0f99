//! The engine's settings: hosted domains, policy switches and limits (DESIGN §3-§4), each with the documented
//! default.

use std::time::Duration;

/// A limit that can be switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// At most this many.
    AtMost(usize),
    /// No limit.
    Unlimited,
}

impl Cap {
    /// Whether `count` more items than zero may still be added when `count` exist already.
    pub fn allows(self, count: usize) -> bool {
        match self {
            Cap::AtMost(n) => count < n,
            Cap::Unlimited => true,
        }
    }

    /// How many can still be added when `count` exist already.
    pub fn room(self, count: usize) -> usize {
        match self {
            Cap::AtMost(n) => n.saturating_sub(count),
            Cap::Unlimited => usize::MAX,
        }
    }
}

/// Numeric limits of DESIGN §3-§4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent sessions one user may hold.
    pub max_sessions_per_user: usize,
    /// Roster items a user may add (DESIGN §3: 200).
    pub max_contacts: Cap,
    /// Contacts that may watch one user (DESIGN §3: 200).
    pub max_watchers: Cap,
    /// Offline messages held per user (DESIGN §4: 100).
    pub offline_per_user: usize,
    /// Offline messages held on this node (DESIGN §4: 30,000).
    pub offline_per_node: usize,
    /// The largest document (a private XML element, a vCard …) a user may store, in bytes of XML.
    pub max_document_bytes: usize,
    /// How many documents one user may keep (private XML namespaces, the vCard, PEP items …).
    pub max_documents_per_user: usize,
    /// How many messages one user's archive keeps (XEP-0313); older ones are dropped as new ones arrive. 0 turns
    /// archiving off.
    pub max_archive_per_user: u64,
    /// The most items one PEP node keeps, whatever its `pubsub#max_items` asks (XEP-0163).
    pub pep_max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions_per_user: 10,
            max_contacts: Cap::AtMost(200),
            max_watchers: Cap::AtMost(200),
            offline_per_user: 100,
            offline_per_node: 30_000,
            // A vCard with an embedded photo is the largest document clients send; 256 KiB holds a generous one.
            max_document_bytes: 256 * 1024,
            max_documents_per_user: 1000,
            // About a year of a busy user's one-to-one chat; a cap, not a retention period, so the store's size
            // is bounded by the number of users.
            max_archive_per_user: 10_000,
            pep_max_items: 100,
        }
    }
}

/// Everything the engine is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The domains whose users live on this engine; anything else is routed out.
    pub domains: Vec<String>,
    /// Approve local subscription requests without asking (DESIGN §3; on by default).
    pub auto_authorize: bool,
    /// Keep messages for users with no session that can take them (off = "suppress offline IM").
    pub offline_storage: bool,
    /// Instant messaging on at all (off: no message flows).
    pub im_enabled: bool,
    /// How long a conversation stays stuck to the session that replied (DESIGN §4: 600 s).
    pub conversation_idle: Duration,
    /// The text sent with the error when a message could not be delivered (DESIGN §4).
    pub undeliverable_text: String,
    /// Numeric limits.
    pub limits: Limits,
    /// What push notifications (XEP-0357) tell app servers about the message that woke the device.
    pub push_contents: PushContents,
    /// The group chat service (XEP-0045), if any.
    pub rooms: Option<crate::rooms::RoomsConfig>,
    /// Compliance archiving: emit an [`Output::Comply`](crate::Output::Comply) record for every message the
    /// server accepts (see [`crate::compliance`]; off by default).
    pub compliance: bool,
}

/// What a push notification carries besides the count of waiting messages. Both off by default: the app server
/// and the platform's push service behind it (Apple's, Google's) are third parties, and clients fetch the
/// message itself once awake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushContents {
    /// The sender's address.
    pub sender: bool,
    /// The message's text.
    pub body: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            domains: vec!["localhost".to_owned()],
            auto_authorize: true,
            offline_storage: true,
            im_enabled: true,
            conversation_idle: Duration::from_secs(600),
            undeliverable_text: "Your IM could not be delivered.".to_owned(),
            limits: Limits::default(),
            push_contents: PushContents::default(),
            rooms: None,
            compliance: false,
        }
    }
}

impl EngineConfig {
    /// A default configuration serving `domain`.
    pub fn for_domain(domain: &str) -> Self {
        EngineConfig {
            domains: vec![domain.to_ascii_lowercase()],
            ..Self::default()
        }
    }

    /// Whether `domain` is hosted here.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d == domain)
    }
}
