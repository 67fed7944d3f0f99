//! Getting an encrypted stream: TCP, the stream header, STARTTLS and the TLS handshake (rustls, the server's
//! certificate as the only root), and reading stream events. Every login and registration starts here.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use xmpp_codec::{Element, StreamEvent, StreamParser};

use crate::Error;
use crate::accounts::DOMAIN;
use crate::cli::Conn;
use crate::scram_cache::ScramCache;

/// Every client's stream header (client-to-server, `jabber:client`).
pub(crate) const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) tls: TlsConnector,
    pub(crate) cache: Arc<ScramCache>,
}

impl Target {
    pub(crate) fn new(c: &Conn) -> Result<Target, Error> {
        if !c.addr.ip().is_loopback() {
            return Err("only loopback addresses are allowed".into());
        }
        Ok(Target {
            addr: c.addr,
            tls: tls_connector(&c.ca)?,
            cache: Arc::new(ScramCache::load(c.scram_cache.clone())?),
        })
    }
}

pub(crate) fn tls_connector(ca: &Path) -> Result<TlsConnector, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    // Every client is a new device: a full handshake each time, whatever the server's ticket support.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Pulls the next stream event, reading more bytes as needed.
pub(crate) async fn next_event<S: AsyncRead + Unpin>(
    s: &mut S,
    parser: &mut StreamParser,
    buf: &mut [u8],
) -> Result<StreamEvent, Error> {
    loop {
        if let Some(ev) = parser.next_event()? {
            return Ok(ev);
        }
        let n = s.read(buf).await?;
        if n == 0 {
            return Err("server closed the connection".into());
        }
        parser.feed(&buf[..n]);
    }
}

/// Reads the server's stream header and then its `<stream:features/>`.
pub(crate) async fn open_and_features<S: AsyncRead + Unpin>(
    s: &mut S,
    parser: &mut StreamParser,
    buf: &mut [u8],
) -> Result<Element, Error> {
    match next_event(s, parser, buf).await? {
        StreamEvent::Open(_) => {}
        other => return Err(format!("expected stream header, got {other:?}").into()),
    }
    match next_event(s, parser, buf).await? {
        StreamEvent::Element(el) if el.name == "features" => Ok(el),
        other => Err(format!("expected features, got {other:?}").into()),
    }
}

/// Next top-level element that is not a stanza (SASL nonzas), skipping stanzas.
pub(crate) async fn next_nonza<S: AsyncRead + Unpin>(
    s: &mut S,
    parser: &mut StreamParser,
    buf: &mut [u8],
) -> Result<Element, Error> {
    loop {
        match next_event(s, parser, buf).await? {
            StreamEvent::Element(el) => return Ok(el),
            StreamEvent::Stanza(_) => {}
            other => return Err(format!("expected an element, got {other:?}").into()),
        }
    }
}

pub(crate) type Tls = TlsStream<TcpStream>;

/// TCP, stream, STARTTLS, TLS handshake, stream again: the encrypted stream and its features.
pub(crate) async fn connect_tls(
    t: &Target,
    addr: SocketAddr,
    parser: &mut StreamParser,
    buf: &mut [u8],
) -> Result<(Tls, Element), Error> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    tcp.write_all(HEADER).await?;
    open_and_features(&mut tcp, parser, buf).await?;
    tcp.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await?;
    match next_event(&mut tcp, parser, buf).await? {
        StreamEvent::Element(el) if el.name == "proceed" => {}
        other => return Err(format!("STARTTLS refused: {other:?}").into()),
    }
    parser.reset();
    let mut s = t
        .tls
        .connect(ServerName::try_from(DOMAIN).expect("valid name"), tcp)
        .await?;
    s.write_all(HEADER).await?;
    let features = open_and_features(&mut s, parser, buf).await?;
    Ok((s, features))
}
