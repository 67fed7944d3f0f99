//! SIP and SIPS URIs (RFC 3261 §19.1, §25.1) and opaque absolute URIs of other schemes.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a URI could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed URI: {0}")]
pub struct UriError(pub &'static str);

/// A URI as found in a Request-URI or a name-addr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// A `sip:` or `sips:` URI, parsed into its parts.
    Sip(SipUri),
    /// Any other absolute URI (`tel:`, `http:`, `isbn:` …), kept as written.
    Other(String),
}

/// The host part of a SIP URI or Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name.
    Name(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written as an IPv6 reference in brackets).
    V6(Ipv6Addr),
}

/// A parsed `sip:`/`sips:` URI; user, password, parameter and header parts are stored %-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// True for `sips:`.
    pub secure: bool,
    /// The user part, decoded.
    pub user: Option<String>,
    /// The password part, decoded.
    pub password: Option<String>,
    /// The host.
    pub host: Host,
    /// The port, if given.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp`, `;lr`), decoded, in order.
    pub params: Vec<(String, Option<String>)>,
    /// URI headers (`?Route=...`), decoded, in order.
    pub headers: Vec<(String, String)>,
}

impl Uri {
    /// Parses a complete URI (the whole string must be consumed).
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        let colon = find_byte(s, b':').ok_or(UriError("missing scheme"))?;
        let scheme = &s[..colon];
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse_after_scheme(&s[colon + 1..], scheme.len() == 4).map(Uri::Sip);
        }
        let mut sc = scheme.chars();
        let scheme_ok = sc.next().is_some_and(|c| c.is_ascii_alphabetic())
            && sc.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return Err(UriError("invalid scheme"));
        }
        let rest = &s[colon + 1..];
        if rest.is_empty() {
            return Err(UriError("empty URI after scheme"));
        }
        if !rest
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"'))
        {
            return Err(UriError("invalid character in URI"));
        }
        Ok(Uri::Other(s.to_owned()))
    }

    /// The scheme in lower case.
    pub fn scheme(&self) -> String {
        match self {
            Uri::Sip(u) if u.secure => "sips".into(),
            Uri::Sip(_) => "sip".into(),
            Uri::Other(s) => s.split(':').next().unwrap_or_default().to_ascii_lowercase(),
        }
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other(_) => None,
        }
    }
}

impl SipUri {
    /// A URI `sip:user@host` with no port or parameters.
    pub fn new(user: Option<&str>, host: Host) -> Self {
        SipUri {
            secure: false,
            user: user.map(str::to_owned),
            password: None,
            host,
            port: None,
            params: Vec::new(),
            headers: Vec::new(),
        }
    }

    fn parse_after_scheme(s: &str, secure: bool) -> Result<SipUri, UriError> {
        // '@' is not allowed unescaped in parameters or headers, so the first one ends userinfo.
        let (userinfo, rest) = match find_byte(s, b'@') {
            Some(at) => (Some(&s[..at]), &s[at + 1..]),
            None => (None, s),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match find_byte(ui, b':') {
                    Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(UriError("empty user part"));
                }
                let user = decode(u, is_user_char)?;
                let password = p.map(|p| decode(p, is_password_char)).transpose()?;
                (Some(user), password)
            }
        };
        let end = find_param_end(rest);
        let (host, port) = parse_hostport(&rest[..end])?;
        let mut rest = &rest[end..];
        let mut params = Vec::new();
        while let Some(r) = rest.strip_prefix(';') {
            let end = find_param_end(r);
            let p = &r[..end];
            let (name, value) = match find_byte(p, b'=') {
                Some(eq) => (&p[..eq], Some(&p[eq + 1..])),
                None => (p, None),
            };
            if name.is_empty() {
                return Err(UriError("empty URI parameter"));
            }
            let name = decode(name, is_param_char)?;
            let value = match value {
                Some("") => return Err(UriError("empty URI parameter value")),
                Some(v) => Some(decode(v, is_param_char)?),
                None => None,
            };
            params.push((name, value));
            rest = &r[end..];
        }
        let mut headers = Vec::new();
        if let Some(h) = rest.strip_prefix('?') {
            for pair in h.split('&') {
                let eq = pair.find('=').ok_or(UriError("URI header without '='"))?;
                let name = &pair[..eq];
                if name.is_empty() {
                    return Err(UriError("empty URI header name"));
                }
                headers.push((
                    decode(name, is_header_char)?,
                    decode(&pair[eq + 1..], is_header_char)?,
                ));
            }
            rest = "";
        }
        if !rest.is_empty() {
            return Err(UriError("trailing characters"));
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// The value of a URI parameter (names compare case-insensitively); `Some(None)` for a flag.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
}

/// Parses `host [":" port]`, where host is a hostname, IPv4 address or IPv6 reference.
pub(crate) fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), UriError> {
    let (host, rest) = if let Some(r) = s.strip_prefix('[') {
        let close = r.find(']').ok_or(UriError("unterminated IPv6 reference"))?;
        let addr: Ipv6Addr = r[..close]
            .parse()
            .map_err(|_| UriError("invalid IPv6 address"))?;
        (Host::V6(addr), &r[close + 1..])
    } else {
        let end = find_byte(s, b':').unwrap_or(s.len());
        (parse_host_name(&s[..end])?, &s[end..])
    };
    let port = match rest.strip_prefix(':') {
        None if rest.is_empty() => None,
        None => return Err(UriError("unexpected characters after host")),
        Some(p) => Some(parse_port(p)?),
    };
    Ok((host, port))
}

