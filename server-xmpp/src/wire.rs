//! One side of an XMPP stream over any byte transport: read whole top-level items, write elements, fail with a
//! stream error (RFC 6120 §4.9).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use xmpp_codec::{Element, StreamEvent, StreamHeader, StreamParser, StreamWriter, ns};

use crate::translate::Outgoing;

/// Why a stream ended.
#[derive(Debug, thiserror::Error)]
pub enum Ended {
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Eof,
    /// The transport failed.
    #[error("transport error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something the codec rejected.
    #[error("{0}")]
    Codec(#[from] xmpp_codec::StreamError),
}

/// The size of one socket read. Small, because every connection holds it while it waits, and rustls has
/// already buffered the whole record: a bigger read only saves a few memcpy-sized loop turns.
const READ_CHUNK: usize = 2 * 1024;

/// The write buffer a connection keeps between flushes.
const OUT_KEEP: usize = 4 * 1024;

/// What a [`Wire`] keeps while its transport is being replaced.
pub struct Spare {
    parser: StreamParser,
    buf: Box<[u8]>,
    out: Vec<u8>,
}

impl Spare {
    /// A new stream on `io` (expecting a new stream header).
    pub fn with_io<U>(self, io: U) -> Wire<U> {
        Wire {
            io,
            parser: self.parser,
            buf: self.buf,
            out: self.out,
            writer: None,
            read_total: 0,
        }
    }
}

/// A stream over transport `T`.
pub struct Wire<T> {
    /// The transport.
    pub io: T,
    parser: StreamParser,
    buf: Box<[u8]>,
    out: Vec<u8>,
    writer: Option<StreamWriter>,
    read_total: u64,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Wire<T> {
    /// Wraps a transport with a fresh parser using `limits`.
    pub fn new(io: T, limits: xmpp_codec::Limits) -> Self {
        Wire {
            io,
            parser: StreamParser::with_limits(limits),
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            out: Vec::with_capacity(1024),
            writer: None,
            read_total: 0,
        }
    }

    /// Takes the transport out (for the TLS handshake), keeping the buffers for the stream that follows.
    pub fn into_io(self) -> (T, Spare) {
        let mut parser = self.parser;
        parser.reset();
        (
            self.io,
            Spare {
                parser,
                buf: self.buf,
                out: self.out,
            },
        )
    }

    /// Expects a new stream header on the same transport (after SASL success), keeping bytes already read.
    pub fn restart(&mut self) {
        self.parser.reset_keep_buffered();
        self.writer = None;
    }

    /// Reads the next whole top-level item.
    pub async fn next(&mut self) -> Result<StreamEvent, Ended> {
        loop {
            if let Some(ev) = self.parser.next_event()? {
                return Ok(ev);
            }
            let n = self.io.read(&mut self.buf).await?;
            if n == 0 {
                return Err(Ended::Eof);
            }
            self.read_total += n as u64;
            self.parser.feed(&self.buf[..n]);
        }
    }

    /// Bytes read from the transport so far (what inbound rate limits charge).
    pub fn bytes_read(&self) -> u64 {
        self.read_total
    }

    /// Whether our stream header has been written on the current stream.
    pub fn opened(&self) -> bool {
        self.writer.is_some()
    }

    /// Writes our stream header answering the peer's.
    pub async fn open(
        &mut self,
        domain: &str,
        id: &str,
        lang: Option<&str>,
    ) -> std::io::Result<()> {
        self.open_as(ns::CLIENT, domain, id, lang).await
    }

    /// Writes our stream header with content namespace `content_ns` (a component's stream, XEP-0114).
    pub async fn open_as(
        &mut self,
        content_ns: &str,
        domain: &str,
        id: &str,
        lang: Option<&str>,
    ) -> std::io::Result<()> {
        let mut header = StreamHeader::new(content_ns);
        header.from = Some(domain.to_owned());
        header.id = Some(id.to_owned());
        header.lang = lang.map(str::to_owned);
        self.out.clear();
        self.out.extend_from_slice(b"<?xml version='1.0'?>");
        header.write(&mut self.out);
        self.writer = Some(StreamWriter::new(&header));
        self.flush_out().await
    }

    /// Writes one element.
    pub async fn send(&mut self, el: &Element) -> std::io::Result<()> {
        self.queue(&Outgoing {
            element: el.clone(),
            raw_children: Vec::new(),
        });
        self.flush_out().await
    }

    /// Adds an element to the output without flushing.
    pub fn queue(&mut self, o: &Outgoing) {
        let writer = self
            .writer
            .get_or_insert_with(|| StreamWriter::new(&StreamHeader::new(ns::CLIENT)));
        let start = self.out.len();
        writer.write_element(&o.element, &mut self.out);
        if o.raw_children.is_empty() {
            return;
        }
        // Opaque payloads are already-serialized XML: splice them in before the closing tag.
        let written = &self.out[start..];
        if written.ends_with(b"/>") {
            self.out.truncate(self.out.len() - 2);
            self.out.push(b'>');
        } else {
            // `</name>`: measured rather than formatted, as this runs for every delivery with extensions.
            self.out
                .truncate(self.out.len() - (o.element.name.len() + 3));
        }
        for raw in &o.raw_children {
            self.out.extend_from_slice(raw.as_bytes());
        }
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(o.element.name.as_bytes());
        self.out.push(b'>');
    }

    /// Writes whatever was queued.
    pub async fn flush_out(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.io.write_all(&self.out).await?;
            self.out.clear();
            // One big roster result must not pin its size for the rest of an idle session.
            if self.out.capacity() > OUT_KEEP {
                self.out.shrink_to(OUT_KEEP);
            }
        }
        self.io.flush().await
    }

    /// Sends a stream error and closes the stream (RFC 6120 §4.9.1): opens our side first if it was not yet.
    pub async fn fail(&mut self, domain: &str, condition: &str, text: Option<&str>) {
        if !self.opened() {
            let _ = self.open(domain, &crate::random_id(), None).await;
        }
        let mut err = Element::new(ns::STREAMS, "error")
            .with_child(Element::new(ns::STREAM_ERRORS, condition));
        if let Some(t) = text {
            err = err.with_child(Element::new(ns::STREAM_ERRORS, "text").with_text(t));
        }
        self.queue(&err.into());
        self.out.extend_from_slice(b"</stream:stream>");
        let _ = self.flush_out().await;
        let _ = self.io.shutdown().await;
    }

    /// Ends the stream with `<see-other-host/>` naming `host:port` (RFC 6120 §4.9.3.19): the client's user is
    /// served by another node, and the client reconnects there.
    pub async fn see_other_host(&mut self, domain: &str, address: &str) {
        if !self.opened() {
            let _ = self.open(domain, &crate::random_id(), None).await;
        }
        let err = Element::new(ns::STREAMS, "error")
            .with_child(Element::new(ns::STREAM_ERRORS, "see-other-host").with_text(address));
        self.queue(&err.into());
        self.out.extend_from_slice(b"</stream:stream>");
        let _ = self.flush_out().await;
        let _ = self.io.shutdown().await;
    }

    /// Closes our side of the stream cleanly.
    pub async fn close(&mut self) {
        self.out.extend_from_slice(b"</stream:stream>");
        let _ = self.flush_out().await;
        let _ = self.io.shutdown().await;
    }
}
