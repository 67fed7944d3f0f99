//! The block list as a session reads and edits it (XEP-0191), without knowing the rest of the policy.

use crate::policy::PolicyEntry;

/// What a session asks of its block list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// The list (§3.2); asking is what subscribes the session to pushes.
    Get,
    /// Adds entries (§3.3); empty is a `bad-request`.
    Block(Vec<PolicyEntry>),
    /// Removes entries (§3.4); empty unblocks everything.
    Unblock(Vec<PolicyEntry>),
}

/// The block list's entries in list order, as a get answers them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Answer {
    /// Every blocked address or domain.
    pub items: Vec<PolicyEntry>,
}

/// A change of the block list, pushed to the sessions that asked for it, the requester included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Push {
    /// These entries were blocked.
    Blocked(Vec<PolicyEntry>),
    /// These entries were unblocked.
    Unblocked(Vec<PolicyEntry>),
    /// The whole block list was emptied.
    UnblockedAll,
}
