//! Header values: immutable UTF-8 strings that avoid both an allocation and a shared reference
//! count per header when a message is parsed.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use arrayvec::ArrayString;
use bytestring::ByteString;

/// Values up to this many bytes are stored inline: copying them costs less than the atomic
/// increment and decrement of a view into the shared head (the profile's largest item once
/// per-header allocations were gone), and a message whose values all fit needs no shared copy
/// of its head at all. 60 takes most values of a presence mix (Via with its branch, From/To
/// with tags, Contact) and makes the inline string 64 bytes (with its `u32` length).
const INLINE: usize = 60;

/// A header value; derefs to `&str`. Build one from a `String` or `&str` with `into()`.
#[derive(Clone)]
pub struct HeaderValue(Repr);

#[derive(Clone)]
enum Repr {
    /// A short value, held inline (no allocation).
    Inline(ArrayString<INLINE>),
    /// A longer value: a view into a parsed message's one copy of its head, or an owned string.
    Shared(ByteString),
    /// Only inside `message::parse_head`, between finding a value and building it: the value's
    /// place in the header section, whose end (and so its one UTF-8 check and copy) is not
    /// known yet. Never in a parsed message; reads as "" should it ever escape.
    Pending { offset: usize, len: usize },
}

impl HeaderValue {
    /// The value `part`, which lies inside `head` at `offset`; long values become views into
    /// `shared`, the copy of `head` made on first need. Inlined: as a call, its result went
    /// through the stack and the copy into the header vector showed in the profile.
    #[inline]
    pub(crate) fn from_head(
        head: &str,
        shared: &mut Option<ByteString>,
        offset: usize,
        part: &str,
    ) -> HeaderValue {
        if let Ok(inline) = ArrayString::from(part) {
            return HeaderValue(Repr::Inline(inline));
        }
        let shared = shared.get_or_insert_with(|| ByteString::from(head));
        // `part` is `head[offset..offset + part.len()]` and `shared` holds the same text, so
        // this is a slice of `shared` on char boundaries.
        match shared.get(offset..offset + part.len()) {
            Some(view) => HeaderValue(Repr::Shared(shared.slice_ref(view))),
            None => HeaderValue::from(part),
        }
    }

    /// Makes this value `part`, which lies inside `head` at `offset` (see
    /// [`HeaderValue::from_head`]). Builds a short value in place: built apart and moved in,
    /// its 64 bytes went through the stack twice, and the wide reloads of the narrow stores
    /// that had just written them stalled (the profile's largest item in the header loop).
    #[inline]
    pub(crate) fn set_from_head(
        &mut self,
        head: &str,
        shared: &mut Option<ByteString>,
        offset: usize,
        part: &str,
    ) {
        if part.len() <= INLINE {
            self.0 = Repr::Inline(ArrayString::new());
            if let Repr::Inline(s) = &mut self.0
                && s.try_push_str(part).is_ok()
            {
                return;
            }
        }
        *self = HeaderValue::from_head(head, shared, offset, part);
    }

    /// A placeholder for the value at `offset..offset + len` of a header section being parsed.
    #[inline]
    pub(crate) fn pending_at(offset: usize, len: usize) -> HeaderValue {
        HeaderValue(Repr::Pending { offset, len })
    }

    /// The range of a placeholder made by [`HeaderValue::pending_at`].
    #[inline]
    pub(crate) fn pending(&self) -> Option<(usize, usize)> {
        match self.0 {
            Repr::Pending { offset, len } => Some((offset, len)),
            _ => None,
        }
    }

    /// The value as a string slice.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(s) => s.as_str(),
            Repr::Shared(s) => s,
            Repr::Pending { .. } => "",
        }
    }
}

impl Deref for HeaderValue {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for HeaderValue {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for HeaderValue {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Default for HeaderValue {
    fn default() -> Self {
        HeaderValue(Repr::Inline(ArrayString::new()))
    }
}

impl From<&str> for HeaderValue {
    fn from(s: &str) -> Self {
        match ArrayString::from(s) {
            Ok(inline) => HeaderValue(Repr::Inline(inline)),
            Err(_) => HeaderValue(Repr::Shared(ByteString::from(s))),
        }
    }
}

impl From<&String> for HeaderValue {
    fn from(s: &String) -> Self {
        HeaderValue::from(s.as_str())
    }
}

impl From<String> for HeaderValue {
    fn from(s: String) -> Self {
        if let Ok(inline) = ArrayString::from(s.as_str()) {
            HeaderValue(Repr::Inline(inline))
        } else {
            // Takes over the String's buffer: no copy.
            HeaderValue(Repr::Shared(ByteString::from(s)))
        }
    }
}

impl From<HeaderValue> for String {
    fn from(v: HeaderValue) -> Self {
        v.as_str().to_owned()
    }
}

impl PartialEq for HeaderValue {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for HeaderValue {}

impl PartialEq<str> for HeaderValue {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for HeaderValue {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for HeaderValue {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl Hash for HeaderValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_values_behave_alike() {
        let long = "SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK776asdhds;received=198.51.100.7";
        let at_limit = "x".repeat(INLINE);
        for s in ["", "70", &at_limit, long] {
            let a = HeaderValue::from(s);
            let b = HeaderValue::from(s.to_owned());
            assert_eq!(a, b);
            assert_eq!(&*a, s);
            assert_eq!(a.to_string(), s);
            assert_eq!(format!("{a:?}"), format!("{s:?}"));
        }
        let head = format!("To: x\r\nVia: {long}\r\n");
        let mut shared = None;
        let at = head.find("SIP/").unwrap();
        let v = HeaderValue::from_head(&head, &mut shared, at, &head[at..at + long.len()]);
        assert_eq!(v, HeaderValue::from(long));
        assert!(
            shared.is_some(),
            "a long value is a view into one shared copy"
        );
        let mut shared = None;
        let v = HeaderValue::from_head(&head, &mut shared, 4, &head[4..5]);
        assert_eq!(v, "x");
        assert!(shared.is_none(), "a short value needs no shared copy");
    }
}
