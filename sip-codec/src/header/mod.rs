//! Header fields: the raw list kept in order (so unknown headers round-trip) and typed accessors.

mod auth;
mod content_type;
mod cseq;
mod event;
mod name;
mod name_addr;
mod params;
mod value;
mod via;

pub use auth::{AuthHeader, AuthParam, parse_auth};
pub use content_type::{MediaType, parse_media_type};
pub use cseq::{CSeq, parse_cseq};
pub use event::{Event, SubState, SubscriptionState, parse_event, parse_subscription_state};
pub use name::HeaderName;
pub use name_addr::{Contacts, NameAddr, parse_contacts, parse_name_addr};
pub use params::Params;
pub use value::HeaderValue;
pub use via::{Via, parse_via, top_branch};

use crate::grammar::{is_token, is_word, parse_delta_seconds, parse_u32, split_list};

/// One header field; `value` is unfolded (continuation lines joined by one space) and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name.
    pub name: HeaderName,
    /// The value as received, unfolded.
    pub value: HeaderValue,
}

/// A header value that does not match its grammar; `Display` is suitable as a reason phrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Malformed {header} header: {what}")]
pub struct HeaderError {
    /// Canonical name of the offending header.
    pub header: String,
    /// What was wrong.
    pub what: &'static str,
}

impl HeaderError {
    fn new(name: &HeaderName, what: &'static str) -> Self {
        HeaderError {
            header: name.as_str().to_owned(),
            what,
        }
    }
}

