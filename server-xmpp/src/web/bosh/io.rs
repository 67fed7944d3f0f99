//! A BOSH session as the byte transport of a framed [`crate::wire::Wire`], so that its XMPP stream runs through
//! the one connection state machine ([`crate::connection::serve_framed`]) like any TCP or WebSocket client.
//!
//! Reading yields the stream bytes the session's requests stand for (their children, a stream header for the
//! creation and restart requests, the stream's end for `terminate`), sent by the session's driver. What the
//! wire writes between two flushes (one element: the wire is framed) goes to the driver as one message. Both
//! channels are bounded: a driver that stops taking output (its outbox is full because the client stopped
//! asking) stalls the wire's flush, which the connection bounds in time like any slow consumer.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use crate::web::unread::Unread;

/// Waiting for room in the outbound channel.
type Reserve = Pin<
    Box<dyn Future<Output = Result<mpsc::OwnedPermit<String>, mpsc::error::SendError<()>>> + Send>,
>;

/// The stream's side of a BOSH session.
pub struct BoshIo {
    inbound: mpsc::Receiver<Vec<u8>>,
    /// The bytes being read.
    current: Unread,
    outbound: mpsc::Sender<String>,
    /// What the wire wrote since its last flush.
    pending: Vec<u8>,
    reserve: Option<Reserve>,
}

impl BoshIo {
    /// The transport between `inbound` (stream bytes from the driver) and `outbound` (messages to it).
    pub fn new(inbound: mpsc::Receiver<Vec<u8>>, outbound: mpsc::Sender<String>) -> Self {
        BoshIo {
            inbound,
            current: Unread::default(),
            outbound,
            pending: Vec::new(),
            reserve: None,
        }
    }
}

impl AsyncRead for BoshIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.current.read_into(buf) {
                return Poll::Ready(Ok(()));
            }
            // The driver ended the session (or it is gone): end of stream.
            let Some(bytes) = ready!(this.inbound.poll_recv(cx)) else {
                return Poll::Ready(Ok(()));
            };
            this.current.refill().extend_from_slice(&bytes);
        }
    }
}

impl AsyncWrite for BoshIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().pending.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let reserve = this
            .reserve
            .get_or_insert_with(|| Box::pin(this.outbound.clone().reserve_owned()));
        let permit = ready!(reserve.as_mut().poll(cx));
        this.reserve = None;
        let permit = permit.map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        let text = String::from_utf8(std::mem::take(&mut this.pending))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        permit.send(text);
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn bytes_flow_in_and_each_flush_is_one_message() {
        let (to_stream, inbound) = mpsc::channel(2);
        let (outbound, mut from_stream) = mpsc::channel(1);
        let mut io = BoshIo::new(inbound, outbound);
        to_stream.send(b"<a/>".to_vec()).await.unwrap();
        let mut buf = [0u8; 16];
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"<a/>");
        io.write_all(b"<x").await.unwrap();
        io.write_all(b"/>").await.unwrap();
        io.flush().await.unwrap();
        assert_eq!(from_stream.recv().await.as_deref(), Some("<x/>"));
        // A full channel stalls the flush until the driver takes a message.
        io.write_all(b"<1/>").await.unwrap();
        io.flush().await.unwrap();
        io.write_all(b"<2/>").await.unwrap();
        let stalled = tokio::time::timeout(std::time::Duration::from_millis(50), io.flush()).await;
        assert!(stalled.is_err(), "the channel is full");
        assert_eq!(from_stream.recv().await.as_deref(), Some("<1/>"));
        io.flush().await.unwrap();
        assert_eq!(from_stream.recv().await.as_deref(), Some("<2/>"));
        // The driver gone: reads end, flushes fail.
        drop(to_stream);
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
        drop(from_stream);
        io.write_all(b"<3/>").await.unwrap();
        assert!(io.flush().await.is_err());
    }
}
