//! Sockets: one UDP socket and a TCP listener on the same port, and a TLS listener on its own, turned into
//! [`Inbound`] events for the service task, and the [`Flow`]s the service answers and sends requests over.
//!
//! Requests towards an endpoint go back over the flow it last used (its UDP source address, or its TCP or TLS
//! connection) rather than to the host in its Contact: that reaches phones behind NAT and needs no DNS, the idea
//! of RFC 5626 flows without the Outbound extension. Over TLS this is also what keeps our NOTIFYs and MESSAGEs
//! encrypted: they leave over the connection the phone opened, whose server certificate it checked.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use presence_core::rate::{KeyedBuckets, Rate, TokenBucket};
use presence_core::runtime::{Handle, Metrics, Permit, Protocol};
use sip_codec::{Frame, Framer, Limits, Message, ParseError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::udp_recv::RecvBatch;

/// How long a TLS handshake may take before the connection (and its place under the caps) is given up.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What one TCP or TLS peer may have waiting to be written before it counts as not reading.
const TCP_OUT_QUEUE: usize = 256;

/// Source addresses whose UDP rate is tracked at once; past it, quiet ones are forgotten first.
const MAX_TRACKED_SOURCES: usize = 65_536;

/// What the socket loops share.
#[derive(Clone)]
pub struct Intake {
    /// Where events go; bounded (UDP drops past it, TCP stops reading).
    pub tx: mpsc::Sender<Inbound>,
    /// Codec limits.
    pub limits: Limits,
    /// The inbound rate per source address (UDP) or connection (TCP).
    pub rate: Rate,
    /// Peers exempt from the rate (trusted call-control peers send for every user).
    pub trusted: Arc<[IpAddr]>,
    /// The engine's runtime: connection caps and metrics.
    pub hub: Handle,
    /// Numbers for stream connections, shared by the TCP and TLS listeners so a number names one connection.
    pub next_conn: Arc<AtomicU64>,
}

pub use crate::core::Flow;

/// What the sockets tell the service.
// Nearly every event is a message; boxing it would add an allocation per datagram to spare rare open/close events.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Inbound {
    /// A message arrived, or bytes that are not one; `raw` is kept to answer a malformed request.
    Message {
        /// Where from.
        flow: Flow,
        /// The parsed message or why it is not one.
        parsed: Result<Message, ParseError>,
        /// The bytes (a bounded prefix for TCP errors).
        raw: Vec<u8>,
    },
    /// A TCP or TLS connection opened (for TLS: once its handshake is done); bytes for it go to `tx`.
    Opened {
        /// The connection.
        flow: Flow,
        /// The peer's address (trusted peers are recognised by it).
        peer: SocketAddr,
        /// Its writer (bounded: a peer that does not read loses the connection).
        tx: mpsc::Sender<Bytes>,
        /// The listed subject of the verified client certificate, when the peer presented one
        /// ([`crate::tls::trusted_subject`]): the connection is a trusted call-control peer's.
        trusted_subject: Option<String>,
    },
    /// A TCP or TLS connection closed.
    Closed {
        /// The connection.
        flow: Flow,
    },
}

/// Receives datagrams forever. A source over its rate gets `503` with Retry-After; when the service's queue is
/// full the datagram is dropped (the peer retransmits, RFC 3261 §17.1.2), which is how UDP sheds load.
pub async fn udp_loop(socket: Arc<UdpSocket>, intake: Intake) {
    // One byte more than the limit, so an over-size datagram is seen as one rather than silently truncated.
    let mut batch = RecvBatch::new(intake.limits.max_message_size.max(65_535) + 1);
    let mut rates = KeyedBuckets::new(intake.rate, MAX_TRACKED_SOURCES);
    let metrics = intake.hub.metrics().clone();
    loop {
        let got = match batch.recv(&socket).await {
            Ok(n) => n,
            // ICMP port unreachable from an earlier send surfaces here on some systems; keep serving.
            Err(_) => continue,
        };
        let now = Instant::now();
        for i in 0..got {
            let (bytes, from) = batch.get(i);
            if !take_datagram(&socket, &intake, &mut rates, &metrics, now, bytes, from) {
                return;
            }
        }
    }
}

/// Handles one received datagram; false once the service has gone.
fn take_datagram(
    socket: &UdpSocket,
    intake: &Intake,
    rates: &mut KeyedBuckets<IpAddr>,
    metrics: &Metrics,
    now: Instant,
    bytes: &[u8],
    from: SocketAddr,
) -> bool {
    // Keep-alives (RFC 5626 §3.5.1 CRLF) and stray empty datagrams are not messages.
    if bytes.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ' | 0)) {
        return true;
    }
    if !intake.trusted.contains(&from.ip()) && rates.try_take(&from.ip(), now, bytes.len()).is_err()
    {
        metrics.rate_limited(Protocol::Sip);
        if let Some(answer) = crate::core::refusal(bytes, 503, "Over Rate Limit") {
            let _ = socket.try_send_to(&answer, from);
        }
        return true;
    }
    let parsed = Message::parse_datagram(bytes, &intake.limits);
    // The raw bytes are only read to answer a request that did not parse.
    let raw = if parsed.is_err() {
        bytes.to_vec()
    } else {
        Vec::new()
    };
    let ev = Inbound::Message {
        flow: Flow::Udp(from),
        parsed,
        raw,
    };
    match intake.tx.try_send(ev) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            metrics.engine_busy();
            debug!(%from, "SIP service queue full: datagram dropped");
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// The next connection admitted under the process's connection caps (refused ones are closed and counted), with
/// Nagle off: SIP messages are small and each is a whole request or answer.
async fn admitted(
    listener: &TcpListener,
    intake: &Intake,
    what: &str,
) -> (TcpStream, SocketAddr, Permit) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => match intake.hub.admission().admit(peer.ip()) {
                Ok(place) => {
                    let _ = stream.set_nodelay(true);
                    return (stream, peer, place);
                }
                Err(refused) => {
                    intake.hub.metrics().rejected(refused.rejection());
                    debug!(%peer, %refused, "SIP {what} connection refused");
                }
            },
            Err(e) => {
                warn!(error = %e, "SIP {what} accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await
            }
        }
    }
}

