//! The Via header (RFC 3261 §20.42, RFC 3581 rport, RFC 5118 IPv6 forms).

use std::fmt;
use std::net::IpAddr;

use nom::{IResult, Parser, bytes::complete::take_while1};

use super::params::{Params, end, params};
use crate::grammar::{is_token, is_ws, sep, sws, token};
use crate::uri::{Host, parse_host_name};

/// One Via entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Protocol name, normally `SIP`.
    pub protocol: String,
    /// Protocol version, normally `2.0`.
    pub version: String,
    /// Transport token (`UDP`, `TCP`, `TLS`, `SCTP`, `WS` …), upper-cased.
    pub transport: String,
    /// The sent-by host.
    pub host: Host,
    /// The sent-by port, if given.
    pub port: Option<u16>,
    /// Parameters (branch, received, rport, maddr, ttl, extensions).
    pub params: Params,
}

impl Via {
    /// A `SIP/2.0/<transport>` Via for `host[:port]` with the given branch.
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Self {
        let mut params = Params::default();
        params.set("branch", Some(branch));
        Via {
            protocol: "SIP".into(),
            version: "2.0".into(),
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        }
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// The received parameter as an address; brackets around IPv6 are accepted (RFC 5118 §4.5).
    pub fn received(&self) -> Option<IpAddr> {
        let v = self.params.get("received").flatten()?;
        let v = v
            .strip_prefix('[')
            .and_then(|v| v.strip_suffix(']'))
            .unwrap_or(v);
        v.parse().ok()
    }

    /// The rport parameter: `Some(None)` when present without a value (a request to fill it in).
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// True if the branch carries the RFC 3261 magic cookie.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.starts_with("z9hG4bK") && b.len() > 7)
    }
}

fn sent_by(i: &str) -> IResult<&str, (Host, Option<u16>)> {
    let fail = || nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Verify));
    let (rest, host) = if i.starts_with('[') {
        let close = i.find(']').ok_or_else(fail)?;
        (&i[close + 1..], &i[..close + 1])
    } else {
        take_while1(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.').parse(i)?
    };
    let (rest, port) = match sep(':')(rest) {
        Ok((r, _)) => {
            let (r, p) = take_while1(|c: char| c.is_ascii_digit()).parse(r)?;
            (r, Some(p))
        }
        Err(_) => (rest, None),
    };
    let h = if let Some(inner) = host.strip_prefix('[') {
        let addr = inner
            .strip_suffix(']')
            .and_then(|a| a.parse().ok())
            .ok_or_else(fail)?;
        Host::V6(addr)
    } else {
        parse_host_name(host).map_err(|_| fail())?
    };
    let p = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| fail())?),
        None => None,
    };
    Ok((rest, (h, p)))
}

fn via_parm(i: &str) -> IResult<&str, Via> {
    let (i, _) = sws(i)?;
    let (i, protocol) = token(i)?;
    let (i, _) = sep('/')(i)?;
    let (i, version) = token(i)?;
    let (i, _) = sep('/')(i)?;
    let (i, transport) = token(i)?;
    let (i, _) = take_while1(is_ws).parse(i)?;
    let (i, (host, port)) = sent_by(i)?;
    let (i, params) = params(i)?;
    let (i, _) = end(i)?;
    Ok((
        i,
        Via {
            protocol: protocol.to_owned(),
            version: version.to_owned(),
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        },
    ))
}

/// Parses one Via entry (one element of a comma-separated Via header).
pub fn parse_via(s: &str) -> Result<Via, &'static str> {
    via_parm(s).map(|(_, v)| v).map_err(|_| "malformed Via")
}

/// The branch of the first Via in a Via header value, read without building the [`Via`]: matching a response
/// to one of our client transactions needs nothing else (RFC 3261 §17.1.3), and a response arrives for every
/// NOTIFY we send. Quoted strings are stepped over, so a `,` or `;branch=` inside a quoted parameter value is
/// not taken for a separator. Agrees with [`parse_via`] on every Via it accepts whose branch is a token.
pub fn top_branch(value: &str) -> Option<&str> {
    let b = value.as_bytes();
    let mut i = 0;
    let mut quoted = false;
    while i < b.len() {
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b',' if !quoted => return None,
            b';' if !quoted => {
                // The first `branch` counts, as in [`Params::get`], even without a value.
                if let Some(branch) = branch_param(&value[i + 1..]) {
                    return branch;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether a `branch` parameter starts `s` (just after its `;`), and if so its value, when it has one.
fn branch_param(s: &str) -> Option<Option<&str>> {
    let s = s.trim_start_matches(is_ws);
    let name_end = s.find(|c: char| !is_token(c)).unwrap_or(s.len());
    if !s[..name_end].eq_ignore_ascii_case("branch") {
        return None;
    }
    let Some(s) = s[name_end..].trim_start_matches(is_ws).strip_prefix('=') else {
        return Some(None);
    };
    let s = s.trim_start_matches(is_ws);
    let end = s.find(|c: char| !is_token(c)).unwrap_or(s.len());
    Some((end > 0).then(|| &s[..end]))
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{} {}",
            self.protocol, self.version, self.transport, self.host
        )?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lws_heavy_via() {
        let v = parse_via("SIP  /   2.0 /UDP     192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert!(!v.has_rfc3261_branch());
        let v =
            parse_via("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
    }

    #[test]
    fn received_and_rport() {
        let v = parse_via(
            "SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3;rport",
        )
        .unwrap();
        assert_eq!(v.received(), Some("2001:db8::9:255".parse().unwrap()));
        assert_eq!(v.rport(), Some(None));
        let v =
            parse_via("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;rport=5060").unwrap();
        assert_eq!(v.received(), Some("2001:db8::9:255".parse().unwrap()));
        assert_eq!(v.rport(), Some(Some(5060)));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;rport=5060"
        );
    }

    #[test]
    fn the_top_branch_is_read_past_quotes_and_stops_at_the_first_via() {
        for (value, branch) in [
            ("SIP/2.0/UDP h;branch=z9hG4bKa", Some("z9hG4bKa")),
            (
                "SIP / 2.0 / TCP h:5060 ; rport ; BRANCH = z9hG4bKb ;x=1",
                Some("z9hG4bKb"),
            ),
            (
                "SIP/2.0/UDP h;x=\";branch=evil, y\";branch=real",
                Some("real"),
            ),
            (
                "SIP/2.0/UDP h;x=\"a\\\";branch=evil\";branch=real",
                Some("real"),
            ),
            ("SIP/2.0/UDP h;branches=x;branch=y", Some("y")),
            ("SIP/2.0/UDP h;rport, SIP/2.0/UDP g;branch=second", None),
            ("SIP/2.0/UDP h", None),
        ] {
            assert_eq!(top_branch(value), branch, "{value}");
            if let Ok(v) = parse_via(value) {
                assert_eq!(v.branch(), branch, "{value}");
            }
        }
    }

    #[test]
    fn rejects_empty_params() {
        assert!(parse_via("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(parse_via("SIP/2.0/UDP 192.0.2.15;").is_err());
    }
}