/// The header fields of a message, in received order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    /// An empty header list.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Appends a header.
    pub fn push(&mut self, name: HeaderName, value: impl Into<HeaderValue>) {
        self.0.push(Header {
            name,
            value: value.into(),
        });
    }

    /// Replaces every header of this name with one value (appended at the end if absent).
    pub fn set(&mut self, name: HeaderName, value: impl Into<HeaderValue>) {
        let value = value.into();
        match self.0.iter().position(|h| h.name == name) {
            Some(pos) => {
                self.0[pos].value = value;
                let mut k = 0;
                self.0.retain(|h| {
                    k += 1;
                    k - 1 == pos || h.name != name
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes every header of this name.
    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|h| &h.name != name);
    }

    /// The first value of a header.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0.iter().find(|h| &h.name == name).map(|h| &*h.value)
    }

    /// All values of a header, in order (each may itself be a comma-separated list).
    pub fn get_all<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        let name = name.clone();
        self.0
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| &*h.value)
    }

    /// How many header lines carry this name.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| &h.name == name).count()
    }

    /// Every element of a comma-separated list header, across repeated lines.
    pub fn list(&self, name: &HeaderName) -> Vec<&str> {
        self.get_all(name)
            .flat_map(split_list)
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn typed<T>(
        &self,
        name: HeaderName,
        parse: impl Fn(&str) -> Result<T, &'static str>,
    ) -> Result<Option<T>, HeaderError> {
        self.get(&name)
            .map(|v| parse(v).map_err(|w| HeaderError::new(&name, w)))
            .transpose()
    }

    /// All Via entries, top first.
    pub fn via(&self) -> Result<Vec<Via>, HeaderError> {
        let name = HeaderName::Via;
        let mut out = Vec::new();
        for v in self.get_all(&name) {
            for item in split_list(v) {
                out.push(parse_via(item).map_err(|w| HeaderError::new(&name, w))?);
            }
        }
        Ok(out)
    }

    /// The From address.
    pub fn from(&self) -> Result<Option<NameAddr>, HeaderError> {
        self.typed(HeaderName::From, parse_name_addr)
    }

    /// The To address.
    pub fn to(&self) -> Result<Option<NameAddr>, HeaderError> {
        self.typed(HeaderName::To, parse_name_addr)
    }

    /// The Call-ID (`word ["@" word]`).
    pub fn call_id(&self) -> Result<Option<&str>, HeaderError> {
        let name = HeaderName::CallId;
        match self.get(&name) {
            None => Ok(None),
            Some(v) => {
                let (a, b) = v.split_once('@').unwrap_or((v, "x"));
                if a.is_empty()
                    || b.is_empty()
                    || !a.chars().all(is_word)
                    || !b.chars().all(is_word)
                {
                    return Err(HeaderError::new(&name, "not a word[@word]"));
                }
                Ok(Some(v))
            }
        }
    }

    /// The CSeq.
    pub fn cseq(&self) -> Result<Option<CSeq>, HeaderError> {
        self.typed(HeaderName::CSeq, parse_cseq)
    }

    /// The Contact value(s).
    pub fn contact(&self) -> Result<Option<Contacts>, HeaderError> {
        let name = HeaderName::Contact;
        let values: Vec<&str> = self.get_all(&name).collect();
        if values.is_empty() {
            return Ok(None);
        }
        parse_contacts(&values)
            .map(Some)
            .map_err(|w| HeaderError::new(&name, w))
    }

    /// Route entries, top first.
    pub fn route(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.addr_list(HeaderName::Route)
    }

    /// Record-Route entries, top first.
    pub fn record_route(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.addr_list(HeaderName::RecordRoute)
    }

    fn addr_list(&self, name: HeaderName) -> Result<Vec<NameAddr>, HeaderError> {
        self.list(&name)
            .into_iter()
            .map(|v| parse_name_addr(v).map_err(|w| HeaderError::new(&name, w)))
            .collect()
    }

    /// Expires in seconds (saturating at u32::MAX for huge values).
    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        self.typed(HeaderName::Expires, |v| {
            parse_delta_seconds(v).ok_or("not a number of seconds")
        })
    }

    /// Min-Expires in seconds.
    pub fn min_expires(&self) -> Result<Option<u32>, HeaderError> {
        self.typed(HeaderName::MinExpires, |v| {
            parse_delta_seconds(v).ok_or("not a number of seconds")
        })
    }

    /// Max-Forwards (0-255).
    pub fn max_forwards(&self) -> Result<Option<u8>, HeaderError> {
        self.typed(HeaderName::MaxForwards, |v| {
            let n = parse_u32(v).ok_or("not a number")?;
            u8::try_from(n).map_err(|_| "larger than 255")
        })
    }

    /// Content-Length in bytes.
    pub fn content_length(&self) -> Result<Option<usize>, HeaderError> {
        self.typed(HeaderName::ContentLength, |v| {
            parse_u32(v).map(|n| n as usize).ok_or("not a number")
        })
    }

    /// Content-Type.
    pub fn content_type(&self) -> Result<Option<MediaType>, HeaderError> {
        self.typed(HeaderName::ContentType, parse_media_type)
    }

    /// Event.
    pub fn event(&self) -> Result<Option<Event>, HeaderError> {
        self.typed(HeaderName::Event, parse_event)
    }

    /// Subscription-State.
    pub fn subscription_state(&self) -> Result<Option<SubscriptionState>, HeaderError> {
        self.typed(HeaderName::SubscriptionState, parse_subscription_state)
    }

    /// SIP-ETag (RFC 3903).
    pub fn sip_etag(&self) -> Result<Option<&str>, HeaderError> {
        self.token_header(HeaderName::SipETag)
    }

    /// SIP-If-Match (RFC 3903).
    pub fn sip_if_match(&self) -> Result<Option<&str>, HeaderError> {
        self.token_header(HeaderName::SipIfMatch)
    }

    fn token_header(&self, name: HeaderName) -> Result<Option<&str>, HeaderError> {
        match self.get(&name) {
            Some(v) if v.is_empty() || !v.chars().all(is_token) => {
                Err(HeaderError::new(&name, "not a token"))
            }
            other => Ok(other),
        }
    }

    fn token_list(&self, name: HeaderName) -> Result<Vec<&str>, HeaderError> {
        let items = self.list(&name);
        if items.iter().any(|t| !t.chars().all(is_token)) {
            return Err(HeaderError::new(&name, "not a list of tokens"));
        }
        Ok(items)
    }

    /// Allow: the methods, as tokens.
    pub fn allow(&self) -> Result<Vec<&str>, HeaderError> {
        self.token_list(HeaderName::Allow)
    }

    /// Supported option tags.
    pub fn supported(&self) -> Result<Vec<&str>, HeaderError> {
        self.token_list(HeaderName::Supported)
    }

    /// Require option tags.
    pub fn require(&self) -> Result<Vec<&str>, HeaderError> {
        self.token_list(HeaderName::Require)
    }

    /// Proxy-Require option tags.
    pub fn proxy_require(&self) -> Result<Vec<&str>, HeaderError> {
        self.token_list(HeaderName::ProxyRequire)
    }

    fn auth_list(&self, name: HeaderName) -> Result<Vec<AuthHeader>, HeaderError> {
        // Several challenges may share one line; a new challenge starts where an item has a
        // scheme followed by white space, so only split on commas and regroup by that rule.
        let mut out = Vec::new();
        for v in self.get_all(&name) {
            let mut current = String::new();
            for item in split_list(v) {
                let starts_challenge = item
                    .split_once([' ', '\t'])
                    .is_some_and(|(head, _)| !head.contains('='));
                if starts_challenge && !current.is_empty() {
                    out.push(parse_auth(&current).map_err(|w| HeaderError::new(&name, w))?);
                    current.clear();
                }
                if !current.is_empty() {
                    current.push_str(", ");
                }
                current.push_str(item);
            }
            out.push(parse_auth(&current).map_err(|w| HeaderError::new(&name, w))?);
        }
        Ok(out)
    }

    /// WWW-Authenticate challenges.
    pub fn www_authenticate(&self) -> Result<Vec<AuthHeader>, HeaderError> {
        self.auth_list(HeaderName::WwwAuthenticate)
    }

    /// Proxy-Authenticate challenges.
    pub fn proxy_authenticate(&self) -> Result<Vec<AuthHeader>, HeaderError> {
        self.auth_list(HeaderName::ProxyAuthenticate)
    }

    /// Authorization credentials.
    pub fn authorization(&self) -> Result<Vec<AuthHeader>, HeaderError> {
        self.auth_list(HeaderName::Authorization)
    }

    /// Proxy-Authorization credentials.
    pub fn proxy_authorization(&self) -> Result<Vec<AuthHeader>, HeaderError> {
        self.auth_list(HeaderName::ProxyAuthorization)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_access_and_lists() {
        let mut h = Headers::new();
        h.push(
            HeaderName::Via,
            "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com",
        );
        h.push(HeaderName::Via, "SIP/2.0/TLS c.example.com;branch=z9hG4bK3");
        h.push(HeaderName::Allow, "INVITE, ACK,SUBSCRIBE");
        h.push(HeaderName::Allow, "NOTIFY");
        h.push(
            HeaderName::WwwAuthenticate,
            r#"Digest realm="a", nonce="1", Digest realm="b", nonce="2", algorithm=SHA-256"#,
        );
        assert_eq!(h.via().unwrap().len(), 3);
        assert_eq!(
            h.allow().unwrap(),
            vec!["INVITE", "ACK", "SUBSCRIBE", "NOTIFY"]
        );
        let ch = h.www_authenticate().unwrap();
        assert_eq!(ch.len(), 2);
        assert_eq!(ch[1].get("algorithm"), Some("SHA-256"));
        h.set(HeaderName::Via, "SIP/2.0/UDP z.example.com");
        assert_eq!(h.count(&HeaderName::Via), 1);
    }

    #[test]
    fn numeric_headers() {
        let mut h = Headers::new();
        h.push(HeaderName::MaxForwards, "0068");
        h.push(HeaderName::Expires, "10000000000000000000000");
        assert_eq!(h.max_forwards().unwrap(), Some(68));
        assert_eq!(h.expires().unwrap(), Some(u32::MAX));
        h.push(HeaderName::CSeq, "36893488147419103232 REGISTER");
        assert!(h.cseq().is_err());
    }
}
