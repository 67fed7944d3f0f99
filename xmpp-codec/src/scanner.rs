//! Byte-level, resumable scanner that finds where each top-level item ends.
//!
//! It looks at every byte exactly once no matter how the input is chunked, so feeding one byte at a
//! time stays linear. It enforces the limits and the restricted-XML rules that can be decided from
//! markup shape alone, so an oversized or hostile element is rejected before any tree is built.

use std::ops::Range;

use crate::error::StreamError;
use crate::limits::Limits;

/// A complete item found in the buffer; ranges index the buffer given to [`Scanner::scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// The stream header start tag, optionally preceded by an XML declaration.
    Header {
        decl: Option<Range<usize>>,
        tag: Range<usize>,
        self_closing: bool,
    },
    /// A complete top-level element inside the stream.
    Element(Range<usize>),
    /// The end tag closing the stream.
    Close(Range<usize>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Content,
    Lt,
    StartTag { quote: u8, slash: bool },
    EndTag,
    Bang { matched: usize },
    CData { brackets: u8 },
    Pi { question: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prolog,
    Stream,
    Closed,
}

const CDATA_OPEN: &[u8] = b"[CDATA[";

/// A byte table marking `stops` and the control characters XML forbids.
const fn stop_table(stops: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = !matches!(i, 0x09 | 0x0A | 0x0D);
        i += 1;
    }
    let mut j = 0;
    while j < stops.len() {
        t[stops[j] as usize] = true;
        j += 1;
    }
    t
}

/// Bytes that end a run inside a start tag, outside quotes.
static STOP_TAG: [bool; 256] = stop_table(b"\"'=/><");
/// Bytes that end a run inside an end tag.
static STOP_END_TAG: [bool; 256] = stop_table(b"\"'=><");
/// Bytes that end a run inside a `"`-quoted attribute value.
static STOP_DQUOTED: [bool; 256] = stop_table(b"\"<");
/// Bytes that end a run inside a `'`-quoted attribute value.
static STOP_SQUOTED: [bool; 256] = stop_table(b"'<");

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Control characters other than tab, LF and CR are never legal in XML 1.0.
fn is_illegal_ascii(b: u8) -> bool {
    b < 0x20 && !is_ws(b)
}

/// Resumable scanning state; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    pos: usize,
    state: State,
    phase: Phase,
    depth: usize,
    item_start: usize,
    tag_start: usize,
    attrs: usize,
    decl: Option<Range<usize>>,
    /// Names of the elements open inside the current item, so a mismatched end tag is refused the moment it
    /// arrives instead of leaving the item waiting for bytes that will never make it whole.
    open: Vec<Range<usize>>,
}

impl Scanner {
    /// A scanner expecting an optional XML declaration and then a stream header.
    pub(crate) fn new() -> Self {
        Scanner {
            pos: 0,
            state: State::Content,
            phase: Phase::Prolog,
            depth: 0,
            item_start: 0,
            tag_start: 0,
            attrs: 0,
            decl: None,
            open: Vec::new(),
        }
    }

    /// Where the buffer may be cut because no item is in progress.
    pub(crate) fn idle_pos(&self) -> Option<usize> {
        let idle = self.state == State::Content
            && (self.phase == Phase::Closed || (self.phase == Phase::Stream && self.depth == 0));
        idle.then_some(self.pos)
    }

    /// Accounts for `n` bytes removed from the front of the buffer (bytes before the item in progress).
    pub(crate) fn shift(&mut self, n: usize) {
        self.pos -= n;
        self.item_start = self.item_start.saturating_sub(n);
        self.tag_start = self.tag_start.saturating_sub(n);
        for r in &mut self.open {
            *r = r.start.saturating_sub(n)..r.end.saturating_sub(n);
        }
    }

    /// Frees the open-element list while no item is in progress, so an idle stream holds no capacity.
    pub(crate) fn release(&mut self) {
        if self.open.is_empty() {
            self.open = Vec::new();
        }
    }

