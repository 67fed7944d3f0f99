//! Running presenced as a node of a cluster.

pub mod wire;
