//! Shared helpers of the bundled binaries and examples.

pub mod credentials;
pub mod store;