    /// Whether the stream close tag has been seen.
    pub(crate) fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Continues scanning `buf` (which only grows between calls, apart from [`Scanner::shift`]).
    /// `base` is the stream offset of `buf[0]`, used in error messages.
    pub(crate) fn scan(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        base: u64,
    ) -> Result<Option<Item>, StreamError> {
        if self.phase == Phase::Closed {
            // Anything after the close tag is discarded unread.
            self.pos = buf.len();
            return Ok(None);
        }
        while self.pos < buf.len() {
            let at = |p: usize| base + p as u64;
            if self.phase == Phase::Prolog {
                if self.pos >= limits.max_header_size {
                    return Err(StreamError::HeaderTooLarge {
                        limit: limits.max_header_size,
                    });
                }
            } else if (self.depth > 0 || self.state != State::Content)
                && self.pos - self.item_start >= limits.max_stanza_size
            {
                return Err(StreamError::StanzaTooLarge {
                    offset: at(self.item_start),
                    limit: limits.max_stanza_size,
                });
            }
            // Runs of bytes that cannot change the state are skipped in a tight loop.
            let stops = match self.state {
                State::StartTag { quote: b'"', .. } => Some(&STOP_DQUOTED),
                State::StartTag { quote: b'\'', .. } => Some(&STOP_SQUOTED),
                State::StartTag {
                    quote: 0,
                    slash: false,
                } => Some(&STOP_TAG),
                State::EndTag => Some(&STOP_END_TAG),
                _ => None,
            };
            if let Some(stops) = stops {
                let bound = if self.phase == Phase::Prolog {
                    limits.max_header_size
                } else {
                    self.item_start.saturating_add(limits.max_stanza_size)
                };
                let end = buf.len().min(bound);
                let start = self.pos;
                let mut p = start;
                while p < end && !stops[usize::from(buf[p])] {
                    p += 1;
                }
                self.pos = p;
                if p != start {
                    continue;
                }
            }
            let b = buf[self.pos];
            match self.state {
                State::Content if self.depth > 0 => {
                    // Fast path through character data; bounded so an endless text node stops at the limit.
                    let end = buf
                        .len()
                        .min(self.item_start.saturating_add(limits.max_stanza_size));
                    let mut p = self.pos;
                    // Eight bytes at a time while none is `<` or below 0x20 (SWAR).
                    while p + 8 <= end {
                        let mut word = [0u8; 8];
                        word.copy_from_slice(&buf[p..p + 8]);
                        let w = u64::from_le_bytes(word);
                        const ONES: u64 = 0x0101_0101_0101_0101;
                        const HIGHS: u64 = 0x8080_8080_8080_8080;
                        let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
                        let lt = w ^ (ONES * u64::from(b'<'));
                        let is_lt = lt.wrapping_sub(ONES) & !lt & HIGHS;
                        if below_space | is_lt != 0 {
                            break;
                        }
                        p += 8;
                    }
                    while p < end {
                        let c = buf[p];
                        if c == b'<' {
                            break;
                        }
                        if is_illegal_ascii(c) {
                            return Err(StreamError::IllegalChar {
                                code: c.into(),
                                offset: at(p),
                            });
                        }
                        p += 1;
                    }
                    self.pos = p;
                    if p < end {
                        self.tag_start = p;
                        self.state = State::Lt;
                        self.pos += 1;
                    }
                    continue;
                }
                State::Content => {
                    if b == b'<' {
                        self.tag_start = self.pos;
                        if self.phase == Phase::Stream {
                            self.item_start = self.pos;
                        }
                        self.state = State::Lt;
                    } else if !is_ws(b) {
                        return Err(if self.phase == Phase::Prolog {
                            StreamError::Syntax {
                                offset: at(self.pos),
                                reason: "character data before the stream header".into(),
                            }
                        } else {
                            StreamError::TextAtStreamLevel {
                                offset: at(self.pos),
                            }
                        });
                    }
                }
                State::Lt => match b {
                    b'/' if self.phase == Phase::Prolog => {
                        return Err(StreamError::Syntax {
                            offset: at(self.tag_start),
                            reason: "end tag before the stream header".into(),
                        });
                    }
                    b'/' => self.state = State::EndTag,
                    b'!' => self.state = State::Bang { matched: 0 },
                    b'?' if self.phase == Phase::Prolog && self.decl.is_none() => {
                        self.state = State::Pi { question: false }
                    }
                    b'?' => {
                        return Err(StreamError::ProcessingInstruction {
                            offset: at(self.tag_start),
                        });
                    }
                    b'>' | b'<' | b'=' | b'"' | b'\'' => {
                        return Err(StreamError::Syntax {
                            offset: at(self.pos),
                            reason: format!("unexpected `{}` after `<`", b as char),
                        });
                    }
                    _ if b <= b' ' => {
                        return Err(StreamError::Syntax {
                            offset: at(self.pos),
                            reason: "whitespace or control character after `<`".into(),
                        });
                    }
                    _ => {
                        self.attrs = 0;
                        self.state = State::StartTag {
                            quote: 0,
                            slash: false,
                        };
                    }
                },
                State::StartTag { quote, slash } => {
                    if is_illegal_ascii(b) {
                        return Err(StreamError::IllegalChar {
                            code: b.into(),
                            offset: at(self.pos),
                        });
                    }
                    if b == b'<' {
                        return Err(StreamError::Syntax {
                            offset: at(self.pos),
                            reason: "`<` inside a start tag".into(),
                        });
                    }
                    if quote != 0 {
                        if b == quote {
                            self.state = State::StartTag { quote: 0, slash };
                        }
                    } else {
                        match b {
                            b'"' | b'\'' => {
                                self.state = State::StartTag {
                                    quote: b,
                                    slash: false,
                                }
                            }
                            b'=' => {
                                self.attrs += 1;
                                if self.attrs > limits.max_attributes {
                                    return Err(StreamError::TooManyAttributes {
                                        offset: at(self.pos),
                                        limit: limits.max_attributes,
                                    });
                                }
                                self.state = State::StartTag {
                                    quote: 0,
                                    slash: false,
                                };
                            }
                            b'/' => {
                                self.state = State::StartTag {
                                    quote: 0,
                                    slash: true,
                                }
                            }
                            b'>' => {
                                self.pos += 1;
                                self.state = State::Content;
                                if let Some(item) = self.end_start_tag(buf, slash, limits, base)? {
                                    return Ok(Some(item));
                                }
                                continue;
                            }
                            _ => {
                                if slash {
                                    self.state = State::StartTag {
                                        quote: 0,
                                        slash: false,
                                    };
                                }
                            }
                        }
                    }
                }
                State::EndTag => match b {
                    b'>' => {
                        self.pos += 1;
                        self.state = State::Content;
                        if self.depth == 0 {
                            self.phase = Phase::Closed;
                            return Ok(Some(Item::Close(self.tag_start..self.pos)));
                        }
                        self.depth -= 1;
                        if let Some(open) = self.open.pop() {
                            let closing = tag_name(&buf[self.tag_start..self.pos]);
                            if closing != &buf[open.clone()] {
                                return Err(StreamError::Syntax {
                                    offset: at(self.tag_start),
                                    reason: format!(
                                        "end tag `{}` does not match start tag `{}`",
                                        String::from_utf8_lossy(closing),
                                        String::from_utf8_lossy(&buf[open])
                                    ),
                                });
                            }
                        }
                        if self.depth == 0 {
                            return Ok(Some(Item::Element(self.item_start..self.pos)));
                        }
                        continue;
                    }
                    b'<' | b'"' | b'\'' | b'=' => {
                        return Err(StreamError::Syntax {
                            offset: at(self.pos),
                            reason: format!("unexpected `{}` in an end tag", b as char),
                        });
                    }
                    _ if is_illegal_ascii(b) => {
                        return Err(StreamError::IllegalChar {
                            code: b.into(),
                            offset: at(self.pos),
                        });
                    }
                    _ => {}
                },
                State::Bang { matched } => {
                    if matched == 0 && b == b'-' {
                        return Err(StreamError::Comment {
                            offset: at(self.tag_start),
                        });
                    }
                    if matched == 0 && b.is_ascii_alphabetic() {
                        return Err(StreamError::Dtd {
                            offset: at(self.tag_start),
                        });
                    }
                    if b != CDATA_OPEN[matched] {
                        return Err(StreamError::Syntax {
                            offset: at(self.tag_start),
                            reason: "malformed `<!` markup".into(),
                        });
                    }
                    if matched + 1 < CDATA_OPEN.len() {
                        self.state = State::Bang {
                            matched: matched + 1,
                        };
                    } else if self.depth == 0 {
                        // A CDATA section is character data, which may not sit directly in the stream.
                        return Err(if self.phase == Phase::Prolog {
                            StreamError::Syntax {
                                offset: at(self.tag_start),
                                reason: "CDATA section before the stream header".into(),
                            }
                        } else {
                            StreamError::TextAtStreamLevel {
                                offset: at(self.tag_start),
                            }
                        });
                    } else {
                        self.state = State::CData { brackets: 0 };
                    }
                }
                State::CData { brackets } => {
                    if is_illegal_ascii(b) {
                        return Err(StreamError::IllegalChar {
                            code: b.into(),
                            offset: at(self.pos),
                        });
                    }
                    self.state = match b {
                        b']' => State::CData {
                            brackets: (brackets + 1).min(2),
                        },
                        b'>' if brackets == 2 => State::Content,
                        _ => State::CData { brackets: 0 },
                    };
                }
                State::Pi { question } => {
                    if b == b'>' && question {
                        let decl = self.tag_start..self.pos + 1;
                        let body = &buf[decl.clone()];
                        let is_decl =
                            body.len() > 7 && body.starts_with(b"<?xml") && is_ws(body[5]);
                        if !is_decl {
                            return Err(StreamError::ProcessingInstruction {
                                offset: at(self.tag_start),
                            });
                        }
                        self.decl = Some(decl);
                        self.state = State::Content;
                    } else {
                        if is_illegal_ascii(b) {
                            return Err(StreamError::IllegalChar {
                                code: b.into(),
                                offset: at(self.pos),
                            });
                        }
                        self.state = State::Pi {
                            question: b == b'?',
                        };
                    }
                }
            }
            self.pos += 1;
        }
        Ok(None)
    }

