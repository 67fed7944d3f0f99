//! One presence redundancy group: its members and whether failover is on.

use super::node::{GroupId, NodeId, Slot};

/// The nodes of a group; a group is never empty and never holds more than two nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupMembers {
    /// A single node: no backup, so no failover.
    Single(NodeId),
    /// Two nodes that can back each other up.
    Pair(NodeId, NodeId),
}

impl GroupMembers {
    /// The node in `slot`, if the group has one there.
    pub fn at(&self, slot: Slot) -> Option<NodeId> {
        match (self, slot) {
            (Self::Single(a) | Self::Pair(a, _), Slot::A) => Some(*a),
            (Self::Pair(_, b), Slot::B) => Some(*b),
            (Self::Single(_), Slot::B) => None,
        }
    }

    /// Whether `node` is a member.
    pub fn contains(&self, node: NodeId) -> bool {
        self.at(Slot::A) == Some(node) || self.at(Slot::B) == Some(node)
    }

    /// The other member of a pair, if `node` is in a pair.
    pub fn peer_of(&self, node: NodeId) -> Option<NodeId> {
        match *self {
            Self::Pair(a, b) if a == node => Some(b),
            Self::Pair(a, b) if b == node => Some(a),
            _ => None,
        }
    }

    /// Members in slot order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        [Slot::A, Slot::B].into_iter().filter_map(|s| self.at(s))
    }
}

/// Whether the group fails over between its two nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HighAvailability {
    /// The nodes act as standalone nodes (the default, as in the product).
    #[default]
    Disabled,
    /// The nodes monitor each other and fail over.
    Enabled,
}

/// A presence redundancy group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedundancyGroup {
    /// The group's number.
    pub id: GroupId,
    /// Its one or two nodes.
    pub members: GroupMembers,
    /// Whether failover is on.
    pub high_availability: HighAvailability,
}
