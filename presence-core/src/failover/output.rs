//! What the failover manager asks the shell to do.

use super::message::PeerMessage;
use super::moves::MoveBatch;
use super::reason::Reason;
use super::reconnect::ReconnectHint;
use super::state::NodeState;

/// One state change, recorded for the operator and persisted by the shell for restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    /// The state left.
    pub from: NodeState,
    /// The state entered.
    pub to: NodeState,
    /// Why.
    pub reason: Reason,
}

/// An effect the shell must carry out, drained with [`super::FailoverNode::poll_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this to the peer's failover manager (dropping it is fine: heartbeats repeat).
    ToPeer(PeerMessage),
    /// The node's state changed.
    StateChanged(StateChange),
    /// Stop this node's critical services (manual failover).
    StopCriticalServices,
    /// Start this node's critical services and report the outcome (fallback from Idle).
    StartCriticalServices,
    /// Rehome these users onto this node in the shared store and report the outcome.
    MoveUsers(MoveBatch),
    /// End these users' sessions here; each client should sign in again after its delay.
    EndSessions(Vec<ReconnectHint>),
}
