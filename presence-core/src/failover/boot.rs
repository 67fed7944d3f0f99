//! What a failover manager needs to (re)start, and how to derive it from the cluster model.

use super::reason::Reason;
use super::state::NodeState;
use crate::assignment::{Assignments, UserId};
use crate::cluster::{GroupId, HighAvailability, NodeId, Topology};

/// Everything a node needs to (re)start its failover manager, read by the shell from its store.
#[derive(Debug, Clone)]
pub struct Boot {
    /// This node.
    pub node: NodeId,
    /// The other node of the pair.
    pub peer: NodeId,
    /// Incremented by the shell on every start, so the peer notices quick reboots.
    pub epoch: u64,
    /// Users whose assigned home is this node.
    pub own_users: Vec<UserId>,
    /// Users whose assigned home is the peer.
    pub peer_users: Vec<UserId>,
    /// Users the shared store currently places on this node.
    pub hosted: Vec<UserId>,
    /// The last state change persisted before the restart, if any.
    pub last: Option<(NodeState, Reason)>,
}

/// Why a node cannot run a failover manager.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootError {
    /// The node is not in the topology.
    #[error("{0} is not in the cluster")]
    UnknownNode(NodeId),
    /// The node's group has a single node, so there is nobody to fail over to.
    #[error("{node} is alone in {group}; failover needs a pair")]
    NoPeer {
        /// The node named.
        node: NodeId,
        /// Its group.
        group: GroupId,
    },
    /// The node's group has high availability disabled.
    #[error("{0} has high availability disabled")]
    HighAvailabilityDisabled(GroupId),
}

impl Boot {
    /// A first start of `node`: users split by their assigned home, each hosted at home.
    ///
    /// On a restart the shell overrides [`Boot::hosted`] and [`Boot::last`] from its store.
    pub fn first_start(
        node: NodeId,
        topology: &Topology,
        assignments: &Assignments,
        epoch: u64,
    ) -> Result<Self, BootError> {
        let group = topology
            .group_of(node)
            .ok_or(BootError::UnknownNode(node))?;
        let peer = group.members.peer_of(node).ok_or(BootError::NoPeer {
            node,
            group: group.id,
        })?;
        if group.high_availability != HighAvailability::Enabled {
            return Err(BootError::HighAvailabilityDisabled(group.id));
        }
        let own_users: Vec<UserId> = assignments.users_on(node).cloned().collect();
        Ok(Self {
            node,
            peer,
            epoch,
            peer_users: assignments.users_on(peer).cloned().collect(),
            hosted: own_users.clone(),
            own_users,
            last: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assignment::AssignmentMode;

    #[test]
    fn first_start_splits_users_by_home_and_needs_an_enabled_pair() {
        let mut t = Topology::new();
        t.add_group(GroupId(1), NodeId(1)).unwrap();
        t.add_group(GroupId(2), NodeId(3)).unwrap();
        t.add_node(GroupId(1), NodeId(2)).unwrap();
        let mut a = Assignments::new(AssignmentMode::Balanced);
        for i in 0..6 {
            a.assign_new(UserId::new(format!("u{i}@x")).unwrap(), &t)
                .unwrap();
        }
        assert_eq!(
            Boot::first_start(NodeId(1), &t, &a, 1).unwrap_err(),
            BootError::HighAvailabilityDisabled(GroupId(1))
        );
        assert_eq!(
            Boot::first_start(NodeId(3), &t, &a, 1).unwrap_err(),
            BootError::NoPeer {
                node: NodeId(3),
                group: GroupId(2)
            }
        );
        assert_eq!(
            Boot::first_start(NodeId(9), &t, &a, 1).unwrap_err(),
            BootError::UnknownNode(NodeId(9))
        );
        t.set_high_availability(GroupId(1), HighAvailability::Enabled, |_| NodeState::Normal)
            .unwrap();
        let boot = Boot::first_start(NodeId(1), &t, &a, 1).unwrap();
        assert_eq!(boot.peer, NodeId(2));
        assert_eq!((boot.own_users.len(), boot.peer_users.len()), (2, 2));
        assert_eq!(boot.hosted, boot.own_users);
    }
}
