//! The cluster's groups and the rules for changing them.

use super::error::TopologyError;
use super::group::{GroupMembers, HighAvailability, RedundancyGroup};
use super::node::{GroupId, NodeId, Slot};
use crate::failover::NodeState;

/// Most presence redundancy groups a cluster may hold.
pub const MAX_GROUPS: usize = 3;
/// Most nodes a cluster may hold (three groups of two).
pub const MAX_NODES: usize = 6;

/// The cluster's presence redundancy groups, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    groups: Vec<RedundancyGroup>,
}

impl Topology {
    /// An empty cluster.
    pub fn new() -> Self {
        Self::default()
    }

    /// Groups in the order they were added; this order drives user assignment.
    pub fn groups(&self) -> &[RedundancyGroup] {
        &self.groups
    }

    /// The group with this number.
    pub fn group(&self, id: GroupId) -> Option<&RedundancyGroup> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The group `node` belongs to.
    pub fn group_of(&self, node: NodeId) -> Option<&RedundancyGroup> {
        self.groups.iter().find(|g| g.members.contains(node))
    }

    /// Number of nodes over all groups.
    pub fn node_count(&self) -> usize {
        self.groups.iter().map(|g| g.members.nodes().count()).sum()
    }

    /// Nodes in the assignment order: every group's `A` node, then every group's `B` node.
    pub fn nodes_in_slot_order(&self) -> Vec<NodeId> {
        [Slot::A, Slot::B]
            .into_iter()
            .flat_map(|slot| self.groups.iter().filter_map(move |g| g.members.at(slot)))
            .collect()
    }

    /// Adds a group whose first node is `node`; HA starts disabled.
    pub fn add_group(&mut self, id: GroupId, node: NodeId) -> Result<(), TopologyError> {
        if self.group(id).is_some() {
            return Err(TopologyError::DuplicateGroup(id));
        }
        if self.groups.len() >= MAX_GROUPS {
            return Err(TopologyError::TooManyGroups {
                group: id,
                max: MAX_GROUPS,
            });
        }
        self.ensure_not_member(node)?;
        self.groups.push(RedundancyGroup {
            id,
            members: GroupMembers::Single(node),
            high_availability: HighAvailability::Disabled,
        });
        Ok(())
    }

    /// Adds `node` as the second node of a single-node group.
    pub fn add_node(&mut self, id: GroupId, node: NodeId) -> Result<(), TopologyError> {
        self.ensure_not_member(node)?;
        let group = self.group_mut(id)?;
        match group.members {
            GroupMembers::Single(a) => {
                group.members = GroupMembers::Pair(a, node);
                Ok(())
            }
            GroupMembers::Pair(..) => Err(TopologyError::GroupFull(id)),
        }
    }

    /// Removes one node of a pair; the remaining node becomes slot `A`.
    pub fn remove_node(&mut self, id: GroupId, node: NodeId) -> Result<(), TopologyError> {
        let group = self.group_mut(id)?;
        if group.high_availability == HighAvailability::Enabled {
            return Err(TopologyError::HighAvailabilityEnabled(id));
        }
        match group.members {
            GroupMembers::Pair(a, b) if a == node => group.members = GroupMembers::Single(b),
            GroupMembers::Pair(a, b) if b == node => group.members = GroupMembers::Single(a),
            GroupMembers::Single(a) if a == node => {
                return Err(TopologyError::LastNode { node, group: id });
            }
            _ => return Err(TopologyError::NotAMember { node, group: id }),
        }
        Ok(())
    }

    /// Removes a whole group; refused while its HA is on.
    pub fn remove_group(&mut self, id: GroupId) -> Result<RedundancyGroup, TopologyError> {
        let pos = self
            .groups
            .iter()
            .position(|g| g.id == id)
            .ok_or(TopologyError::UnknownGroup(id))?;
        if self.groups[pos].high_availability == HighAvailability::Enabled {
            return Err(TopologyError::HighAvailabilityEnabled(id));
        }
        Ok(self.groups.remove(pos))
    }

    /// Turns HA on or off; `state_of` reports each member's current failover state.
    ///
    /// Turning it on needs two nodes; flipping it either way is refused while a member is in a
    /// transition state, because the in-flight user moves would be orphaned.
    pub fn set_high_availability(
        &mut self,
        id: GroupId,
        setting: HighAvailability,
        state_of: impl Fn(NodeId) -> NodeState,
    ) -> Result<(), TopologyError> {
        let group = self.group_mut(id)?;
        if setting == HighAvailability::Enabled && matches!(group.members, GroupMembers::Single(_))
        {
            return Err(TopologyError::HighAvailabilityNeedsPair(id));
        }
        for node in group.members.nodes() {
            let state = state_of(node);
            if state.is_transition() {
                return Err(TopologyError::NodeInTransition {
                    group: id,
                    node,
                    state,
                });
            }
        }
        group.high_availability = setting;
        Ok(())
    }

