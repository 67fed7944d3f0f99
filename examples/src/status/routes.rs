//! The status routes of the HTTP listener: `GET /` (the page) and `GET /status.json`, behind [`AccessRule`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::StatusBoard;
use super::access::{AccessRule, Verdict};
use super::page;

#[derive(Clone)]
struct StatusState {
    board: Arc<StatusBoard>,
    access: AccessRule,
}

/// `GET /` and `GET /status.json` (and `HEAD`), for [`crate::http::router`] to merge.
pub fn routes(board: Arc<StatusBoard>, access: AccessRule) -> Router {
    let state = StatusState { board, access };
    Router::new()
        .route("/", get(html))
        .route("/status.json", get(json))
        // One access check in front of every status route, so no route can be added without it.
        .route_layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Lets a request through to its status route only when [`AccessRule`] allows its peer and credentials.
async fn guard(
    State(state): State<StatusState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    match refusal(state.access.check(peer, &headers)) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

/// The refusal for a verdict other than `Allow`.
fn refusal(verdict: Verdict) -> Option<Response> {
    match verdict {
        Verdict::Allow => None,
        Verdict::Unauthorized => Some(
            (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"presenced status\", charset=\"UTF-8\""),
                )],
                "the status page needs the admin password (user admin)\n",
            )
                .into_response(),
        ),
        Verdict::Forbidden(why) => Some((StatusCode::FORBIDDEN, why).into_response()),
    }
}

/// Headers every status answer carries: never cached (it is a live view), never framed elsewhere.
const NO_STORE: [(header::HeaderName, &str); 3] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
];

async fn html(State(state): State<StatusState>) -> Response {
    let body = page::render(&state.board.snapshot());
    (
        NO_STORE,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Inline CSS only, nothing else: the page runs no script at all.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            ),
        ],
        body,
    )
        .into_response()
}

async fn json(State(state): State<StatusState>) -> Response {
    match serde_json::to_string(&state.board.snapshot()) {
        Ok(body) => (NO_STORE, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the status");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the status\n",
            )
                .into_response()
        }
    }
}
