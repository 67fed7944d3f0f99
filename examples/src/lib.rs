//! Shared helpers of the bundled binaries and examples.

pub mod store;
