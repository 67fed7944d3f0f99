//! Why a topology change was refused.

use super::node::{GroupId, NodeId};
use crate::failover::NodeState;

/// A refused topology change, naming the group or node at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// The cluster already has the maximum number of groups.
    #[error("cannot add {group}: a cluster holds at most {max} presence redundancy groups")]
    TooManyGroups {
        /// The group that was being added.
        group: GroupId,
        /// The limit.
        max: usize,
    },
    /// A group with this number already exists.
    #[error("{0} already exists")]
    DuplicateGroup(GroupId),
    /// No group has this number.
    #[error("{0} does not exist")]
    UnknownGroup(GroupId),
    /// The node is already a member of some group.
    #[error("{node} is already a member of {group}")]
    NodeAlreadyInCluster {
        /// The node being added.
        node: NodeId,
        /// The group it already belongs to.
        group: GroupId,
    },
    /// The group already has two nodes.
    #[error("{0} already has two nodes")]
    GroupFull(GroupId),
    /// The node is not in the group.
    #[error("{node} is not a member of {group}")]
    NotAMember {
        /// The node named.
        node: NodeId,
        /// The group named.
        group: GroupId,
    },
    /// Removing the node would leave the group empty; remove the group instead.
    #[error("{node} is the last node of {group}; remove the group instead")]
    LastNode {
        /// The node named.
        node: NodeId,
        /// Its group.
        group: GroupId,
    },
    /// High availability needs exactly two nodes in the group.
    #[error("{0} has a single node; high availability needs two")]
    HighAvailabilityNeedsPair(GroupId),
    /// Members cannot change while failover is on.
    #[error("{0} has high availability enabled; disable it before changing its members")]
    HighAvailabilityEnabled(GroupId),
    /// The switch cannot be flipped while a node is mid-transition.
    #[error("{group}: {node} is {state}, a transition state; wait until it settles")]
    NodeInTransition {
        /// The group named.
        group: GroupId,
        /// The node that is mid-transition.
        node: NodeId,
        /// Its state.
        state: NodeState,
    },
}
