//! Sessions: one connected XMPP resource or registered SIP endpoint of a user.

use hashbrown::HashSet;

use crate::compose::EndpointPresence;
use crate::jid::{FullJid, Jid};
use crate::stanza::PresenceView;

/// The shell's handle for one session, unique for the engine's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// One bound session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The shell's handle.
    pub id: SessionId,
    /// The full address the session is bound to.
    pub jid: FullJid,
    /// The presence the session announced; `None` until its initial presence and after it went unavailable.
    pub presence: Option<EndpointPresence>,
    /// Whether the session asked for the roster and so receives roster pushes (RFC 6121 §2.1.6).
    pub interested: bool,
    /// Whether the session asked for the block list and so receives block list pushes (XEP-0191 §3.3).
    pub blocklist_interested: bool,
    /// Whether the session enabled message carbons (XEP-0280).
    pub carbons: bool,
    /// `Some` while the session's connection is gone and the session waits to be resumed (XEP-0198), with the
    /// messages delivered to it since: they wake the device through its push registrations (XEP-0357).
    pub detached: Option<u32>,
    /// Addresses that got directed presence from this session and must hear when it goes away (RFC 6121 §4.6).
    /// Boxed and made at the first: few sessions send any, and inline the set made every session's record
    /// 272 bytes, a size class above 256 (issue 17).
    pub directed: Option<Box<HashSet<Jid>>>,
    /// What watchers were last told about this session, to broadcast only real changes.
    pub last_broadcast: Option<std::sync::Arc<PresenceView>>,
    /// Whether the shell can hand the session messages while it is unavailable (`Input::Reachable`): a SIP
    /// endpoint with a registered contact, since RFC 3428 routes MESSAGE by registration, not by presence. Only
    /// message routing reads it; watchers see the session's presence. Never set for XMPP (RFC 6121 §8.5.2).
    pub reachable: bool,
    /// The PEP nodes whose notifications the session's client asked for (XEP-0163 §4.3.3: the `+notify`
    /// features of its entity capabilities, read by the shell), sorted. Kept while the session is available.
    pub interests: Vec<String>,
}

impl Session {
    /// A freshly bound session with no presence yet.
    pub fn new(id: SessionId, jid: FullJid) -> Self {
        Session {
            id,
            jid,
            presence: None,
            interested: false,
            blocklist_interested: false,
            carbons: false,
            detached: None,
            directed: None,
            last_broadcast: None,
            reachable: false,
            interests: Vec::new(),
        }
    }

    /// Whether the session sent available presence.
    pub fn is_available(&self) -> bool {
        self.presence.is_some()
    }

    /// Whether the session's client asked for notifications of PEP node `node`.
    pub fn wants(&self, node: &str) -> bool {
        self.interests
            .binary_search_by(|n| n.as_str().cmp(node))
            .is_ok()
    }

    /// Whether messages to the bare address may be forked here: available with a priority not negative, or
    /// reachable whatever its presence (a registered SIP endpoint that appears offline).
    pub fn takes_bare_messages(&self) -> bool {
        self.reachable || self.presence.as_ref().is_some_and(|p| p.priority >= 0)
    }
}
