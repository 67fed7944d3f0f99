//! Shared helpers of the bundled binaries and examples.

pub mod admin;
pub mod bulk;
pub mod calendar;
pub mod check;
pub mod cluster;
pub mod compliance;
pub mod config;
pub mod credentials;
pub mod directory;
pub mod extdisco;
pub mod http;
pub mod http_tls;
pub mod logging;
pub mod muc;
pub mod registration;
pub mod s2s;
pub mod server;
pub mod status;
pub mod store;
pub mod systemd;
pub mod upload;
pub mod users;
