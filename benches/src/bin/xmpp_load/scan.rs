//! The measured phase's reader of the server's stream: finds the timestamped messages and presences in the
//! decrypted bytes with a byte scanner of its own, without building an element tree or an event per tag.
//!
//! Building a tree per received stanza (the codec's `StreamParser`, right for the login phase) cost the tool
//! about 2 µs per delivery in the fan-out, more than the server spent sending it, on the same two cores: the
//! tool, not the server, set the ceiling. quick-xml's borrowing pull reader brought that down, and was still a
//! third of the tool's CPU in the fan-out (issue 17); this scanner reads only what the workloads need: where each
//! top-level element ends, its name, a presence's `type` and `from`, and the text of its `<body>` or `<status>`.
//!
//! The reader starts at a top-level element boundary (the login phase's parser has handed over everything it
//! read) and keeps only an unfinished top-level element between reads; an unfinished one is read again from its
//! start when more bytes arrive.

use memchr::{memchr, memchr3, memmem};

/// What one complete top-level element said, as far as the workloads care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// A message whose `<body>` is a send timestamp.
    Message(u64),
    /// An available presence from someone else whose `<status>` is a send timestamp.
    Presence(u64),
    /// The server closed the stream.
    Close,
}

/// Which kind of top-level element is being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Top {
    Message,
    Presence,
    Other,
}

/// The bytes received and not yet part of a complete top-level element.
pub(crate) struct StanzaScanner {
    buf: Vec<u8>,
    /// The bare address of the reading client: its own presence, reflected back, is not a sample.
    me: Vec<u8>,
}

impl StanzaScanner {
    pub(crate) fn new(me: &str) -> Self {
        StanzaScanner {
            buf: Vec::with_capacity(16 * 1024),
            me: me.as_bytes().to_vec(),
        }
    }

    /// Adds `bytes` and reports every top-level element they complete, in order.
    pub(crate) fn feed(&mut self, bytes: &[u8], mut seen: impl FnMut(Seen)) {
        if self.buf.is_empty() {
            // Nothing unfinished: read the new bytes where they are and keep only their unfinished end.
            let done = scan(bytes, &self.me, &mut seen);
            self.buf.extend_from_slice(&bytes[done..]);
            return;
        }
        self.buf.extend_from_slice(bytes);
        let done = scan(&self.buf, &self.me, &mut seen);
        self.buf.drain(..done);
    }
}

/// Reads complete top-level elements from the start of `buf`; returns how many bytes they took.
fn scan(buf: &[u8], me: &[u8], seen: &mut impl FnMut(Seen)) -> usize {
    let mut pos = 0;
    let mut done = 0;
    let mut depth = 0usize;
    let mut top = Top::Other;
    // Whether the element at depth 1 being read is the one holding the timestamp (body or status).
    let mut in_stamp = false;
    let mut stamp: Option<u64> = None;
    let mut counts = true;
    loop {
        let Some(lt) = memchr(b'<', &buf[pos..]).map(|i| pos + i) else {
            // Text between top-level elements (white space keepalives) is complete as it stands.
            if depth == 0 {
                done = buf.len();
            }
            return done;
        };
        if lt > pos {
            if in_stamp {
                stamp = digits(&buf[pos..lt]);
            }
            if depth == 0 {
                done = lt;
            }
        }
        let Some((tag, end)) = tag(buf, lt) else {
            return done;
        };
        pos = end;
        match tag {
            Tag::Start { name, attrs, empty } if depth == 0 => {
                top = match local(name) {
                    b"message" => Top::Message,
                    b"presence" => Top::Presence,
                    _ => Top::Other,
                };
                stamp = None;
                counts = true;
                if top == Top::Presence {
                    for (key, value) in Attrs(attrs) {
                        match key {
                            b"type" => counts = false,
                            b"from" => {
                                let bare = value.split(|&b| b == b'/').next().unwrap_or(value);
                                counts &= bare != me;
                            }
                            _ => {}
                        }
                    }
                }
                if empty {
                    done = end;
                } else {
                    depth = 1;
                }
            }
            Tag::Start {
                name, empty: false, ..
            } => {
                in_stamp = depth == 1
                    && matches!(
                        (top, local(name)),
                        (Top::Message, b"body") | (Top::Presence, b"status")
                    );
                depth += 1;
            }
            Tag::End if depth == 0 => {
                // The stream's own end tag.
                seen(Seen::Close);
                return end;
            }
            Tag::End => {
                depth -= 1;
                in_stamp = false;
                if depth == 0 {
                    done = end;
                    match (top, stamp) {
                        (Top::Message, Some(t)) => seen(Seen::Message(t)),
                        (Top::Presence, Some(t)) if counts => seen(Seen::Presence(t)),
                        _ => {}
                    }
                }
            }
            // An empty child, a comment, a CDATA section, a processing instruction: nothing to count.
            Tag::Start { .. } | Tag::Other => {}
        }
    }
}

/// One markup construct, from its `<` to just past its `>`.
enum Tag<'a> {
    /// A start tag (`empty`: `<name/>`), with the bytes of its attributes.
    Start {
        name: &'a [u8],
        attrs: &'a [u8],
        empty: bool,
    },
    /// An end tag.
    End,
    /// A comment, CDATA section, processing instruction or declaration.
    Other,
}

