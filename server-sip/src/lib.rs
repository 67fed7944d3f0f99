//! The tokio SIP shell over presence-core (filled by the SIP issue).
#![forbid(unsafe_code)]
