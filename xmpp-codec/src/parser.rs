//! The incremental stream parser: feed bytes, pull whole top-level items.

use crate::element::Element;
use crate::error::StreamError;
use crate::header::{OpenStream, StreamHeader, check_declaration, parse_header};
use crate::limits::Limits;
use crate::scanner::{Item, Scanner};
use crate::stanza::Stanza;
use crate::tree::{Scratch, TreeBuilder};

/// One complete item of the incoming stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The peer opened the stream.
    Open(StreamHeader),
    /// A `message`, `presence` or `iq` in the stream's content namespace.
    Stanza(Stanza),
    /// Any other top-level element (features, STARTTLS, SASL, stream management, stream errors...).
    Element(Element),
    /// The peer closed the stream with `</stream:stream>`.
    Close,
}

/// Above this capacity an idle buffer is shrunk, so one large stanza does not pin memory.
const SHRINK_ABOVE: usize = 64 * 1024;
/// The buffer an idle stream keeps.
const IDLE_KEEP: usize = 2 * 1024;

/// Incremental, bounded XMPP stream parser (no I/O).
///
/// Call [`StreamParser::feed`] with whatever bytes arrived, then [`StreamParser::next_event`]
/// until it returns `Ok(None)`. Nothing is returned until a whole top-level element is buffered.
/// Errors are fatal: every later call returns the same error.
#[derive(Debug, Clone)]
pub struct StreamParser {
    limits: Limits,
    buf: Vec<u8>,
    /// Bytes at the front of `buf` that have been handed out and can be dropped.
    consumed: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    scanner: Scanner,
    /// Boxed, like `error`: each is set once (the header when the stream opens, an error when it fails), and
    /// inline they kept a 72 and a 40 byte slot in every connection's parser (issue 17: the c2s wire's 1,632
    /// bytes fell in the allocator's 1,792-byte class).
    stream: Option<Box<OpenStream>>,
    error: Option<Box<StreamError>>,
    /// The header was self-closing, so a `Close` is owed right after `Open`.
    pending_close: bool,
}

