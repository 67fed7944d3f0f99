//! Batched writes: a connection's write half with a buffer that is reused for its whole life. Stanzas are
//! appended to the buffer (formatted in place, no String per stanza) and go out together in one write, that is
//! one TLS record and one syscall for several stanzas instead of one each. The tool's CPU per message is what
//! limits how much load two cores can offer while the server runs on them too.

use std::io::Write as _;

use tokio::io::{AsyncWriteExt, WriteHalf};

use crate::connect::Tls;

pub(crate) struct Outbox {
    wr: WriteHalf<Tls>,
    buf: Vec<u8>,
}

impl Outbox {
    pub(crate) fn new(wr: WriteHalf<Tls>) -> Outbox {
        Outbox {
            wr,
            buf: Vec::with_capacity(1024),
        }
    }

    /// Appends one stanza, formatted straight into the buffer: `push(format_args!(...))`.
    pub(crate) fn push(&mut self, stanza: std::fmt::Arguments<'_>) {
        self.buf
            .write_fmt(stanza)
            .expect("writing to a Vec cannot fail");
    }

    /// Writes everything appended since the last flush in one write; the buffer keeps its capacity.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = self.wr.write_all(&self.buf).await;
        self.buf.clear();
        r
    }

    pub(crate) fn into_inner(self) -> WriteHalf<Tls> {
        self.wr
    }
}
