//! The measured phase's reader of the server's stream: finds the timestamped messages and presences in the
//! decrypted bytes with quick-xml's borrowing pull reader, without building an element tree.
//!
//! Building a tree per received stanza (the codec's `StreamParser`, right for the login phase) cost the tool
//! about 2 µs per delivery in the fan-out, more than the server spent sending it, on the same two cores: the
//! tool, not the server, set the ceiling. Here a stanza costs a handful of borrowed events and no allocation.
//!
//! The reader starts at a top-level element boundary (the login phase's parser has handed over everything it
//! read) and keeps only an unfinished top-level element between reads; an unfinished one is read again from its
//! start when more bytes arrive.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

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
        self.buf.extend_from_slice(bytes);
        let done = scan(&self.buf, &self.me, &mut seen);
        self.buf.drain(..done);
    }
}

/// Reads complete top-level elements from the start of `buf`; returns how many bytes they took.
fn scan(buf: &[u8], me: &[u8], seen: &mut impl FnMut(Seen)) -> usize {
    let mut reader = Reader::from_reader(buf);
    // A fragment of the stream: the root element's start was read by the login phase.
    reader.config_mut().check_end_names = false;
    reader.config_mut().allow_unmatched_ends = true;
    let mut done = 0;
    let mut depth = 0usize;
    let mut top = Top::Other;
    // Whether the element at depth 1 being read is the one holding the timestamp (body or status).
    let mut in_stamp = false;
    let mut stamp: Option<u64> = None;
    let mut counts = true;
    loop {
        let event = match reader.read_event() {
            Ok(Event::Eof) | Err(_) => return done,
            Ok(e) => e,
        };
        // Only what ends at a complete event is known to be whole; the position is past this event now.
        let end = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(e) | Event::Empty(e) if depth == 0 => {
                top = match e.local_name().as_ref() {
                    b"message" => Top::Message,
                    b"presence" => Top::Presence,
                    _ => Top::Other,
                };
                stamp = None;
                counts = true;
                if top == Top::Presence {
                    for a in e.attributes().flatten() {
                        match a.key.as_ref() {
                            b"type" => counts = false,
                            b"from" => {
                                let from = a.value.as_ref();
                                let bare = from.split(|&b| b == b'/').next().unwrap_or(from);
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
            Event::Start(e) => {
                in_stamp = depth == 1
                    && matches!(
                        (top, e.local_name().as_ref()),
                        (Top::Message, b"body") | (Top::Presence, b"status")
                    );
                depth += 1;
            }
            Event::Text(t) if in_stamp => stamp = digits(t.as_ref()),
            Event::End(_) if depth == 0 => {
                // The stream's own end tag.
                seen(Seen::Close);
                return end;
            }
            Event::End(_) => {
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
            // Text between top-level elements (white space keepalives) is complete as it stands.
            Event::Text(_) if depth == 0 => done = end,
            _ => {}
        }
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
}
