//! Content-Type media types (RFC 3261 §20.15).

use std::fmt;

use super::params::{Params, end, params};
use crate::grammar::{sep, sws, token};

/// A media type such as `application/pidf+xml;charset=utf-8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// Top-level type, lower-cased.
    pub kind: String,
    /// Subtype, lower-cased.
    pub subtype: String,
    /// Parameters.
    pub params: Params,
}

impl MediaType {
    /// A media type without parameters.
    pub fn new(kind: &str, subtype: &str) -> Self {
        MediaType {
            kind: kind.to_ascii_lowercase(),
            subtype: subtype.to_ascii_lowercase(),
            params: Params::default(),
        }
    }

    /// True if this is `kind/subtype` (case-insensitive).
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

/// Parses a Content-Type value.
pub fn parse_media_type(s: &str) -> Result<MediaType, &'static str> {
    let (i, _) = sws(s).map_err(|_| "malformed media type")?;
    let (i, kind) = token(i).map_err(|_| "missing type")?;
    let (i, _) = sep('/')(i).map_err(|_| "missing '/'")?;
    let (i, subtype) = token(i).map_err(|_| "missing subtype")?;
    let (i, params) = params(i).map_err(|_| "malformed parameter")?;
    end(i).map_err(|_| "unexpected characters")?;
    Ok(MediaType {
        kind: kind.to_ascii_lowercase(),
        subtype: subtype.to_ascii_lowercase(),
        params,
    })
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.kind, self.subtype, self.params)
    }
}
