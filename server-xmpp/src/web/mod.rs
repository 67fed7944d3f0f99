//! XMPP for web clients, as routes of the process's one HTTP listener: RFC 7395 XMPP over WebSocket at
//! `/xmpp-websocket`, XEP-0206 XMPP over BOSH at `/http-bind` (see [`bosh`]), and XEP-0156 discovery of both at
//! `/.well-known/host-meta` (XRD) and `/.well-known/host-meta.json`.
//!
//! A WebSocket or BOSH client is an ordinary session: after the upgrade it runs through the same connection state
//! machine as a TCP client ([`crate::connection::serve_framed`]), with the same SASL, binding, limits, rates,
//! outbound queues and engine sessions. Only the transport differs: [`socket::MessageIo`] reads and writes the
//! WebSocket's text messages, and the wire speaks RFC 7395 framing. Whether SASL may run at all is the
//! listener's [`Security`]: TLS, or plain HTTP on a loopback address behind a TLS-terminating proxy, is
//! [`Security::Encrypted`]; anything else gets no mechanisms and `<encryption-required/>`. A BOSH session is the
//! same state machine again, over [`bosh::io::BoshIo`], a transport fed by the session's HTTP requests.

pub mod bosh;
pub mod host_meta;
pub mod socket;
pub(crate) mod unread;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use presence_core::store::Store;

pub use crate::connection::Security;
use crate::connection::{Shared, serve_framed};

/// The WebSocket subprotocol of XMPP (RFC 7395 §3.1); an upgrade that does not ask for it is refused.
pub const SUBPROTOCOL: &str = "xmpp";

/// The path of the WebSocket endpoint.
pub const WEBSOCKET_PATH: &str = "/xmpp-websocket";

/// Slack over the codec's element limit for a message's XML declaration and white space.
const MESSAGE_SLACK: usize = 1024;

/// The largest WebSocket message taken, as a multiple of the codec's element limit: above that limit and below
/// this the codec refuses the element with a stream error the client can read; beyond it the WebSocket layer
/// drops the connection without reading the rest.
const MESSAGE_FACTOR: usize = 2;

/// What the web routes serve: the XMPP service's shared state, how secure its transport is, and the BOSH
/// session settings.
pub struct Endpoint<S> {
    shared: Arc<Shared<S>>,
    security: Security,
    bosh: bosh::Settings,
}

impl<S> Clone for Endpoint<S> {
    fn clone(&self) -> Self {
        Endpoint {
            shared: self.shared.clone(),
            security: self.security,
            bosh: self.bosh,
        }
    }
}

impl<S> Endpoint<S> {
    pub(crate) fn new(shared: Arc<Shared<S>>, security: Security) -> Self {
        Endpoint {
            shared,
            security,
            bosh: bosh::Settings::default(),
        }
    }

    /// The same endpoint with BOSH sessions under `settings` (`[http] bosh_max_wait`, `bosh_inactivity`).
    pub fn with_bosh(mut self, settings: bosh::Settings) -> Self {
        self.bosh = settings;
        self
    }
}

/// The routes for web clients: `GET /xmpp-websocket`, `POST /http-bind` (BOSH), and the XEP-0156 documents
/// advertising `websocket_url` (the address clients reach the endpoint at, e.g.
/// `wss://chat.example.com/xmpp-websocket`) and the BOSH URL beside it ([`bosh_url`]). Needs the listener to be
/// served with connection info (`into_make_service_with_connect_info::<SocketAddr>`), for the per-address
/// connection caps.
pub fn routes<S: Store + Send + Sync + 'static>(
    endpoint: Endpoint<S>,
    websocket_url: &str,
) -> Router {
    Router::new()
        .route(WEBSOCKET_PATH, get(upgrade::<S>))
        .with_state(endpoint.clone())
        .merge(bosh::routes(endpoint))
        .merge(host_meta::routes(websocket_url, &bosh_url(websocket_url)))
}

/// The BOSH URL on the same listener as `websocket_url`: `wss://` becomes `https://`, `ws://` `http://`, and
/// the path `/http-bind` replaces `/xmpp-websocket`.
pub fn bosh_url(websocket_url: &str) -> String {
    let (scheme, rest) = match websocket_url.split_once("://") {
        Some(("wss", rest)) => ("https", rest),
        Some((_, rest)) => ("http", rest),
        None => ("http", websocket_url),
    };
    let base = rest.strip_suffix(WEBSOCKET_PATH).unwrap_or(rest);
    format!(
        "{scheme}://{}{}",
        base.trim_end_matches('/'),
        bosh::BOSH_PATH
    )
}

