//! Shared helpers of the bundled binaries and examples.
