//! Datagrams received several at a time with `recvmmsg(2)`: a presentity's change brings back one `200` per
//! NOTIFY in a burst, and one `recvfrom(2)` (and one trip through the reactor) per datagram was a large part of
//! the service's kernel time under PUBLISH load (benches/sip).

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per system call: enough for a burst of answers to one fan-out, few enough that the buffers stay
/// small beside everything else the process holds.
pub const MAX_BATCH: usize = 16;

/// Buffers for one batch of datagrams.
pub struct RecvBatch {
    /// One buffer per datagram, each as large as the largest datagram taken (plus one byte, so an over-size one
    /// is seen as such rather than silently truncated).
    slots: Vec<Vec<u8>>,
    /// What the last receive filled: length and source of each datagram, in arrival order.
    filled: Vec<(usize, SocketAddr)>,
}

impl RecvBatch {
    /// Buffers for datagrams of up to `slot_size` bytes.
    pub fn new(slot_size: usize) -> Self {
        RecvBatch {
            slots: (0..MAX_BATCH).map(|_| vec![0u8; slot_size]).collect(),
            filled: Vec::with_capacity(MAX_BATCH),
        }
    }

    /// Waits until the socket has datagrams and takes as many as are waiting, up to [`MAX_BATCH`]; returns how
    /// many ([`RecvBatch::get`] reads them).
    pub async fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        loop {
            socket.readable().await?;
            match socket.try_io(Interest::READABLE, || self.recv_now(socket)) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The `i`th datagram of the last receive and its source.
    pub fn get(&self, i: usize) -> (&[u8], SocketAddr) {
        let (n, from) = self.filled[i];
        (&self.slots[i][..n], from)
    }

    fn recv_now(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.filled.clear();
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
            .slots
            .iter_mut()
            .map(|s| [IoSliceMut::new(s.as_mut_slice())])
            .collect();
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(MAX_BATCH, None);
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        for msg in results {
            // A source that is not an IP address cannot be answered: its datagram reads as empty, which the
            // caller skips as it does keep-alives.
            match msg.address.as_ref().and_then(to_socket_addr) {
                Some(from) => self.filled.push((msg.bytes, from)),
                None => self.filled.push((0, SocketAddr::from(([0, 0, 0, 0], 0)))),
            }
        }
        Ok(self.filled.len())
    }
}

fn to_socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slots", &self.slots.len())
            .field("filled", &self.filled)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_taken_in_batches_in_order_with_its_sources() {
        let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let to = server.local_addr().expect("addr");
        let total = MAX_BATCH + 3;
        for i in 0..total {
            client
                .send_to(format!("datagram {i}").as_bytes(), to)
                .await
                .expect("send");
        }
        let mut batch = RecvBatch::new(64);
        let mut seen = Vec::new();
        while seen.len() < total {
            let n = batch.recv(&server).await.expect("recv");
            assert!((1..=MAX_BATCH).contains(&n));
            for i in 0..n {
                let (bytes, from) = batch.get(i);
                assert_eq!(from, client.local_addr().expect("addr"));
                seen.push(String::from_utf8(bytes.to_vec()).expect("utf-8"));
            }
        }
        let expected: Vec<String> = (0..total).map(|i| format!("datagram {i}")).collect();
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn an_over_size_datagram_fills_its_whole_slot() {
        let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        client
            .send_to(&[b'x'; 100], server.local_addr().expect("addr"))
            .await
            .expect("send");
        let mut batch = RecvBatch::new(11);
        assert_eq!(batch.recv(&server).await.expect("recv"), 1);
        // Truncated to the slot: the caller's limit (one byte less) sees it as over-size.
        assert_eq!(batch.get(0).0.len(), 11);
    }
}
