//! Two failover managers wired through a simulated link and store.

mod harness;
mod properties;
mod rows;
