//! A WebSocket as the byte transport of a [`crate::wire::Wire`]: inbound text messages are read as the classic
//! stream they stand for (RFC 7395 framing, translated by `xmpp_codec::framing`), and what the wire writes
//! between two flushes leaves as one text message. A framed wire flushes after every element, so each stanza or
//! nonza is a message of its own.
//!
//! Inbound, message boundaries are not enforced: the parser sees the messages' bytes one after the other, so a
//! client that puts two elements in one message, or splits one over two, is served as Prosody serves it. What
//! RFC 7395 requires of the server's own messages holds strictly; every inbound byte still passes the codec's
//! limits, and a message larger than the element limit is refused by the WebSocket layer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::ws::{Message, WebSocket};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::unread::Unread;

/// A WebSocket read and written as bytes. It holds at most one inbound message (bounded by the upgrade's
/// `max_message_size`) and one outbound message (the wire flushes after each element), so nothing queues up
/// here: a client that does not read stalls the wire's flush, which the connection bounds in time.
pub struct MessageIo {
    ws: WebSocket,
    /// The stream bytes of the message being read.
    inbound: Unread,
    /// What the wire wrote since its last flush.
    outbound: Vec<u8>,
    /// The client closed the WebSocket (or it ended).
    eof: bool,
}

impl MessageIo {
    /// Wraps an upgraded WebSocket.
    pub fn new(ws: WebSocket) -> Self {
        MessageIo {
            ws,
            inbound: Unread::default(),
            outbound: Vec::new(),
            eof: false,
        }
    }
}

impl AsyncRead for MessageIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.inbound.read_into(buf) {
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Text(text))) => {
                    xmpp_codec::framing::message_to_stream(text.as_str(), this.inbound.refill());
                }
                // RFC 7395 carries XML in text messages; a binary one is handed to the parser as it is, which
                // rejects it with a stream error unless it happens to be well-formed UTF-8 XML.
                Some(Ok(Message::Binary(bytes))) => this.inbound.refill().extend_from_slice(&bytes),
                // The WebSocket layer answers pings itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => this.eof = true,
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
            }
        }
    }
}

impl AsyncWrite for MessageIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().outbound.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.outbound.is_empty() {
            ready!(Pin::new(&mut this.ws).poll_ready(cx)).map_err(io::Error::other)?;
            let text = String::from_utf8(std::mem::take(&mut this.outbound))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            Pin::new(&mut this.ws)
                .start_send(Message::Text(text.into()))
                .map_err(io::Error::other)?;
        }
        Pin::new(&mut this.ws)
            .poll_flush(cx)
            .map_err(io::Error::other)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        // A WebSocket close frame after `<close/>` (RFC 7395 §3.6); the peer may have gone already.
        let _ = ready!(Pin::new(&mut self.get_mut().ws).poll_close(cx));
        Poll::Ready(Ok(()))
    }
}