fn parse_port(p: &str) -> Result<u16, UriError> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UriError("invalid port"));
    }
    p.parse().map_err(|_| UriError("port out of range"))
}

/// Parses a hostname or IPv4 address (no brackets).
pub(crate) fn parse_host_name(h: &str) -> Result<Host, UriError> {
    if h.is_empty() {
        return Err(UriError("empty host"));
    }
    if h.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return h
            .parse()
            .map(Host::V4)
            .map_err(|_| UriError("invalid IPv4 address"));
    }
    // Bytewise: the char-pattern trim and split showed in the parse profile.
    let b = h.as_bytes();
    let end = b.iter().rposition(|&c| c != b'.').map_or(0, |e| e + 1);
    let labels_ok = b[..end].split(|&c| c == b'.').all(|l| {
        matches!((l.first(), l.last()), (Some(&f), Some(&z)) if f != b'-' && z != b'-')
            && l.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
    });
    if !labels_ok {
        return Err(UriError("invalid host name"));
    }
    Ok(Host::Name(h.to_owned()))
}

/// The first `b` (ASCII) in `s`. URI parts are short: a plain loop beats a call into
/// `str::find`'s searcher, which showed in the parse profile.
fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

/// Where the host, or a parameter, ends: at the next `;` or `?`, or the end of `s`.
fn find_param_end(s: &str) -> usize {
    s.bytes()
        .position(|c| c == b';' || c == b'?')
        .unwrap_or(s.len())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}
fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}
fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}
fn is_param_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}
fn is_header_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

/// %-decodes `s`, allowing only `allowed` characters unescaped; the result must be UTF-8.
fn decode(s: &str, allowed: fn(u8) -> bool) -> Result<String, UriError> {
    let b = s.as_bytes();
    // Most parts hold no escape: then the text is the value, copied in one go.
    let plain = b.iter().position(|&c| !allowed(c)).unwrap_or(b.len());
    if plain == b.len() {
        return Ok(s.to_owned());
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..plain]);
    let mut i = plain;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(UriError("truncated %-escape"))?;
            let v = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(UriError("invalid %-escape"))?;
            out.push(v);
            i += 3;
        } else if allowed(b[i]) {
            out.push(b[i]);
            i += 1;
        } else {
            return Err(UriError("character not allowed in URI"));
        }
    }
    String::from_utf8(out).map_err(|_| UriError("%-escapes do not decode to UTF-8"))
}

/// Writes `s`, %-escaping every byte outside `allowed`; runs of allowed bytes go out as one slice.
fn encode(f: &mut fmt::Formatter<'_>, s: &str, allowed: fn(u8) -> bool) -> fmt::Result {
    let mut run = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if !allowed(b) {
            // Escaped bytes are never in `allowed`, which holds only ASCII, so `i` is a char boundary.
            f.write_str(&s[run..i])?;
            write!(f, "%{b:02X}")?;
            run = i + 1;
        }
    }
    f.write_str(&s[run..])
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            // ':' and '@' are not user characters, so a decoded one is escaped and cannot split the URI.
            encode(f, user, is_user_char)?;
            if let Some(p) = &self.password {
                f.write_str(":")?;
                encode(f, p, is_password_char)?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (n, v) in &self.params {
            f.write_str(";")?;
            encode(f, n, is_param_char)?;
            if let Some(v) = v {
                f.write_str("=")?;
                encode(f, v, is_param_char)?;
            }
        }
        for (i, (n, v)) in self.headers.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            encode(f, n, is_header_char)?;
            f.write_str("=")?;
            encode(f, v, is_header_char)?;
        }
        Ok(())
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Other(s) => f.write_str(s),
        }
    }
}

impl std::str::FromStr for Uri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uri::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri {
        match Uri::parse(s).unwrap() {
            Uri::Sip(u) => u,
            other => panic!("not sip: {other:?}"),
        }
    }

    #[test]
    fn parses_all_parts() {
        let u = sip(
            "sips:alice:secret@example.com:5061;transport=tcp;lr?Subject=hi%20there&Priority=urgent",
        );
        assert!(u.secure);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.host, Host::Name("example.com".into()));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.param("TRANSPORT"), Some(Some("tcp")));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.headers[0], ("Subject".into(), "hi there".into()));
    }

    #[test]
    fn ipv6_and_ipv4_hosts() {
        assert_eq!(sip("sip:[2001:db8::10]:5070").port, Some(5070));
        assert_eq!(sip("sip:[2001:db8::10:5070]").port, None);
        assert!(Uri::parse("sip:2001:db8::10").is_err());
        assert!(Uri::parse("sip:user@[2001:db8:::192.0.2.1]").is_err());
        assert_eq!(
            sip("sip:192.0.2.1").host,
            Host::V4(Ipv4Addr::new(192, 0, 2, 1))
        );
    }

    #[test]
    fn escapes_decode_and_reencode() {
        let u = sip("sip:sips%3Auser%40example.com@example.net");
        assert_eq!(u.user.as_deref(), Some("sips:user@example.com"));
        assert_eq!(u.to_string(), "sip:sips%3Auser%40example.com@example.net");
        assert_eq!(
            sip("sip:%75se%72@example.com").to_string(),
            "sip:user@example.com"
        );
        assert!(Uri::parse("sip:a%2@example.com").is_err());
    }

    #[test]
    fn other_schemes_are_opaque() {
        assert_eq!(Uri::parse("tel:+1-201-555-0123").unwrap().scheme(), "tel");
        assert!(Uri::parse("<sip:a@b>").is_err());
    }
}
