//! What both directions of a server-to-server stream share: the transport, the stream header, the TLS client
//! configuration, and opening an outbound stream up to the point where dialback can start.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use xmpp_codec::{Element, StreamEvent, StreamHeader, ns};

use super::Shared;
use super::dialback::NS_DIALBACK;
use crate::wire::{Ended, Wire};

/// A stream's transport: TCP, then TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A server-to-server stream.
pub(crate) type S2sWire = Wire<Box<dyn Io>>;

/// Why a server-to-server stream could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamFailure {
    /// No address was found for the peer domain.
    #[error(transparent)]
    NotFound(#[from] super::resolve::ResolveError),
    /// The peer could not be reached.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The stream broke.
    #[error(transparent)]
    Stream(#[from] Ended),
    /// The TLS handshake failed.
    #[error("TLS failed: {0}")]
    Tls(std::io::Error),
    /// The peer did something the protocol does not allow here.
    #[error("protocol: {0}")]
    Protocol(&'static str),
    /// The peer refused us (dialback said invalid, or a stream error).
    #[error("refused by the peer: {0}")]
    Refused(String),
    /// The peer does not offer TLS and TLS is required.
    #[error("the peer offers no STARTTLS and TLS is required")]
    NoTls,
}

impl From<std::io::Error> for StreamFailure {
    fn from(e: std::io::Error) -> Self {
        StreamFailure::Stream(Ended::Io(e))
    }
}

/// Our stream header: `jabber:server` with the `db` prefix (XEP-0220 §2.1).
pub(crate) fn header(from: &str, to: Option<&str>, id: Option<&str>) -> StreamHeader {
    let mut h = StreamHeader::new(ns::SERVER);
    h.from = Some(from.to_owned());
    h.to = to.map(str::to_owned);
    h.id = id.map(str::to_owned);
    h.prefixes.push(("db".into(), NS_DIALBACK.into()));
    h
}

/// The text of a stream error element, for logs.
pub(crate) fn stream_error_text(el: &Element) -> String {
    el.elements()
        .map(|c| c.name.as_str().to_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The peer's domain as a TLS server name (SNI).
fn server_name(to: &str) -> Result<ServerName<'static>, StreamFailure> {
    ServerName::try_from(to.to_owned())
        .map_err(|_| StreamFailure::Protocol("the peer's domain is not a DNS name"))
}

/// Reads the peer's stream features.
pub(crate) async fn features(wire: &mut S2sWire) -> Result<Element, StreamFailure> {
    match wire.next().await? {
        StreamEvent::Element(el) if el.is(ns::STREAMS, "features") => Ok(el),
        StreamEvent::Element(el) if el.is(ns::STREAMS, "error") => {
            Err(StreamFailure::Refused(stream_error_text(&el)))
        }
        _ => Err(StreamFailure::Protocol("expected stream features")),
    }
}

/// Whether `features` offer SASL EXTERNAL.
pub(crate) fn offers_external(features: &Element) -> bool {
    features.child(ns::SASL, "mechanisms").is_some_and(|m| {
        m.elements()
            .any(|c| c.is(ns::SASL, "mechanism") && c.text().trim() == "EXTERNAL")
    })
}

/// Connects to the first of `to`'s addresses (its static route, else DNS) that accepts, in order, with TLS
/// from the first byte when the address is a direct-TLS one (XEP-0368); returns the transport and whether it is
/// encrypted already.
async fn connect(shared: &Shared, to: &str) -> Result<(Box<dyn Io>, bool), StreamFailure> {
    let mut failed = None;
    for target in shared.resolver.addresses(to).await? {
        let addr = target.addr;
        let tcp = match TcpStream::connect(addr).await {
            Ok(tcp) => tcp,
            Err(source) => {
                failed = Some(StreamFailure::Connect { addr, source });
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        if !target.direct_tls {
            return Ok((Box::new(tcp), false));
        }
        // A direct-TLS address that does not complete the handshake leaves the next address to try.
        match shared.direct_connector.connect(server_name(to)?, tcp).await {
            Ok(tls) => return Ok((Box::new(tls), true)),
            Err(e) => failed = Some(StreamFailure::Tls(e)),
        }
    }
    // `addresses` is never empty when it succeeds.
    Err(failed.unwrap_or(StreamFailure::Protocol("no address to connect to")))
}

/// Connects to `to` and opens a stream from `shared`'s domain to it, upgrading it with STARTTLS when
/// offered (and failing when it is not offered and TLS is required). Returns the stream, the stream id the
/// peer gave its (last) header, and the features it offered there.
pub(crate) async fn establish(
    shared: &Shared,
    to: &str,
) -> Result<(S2sWire, String, Element), StreamFailure> {
    let (io, mut tls) = connect(shared, to).await?;
    let local = shared.settings.domain.as_str();
    let mut wire: S2sWire = Wire::new(io, shared.settings.limits);
    loop {
        wire.open_header(header(local, Some(to), None)).await?;
        let id = match wire.next().await? {
            StreamEvent::Open(h) if h.content_ns == ns::SERVER => h.id.unwrap_or_default(),
            StreamEvent::Open(_) => {
                return Err(StreamFailure::Protocol("not a jabber:server stream"));
            }
            StreamEvent::Element(el) if el.is(ns::STREAMS, "error") => {
                return Err(StreamFailure::Refused(stream_error_text(&el)));
            }
            _ => return Err(StreamFailure::Protocol("expected a stream header")),
        };
        let features = features(&mut wire).await?;
        if tls {
            return Ok((wire, id, features));
        }
        if features.child(ns::TLS, "starttls").is_none() {
            if shared.settings.require_tls {
                return Err(StreamFailure::NoTls);
            }
            return Ok((wire, id, features));
        }
        wire.send(&Element::new(ns::TLS, "starttls")).await?;
        match wire.next().await? {
            StreamEvent::Element(el) if el.is(ns::TLS, "proceed") => {}
            _ => return Err(StreamFailure::Protocol("STARTTLS was not accepted")),
        }
        let (io, spare) = wire.into_io();
        let stream = shared
            .connector
            .connect(server_name(to)?, io)
            .await
            .map_err(StreamFailure::Tls)?;
        wire = spare.with_io(Box::new(stream));
        tls = true;
    }
}

/// The TLS client configuration for outbound streams: any certificate the peer shows, and ours shown to it.
///
/// The peer's certificate is not verified because the receiving peer is reached through our own static route
/// or DNS, and dialback (XEP-0220) is built to work with self-signed and mismatched certificates; TLS gives
/// confidentiality. Ours is shown so that a peer trusting its CA can authenticate us with SASL EXTERNAL.
pub(crate) fn client_config(
    cert: &crate::CertSource,
) -> Result<Arc<ClientConfig>, crate::TlsError> {
    crate::tls::client_config_presenting(crate::tls::Expected::Any, cert)
}
