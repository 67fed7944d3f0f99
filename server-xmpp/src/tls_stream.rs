//! The server side of a TLS connection over rustls's unbuffered API, for client streams that idle most of their
//! life (issue 17). rustls's buffered connection (what `tokio-rustls` drives) keeps a 4 KiB read buffer for as
//! long as the connection lives, idle or not; here the buffers are the caller's: ciphertext is read into one
//! buffer per worker thread and decrypted there, and a connection holds bytes only while they are in flight (a
//! record that arrived in part, plaintext a read had no room for, ciphertext the socket did not take yet). An
//! idle connection holds none, and rustls's own state is all that is left of it.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The size of one socket read of ciphertext: a whole TLS record's worth, so a busy connection does not take a
/// record in several reads.
const READ_CHUNK: usize = 18 * 1024;

/// The most ciphertext a connection holds that is not yet a whole record or handshake message: rustls accepts
/// handshake messages of up to 64 KiB, which may span records; beyond that the peer is misbehaving.
const MAX_PENDING: usize = 64 * 1024 + READ_CHUNK;

/// The most plaintext one write takes (the caller writes the rest with the next): bounds the ciphertext a
/// connection buffers on top of what the socket has not taken.
const MAX_WRITE: usize = 64 * 1024;

thread_local! {
    /// Where ciphertext is read and decrypted: the worker thread's, as a read needs it only while it is polled.
    static CIPHER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A server TLS stream over `IO` (a TCP stream), after its handshake (see [`accept`]).
pub struct TlsStream<IO> {
    io: IO,
    conn: UnbufferedServerConnection,
    /// Ciphertext read that does not make a whole record yet: empty, and unallocated, between records.
    incoming: Vec<u8>,
    /// Decrypted bytes, from `plain_at`, that a read had no room for; unallocated when there are none.
    plain: Vec<u8>,
    plain_at: usize,
    /// Ciphertext, from `out_at`, not yet taken by `io`; unallocated once it all was.
    outgoing: Vec<u8>,
    out_at: usize,
    /// The peer closed its side (close_notify, or the transport ended): reads return end of stream.
    eof: bool,
    /// Our close_notify has been queued.
    closing: bool,
}

/// What processing the received records should also do once rustls lets application data be sent.
#[derive(Clone, Copy)]
enum Action<'a> {
    /// Nothing: only read.
    Read,
    /// Encrypt these bytes.
    Encrypt(&'a [u8]),
    /// Queue our close_notify.
    CloseNotify,
}

/// Runs the TLS handshake on `io` as the server of `config`. Fails on a transport error, a peer that leaves
/// mid-handshake, or whatever rustls rejects (a plaintext client, no common ALPN protocol or cipher suite).
pub async fn accept<IO>(config: Arc<ServerConfig>, io: IO) -> io::Result<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let conn = UnbufferedServerConnection::new(config).map_err(invalid)?;
    let mut tls = TlsStream {
        io,
        conn,
        incoming: Vec::new(),
        plain: Vec::new(),
        plain_at: 0,
        outgoing: Vec::new(),
        out_at: 0,
        eof: false,
        closing: false,
    };
    while tls.conn.is_handshaking() {
        if tls.eof {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        // Application data that came with the client's last flight waits in `plain` for the first read.
        std::future::poll_fn(|cx| tls.poll_fill(cx, None)).await?;
        std::future::poll_fn(|cx| tls.poll_write_out(cx)).await?;
    }
    // The last flight may have queued more (TLS 1.3 session tickets): sent before the stream is handed over.
    std::future::poll_fn(|cx| tls.poll_write_out(cx)).await?;
    Ok(tls)
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Appends what `fill` writes into a buffer it sizes itself: it is tried with `guess` bytes of room, and again
/// with what it says it requires.
fn append(
    out: &mut Vec<u8>,
    guess: usize,
    mut fill: impl FnMut(&mut [u8]) -> Result<usize, Option<InsufficientSizeError>>,
) -> Result<(), io::Error> {
    let at = out.len();
    let mut room = guess;
    loop {
        out.resize(at + room, 0);
        match fill(&mut out[at..]) {
            Ok(n) => {
                out.truncate(at + n);
                return Ok(());
            }
            Err(Some(InsufficientSizeError { required_size })) if required_size > room => {
                room = required_size;
            }
            Err(_) => {
                out.truncate(at);
                return Err(io::Error::other("rustls could not encode a TLS record"));
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsStream<IO> {
    /// Processes the ciphertext at the front of `input` until rustls needs more: decrypted data goes to `sink`
    /// while it has room, the rest to `plain`; records to send are queued in `outgoing`, with `action`'s once
    /// application data may be sent. Returns how many bytes of `input` were used up (the rest is a record that
    /// arrived in part, to be given again with what follows it).
    fn process(
        &mut self,
        input: &mut [u8],
        mut sink: Option<&mut ReadBuf<'_>>,
        mut action: Action<'_>,
    ) -> io::Result<usize> {
        let mut used = 0;
        loop {
            let UnbufferedStatus { mut discard, state } =
                self.conn.process_tls_records(&mut input[used..]);
            let mut stop = false;
            match state.map_err(invalid)? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(invalid)?;
                        discard += record.discard;
                        let mut payload = record.payload;
                        if let Some(read) = sink.as_deref_mut() {
                            let n = payload.len().min(read.remaining());
                            read.put_slice(&payload[..n]);
                            payload = &payload[n..];
                        }
                        self.plain.extend_from_slice(payload);
                    }
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    append(&mut self.outgoing, 1024, |buf| {
                        encode.encode(buf).map_err(|e| match e {
                            EncodeError::InsufficientSize(size) => Some(size),
                            _ => None,
                        })
                    })?;
                }
                // What was encoded is in `outgoing`, in order, and written before anything queued after it.
                ConnectionState::TransmitTlsData(transmit) => transmit.done(),
                ConnectionState::WriteTraffic(mut traffic) => {
                    match action {
                        Action::Read => {}
                        Action::Encrypt(data) => {
                            // Room for the data plus each record's header, tag and padding.
                            let guess = data.len() + 64 * (1 + data.len() / 16384);
                            append(&mut self.outgoing, guess, |buf| {
                                traffic.encrypt(data, buf).map_err(|e| match e {
                                    EncryptError::InsufficientSize(size) => Some(size),
                                    _ => None,
                                })
                            })?;
                        }
                        Action::CloseNotify => {
                            append(&mut self.outgoing, 64, |buf| {
                                traffic.queue_close_notify(buf).map_err(|e| match e {
                                    EncryptError::InsufficientSize(size) => Some(size),
                                    _ => None,
                                })
                            })?;
                        }
                    }
                    action = Action::Read;
                    stop = true;
                }
                ConnectionState::BlockedHandshake => {
                    if let Action::Encrypt(_) = action {
                        return Err(io::Error::other("TLS handshake not complete"));
                    }
                    stop = true;
                }
                ConnectionState::PeerClosed => self.eof = true,
                ConnectionState::Closed => {
                    self.eof = true;
                    if let Action::Encrypt(_) = action {
                        // Both sides have closed: nothing more can be sent, and saying it was would lose it.
                        return Err(io::ErrorKind::BrokenPipe.into());
                    }
                    stop = true;
                }
                // Early data is never accepted (the configuration does not enable it).
                _ => return Err(io::Error::other("unexpected TLS connection state")),
            }
            used += discard;
            if stop {
                return Ok(used);
            }
        }
    }

    /// Reads once from the transport and processes what came (see [`Self::process`]); then writes what that
    /// queued as far as the transport takes it without waiting. Ready when something was read (or the
    /// transport ended: `eof`).
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        sink: Option<&mut ReadBuf<'_>>,
    ) -> Poll<io::Result<()>> {
        // What an earlier read queued and the transport did not take then (a key update's answer) goes first.
        if self.out_at < self.outgoing.len()
            && let Poll::Ready(Err(e)) = self.poll_write_out(cx)
        {
            return Poll::Ready(Err(e));
        }
        let held = self.incoming.len();
        if held >= MAX_PENDING {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS message too large",
            )));
        }
        let filled = CIPHER.with_borrow_mut(|buf| -> Poll<io::Result<()>> {
            if buf.len() < held + READ_CHUNK {
                buf.resize(held + READ_CHUNK, 0);
            }
            let mut read = ReadBuf::new(&mut buf[held..held + READ_CHUNK]);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                self.eof = true;
                return Poll::Ready(Ok(()));
            }
            buf[..held].copy_from_slice(&self.incoming);
            let total = held + n;
            let used = self.process(&mut buf[..total], sink, Action::Read)?;
            if used == total {
                self.incoming = Vec::new();
            } else {
                self.incoming.clear();
                self.incoming.extend_from_slice(&buf[used..total]);
            }
            Poll::Ready(Ok(()))
        });
        ready!(filled)?;
        // Handshake answers and key updates go out now; a transport that cannot take them yet wakes this task
        // when it can, and the next read or write sends them.
        if let Poll::Ready(Err(e)) = self.poll_write_out(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(()))
    }

    /// Processes `action` against the connection, without reading (only a part record can be waiting).
    fn act(&mut self, action: Action<'_>) -> io::Result<()> {
        let mut pending = std::mem::take(&mut self.incoming);
        let used = self.process(&mut pending, None, action)?;
        pending.drain(..used);
        self.incoming = pending;
        Ok(())
    }

    /// Writes the queued ciphertext; ready when all of it was taken (the buffer is then freed).
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_at < self.outgoing.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.outgoing[self.out_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_at += n;
        }
        self.outgoing = Vec::new();
        self.out_at = 0;
        Poll::Ready(Ok(()))
    }

    /// The transport, for its address and options.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.plain_at < this.plain.len() {
                let n = (this.plain.len() - this.plain_at).min(buf.remaining());
                buf.put_slice(&this.plain[this.plain_at..this.plain_at + n]);
                this.plain_at += n;
                if this.plain_at == this.plain.len() {
                    this.plain = Vec::new();
                    this.plain_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            ready!(this.poll_fill(cx, Some(buf)))?;
            if buf.filled().len() > before {
                return Poll::Ready(Ok(()));
            }
            // Nothing for the reader yet (only part of a record, or a handshake message such as a key update):
            // read on, unless the stream ended.
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // What earlier writes left is written first: a client that does not read holds back the writer.
        ready!(this.poll_write_out(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let data = &data[..data.len().min(MAX_WRITE)];
        this.act(Action::Encrypt(data))?;
        if let Poll::Ready(Err(e)) = this.poll_write_out(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.closing {
            this.closing = true;
            this.act(Action::CloseNotify)?;
        }
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
