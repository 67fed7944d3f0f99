//! The one HTTP listener of the process (`[http] bind`, HTTPS with `[http] tls`). It serves `GET /metrics` in the
//! Prometheus text format; XMPP over WebSocket and its XEP-0156 discovery documents (`server_xmpp::web`) join
//! [`router`] as routes of the same listener, as will BOSH and the status page, so the process never opens a
//! second HTTP port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;

use crate::http_tls::TlsListener;

/// The content type of the Prometheus text exposition format, version 0.0.4, which every scraper reads.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the routes read from the rest of the server.
#[derive(Clone)]
pub struct HttpState {
    /// Renders every metric in the Prometheus text format; called once per scrape, so it sees current values.
    /// It runs on an I/O worker, so it must only read memory (counters, gauges), never block.
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState").finish_non_exhaustive()
    }
}

/// The routes: `GET /metrics` (and `HEAD`); another method on it is 405, any other path 404.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

/// Serves `router` on `listener` (over TLS with `tls`) until `shutdown` completes, then stops accepting and waits
/// for the requests in flight to finish (graceful shutdown). Upgraded WebSocket connections are not requests in
/// flight: they end with their XMPP sessions. Handlers see the peer's address (`ConnectInfo<SocketAddr>`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, tls = tls.is_some(), "HTTP listener ready");
    }
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(tls) => {
            // `tap_io` only for axum's connect-info impl, which covers tapped listeners of any kind.
            let listener = TlsListener::new(listener, tls)?.tap_io(|_| {});
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    // Runs on the I/O worker: the closure renders counters already in memory (its contract in `HttpState`), so
    // it is cheaper than a hop to the blocking pool.
    let body = (state.metrics)();
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body)
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, "not found\n")
}
