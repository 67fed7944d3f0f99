//! Datagrams the service sends, gathered while it handles a batch of events and sent with one `sendmmsg(2)` per
//! [`MAX_BATCH`]: a presentity's change goes to each of its watchers as one NOTIFY each, and a system call per
//! NOTIFY was the larger part of the service's kernel time under PUBLISH load (benches/sip).
//!
//! A datagram the kernel does not take (a full socket buffer) is tried once more on its own; one that still
//! cannot go is reported with its client transaction, exactly as a single send's failure was.

use std::io::IoSlice;

use bytes::Bytes;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
use tokio::net::UdpSocket;

/// Datagrams per system call.
pub const MAX_BATCH: usize = 64;

/// One datagram waiting to be sent.
#[derive(Debug)]
struct Outgoing {
    to: SocketAddr,
    bytes: Bytes,
    client: Option<String>,
}

/// Datagrams waiting for the end of the batch of events that produced them.
#[derive(Debug, Default)]
pub struct UdpBatch {
    queued: Vec<Outgoing>,
}

impl UdpBatch {
    /// Queues `bytes` for `to`; `client` names the client transaction they are a request of.
    pub fn push(&mut self, to: SocketAddr, bytes: Bytes, client: Option<String>) {
        self.queued.push(Outgoing { to, bytes, client });
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Sends everything queued, in order; returns the client transactions whose request could not be sent.
    pub fn flush(&mut self, socket: &UdpSocket) -> Vec<String> {
        let mut failed = Vec::new();
        let mut start = 0;
        while start < self.queued.len() {
            let end = (start + MAX_BATCH).min(self.queued.len());
            let sent = send_many(socket, &self.queued[start..end]);
            if sent > 0 {
                start += sent;
                continue;
            }
            // The first of them would not go: once more alone, then it is given up.
            if send_many(socket, &self.queued[start..=start]) == 0
                && let Some(client) = &self.queued[start].client
            {
                failed.push(client.clone());
            }
            start += 1;
        }
        self.queued.clear();
        failed
    }
}

/// Sends a run of datagrams; how many of the first ones the kernel took (0 on an error).
///
/// Straight to the socket, not through tokio's `try_send_to`: that one answers "would block" without trying
/// until the reactor has seen the socket writable, which a socket that only ever sends may never have been.
fn send_many(socket: &UdpSocket, run: &[Outgoing]) -> usize {
    let slices: Vec<[IoSlice<'_>; 1]> = run.iter().map(|o| [IoSlice::new(&o.bytes)]).collect();
    let addresses: Vec<Option<SockaddrStorage>> = run
        .iter()
        .map(|o| Some(SockaddrStorage::from(o.to)))
        .collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(run.len(), None);
    let no_control: [ControlMessage<'_>; 0] = [];
    match sendmmsg(
        socket.as_raw_fd(),
        &mut headers,
        &slices,
        &addresses,
        no_control,
        MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(results) => results.count(),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_arrives_whole_and_in_order() {
        let to = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let from = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = to.local_addr().expect("addr");
        let mut batch = UdpBatch::default();
        for i in 0..(MAX_BATCH + 5) {
            batch.push(addr, format!("datagram {i}").into_bytes().into(), None);
        }
        assert!(batch.flush(&from).is_empty());
        assert!(batch.is_empty());
        let mut buf = [0u8; 64];
        for i in 0..(MAX_BATCH + 5) {
            let (n, _) = to.recv_from(&mut buf).await.expect("recv");
            assert_eq!(&buf[..n], format!("datagram {i}").as_bytes());
        }
    }

    #[tokio::test]
    async fn an_unsendable_request_names_its_transaction() {
        // An IPv6 destination from an IPv4 socket: the kernel refuses it every time.
        let from = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let to = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let good = to.local_addr().expect("addr");
        let bad: SocketAddr = "[::1]:9".parse().expect("addr");
        let mut batch = UdpBatch::default();
        batch.push(good, b"one".to_vec().into(), Some("z9hG4bK1".into()));
        batch.push(bad, b"two".to_vec().into(), Some("z9hG4bK2".into()));
        batch.push(good, b"three".to_vec().into(), None);
        assert_eq!(batch.flush(&from), vec!["z9hG4bK2".to_owned()]);
        let mut buf = [0u8; 16];
        let (n, _) = to.recv_from(&mut buf).await.expect("recv");
        assert_eq!(&buf[..n], b"one");
        let (n, _) = to.recv_from(&mut buf).await.expect("recv");
        assert_eq!(&buf[..n], b"three");
    }
}
