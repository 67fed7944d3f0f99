//! XMPP addresses (RFC 7622): bare and full JIDs, parsed, validated and normalised once.
//!
//! Every part is enforced with the RFC 7622 profiles (PRECIS `UsernameCaseMapped` for the localpart, `OpaqueString`
//! for the resourcepart; the domainpart is lower-cased and checked label by label) so two spellings of one address
//! compare equal. Pure-ASCII parts, by far the common case, take a fast path that applies the same rules without the
//! Unicode machinery. Values are cheap to clone (one shared allocation), because the engine copies addresses into
//! every roster, watcher list and delivery it emits.

use std::fmt;
use std::sync::Arc;

use precis_profiles::precis_core::profile::PrecisFastInvocation;
use precis_profiles::{OpaqueString, UsernameCaseMapped};

/// The largest size in bytes of each of the three parts of a JID (RFC 7622 §3.2-3.4).
pub const MAX_PART_BYTES: usize = 1023;

/// What was wrong with an address that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JidError {
    /// The domainpart is empty.
    #[error("the domainpart of {0:?} is empty")]
    EmptyDomain(String),
    /// A `@` with nothing before it.
    #[error("the localpart of {0:?} is empty")]
    EmptyLocal(String),
    /// A `/` with nothing after it.
    #[error("the resourcepart of {0:?} is empty")]
    EmptyResource(String),
    /// One part is longer than 1023 bytes once normalised.
    #[error("the {part} of the address is {len} bytes long; at most 1023 are allowed")]
    TooLong {
        /// Which part (`localpart`, `domainpart`, `resourcepart`).
        part: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The localpart holds a character RFC 7622 forbids there.
    #[error("the localpart {0:?} contains a character not allowed in a localpart")]
    BadLocal(String),
    /// The domainpart is not a valid host name or IP literal.
    #[error("the domainpart {0:?} is not a valid domain name or IP literal")]
    BadDomain(String),
    /// The resourcepart holds a character RFC 7622 forbids there.
    #[error("the resourcepart {0:?} contains a character not allowed in a resourcepart")]
    BadResource(String),
    /// A bare JID was required but the address has a resource.
    #[error("{0:?} has a resourcepart where a bare JID is required")]
    HasResource(String),
    /// A full JID was required but the address has no resource.
    #[error("{0:?} has no resourcepart where a full JID is required")]
    NotFull(String),
}

/// An address without a resource: `user@domain` or a bare `domain`. The key of accounts, rosters and policy.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BareJid {
    /// The normalised text `local@domain` or `domain`.
    text: Arc<str>,
    /// Byte length of the localpart, when there is one.
    local_len: Option<u32>,
}

/// An address with a resource: `user@domain/resource`, naming one session.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FullJid {
    bare: BareJid,
    resource: Arc<str>,
}

/// Any address: bare or full.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Jid {
    /// No resourcepart.
    Bare(BareJid),
    /// With a resourcepart.
    Full(FullJid),
}

impl BareJid {
    /// Parses and normalises a bare JID; a resourcepart, if present, is an error.
    pub fn new(s: &str) -> Result<Self, JidError> {
        match Jid::new(s)? {
            Jid::Bare(b) => Ok(b),
            Jid::Full(f) => Err(JidError::HasResource(f.to_string())),
        }
    }

    /// Builds `local@domain` from already separate parts, validating both.
    pub fn from_parts(local: Option<&str>, domain: &str) -> Result<Self, JidError> {
        let domain = normalize_domain(domain)?;
        let local = local.map(normalize_local).transpose()?;
        Ok(Self::assemble(local.as_deref(), &domain))
    }

    fn assemble(local: Option<&str>, domain: &str) -> Self {
        match local {
            Some(l) => BareJid {
                text: Arc::from(format!("{l}@{domain}")),
                local_len: Some(l.len() as u32),
            },
            None => BareJid {
                text: Arc::from(domain),
                local_len: None,
            },
        }
    }

    /// The localpart (`alice` of `alice@example.com`), if any.
    pub fn local(&self) -> Option<&str> {
        self.local_len.map(|n| &self.text[..n as usize])
    }

    /// The domainpart.
    pub fn domain(&self) -> &str {
        match self.local_len {
            Some(n) => &self.text[n as usize + 1..],
            None => &self.text,
        }
    }