thread_local! {
    /// Tree-building buffers shared by every parser on the thread: building is synchronous, so one set per
    /// thread serves all its connections, and an idle connection holds none.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

impl Default for StreamParser {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamParser {
    /// A parser with [`Limits::default`].
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A parser with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        StreamParser {
            limits,
            buf: Vec::new(),
            consumed: 0,
            base: 0,
            scanner: Scanner::new(),
            stream: None,
            error: None,
            pending_close: false,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The content (default) namespace of the open stream, once [`StreamEvent::Open`] was returned.
    pub fn content_ns(&self) -> Option<&str> {
        self.stream.as_ref().map(|s| s.ctx.default_ns.as_str())
    }

    /// Bytes buffered but not yet returned as events.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// Appends received bytes. Call [`StreamParser::next_event`] until `Ok(None)` before feeding
    /// again; otherwise the buffer limit trips with a `policy-violation`.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.compact();
        if self.scanner.is_closed() {
            // Nothing after the close tag is ever parsed, so it is not kept either.
            return;
        }
        let pending = self.buf.len();
        if pending > self.limits.max_pending() {
            self.error = Some(Box::new(StreamError::BufferFull {
                buffered: pending,
                limit: self.limits.max_pending(),
            }));
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Forgets everything, including buffered bytes, and expects a new stream header. Use after
    /// STARTTLS, where bytes that arrived before the handshake must not be trusted.
    pub fn reset(&mut self) {
        *self = StreamParser::with_limits(self.limits);
    }

    /// Expects a new stream header but keeps unread bytes; use after SASL success, where a
    /// pipelining peer may already have sent the new header.
    pub fn reset_keep_buffered(&mut self) {
        if self.error.is_some() {
            return self.reset();
        }
        self.compact();
        let buf = std::mem::take(&mut self.buf);
        *self = StreamParser {
            buf,
            ..StreamParser::with_limits(self.limits)
        };
    }

    /// Returns the next complete item, `Ok(None)` if more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, StreamError> {
        if let Some(e) = &self.error {
            return Err((**e).clone());
        }
        if self.pending_close {
            self.pending_close = false;
            return Ok(Some(StreamEvent::Close));
        }
        let result = self.step();
        if let Err(e) = &result {
            self.error = Some(Box::new(e.clone()));
        }
        result
    }

    fn step(&mut self) -> Result<Option<StreamEvent>, StreamError> {
        let item = self.scanner.scan(&self.buf, &self.limits, self.base)?;
        let Some(item) = item else {
            if let Some(p) = self.scanner.idle_pos() {
                self.consumed = p;
                if p == self.buf.len() {
                    // Everything read was handed out: an idle connection keeps no buffer (the next read
                    // allocates one of its size).
                    self.compact();
                    self.buf = Vec::new();
                    self.scanner.release();
                }
            }
            return Ok(None);
        };
        match item {
            Item::Header {
                decl,
                tag,
                self_closing,
            } => {
                if let Some(decl) = decl {
                    let text = self.text(decl.clone())?;
                    check_declaration(text, self.base + decl.start as u64)?;
                }
                let (header, open) =
                    parse_header(self.text(tag.clone())?, self.base + tag.start as u64)?;
                self.stream = Some(Box::new(open));
                self.consumed = tag.end;
                self.pending_close = self_closing;
                Ok(Some(StreamEvent::Open(header)))
            }
            Item::Element(range) => {
                let offset = self.base + range.start as u64;
                let text = checked_text(&self.buf, self.base, range.clone())?;
                let Some(stream) = &self.stream else {
                    // The scanner yields elements only after the header; stay panic-free regardless.
                    return Err(StreamError::Syntax {
                        offset,
                        reason: "element before the stream header".into(),
                    });
                };
                let build = |scratch: &mut Scratch| {
                    let el = TreeBuilder::new(&stream.ctx, offset).build(text, scratch);
                    // A long text run does not pin memory on the thread.
                    scratch.trim(IDLE_KEEP);
                    el
                };
                let el = SCRATCH
                    .try_with(|s| match s.try_borrow_mut() {
                        Ok(mut scratch) => build(&mut scratch),
                        // Only reachable from a re-entrant call, which building never makes.
                        Err(_) => build(&mut Scratch::default()),
                    })
                    // The thread is exiting and its scratch is gone.
                    .unwrap_or_else(|_| build(&mut Scratch::default()))?;
                self.consumed = range.end;
                Ok(Some(
                    match Stanza::from_element(el, &stream.ctx.default_ns) {
                        Ok(stanza) => StreamEvent::Stanza(stanza),
                        Err(el) => StreamEvent::Element(el),
                    },
                ))
            }
            Item::Close(range) => {
                let offset = self.base + range.start as u64;
                let text = self.text(range.clone())?;
                let name = text[2..text.len() - 1].trim_end_matches([' ', '\t', '\r', '\n']);
                let expected = self.stream.as_ref().map_or("", |s| s.qname.as_str());
                if name != expected {
                    return Err(StreamError::Syntax {
                        offset,
                        reason: format!("end tag `{name}` does not close `{expected}`"),
                    });
                }
                self.consumed = range.end;
                Ok(Some(StreamEvent::Close))
            }
        }
    }

    /// The buffer slice as UTF-8 holding only XML characters, or where it stops being that.
    fn text(&self, range: std::ops::Range<usize>) -> Result<&str, StreamError> {
        checked_text(&self.buf, self.base, range)
    }

    /// Drops bytes already handed out.
    fn compact(&mut self) {
        if self.consumed == 0 {
            return;
        }
        self.buf.drain(..self.consumed);
        self.scanner.shift(self.consumed);
        self.base += self.consumed as u64;
        self.consumed = 0;
        if self.buf.capacity() > SHRINK_ABOVE && self.buf.len() < self.buf.capacity() / 4 {
            self.buf.shrink_to(SHRINK_ABOVE.max(self.buf.len()));
        }
        // Most connections sit idle with everything consumed: keep only a small buffer for them, since memory
        // per idle session is what bounds how many users a node holds.
        if self.buf.is_empty() && self.buf.capacity() > IDLE_KEEP {
            self.buf.shrink_to(IDLE_KEEP);
        }
    }
}

/// `buf[range]` as UTF-8 holding only XML characters, or where it stops being that; `base` is the
/// stream offset of `buf[0]`.
fn checked_text(buf: &[u8], base: u64, range: std::ops::Range<usize>) -> Result<&str, StreamError> {
    let start = range.start;
    let bytes = &buf[range];
    // simdutf8 validates whole stanzas several times faster than `std::str::from_utf8` (which was a tenth of
    // the parse in profiles); std only runs again on invalid input, to say where it stops being UTF-8.
    let text = simdutf8::basic::from_utf8(bytes)
        .or_else(|_| std::str::from_utf8(bytes))
        .map_err(|e| StreamError::InvalidUtf8 {
            offset: base + (start + e.valid_up_to()) as u64,
        })?;
    // The scanner rejects ASCII controls; the noncharacters U+FFFE/U+FFFF (EF BF BE/BF)
    // need the decoded text. Checking for 0xEF first keeps the common case one fast pass.
    if memchr::memchr(0xEF, bytes).is_some()
        && let Some(at) = text.find(['\u{FFFE}', '\u{FFFF}'])
    {
        return Err(StreamError::IllegalChar {
            code: text[at..].chars().next().map_or(0, u32::from),
            offset: base + (start + at) as u64,
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection holds no read buffer once every item it received was handed out, and
    /// a partly received stanza is kept until it completes.
    #[test]
    fn a_drained_parser_keeps_no_buffer() {
        let mut p = StreamParser::new();
        p.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
        p.feed(b"<message><body>hi</body></message><presence");
        assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
        assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
        assert_eq!(p.next_event(), Ok(None));
        assert!(p.buf.capacity() > 0);
        p.feed(b"/>");
        assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
        assert_eq!(p.next_event(), Ok(None));
        assert_eq!((p.buf.capacity(), p.buffered()), (0, 0));
    }
}
