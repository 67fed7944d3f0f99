//! placeholder
pub mod assignment;
pub mod cluster;
pub mod failover;
