//! One side of an XMPP stream over any byte transport: read whole top-level items, write elements, fail with a
//! stream error (RFC 6120 §4.9). A framed wire (XMPP over WebSocket, RFC 7395) writes `<open/>`/`<close/>`
//! instead of the stream's tags and each element as a document of its own, flushing the transport after each
//! one: the WebSocket transport (`web::socket`) sends what one flush carries as one message.

use std::task::Poll;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use xmpp_codec::{Element, StreamEvent, StreamHeader, StreamParser, StreamWriter, framing, ns};

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

/// The size of one socket read, into a buffer of the worker thread's rather than the connection's: a read
/// buffer per connection was held through every idle minute (2 KiB of each idle client, issue 17's heap
/// profile), while a read only needs one for the length of a poll. What a read brings goes straight into the
/// parser, which keeps only an unfinished element.
const READ_CHUNK: usize = 16 * 1024;

/// What a write buffer starts with: room for a typical burst of stanzas without regrowing.
const OUT_START: usize = 512;

thread_local! {
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// What a [`Wire`] keeps while its transport is being replaced.
pub struct Spare {
    parser: StreamParser,
    out: Vec<u8>,
}

impl Spare {
    /// A new stream on `io` (expecting a new stream header).
    pub fn with_io<U>(self, io: U) -> Wire<U> {
        Wire {
            io,
            parser: self.parser,
            out: self.out,
            writer: None,
            read_total: 0,
            frames: None,
        }
    }
}

/// A stream over transport `T`.
pub struct Wire<T> {
    /// The transport.
    pub io: T,
    parser: StreamParser,
    /// What is queued and not yet written; empty (and unallocated) between flushes.
    out: Vec<u8>,
    writer: Option<StreamWriter>,
    read_total: u64,
    /// For a framed wire, where each queued element ends in `out` (one transport message each).
    frames: Option<Vec<usize>>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Wire<T> {
    /// Wraps a transport with a fresh parser using `limits`.
    pub fn new(io: T, limits: xmpp_codec::Limits) -> Self {
        Wire {
            io,
            parser: StreamParser::with_limits(limits),
            out: Vec::new(),
            writer: None,
            read_total: 0,
            frames: None,
        }
    }

    /// Wraps a message transport (XMPP over WebSocket, RFC 7395): `<open/>`/`<close/>` framing, one element per
    /// flush of `io`.
    pub fn framed(io: T, limits: xmpp_codec::Limits) -> Self {
        Wire {
            frames: Some(Vec::new()),
            ..Wire::new(io, limits)
        }
    }

    /// Whether this wire speaks RFC 7395 framing.
    pub fn is_framed(&self) -> bool {
        self.frames.is_some()
    }

    /// Ends the message being queued (a framed wire only).
    fn end_frame(&mut self) {
        if let Some(f) = self.frames.as_mut() {
            f.push(self.out.len());
        }
    }

    /// Queues the end of our side of the stream: `</stream:stream>` or `<close/>`.
    fn queue_close(&mut self) {
        if self.is_framed() {
            framing::write_close(&mut self.out);
            self.end_frame();
        } else {
            self.out.extend_from_slice(b"</stream:stream>");
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
            let (io, parser) = (&mut self.io, &mut self.parser);
            let n = std::future::poll_fn(|cx| {
                SCRATCH.with_borrow_mut(|scratch| {
                    let mut read = ReadBuf::new(scratch);
                    let polled = std::pin::Pin::new(&mut *io).poll_read(cx, &mut read);
                    if let Poll::Ready(Ok(())) = polled {
                        parser.feed(read.filled());
                    }
                    polled.map_ok(|()| read.filled().len())
                })
            })
            .await?;
            if n == 0 {
                return Err(Ended::Eof);
            }
            self.read_total += n as u64;
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
        self.open_header(header).await
    }

    /// Writes `header` as our stream header (a server-to-server stream names `to` and declares `db`).
    pub async fn open_header(&mut self, header: StreamHeader) -> std::io::Result<()> {
        self.out.clear();
        if let Some(f) = self.frames.as_mut() {
            f.clear();
            framing::write_open(&header, &mut self.out);
            self.end_frame();
            self.writer = Some(StreamWriter::framed());
        } else {
            self.out.extend_from_slice(b"<?xml version='1.0'?>");
            header.write(&mut self.out);
            self.writer = Some(StreamWriter::new(&header));
        }
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

    /// The stream's writer (made on first use: framed, or a `jabber:client` stream), with the output buffer
    /// given its starting capacity when it has none.
    /// Takes the two fields rather than `self`, so the caller can write into `out` with the writer it returns.
    fn writer_for_output<'a>(
        writer: &'a mut Option<StreamWriter>,
        out: &mut Vec<u8>,
        framed: bool,
    ) -> &'a mut StreamWriter {
        if out.capacity() == 0 {
            out.reserve(OUT_START);
        }
        writer.get_or_insert_with(|| {
            if framed {
                StreamWriter::framed()
            } else {
                StreamWriter::new(&StreamHeader::new(ns::CLIENT))
            }
        })
    }

    /// Adds an element to the output without flushing.
    pub fn queue(&mut self, o: &Outgoing) {
        let framed = self.is_framed();
        let writer = Self::writer_for_output(&mut self.writer, &mut self.out, framed);
        let start = self.out.len();
        writer.write_element(&o.element, &mut self.out);
        if o.raw_children.is_empty() {
            self.end_frame();
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
        self.end_frame();
    }

    /// Appends a client stanza that `render` writes straight to bytes (see `translate::render`), telling it
    /// whether the stanza must declare `jabber:client` itself (a framed stream's standalone documents do).
    /// `None`, with nothing written, on a stream whose content namespace is another (a server's or a
    /// component's): render through an element there. Otherwise what `render` says: whether it wrote.
    pub fn queue_client(
        &mut self,
        render: impl FnOnce(&mut Vec<u8>, bool) -> bool,
    ) -> Option<bool> {
        let framed = self.is_framed();
        let writer = Self::writer_for_output(&mut self.writer, &mut self.out, framed);
        if !framed && writer.content_ns() != ns::CLIENT {
            return None;
        }
        let wrote = render(&mut self.out, framed);
        if wrote {
            self.end_frame();
        }
        Some(wrote)
    }

    /// Writes whatever was queued.
    pub async fn flush_out(&mut self) -> std::io::Result<()> {
        match self.frames.as_mut() {
            // Framed: one write and flush per element, which the message transport sends as one message.
            Some(frames) => {
                let mut from = 0;
                for &to in frames.iter() {
                    self.io.write_all(&self.out[from..to]).await?;
                    self.io.flush().await?;
                    from = to;
                }
                frames.clear();
                self.out.clear();
            }
            None if !self.out.is_empty() => {
                self.io.write_all(&self.out).await?;
                self.out.clear();
            }
            None => {}
        }
        // Nothing is kept between flushes: most connections are idle most of the time, and a buffer kept for
        // the next burst (a big roster result's, even) would be held all that time; allocating one per burst
        // costs far less than the write itself.
        self.out = Vec::new();
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
        self.queue_close();
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
        self.queue_close();
        let _ = self.flush_out().await;
        let _ = self.io.shutdown().await;
    }

    /// Closes our side of the stream cleanly.
    pub async fn close(&mut self) {
        self.queue_close();
        let _ = self.flush_out().await;
        let _ = self.io.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;

    use super::*;

    /// A message transport: what is written between two flushes is one message.
    #[derive(Default)]
    struct Messages {
        sent: Vec<String>,
        pending: Vec<u8>,
    }

    impl AsyncRead for Messages {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Messages {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.get_mut().pending.extend_from_slice(data);
            Poll::Ready(Ok(data.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            let this = self.get_mut();
            if !this.pending.is_empty() {
                let text = String::from_utf8(std::mem::take(&mut this.pending)).expect("UTF-8");
                this.sent.push(text);
            }
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_framed_wire_sends_each_element_as_a_standalone_message() {
        let mut wire = Wire::framed(Messages::default(), xmpp_codec::Limits::default());
        wire.open("example.com", "s1", Some("en"))
            .await
            .expect("open");
        wire.queue(&Element::new(ns::STREAMS, "features").into());
        wire.queue(&Outgoing {
            element: Element::new(ns::CLIENT, "message").with_attr("to", "a@example.com"),
            raw_children: vec!["<body>hi</body>".into()],
        });
        wire.flush_out().await.expect("flush");
        wire.fail("example.com", "not-well-formed", None).await;
        assert_eq!(
            wire.io.sent,
            [
                "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='example.com' id='s1' version='1.0' xml:lang='en'/>",
                "<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>",
                "<message xmlns='jabber:client' to='a@example.com'><body>hi</body></message>",
                "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
                "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
            ]
        );
    }
}
