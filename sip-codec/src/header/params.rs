//! Generic `;name=value` header parameters (RFC 3261 `generic-param`).

use std::fmt;

use nom::{IResult, Parser, bytes::complete::take_while1};

use crate::grammar::{is_token, quoted_string, sep, sws, token, unquote};

/// Header parameters in order; values keep their quotes as written so they round-trip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// The raw value of a parameter (case-insensitive name); `Some(None)` for a flag.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The value of a parameter with surrounding quotes and escapes removed.
    pub fn get_unquoted(&self, name: &str) -> Option<String> {
        self.get(name).flatten().map(unquote)
    }

    /// Sets (or replaces) a parameter.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
    }

    /// Removes a parameter.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

/// A `gen-value`: token, host (including IPv6, with or without brackets) or quoted-string.
fn gen_value(i: &str) -> IResult<&str, &str> {
    if i.starts_with('"') {
        return quoted_string(i);
    }
    take_while1(|c: char| is_token(c) || matches!(c, ':' | '[' | ']')).parse(i)
}

/// Parses `*( SEMI generic-param )`.
pub(crate) fn params(mut i: &str) -> IResult<&str, Params> {
    let mut out = Vec::new();
    loop {
        let Ok((rest, _)) = sep(';')(i) else { break };
        let (rest, name) = token(rest)?;
        let (rest, value) = match sep('=')(rest) {
            Ok((r, _)) => {
                let (r, v) = gen_value(r)?;
                (r, Some(v.to_owned()))
            }
            Err(_) => (rest, None),
        };
        out.push((name.to_owned(), value));
        i = rest;
    }
    Ok((i, Params(out)))
}

/// Succeeds only at the end of the value (after optional white space).
pub(crate) fn end(i: &str) -> IResult<&str, ()> {
    let (i, _) = sws(i)?;
    if i.is_empty() {
        Ok((i, ()))
    } else {
        Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Eof,
        )))
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}