/// Accepts TCP connections until the task is dropped, each under the process's connection caps.
pub async fn tcp_loop(listener: TcpListener, intake: Intake) {
    loop {
        let (stream, peer, place) = admitted(&listener, &intake, "TCP").await;
        let flow = Flow::Tcp(intake.next_conn.fetch_add(1, Ordering::Relaxed));
        tokio::spawn(stream_conn(
            stream.into_split(),
            flow,
            peer,
            None,
            intake.clone(),
            place,
        ));
    }
}

/// Accepts TLS connections until the task is dropped: under the same connection caps as TCP, each handshake
/// bounded in time, then served like a TCP connection. A client certificate (verified by `acceptor`'s
/// configuration) whose subject is in `trusted_subjects` makes the connection a trusted peer's.
pub async fn tls_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    trusted_subjects: Arc<[String]>,
    intake: Intake,
) {
    loop {
        let (stream, peer, place) = admitted(&listener, &intake, "TLS").await;
        let flow = Flow::Tls(intake.next_conn.fetch_add(1, Ordering::Relaxed));
        let (acceptor, subjects, intake) =
            (acceptor.clone(), trusted_subjects.clone(), intake.clone());
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        debug!(%peer, error = %e, "SIP TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        debug!(%peer, "SIP TLS handshake timed out");
                        return;
                    }
                };
            let subject =
                crate::tls::trusted_subject(tls.get_ref().1.peer_certificates(), &subjects);
            stream_conn(tokio::io::split(tls), flow, peer, subject, intake, place).await
        });
    }
}

/// The most of a broken message kept to answer it (the headers a response needs come first).
const RAW_KEEP: usize = 8 * 1024;

/// Serves one TCP or TLS connection: frames its messages for the service and writes what the service sends.
/// Takes the stream's halves: a TCP stream splits without a lock, a TLS one cannot.
async fn stream_conn<R, W>(
    (mut rd, mut wr): (R, W),
    flow: Flow,
    peer: SocketAddr,
    trusted_subject: Option<String>,
    intake: Intake,
    _place: Permit,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(TCP_OUT_QUEUE);
    let tx = intake.tx.clone();
    // A peer trusted by IP or by certificate sends for every user: it is exempt from the rate.
    let exempt = intake.trusted.contains(&peer.ip()) || trusted_subject.is_some();
    if tx
        .send(Inbound::Opened {
            flow,
            peer,
            tx: out_tx,
            trusted_subject,
        })
        .await
        .is_err()
    {
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(bytes) = out_rx.recv().await {
            // Flushed after every message: a TLS stream's write may leave records in rustls's buffer when the
            // socket would block, and nothing else would push them out until the next message.
            if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let limits = intake.limits;
    let mut bucket = TokenBucket::new(
        if exempt { Rate::UNLIMITED } else { intake.rate },
        Instant::now(),
    );
    let mut framer = Framer::new(limits);
    let mut since_frame: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Over its rate, the connection is not read for a while: TCP flow control slows the peer down.
        let pause = bucket.charge(Instant::now(), n);
        if !pause.is_zero() {
            intake.hub.metrics().rate_limited(Protocol::Sip);
            tokio::time::sleep(pause).await;
        }
        framer.push(&buf[..n]);
        if since_frame.len() < RAW_KEEP {
            let take = n.min(RAW_KEEP - since_frame.len());
            since_frame.extend_from_slice(&buf[..take]);
        }
        loop {
            match framer.next_frame() {
                Ok(Frame::Partial) => break,
                Ok(Frame::KeepAlive) => {}
                Ok(Frame::Complete(msg)) => {
                    since_frame.clear();
                    let ev = Inbound::Message {
                        flow,
                        parsed: Ok(msg),
                        raw: Vec::new(),
                    };
                    // A full service queue stops this reader until there is room (back-pressure).
                    if tx.send(ev).await.is_err() {
                        break 'read;
                    }
                }
                Err(e) => {
                    // A stream cannot be resynchronised after a framing error: answer it, then close (the
                    // service closes the writer once the answer is queued).
                    let _ = tx
                        .send(Inbound::Message {
                            flow,
                            parsed: Err(e),
                            raw: std::mem::take(&mut since_frame),
                        })
                        .await;
                    break 'read;
                }
            }
        }
    }
    let _ = tx.send(Inbound::Closed { flow }).await;
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_flows_are_reliable_secure_streams_with_their_via_token() {
        let udp = Flow::Udp(SocketAddr::from(([127, 0, 0, 1], 5060)));
        assert_eq!(
            [udp, Flow::Tcp(1), Flow::Tls(2)].map(|f| (
                f.reliable(),
                f.secure(),
                f.conn(),
                f.transport()
            )),
            [
                (false, false, None, "UDP"),
                (true, false, Some(1), "TCP"),
                (true, true, Some(2), "TLS"),
            ]
        );
    }
}