    /// The normalised text of the address.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Adds a resource to make a full JID.
    pub fn with_resource(&self, resource: &str) -> Result<FullJid, JidError> {
        Ok(FullJid {
            bare: self.clone(),
            resource: Arc::from(normalize_resource(resource)?),
        })
    }
}

impl FullJid {
    /// Parses and normalises a full JID; a missing resourcepart is an error.
    pub fn new(s: &str) -> Result<Self, JidError> {
        match Jid::new(s)? {
            Jid::Full(f) => Ok(f),
            Jid::Bare(_) => Err(JidError::NotFull(s.to_owned())),
        }
    }

    /// The address without its resource.
    pub fn bare(&self) -> &BareJid {
        &self.bare
    }

    /// The resourcepart.
    pub fn resource(&self) -> &str {
        &self.resource
    }
}

impl Jid {
    /// Parses and normalises any JID (RFC 7622 §3.1: the resource starts at the first `/`, the localpart ends at the
    /// first `@` before it).
    pub fn new(s: &str) -> Result<Self, JidError> {
        let (rest, resource) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let (local, domain) = match rest.find('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        if local == Some("") {
            return Err(JidError::EmptyLocal(s.to_owned()));
        }
        if resource == Some("") {
            return Err(JidError::EmptyResource(s.to_owned()));
        }
        let bare = BareJid::from_parts(local, domain)?;
        match resource {
            None => Ok(Jid::Bare(bare)),
            Some(r) => Ok(Jid::Full(bare.with_resource(r)?)),
        }
    }

    /// The address without any resource.
    pub fn bare(&self) -> &BareJid {
        match self {
            Jid::Bare(b) => b,
            Jid::Full(f) => &f.bare,
        }
    }

    /// The resourcepart, if this is a full JID.
    pub fn resource(&self) -> Option<&str> {
        match self {
            Jid::Bare(_) => None,
            Jid::Full(f) => Some(&f.resource),
        }
    }
}

fn check_len(part: &'static str, s: &str) -> Result<(), JidError> {
    if s.len() > MAX_PART_BYTES {
        return Err(JidError::TooLong { part, len: s.len() });
    }
    Ok(())
}

/// RFC 7622 §3.3.1: these are excluded from localparts on top of the `UsernameCaseMapped` profile.
fn forbidden_in_local(c: char) -> bool {
    matches!(c, '"' | '&' | '\'' | '/' | ':' | '<' | '>' | '@')
}

fn normalize_local(s: &str) -> Result<String, JidError> {
    check_len("localpart", s)?;
    let out = if s.bytes().all(|b| b.is_ascii_graphic()) {
        s.to_ascii_lowercase()
    } else {
        UsernameCaseMapped::enforce(s)
            .map_err(|_| JidError::BadLocal(s.to_owned()))?
            .into_owned()
    };
    if out.is_empty() {
        return Err(JidError::EmptyLocal(s.to_owned()));
    }
    if out.chars().any(forbidden_in_local) {
        return Err(JidError::BadLocal(s.to_owned()));
    }
    check_len("localpart", &out)?;
    Ok(out)
}

fn normalize_resource(s: &str) -> Result<String, JidError> {
    check_len("resourcepart", s)?;
    let out = if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        s.to_owned()
    } else {
        OpaqueString::enforce(s)
            .map_err(|_| JidError::BadResource(s.to_owned()))?
            .into_owned()
    };
    if out.is_empty() {
        return Err(JidError::EmptyResource(s.to_owned()));
    }
    check_len("resourcepart", &out)?;
    Ok(out)
}

fn normalize_domain(s: &str) -> Result<String, JidError> {
    // A single trailing dot names the same domain (RFC 7622 §3.2).
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return Err(JidError::EmptyDomain(s.to_owned()));
    }
    check_len("domainpart", s)?;
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(ip) => Ok(format!("[{ip}]")),
            Err(_) => Err(JidError::BadDomain(s.to_owned())),
        };
    }
    let lower = s.to_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c == '-' || c == '_' || c.is_alphanumeric())
    };
    if !lower.split('.').all(label_ok) {
        return Err(JidError::BadDomain(s.to_owned()));
    }
    check_len("domainpart", &lower)?;
    Ok(lower)
}

impl fmt::Display for BareJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for BareJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BareJid({})", self.text)
    }
}

impl fmt::Display for FullJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.bare, self.resource)
    }
}

