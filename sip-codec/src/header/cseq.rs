//! The CSeq header (RFC 3261 §20.16).

use std::fmt;

use crate::grammar::{is_token, is_ws, parse_u32};
use crate::method::Method;

/// Sequence number and method of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (RFC 3261 requires it below 2^31).
    pub seq: u32,
    /// The method.
    pub method: Method,
}

/// Parses `1*DIGIT LWS Method`.
pub fn parse_cseq(s: &str) -> Result<CSeq, &'static str> {
    let s = s.trim_matches(is_ws);
    let split = s.find(is_ws).ok_or("missing method")?;
    let seq = parse_u32(&s[..split]).ok_or("sequence number is not a 32-bit number")?;
    let method = s[split..].trim_start_matches(is_ws);
    if method.is_empty() || !method.chars().all(is_token) {
        return Err("invalid method");
    }
    Ok(CSeq {
        seq,
        method: Method::from_token(method),
    })
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}
