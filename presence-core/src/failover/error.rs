//! Why an administrator's command was refused.

use super::state::NodeState;

/// A refused administrator command, with the state that made it ineligible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Manual failover is only possible from Normal.
    #[error("manual failover needs this node in Normal, but it is {0}")]
    FailoverNeedsNormal(NodeState),
    /// The peer must be reachable and Normal to take the users.
    #[error("manual failover needs the peer reachable and Normal, but it is {}", describe(*.0))]
    PeerCannotTakeOver(Option<NodeState>),
    /// Manual fallback is only possible from Idle or Failed Over.
    #[error("manual fallback needs this node Idle or Failed Over, but it is {0}")]
    FallbackNeedsIdleOrFailedOver(NodeState),
    /// The peer must be reachable and in backup mode to hand users back.
    #[error("manual fallback needs the peer reachable and in backup mode, but it is {}", describe(*.0))]
    PeerNotInBackupMode(Option<NodeState>),
    /// Manual recovery is only possible when this node has failed and its peer has failed too or is unreachable.
    #[error("manual recovery needs this node failed and its peer failed or unreachable, but this node is {node} and the peer {}", describe(*.peer))]
    RecoveryNeedsBothFailed {
        /// This node's state.
        node: NodeState,
        /// The peer's last known state.
        peer: Option<NodeState>,
    },
}

fn describe(state: Option<NodeState>) -> String {
    state.map_or_else(|| "unreachable".to_owned(), |s| s.to_string())
}