impl fmt::Debug for FullJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FullJid({self})")
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Jid::Bare(b) => b.fmt(f),
            Jid::Full(j) => fmt::Display::fmt(j, f),
        }
    }
}

impl fmt::Debug for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jid({self})")
    }
}

impl std::str::FromStr for Jid {
    type Err = JidError;
    fn from_str(s: &str) -> Result<Self, JidError> {
        Jid::new(s)
    }
}

impl std::str::FromStr for BareJid {
    type Err = JidError;
    fn from_str(s: &str) -> Result<Self, JidError> {
        BareJid::new(s)
    }
}

impl std::str::FromStr for FullJid {
    type Err = JidError;
    fn from_str(s: &str) -> Result<Self, JidError> {
        FullJid::new(s)
    }
}

impl From<BareJid> for Jid {
    fn from(b: BareJid) -> Self {
        Jid::Bare(b)
    }
}

impl From<FullJid> for Jid {
    fn from(f: FullJid) -> Self {
        Jid::Full(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_three_parts() {
        let j = Jid::new("Alice@Example.COM/Laptop Home").unwrap();
        assert_eq!(j.bare().local(), Some("alice"));
        assert_eq!(j.bare().domain(), "example.com");
        assert_eq!(j.resource(), Some("Laptop Home"));
        assert_eq!(j.to_string(), "alice@example.com/Laptop Home");
    }

    #[test]
    fn resource_may_contain_at_and_slash() {
        let j = FullJid::new("a@b/c@d/e").unwrap();
        assert_eq!(j.bare().as_str(), "a@b");
        assert_eq!(j.resource(), "c@d/e");
    }

    #[test]
    fn domain_only_and_trailing_dot() {
        let j = BareJid::new("Example.com.").unwrap();
        assert_eq!(j.local(), None);
        assert_eq!(j.as_str(), "example.com");
    }

    #[test]
    fn ip_literals() {
        assert_eq!(BareJid::new("u@[::1]").unwrap().domain(), "[::1]");
        assert_eq!(BareJid::new("u@127.0.0.1").unwrap().domain(), "127.0.0.1");
        assert!(BareJid::new("u@[nonsense]").is_err());
    }

    #[test]
    fn unicode_localpart_is_case_mapped() {
        let a = BareJid::new("ÅNGSTRÖM@example.com").unwrap();
        let b = BareJid::new("ångström@example.com").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_bad_parts() {
        assert!(matches!(
            Jid::new("@example.com"),
            Err(JidError::EmptyLocal(_))
        ));
        assert!(matches!(
            Jid::new("a@example.com/"),
            Err(JidError::EmptyResource(_))
        ));
        assert!(matches!(Jid::new("a@"), Err(JidError::EmptyDomain(_))));
        assert!(matches!(
            Jid::new("a b@example.com"),
            Err(JidError::BadLocal(_))
        ));
        assert!(matches!(
            Jid::new("a\"b@example.com"),
            Err(JidError::BadLocal(_))
        ));
        assert!(matches!(
            Jid::new("a@exa mple.com"),
            Err(JidError::BadDomain(_))
        ));
        assert!(matches!(
            Jid::new("a@-bad.com"),
            Err(JidError::BadDomain(_))
        ));
        assert!(matches!(Jid::new("a@x..com"), Err(JidError::BadDomain(_))));
        assert!(matches!(
            Jid::new("a@x/\u{7}"),
            Err(JidError::BadResource(_))
        ));
        assert!(matches!(FullJid::new("a@x"), Err(JidError::NotFull(_))));
        assert!(BareJid::new("a@x/r").is_err());
    }

    #[test]
    fn enforces_part_lengths() {
        let ok = "a".repeat(1023);
        assert!(Jid::new(&format!("{ok}@x/{ok}")).is_ok());
        let long = "a".repeat(1024);
        assert!(matches!(
            Jid::new(&format!("{long}@x")),
            Err(JidError::TooLong {
                part: "localpart",
                len: 1024
            })
        ));
        assert!(matches!(
            Jid::new(&format!("a@x/{long}")),
            Err(JidError::TooLong {
                part: "resourcepart",
                ..
            })
        ));
        let label = "a".repeat(63);
        let domain = vec![label.as_str(); 17].join(".");
        assert!(matches!(
            Jid::new(&domain),
            Err(JidError::TooLong {
                part: "domainpart",
                ..
            })
        ));
    }
}
