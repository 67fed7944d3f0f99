//! Header field names: case-insensitive matching, compact forms and canonical spelling.

use std::fmt;

macro_rules! header_names {
    ($( $variant:ident => $canon:literal, $lower:literal $(, $compact:literal)? ; )*) => {
        /// A header field name; well-known names are variants, others keep their spelling.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $(
                #[doc = $canon]
                $variant,
            )*
            /// Any other header, spelled as received.
            Other(String),
        }

        impl HeaderName {
            /// Parses a name case-insensitively, expanding compact forms (`i` → Call-ID, `v` → Via …).
            pub fn parse(s: &str) -> HeaderName {
                // Lower-case into a stack buffer once, then one `match` (length + memcmp)
                // instead of a case-insensitive comparison against every known name.
                let mut buf = [0u8; 24];
                if s.len() <= buf.len() {
                    for (d, b) in buf.iter_mut().zip(s.bytes()) {
                        *d = b.to_ascii_lowercase();
                    }
                    match &buf[..s.len()] {
                        $( $lower $(| $compact)? => return HeaderName::$variant, )*
                        _ => {}
                    }
                }
                match compact_only(s) {
                    Some(full) => HeaderName::Other(full.to_owned()),
                    None => HeaderName::Other(s.to_owned()),
                }
            }

            /// The canonical spelling written when serializing.
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $canon, )*
                    HeaderName::Other(s) => s,
                }
            }
        }
    };
}

header_names! {
    Accept => "Accept", b"accept";
    AcceptEncoding => "Accept-Encoding", b"accept-encoding";
    AcceptLanguage => "Accept-Language", b"accept-language";
    Allow => "Allow", b"allow";
    AllowEvents => "Allow-Events", b"allow-events", b"u";
    Authorization => "Authorization", b"authorization";
    CallId => "Call-ID", b"call-id", b"i";
    Contact => "Contact", b"contact", b"m";
    ContentDisposition => "Content-Disposition", b"content-disposition";
    ContentEncoding => "Content-Encoding", b"content-encoding", b"e";
    ContentLength => "Content-Length", b"content-length", b"l";
    ContentType => "Content-Type", b"content-type", b"c";
    CSeq => "CSeq", b"cseq";
    Date => "Date", b"date";
    Event => "Event", b"event", b"o";
    Expires => "Expires", b"expires";
    From => "From", b"from", b"f";
    MaxForwards => "Max-Forwards", b"max-forwards";
    MinExpires => "Min-Expires", b"min-expires";
    ProxyAuthenticate => "Proxy-Authenticate", b"proxy-authenticate";
    ProxyAuthorization => "Proxy-Authorization", b"proxy-authorization";
    ProxyRequire => "Proxy-Require", b"proxy-require";
    RecordRoute => "Record-Route", b"record-route";
    ReferTo => "Refer-To", b"refer-to", b"r";
    Require => "Require", b"require";
    RetryAfter => "Retry-After", b"retry-after";
    Route => "Route", b"route";
    Server => "Server", b"server";
    SipETag => "SIP-ETag", b"sip-etag";
    SipIfMatch => "SIP-If-Match", b"sip-if-match";
    Subject => "Subject", b"subject", b"s";
    SubscriptionState => "Subscription-State", b"subscription-state";
    Supported => "Supported", b"supported", b"k";
    Timestamp => "Timestamp", b"timestamp";
    To => "To", b"to", b"t";
    Unsupported => "Unsupported", b"unsupported";
    UserAgent => "User-Agent", b"user-agent";
    Via => "Via", b"via", b"v";
    Warning => "Warning", b"warning";
    WwwAuthenticate => "WWW-Authenticate", b"www-authenticate";
}

/// Compact forms of headers we do not model as variants (RFC 3261 §7.3.3 and the IANA registry).
fn compact_only(s: &str) -> Option<&'static str> {
    if s.len() != 1 {
        return None;
    }
    Some(match s.as_bytes()[0].to_ascii_lowercase() {
        b'a' => "Accept-Contact",
        b'b' => "Referred-By",
        b'd' => "Request-Disposition",
        b'j' => "Reject-Contact",
        b'n' => "Identity-Info",
        b'x' => "Session-Expires",
        b'y' => "Identity",
        _ => return None,
    })
}

impl HeaderName {
    /// True for headers that may appear at most once with a single value (RFC 3261 §7.3).
    pub fn is_single_valued(&self) -> bool {
        matches!(
            self,
            HeaderName::CallId
                | HeaderName::ContentLength
                | HeaderName::ContentType
                | HeaderName::CSeq
                | HeaderName::From
                | HeaderName::To
                | HeaderName::MaxForwards
                | HeaderName::Expires
                | HeaderName::Event
                | HeaderName::SubscriptionState
                | HeaderName::SipETag
                | HeaderName::SipIfMatch
        )
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for HeaderName {
    fn from(s: &str) -> Self {
        HeaderName::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive() {
        assert_eq!(HeaderName::parse("i"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("MaX-fOrWaRdS"), HeaderName::MaxForwards);
        assert_eq!(HeaderName::parse("L"), HeaderName::ContentLength);
        assert_eq!(HeaderName::parse("x").as_str(), "Session-Expires");
        assert_eq!(
            HeaderName::parse("C%6Fntact"),
            HeaderName::Other("C%6Fntact".into())
        );
        assert_eq!(HeaderName::parse("sip-etag").as_str(), "SIP-ETag");
    }
}
