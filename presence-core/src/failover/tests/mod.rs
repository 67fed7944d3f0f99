//! Two failover managers wired through a simulated link and store.

mod behaviour;
mod harness;
mod properties;
mod rows;
