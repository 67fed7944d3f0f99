//! SIP and SIMPLE codec (filled by the SIP issue).
#![forbid(unsafe_code)]
