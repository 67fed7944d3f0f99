//! Why an assignment request was refused.

use super::user::UserId;
use crate::cluster::NodeId;

/// A malformed user identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUserId {
    /// The address was empty.
    #[error("user id is empty")]
    Empty,
    /// The address carried a resource; homes are per bare address.
    #[error("user id {0:?} carries a resource; use the bare address")]
    HasResource(String),
}

/// A refused assignment request, naming the user or node at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    /// The node is not part of the cluster topology.
    #[error("{node} is not in the cluster; cannot assign {user} to it")]
    UnknownNode {
        /// The user being assigned.
        user: UserId,
        /// The node named.
        node: NodeId,
    },
    /// Automatic placement was asked for a user who already has a home.
    #[error("{user} is already assigned to {home}")]
    AlreadyAssigned {
        /// The user named.
        user: UserId,
        /// The user's current home.
        home: NodeId,
    },
    /// No node may take users (empty topology, or every candidate excluded).
    #[error("no node can take {0}")]
    NoCandidateNode(UserId),
    /// Rebalancing has nothing to follow when the operator assigns users by hand.
    #[error("rebalancing needs the balanced or active/standby mode; the mode is none")]
    ManualMode,
}