    /// Handles the `>` of a start tag; `self.pos` is already past it.
    fn end_start_tag(
        &mut self,
        buf: &[u8],
        self_closing: bool,
        limits: &Limits,
        base: u64,
    ) -> Result<Option<Item>, StreamError> {
        if self.phase == Phase::Prolog {
            self.phase = if self_closing {
                Phase::Closed
            } else {
                Phase::Stream
            };
            return Ok(Some(Item::Header {
                decl: self.decl.take(),
                tag: self.tag_start..self.pos,
                self_closing,
            }));
        }
        if self.depth == 0 && self_closing {
            return Ok(Some(Item::Element(self.item_start..self.pos)));
        }
        // An empty element is as deep as a non-empty one would be.
        if self.depth + 1 > limits.max_depth {
            return Err(StreamError::TooDeep {
                offset: base + self.pos as u64,
                limit: limits.max_depth,
            });
        }
        if !self_closing {
            self.depth += 1;
            let name = tag_name(&buf[self.tag_start..self.pos]);
            self.open
                .push(self.tag_start + 1..self.tag_start + 1 + name.len());
        }
        Ok(None)
    }
}

/// The qualified name at the start of a tag's text (`<name ...>` or `</name >`).
fn tag_name(tag: &[u8]) -> &[u8] {
    let body = tag
        .strip_prefix(b"</")
        .or_else(|| tag.strip_prefix(b"<"))
        .unwrap_or(tag);
    let end = body
        .iter()
        .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
        .unwrap_or(body.len());
    &body[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &[u8] =
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

    fn items(input: &[u8]) -> Vec<Item> {
        let mut s = Scanner::new();
        let mut out = Vec::new();
        while let Some(item) = s.scan(input, &Limits::default(), 0).unwrap() {
            out.push(item);
        }
        out
    }

    #[test]
    fn finds_header_elements_and_close() {
        let mut input = b"<?xml version='1.0'?>".to_vec();
        input.extend_from_slice(HEADER);
        let h = input.len();
        input.extend_from_slice(b" <a x='>' y=\"/>\"/> <b><![CDATA[</b>]]]></b></stream:stream>");
        let got = items(&input);
        assert_eq!(
            got[0],
            Item::Header {
                decl: Some(0..21),
                tag: 21..h,
                self_closing: false
            }
        );
        let a = b"<a x='>' y=\"/>\"/>";
        assert_eq!(got[1], Item::Element(h + 1..h + 1 + a.len()));
        let b_start = h + 2 + a.len();
        let b = b"<b><![CDATA[</b>]]]></b>";
        assert_eq!(&input[b_start..b_start + b.len()], b.as_slice());
        assert_eq!(got[2], Item::Element(b_start..b_start + b.len()));
        assert!(matches!(got[3], Item::Close(_)));
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn resumes_mid_token_without_rescanning() {
        let mut input = HEADER.to_vec();
        input.extend_from_slice(b"<message a='1'><body>x</body></message>");
        let mut s = Scanner::new();
        let mut found = Vec::new();
        for end in 1..=input.len() {
            while let Some(item) = s.scan(&input[..end], &Limits::default(), 0).unwrap() {
                found.push(item);
            }
        }
        assert_eq!(found.len(), 2);
        assert_eq!(found[1], Item::Element(HEADER.len()..input.len()));
    }

    #[test]
    fn idle_only_between_top_level_elements() {
        let mut s = Scanner::new();
        let mut input = HEADER.to_vec();
        s.scan(&input, &Limits::default(), 0).unwrap();
        assert_eq!(s.idle_pos(), Some(HEADER.len()));
        input.extend_from_slice(b"<a>");
        assert_eq!(s.scan(&input, &Limits::default(), 0).unwrap(), None);
        assert_eq!(s.idle_pos(), None);
    }

    #[test]
    fn stop_tables_mark_controls_but_not_whitespace() {
        assert!(STOP_TAG[0] && STOP_TAG[0x1F] && STOP_TAG[usize::from(b'>')]);
        assert!(!STOP_TAG[usize::from(b'\t')] && !STOP_TAG[usize::from(b'\n')]);
        assert!(!STOP_DQUOTED[usize::from(b'\'')] && STOP_DQUOTED[usize::from(b'"')]);
        assert!(!STOP_SQUOTED[usize::from(b'>')]);
    }
}
