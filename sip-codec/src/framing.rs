//! Message boundaries: incremental framing of stream transports by Content-Length (RFC 3261
//! §18.3, with RFC 5626 CRLF keep-alives) and one-message-per-datagram parsing.

use crate::error::ParseError;
use crate::header::Headers;
use crate::limits::Limits;
use crate::message::{Message, StartLine, find_head_end, parse_head};

/// What [`Framer::next_frame`] found in the buffered bytes.
// Returned by value once per message; boxing would cost an allocation for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete message, removed from the buffer.
    Complete(Message),
    /// A double-CRLF keep-alive ping (RFC 5626 §4.4.1); the peer expects a single CRLF back.
    KeepAlive,
    /// More bytes are needed.
    Partial,
}

/// Splits a byte stream (TCP, TLS) into messages. Push bytes as they arrive, then call
/// [`Framer::next_frame`] until it answers `Partial`. After an error the stream cannot be resynchronised.
#[derive(Debug, Clone)]
pub struct Framer {
    buf: Vec<u8>,
    pos: usize,
    limits: Limits,
    // The head of the message being received, parsed once its terminator has arrived.
    head: Option<(StartLine, Headers, usize, usize)>,
}

impl Framer {
    /// A framer with the given limits.
    pub fn new(limits: Limits) -> Self {
        Framer {
            buf: Vec::new(),
            pos: 0,
            limits,
            head: None,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            // Compact only when the consumed prefix dominates, so copying stays amortised O(1).
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Returns the next complete message, a keep-alive, or `Partial`.
    pub fn next_frame(&mut self) -> Result<Frame, ParseError> {
        if self.head.is_none() {
            loop {
                let data = &self.buf[self.pos..];
                if data.starts_with(b"\r\n\r\n") {
                    self.pos += 4;
                    return Ok(Frame::KeepAlive);
                }
                match data {
                    [] | [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => {
                        return Ok(Frame::Partial);
                    }
                    [b'\r', b'\n', ..] => self.pos += 2,
                    [b'\n', ..] => self.pos += 1,
                    _ => break,
                }
            }
            let data = &self.buf[self.pos..];
            let Some((head_end, body_start)) = find_head_end(data) else {
                if data.len() > self.limits.max_message_size {
                    return Err(ParseError::limit("Message too large"));
                }
                return Ok(Frame::Partial);
            };
            // The end is found first here: a stream's head is parsed once, when it is whole.
            let head = parse_head(&data[..head_end], &self.limits)?;
            // Stream transports must carry Content-Length; a missing one is read as 0.
            let len = content_length(&head.headers, head.content_lengths)?.unwrap_or(0);
            if body_start.saturating_add(len) > self.limits.max_message_size {
                return Err(ParseError::limit("Message too large"));
            }
            self.head = Some((head.start, head.headers, body_start, len));
        }
        let Some((_, _, body_start, len)) = &self.head else {
            return Ok(Frame::Partial);
        };
        let (body_start, len) = (*body_start, *len);
        if self.buf.len() - self.pos < body_start + len {
            return Ok(Frame::Partial);
        }
        let Some((start, headers, _, _)) = self.head.take() else {
            return Ok(Frame::Partial);
        };
        let body = self.buf[self.pos + body_start..self.pos + body_start + len].to_vec();
        self.pos += body_start + len;
        Ok(Frame::Complete(Message::from_parts(start, headers, body)))
    }
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(Limits::default())
    }
}

/// The single Content-Length value, if any.
/// `count` is how many Content-Length fields the head parser met.
fn content_length(headers: &Headers, count: usize) -> Result<Option<usize>, ParseError> {
    match count {
        0 => return Ok(None),
        1 => {}
        _ => return Err(ParseError::framing("Multiple Content-Length headers")),
    }
    headers
        .content_length()
        .map_err(|_| ParseError::framing("Invalid Content-Length"))
}

/// Parses exactly one message from a datagram (see [`Message::parse_datagram`]).
pub(crate) fn parse_datagram(bytes: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    if bytes.len() > limits.max_message_size {
        return Err(ParseError::limit("Message too large"));
    }
    let skip = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    let data = &bytes[skip..];
    if data.is_empty() {
        return Err(ParseError::framing("Empty message"));
    }
    // One pass finds the end of the head and parses it (see `parse_head`).
    let head = parse_head(data, limits)?;
    let rest = data.get(head.body_start..).unwrap_or_default();
    let body = match content_length(&head.headers, head.content_lengths)? {
        Some(n) if n > rest.len() => {
            return Err(ParseError::framing("Content-Length larger than message"));
        }
        Some(n) => rest[..n].to_vec(),
        None => rest.to_vec(),
    };
    Ok(Message::from_parts(head.start, head.headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP a.example.com;branch=z9hG4bK1\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn byte_at_a_time() {
        let mut f = Framer::default();
        let mut stream = b"\r\n\r\n\r\n".to_vec();
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(MSG);
        let mut got = Vec::new();
        for b in &stream {
            f.push(std::slice::from_ref(b));
            loop {
                match f.next_frame().unwrap() {
                    Frame::Partial => break,
                    other => got.push(other),
                }
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], Frame::KeepAlive);
        for frame in &got[1..] {
            let Frame::Complete(m) = frame else {
                panic!("expected a complete message, got {frame:?}")
            };
            assert_eq!(m.body(), b"hello");
        }
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn limits() {
        let mut f = Framer::new(Limits {
            max_message_size: 120,
            ..Limits::default()
        });
        f.push(MSG);
        f.push(&[b'x'; 200]);
        // The message fits the limit and is complete; what follows it does not fit.
        let Frame::Complete(m) = f.next_frame().unwrap() else {
            panic!("a complete message under the limit was not returned")
        };
        assert_eq!(m.body(), b"hello");
        assert_eq!(f.next_frame().unwrap_err().status_code(), 513);
        let mut f = Framer::new(Limits {
            max_message_size: 50,
            ..Limits::default()
        });
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1000\r\n\r\n");
        assert_eq!(f.next_frame().unwrap_err().status_code(), 513);
        let mut f = Framer::new(Limits {
            max_message_size: 50,
            ..Limits::default()
        });
        f.push(&[b'A'; 60]);
        assert_eq!(f.next_frame().unwrap_err().status_code(), 513);
    }

    #[test]
    fn datagram_rules() {
        let m = parse_datagram(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\nrest of datagram",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(m.body(), b"rest of datagram");
        let e = parse_datagram(
            b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99\r\n\r\nshort",
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(e.layer, crate::ErrorLayer::Framing);
    }
}
