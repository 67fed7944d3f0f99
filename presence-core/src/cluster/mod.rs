//! Cluster topology: nodes, presence redundancy groups and their high-availability switch.
//!
//! A cluster holds at most [`MAX_GROUPS`] groups of one or two nodes each, so at most
//! [`MAX_NODES`] nodes. Failover only exists inside a two-node group with high availability
//! enabled; the switch may not be flipped while either node is in a transition state.

mod error;
mod group;
mod node;
mod room_home;
mod shard;
mod topology;

pub use error::TopologyError;
pub use group::{GroupMembers, HighAvailability, RedundancyGroup};
pub use node::{GroupId, NodeId, Slot};
pub use room_home::room_home;
pub use shard::shard_of;
pub use topology::{MAX_GROUPS, MAX_NODES, Topology};