    fn ensure_not_member(&self, node: NodeId) -> Result<(), TopologyError> {
        match self.group_of(node) {
            Some(g) => Err(TopologyError::NodeAlreadyInCluster { node, group: g.id }),
            None => Ok(()),
        }
    }

    fn group_mut(&mut self, id: GroupId) -> Result<&mut RedundancyGroup, TopologyError> {
        self.groups
            .iter_mut()
            .find(|g| g.id == id)
            .ok_or(TopologyError::UnknownGroup(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(_: NodeId) -> NodeState {
        NodeState::Normal
    }

    fn three_pairs() -> Topology {
        let mut t = Topology::new();
        for g in 1..=3u8 {
            t.add_group(GroupId(g), NodeId(u16::from(g) * 10)).unwrap();
            t.add_node(GroupId(g), NodeId(u16::from(g) * 10 + 1))
                .unwrap();
        }
        t
    }

    #[test]
    fn at_most_three_groups_of_two_nodes() {
        let mut t = three_pairs();
        assert_eq!(t.node_count(), MAX_NODES);
        assert_eq!(
            t.add_group(GroupId(4), NodeId(99)),
            Err(TopologyError::TooManyGroups {
                group: GroupId(4),
                max: 3
            })
        );
        assert_eq!(
            t.add_node(GroupId(1), NodeId(99)),
            Err(TopologyError::GroupFull(GroupId(1)))
        );
        assert_eq!(
            t.add_node(GroupId(2), NodeId(10)),
            Err(TopologyError::NodeAlreadyInCluster {
                node: NodeId(10),
                group: GroupId(1)
            })
        );
    }

    #[test]
    fn slot_order_is_all_a_nodes_then_all_b_nodes() {
        let t = three_pairs();
        let order: Vec<u16> = t.nodes_in_slot_order().iter().map(|n| n.0).collect();
        assert_eq!(order, [10, 20, 30, 11, 21, 31]);
    }

    #[test]
    fn high_availability_needs_a_pair() {
        let mut t = Topology::new();
        t.add_group(GroupId(1), NodeId(1)).unwrap();
        assert_eq!(
            t.set_high_availability(GroupId(1), HighAvailability::Enabled, normal),
            Err(TopologyError::HighAvailabilityNeedsPair(GroupId(1)))
        );
        t.add_node(GroupId(1), NodeId(2)).unwrap();
        t.set_high_availability(GroupId(1), HighAvailability::Enabled, normal)
            .unwrap();
        assert_eq!(
            t.group(GroupId(1)).unwrap().high_availability,
            HighAvailability::Enabled
        );
    }

    #[test]
    fn high_availability_cannot_flip_during_a_transition() {
        let mut t = three_pairs();
        let busy = |n: NodeId| {
            if n == NodeId(11) {
                NodeState::TakingOver
            } else {
                NodeState::Normal
            }
        };
        assert_eq!(
            t.set_high_availability(GroupId(1), HighAvailability::Enabled, busy),
            Err(TopologyError::NodeInTransition {
                group: GroupId(1),
                node: NodeId(11),
                state: NodeState::TakingOver
            })
        );
        t.set_high_availability(GroupId(1), HighAvailability::Enabled, normal)
            .unwrap();
        let failed_over = |_| NodeState::FailedOver;
        t.set_high_availability(GroupId(1), HighAvailability::Disabled, failed_over)
            .unwrap();
    }

    #[test]
    fn members_are_frozen_while_high_availability_is_on() {
        let mut t = three_pairs();
        t.set_high_availability(GroupId(2), HighAvailability::Enabled, normal)
            .unwrap();
        assert_eq!(
            t.remove_node(GroupId(2), NodeId(20)),
            Err(TopologyError::HighAvailabilityEnabled(GroupId(2)))
        );
        t.remove_node(GroupId(3), NodeId(30)).unwrap();
        assert_eq!(
            t.group(GroupId(3)).unwrap().members,
            GroupMembers::Single(NodeId(31))
        );
        assert_eq!(
            t.remove_node(GroupId(3), NodeId(31)),
            Err(TopologyError::LastNode {
                node: NodeId(31),
                group: GroupId(3)
            })
        );
    }
}
