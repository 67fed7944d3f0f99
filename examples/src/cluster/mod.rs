//! Running presenced as a node of a cluster.
pub mod config;
pub mod db;
pub mod model;
pub mod wire;
pub mod link;
pub mod placement;
pub mod failover;
pub mod peer;
