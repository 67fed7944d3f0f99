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

        /// Every well-known name in lower case, and every compact form of one, with its variant.
        const KNOWN: &[(&[u8], HeaderName)] = &[
            $(
                ($lower, HeaderName::$variant),
                $( ($compact, HeaderName::$variant), )?
            )*
        ];

        impl HeaderName {
            /// Parses a name case-insensitively, expanding compact forms (`i` → Call-ID, `v` → Via …).
            pub fn parse(s: &str) -> HeaderName {
                // The lookup expects token characters; of the others only CR could pass for
                // one (it reads as `-`), so such a name is never a well-known one.
                if s.as_bytes().contains(&b'\r') {
                    return HeaderName::Other(s.to_owned());
                }
                HeaderName::parse_token(s.as_bytes())
            }

            /// [`HeaderName::parse`] of a name given as bytes (the header parser has checked
            /// they are token characters, so ASCII; anything else is kept lossily).
            // Inlined into the header loop: returned through memory, the name was written in
            // narrow stores and read back wide, which stalled.
            #[inline]
            pub(crate) fn parse_token(b: &[u8]) -> HeaderName {
                // One table lookup on (length, first byte, last byte) and one case-insensitive
                // comparison, without lower-casing a copy first: this runs once per header line.
                if let (Some(&first), Some(&last)) = (b.first(), b.last()) {
                    let k = SLOTS[slot(b.len(), first, last)];
                    if let Some((known, name)) = KNOWN.get(usize::from(k).wrapping_sub(1)) {
                        if eq_lower(known, b) {
                            return name.clone();
                        }
                    }
                }
                HeaderName::other(b)
            }

            /// A name that is no variant: the full form of a compact one, or as spelled.
            #[inline(never)]
            fn other(b: &[u8]) -> HeaderName {
                let s = String::from_utf8_lossy(b);
                match compact_only(&s) {
                    Some(full) => HeaderName::Other(full.to_owned()),
                    None => HeaderName::Other(s.into_owned()),
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

/// `known` (lower-case letters and `-`) equals `b` ignoring ASCII case, for a `b` of token
/// characters. Setting bit 5 lower-cases a letter and keeps `-`, and no other token character
/// becomes a letter or `-` by it. Without an early exit, so the loop vectorises:
/// `eq_ignore_ascii_case`'s byte-by-byte compare was most of the lookup's time.
fn eq_lower(known: &[u8], b: &[u8]) -> bool {
    known.len() == b.len()
        && known
            .iter()
            .zip(b)
            .fold(0, |acc, (k, c)| acc | (k ^ (c | 0x20)))
            == 0
}

/// Size of [`SLOTS`], a power of two.
const SLOT_COUNT: usize = 256;

/// Where a name of this length, first and last byte (either case) sits in [`SLOTS`].
const fn slot(len: usize, first: u8, last: u8) -> usize {
    // Coefficients found by a search for a collision-free table over the names below.
    ((first | 0x20) as usize)
        .wrapping_add(((last | 0x20) as usize).wrapping_mul(3))
        .wrapping_add(len.wrapping_mul(20))
        & (SLOT_COUNT - 1)
}

/// `KNOWN` index + 1 per slot (0: no known name). Built at compile time; two known names in
/// one slot stop the build, so a lookup never needs more than one comparison.
const SLOTS: [u8; SLOT_COUNT] = {
    let mut t = [0u8; SLOT_COUNT];
    let mut i = 0;
    while i < KNOWN.len() {
        let n = KNOWN[i].0;
        let mut j = 0;
        while j < n.len() {
            assert!(
                n[j].is_ascii_lowercase() || n[j] == b'-',
                "`eq_lower` needs a-z and -"
            );
            j += 1;
        }
        let s = slot(n.len(), n[0], n[n.len() - 1]);
        assert!(
            t[s] == 0,
            "two known header names share a slot: change `slot`"
        );
        assert!(i < 255);
        t[s] = (i + 1) as u8;
        i += 1;
    }
    t
};

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
