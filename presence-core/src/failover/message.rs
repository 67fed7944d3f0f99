//! What the two failover managers of a pair tell each other.

use super::reason::Reason;
use super::state::NodeState;
use crate::cluster::NodeId;

/// A node's announcement of itself, sent as the heartbeat and on every state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The sender.
    pub from: NodeId,
    /// The node the sender believes is its peer; a mismatch reveals a misconfigured pair.
    pub to: NodeId,
    /// Increases on every restart of the sender, so a quick reboot is still noticed.
    pub epoch: u64,
    /// The sender's state.
    pub state: NodeState,
    /// The sender's reason.
    pub reason: Reason,
    /// Whether the sender currently hosts any user whose home is the receiver.
    pub holds_peer_users: bool,
    /// Whether the sender hosts every user whose home is the sender itself.
    pub hosts_all_own_users: bool,
}

/// A message for the peer's failover manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMessage {
    /// Heartbeat and state announcement.
    Status(Status),
    /// The sender is shutting down or rebooting.
    Goodbye {
        /// The sender.
        from: NodeId,
    },
    /// An administrator asked for recovery: restart your failover manager too.
    Recover {
        /// The sender.
        from: NodeId,
    },
}
