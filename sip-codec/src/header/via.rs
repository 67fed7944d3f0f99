//! The Via header (RFC 3261 §20.42, RFC 3581 rport, RFC 5118 IPv6 forms).

use std::fmt;
use std::net::IpAddr;

use nom::{IResult, Parser, bytes::complete::take_while1};

use super::params::{Params, end, params};
use crate::grammar::{is_ws, sep, sws, token};
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
    fn rejects_empty_params() {
        assert!(parse_via("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(parse_via("SIP/2.0/UDP 192.0.2.15;").is_err());
    }
}