/// The construct starting at `buf[lt]` (a `<`) and the position just past it; `None` when it is not complete.
fn tag(buf: &[u8], lt: usize) -> Option<(Tag<'_>, usize)> {
    let rest = &buf[lt..];
    let past = |close: &[u8]| memmem::find(rest, close).map(|i| lt + i + close.len());
    if rest.starts_with(b"<!--") {
        return Some((Tag::Other, past(b"-->")?));
    }
    if rest.starts_with(b"<![CDATA[") {
        return Some((Tag::Other, past(b"]]>")?));
    }
    if rest.starts_with(b"<?") {
        return Some((Tag::Other, past(b"?>")?));
    }
    if rest.len() < 2 {
        return None;
    }
    if rest[1] == b'!' {
        return Some((Tag::Other, past(b">")?));
    }
    if rest[1] == b'/' {
        return Some((Tag::End, past(b">")?));
    }
    // A start tag ends at the first `>` outside a quoted attribute value.
    let mut i = 1;
    loop {
        let j = i + memchr3(b'>', b'\'', b'"', &rest[i..])?;
        match rest[j] {
            b'>' => {
                let inner = &rest[1..j];
                let empty = inner.last() == Some(&b'/');
                let inner = if empty {
                    &inner[..inner.len() - 1]
                } else {
                    inner
                };
                let name_len = inner
                    .iter()
                    .position(|b| b.is_ascii_whitespace())
                    .unwrap_or(inner.len());
                let tag = Tag::Start {
                    name: &inner[..name_len],
                    attrs: &inner[name_len..],
                    empty,
                };
                return Some((tag, lt + j + 1));
            }
            quote => i = j + 1 + memchr(quote, &rest[j + 1..])? + 1,
        }
    }
}

/// A name without its prefix.
fn local(name: &[u8]) -> &[u8] {
    name.iter()
        .rposition(|&b| b == b':')
        .map_or(name, |i| &name[i + 1..])
}

/// The `key='value'` pairs of a start tag, values as written (not unescaped).
struct Attrs<'a>(&'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.0;
        let eq = memchr(b'=', s)?;
        let key = s[..eq].trim_ascii();
        let after = &s[eq + 1..];
        let open = after.iter().position(|b| !b.is_ascii_whitespace())?;
        let quote = after[open];
        if quote != b'\'' && quote != b'"' {
            self.0 = &[];
            return None;
        }
        let value_start = open + 1;
        let len = memchr(quote, &after[value_start..])?;
        self.0 = &after[value_start + len + 1..];
        Some((key, &after[value_start..value_start + len]))
    }
}

/// A send timestamp: the text is nothing but ASCII digits.
fn digits(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |v, &b| {
        b.is_ascii_digit()
            .then(|| v.checked_mul(10)?.checked_add(u64::from(b - b'0')))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str]) -> Vec<Seen> {
        let mut s = StanzaScanner::new("u1@localhost");
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c.as_bytes(), |x| out.push(x));
        }
        out
    }

    const STANZAS: &str = "<message from='u2@localhost/r' to='u1@localhost/r' type='chat'><body>123</body></message>\
        <presence from=\"u2@localhost/r\"><show>away</show><status>456</status></presence> \
        <presence from='u1@localhost/r'><status>789</status></presence>\
        <presence from='u3@localhost/r' type='unavailable'/>\
        <iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>\
        <presence from='u4@localhost/x'><status>not a time</status></presence>\
        <message from='u5@localhost/r'><body>42</body><delay xmlns='urn:xmpp:delay' stamp='x'/></message>";

    #[test]
    fn finds_timestamped_messages_and_presences_from_others() {
        assert_eq!(
            run(&[STANZAS]),
            vec![Seen::Message(123), Seen::Presence(456), Seen::Message(42)]
        );
    }

    #[test]
    fn any_split_of_the_bytes_reads_the_same() {
        let whole = run(&[STANZAS]);
        for cut in 1..STANZAS.len() {
            assert_eq!(
                run(&[&STANZAS[..cut], &STANZAS[cut..]]),
                whole,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn the_streams_end_is_seen() {
        assert_eq!(
            run(&["<message><body>1</body></message></stream:stream>"]),
            vec![Seen::Message(1), Seen::Close]
        );
    }

    #[test]
    fn only_an_unfinished_element_is_kept() {
        let mut s = StanzaScanner::new("me@x");
        s.feed(
            b"<message><body>1</body></message><presence from='a@x'><sta",
            |_| {},
        );
        assert_eq!(s.buf, b"<presence from='a@x'><sta");
    }

    /// What other servers may write: quotes of either kind holding `>` and `/`, spaces around `=`, a prefixed
    /// name, an empty child, a comment and a CDATA section; and still whatever the split.
    #[test]
    fn markup_in_other_shapes_reads_the_same_at_any_split() {
        const OTHER: &str = "<presence id=\"a>b/\" from = 'u2@localhost/x>y'><show/><!-- <status>1</status> -->\
            <status>77</status></presence>\
            <cl:message xmlns:cl='jabber:client' from=\"u3@localhost\"><body>88</body><x a='>'/></cl:message>\
            <message><body><![CDATA[99]]></body></message>\
            <presence from='u1@localhost/r' type=\"unavailable\"><status>5</status></presence>";
        let want = vec![Seen::Presence(77), Seen::Message(88)];
        assert_eq!(run(&[OTHER]), want);
        for cut in 1..OTHER.len() {
            assert_eq!(run(&[&OTHER[..cut], &OTHER[cut..]]), want, "cut at {cut}");
        }
    }
}
