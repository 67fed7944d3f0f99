//! Bytes that arrived as one message (a WebSocket message, a BOSH request body) and are handed to the stream
//! reader in pieces, as a socket's would be: both web transports sit behind the one connection state machine as
//! byte streams.

use tokio::io::ReadBuf;

/// What a drained buffer may keep for the next message; a bigger one is released, so one large message does
/// not pin its size for the rest of an idle session.
const IDLE_KEEP: usize = 4 * 1024;

/// The bytes of the message being read, from `at` on.
#[derive(Debug, Default)]
pub(crate) struct Unread {
    bytes: Vec<u8>,
    at: usize,
}

impl Unread {
    /// Copies into `buf` as much of what is left as fits; `false` when nothing was left to copy.
    pub(crate) fn read_into(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        if self.at >= self.bytes.len() {
            return false;
        }
        let n = buf.remaining().min(self.bytes.len() - self.at);
        buf.put_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        if self.at == self.bytes.len() {
            self.bytes.clear();
            self.at = 0;
            if self.bytes.capacity() > IDLE_KEEP {
                self.bytes.shrink_to(IDLE_KEEP);
            }
        }
        true
    }

    /// Where the next message's bytes go; call only once everything before has been read.
    pub(crate) fn refill(&mut self) -> &mut Vec<u8> {
        debug_assert!(
            self.at == 0 && self.bytes.is_empty(),
            "refilled before read"
        );
        &mut self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_read_in_pieces_then_the_buffer_is_empty() {
        let mut u = Unread::default();
        u.refill().extend_from_slice(b"<message/>");
        let mut out = Vec::new();
        let mut storage = [0u8; 4];
        loop {
            let mut buf = ReadBuf::new(&mut storage);
            if !u.read_into(&mut buf) {
                break;
            }
            out.extend_from_slice(buf.filled());
        }
        assert_eq!(out, b"<message/>");
        assert!(u.refill().is_empty());
    }
}
