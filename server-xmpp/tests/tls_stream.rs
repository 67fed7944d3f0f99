//! The server TLS stream over rustls's unbuffered API (`server_xmpp::tls_stream`) against rustls's own buffered
//! client (tokio-rustls) over loopback TCP: every byte arrives in both directions and in order, through records
//! of every size, a key update, and a clean close; a handshake rustls refuses fails.

use std::sync::Arc;

use rustls_pki_types::ServerName;
use server_xmpp::tls::{self, CertSource, Expected};
use server_xmpp::tls_stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

/// A server configuration with a certificate generated into a directory of this test's own.
fn server_config(name: &str) -> Arc<rustls::ServerConfig> {
    let dir = std::env::temp_dir().join(format!("tls-stream-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    tls::server_config(&CertSource::SelfSigned {
        dir,
        domain: "localhost".into(),
    })
    .expect("a self-signed identity")
}

/// Bytes that tell where in the stream they are, so a lost, doubled or reordered chunk shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// A connected pair: the server side accepted with `config`, the client side tokio-rustls with `client`.
async fn pair(
    config: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> (
    std::io::Result<tls_stream::TlsStream<TcpStream>>,
    std::io::Result<tokio_rustls::client::TlsStream<TcpStream>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tls_stream::accept(config, tcp).await
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client = TlsConnector::from(client)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    (server.await.unwrap(), client)
}

#[tokio::test]
async fn every_byte_arrives_both_ways_in_order() {
    let (server, client) = pair(server_config("echo"), tls::client_config(Expected::Any)).await;
    let (mut server, client) = (server.unwrap(), client.unwrap());
    // Writes of many sizes, the largest spanning several records; the server echoes what it reads, in reads of
    // whatever size the stream gives.
    let sent = pattern(300_000, 7);
    let echo = tokio::spawn(async move {
        let mut buf = vec![0; 5000];
        let mut total = 0;
        while total < 300_000 {
            let n = server.read(&mut buf).await.unwrap();
            assert_ne!(n, 0, "the stream ended after {total} bytes");
            server.write_all(&buf[..n]).await.unwrap();
            server.flush().await.unwrap();
            total += n;
        }
        server
    });
    let writer_data = sent.clone();
    let (mut read_half, mut write_half) = tokio::io::split(client);
    let writer = tokio::spawn(async move {
        let mut at = 0;
        for size in [1, 10, 100, 1000, 16_384, 16_385, 40_000, 70_000]
            .iter()
            .cycle()
        {
            if at == writer_data.len() {
                break;
            }
            let end = (at + size).min(writer_data.len());
            write_half.write_all(&writer_data[at..end]).await.unwrap();
            write_half.flush().await.unwrap();
            at = end;
        }
        write_half
    });
    let mut received = vec![0; sent.len()];
    read_half.read_exact(&mut received).await.unwrap();
    assert!(received == sent, "the echo differs from what was sent");
    let _ = writer.await.unwrap();
    let _ = echo.await.unwrap();
}

#[tokio::test]
async fn a_key_update_from_the_client_keeps_the_stream_going() {
    let (server, client) = pair(
        server_config("keyupdate"),
        tls::client_config(Expected::Any),
    )
    .await;
    let (mut server, mut client) = (server.unwrap(), client.unwrap());
    client.write_all(b"before").await.unwrap();
    client.flush().await.unwrap();
    let mut buf = [0; 6];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"before");
    // TLS 1.3 KeyUpdate asking the server to update its keys too: the server's answer goes out with its next
    // write, and the client's reads after it decrypt with the new keys.
    client.get_mut().1.refresh_traffic_keys().unwrap();
    client.write_all(b"after").await.unwrap();
    client.flush().await.unwrap();
    let mut buf = [0; 5];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"after");
    server.write_all(b"answer").await.unwrap();
    server.flush().await.unwrap();
    let mut buf = [0; 6];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"answer");
}

#[tokio::test]
async fn a_shutdown_sends_close_notify_and_the_peer_sees_a_clean_end() {
    let (server, client) = pair(server_config("close"), tls::client_config(Expected::Any)).await;
    let (mut server, mut client) = (server.unwrap(), client.unwrap());
    server.write_all(b"last words").await.unwrap();
    server.shutdown().await.unwrap();
    let mut got = Vec::new();
    // tokio-rustls reports a transport end without close_notify as an error: a clean end proves it was sent.
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"last words");
    // And the client's close_notify ends the server's reads.
    client.shutdown().await.unwrap();
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn a_handshake_rustls_refuses_fails() {
    // The direct-TLS configuration insists on ALPN xmpp-client; a client offering only h2 is refused.
    let direct = tls::direct_tls_config(&server_config("alpn"));
    let mut client = (*tls::client_config(Expected::Any)).clone();
    client.alpn_protocols = vec![b"h2".to_vec()];
    let (server, _client) = pair(direct, Arc::new(client)).await;
    assert!(
        server.is_err(),
        "a handshake without a common protocol was accepted"
    );
}

#[tokio::test]
async fn plaintext_is_not_a_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = server_config("plain");
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tls_stream::accept(config, tcp).await.map(|_| ())
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"<?xml version='1.0'?><stream:stream to='localhost'>")
        .await
        .unwrap();
    let err = server.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn the_server_picks_aes_128_gcm_whatever_the_client_lists_first() {
    let client = tls::client_config(Expected::Any);
    // rustls's client, like most, lists AES-256-GCM first.
    let offered: Vec<_> = client
        .crypto_provider()
        .cipher_suites
        .iter()
        .map(|s| s.suite())
        .collect();
    assert_eq!(offered[0], rustls::CipherSuite::TLS13_AES_256_GCM_SHA384);
    let (server, client) = pair(server_config("suites"), client).await;
    let (server, client) = (server.unwrap(), client.unwrap());
    let (_, session) = client.get_ref();
    assert_eq!(
        session.negotiated_cipher_suite().map(|s| s.suite()),
        Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
    );
    drop(server);
}