/// The largest WebSocket message or BOSH request body taken: above the codec's element limit and below this
/// the codec refuses the element with a stream error the client can read; beyond it the HTTP layer refuses
/// without reading the rest.
fn message_limit(limits: &xmpp_codec::Limits) -> usize {
    limits
        .max_stanza_size
        .max(limits.max_header_size)
        .saturating_mul(MESSAGE_FACTOR)
        .saturating_add(MESSAGE_SLACK)
}

/// The refusal of an upgrade without the `xmpp` subprotocol.
const NO_SUBPROTOCOL: &str =
    "XMPP over WebSocket needs the subprotocol `xmpp` (Sec-WebSocket-Protocol: xmpp, RFC 7395)\n";

/// The client's address: the TCP peer, or, when that peer is on loopback (the local TLS-terminating proxy this
/// listener is meant to sit behind), the last address of its `X-Forwarded-For` (the one that proxy added), so
/// the per-address connection caps and logs see web users rather than one proxy. Only a local proxy is trusted
/// with the header: anyone else could claim any address with it.
pub fn client_addr(peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
    if !peer.ip().is_loopback() {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|last| last.trim().parse::<std::net::IpAddr>().ok());
    match forwarded {
        Some(ip) => SocketAddr::new(ip, 0),
        None => peer,
    }
}

async fn upgrade<S: Store + Send + Sync + 'static>(
    State(endpoint): State<Endpoint<S>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let peer = client_addr(peer, &headers);
    // RFC 7395 §3.1: without the subprotocol there is no XMPP connection; complete no handshake.
    if !ws
        .requested_protocols()
        .any(|p| p.as_bytes() == SUBPROTOCOL.as_bytes())
    {
        tracing::debug!(%peer, "WebSocket upgrade without the xmpp subprotocol refused");
        return (StatusCode::BAD_REQUEST, NO_SUBPROTOCOL).into_response();
    }
    let shared = endpoint.shared;
    // The same caps as a TCP connection, counted from the upgrade on.
    let admitted = shared.hub.admission().admit(peer.ip());
    if let Err(refused) = &admitted {
        shared.hub.metrics().rejected(refused.rejection());
    }
    let max_message = message_limit(&shared.limits);
    let security = endpoint.security;
    ws.protocols([SUBPROTOCOL])
        .max_message_size(max_message)
        .max_frame_size(max_message)
        // tungstenite's defaults are 128 KiB for each buffer of every connection; a session is mostly idle.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            serve_framed(
                socket::MessageIo::new(socket),
                peer,
                shared,
                admitted,
                security,
                "websocket",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_loopback_peer_is_trusted_with_x_forwarded_for() {
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            "198.51.100.7, 203.0.113.9".parse().unwrap(),
        );
        let proxy: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let remote: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        assert_eq!(client_addr(proxy, &headers).ip().to_string(), "203.0.113.9");
        assert_eq!(client_addr(remote, &headers), remote);
        assert_eq!(client_addr(proxy, &HeaderMap::new()), proxy);
        let mut bad = HeaderMap::new();
        bad.append("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(client_addr(proxy, &bad), proxy);
        let mut two = HeaderMap::new();
        two.append("x-forwarded-for", "198.51.100.7".parse().unwrap());
        two.append("x-forwarded-for", "::1".parse().unwrap());
        assert_eq!(client_addr(proxy, &two).ip().to_string(), "::1");
    }

    #[test]
    fn the_bosh_url_sits_beside_the_websocket_url() {
        assert_eq!(
            bosh_url("wss://chat.example.com/xmpp-websocket"),
            "https://chat.example.com/http-bind"
        );
        assert_eq!(
            bosh_url("ws://127.0.0.1:5280/xmpp-websocket"),
            "http://127.0.0.1:5280/http-bind"
        );
        assert_eq!(
            bosh_url("wss://example.com/chat/xmpp-websocket"),
            "https://example.com/chat/http-bind"
        );
    }
}
