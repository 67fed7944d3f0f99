//! XEP-0206 XMPP over BOSH (XEP-0124) at `POST /http-bind`, on the process's one HTTP listener.
//!
//! A BOSH user is an ordinary session: its XMPP stream runs through the one connection state machine
//! ([`crate::connection::serve_framed`]) over [`io::BoshIo`], a byte transport whose bytes come from the
//! session's requests and whose output goes back in their answers. So it gets the same SASL, the same
//! loopback-or-TLS rule ([`super::Security`]), limits, rates, outbound queues and engine sessions as a TCP or
//! WebSocket client, and counts against the same connection caps from its creation request on.
//!
//! - [`body`]: reading request `<body/>`s and writing answers, with XEP-0124's terminal conditions.
//! - [`rid`]: the window of request ids (in-order handling, retransmissions, `item-not-found` beyond it).
//! - [`session`]: one session's rules without I/O: holding, `wait`, `inactivity`, `pause`, `terminate`,
//!   `xmpp:restart`.
//! - [`driver`]: the task running one session; [`table`]: the live sessions by `sid`.
//!
//! Answers carry `Access-Control-Allow-Origin: *` and `OPTIONS` is answered for CORS preflights, so pages of
//! any origin can use the endpoint (BOSH needs no cookies; the `sid` is the session's secret). Only `POST` and
//! `OPTIONS` are served; another method is 405.
//!
//! Not implemented: XEP-0124 acknowledgements (`ack`, §9: not offered, so clients do not use them; a resent
//! request still gets its recent answer again), enforcing `polling` (advertised only; the rid window bounds
//! a client's outstanding requests and the connection's inbound rate what they carry), multiple streams per
//! session (§19), and `see-other-uri`/`host-gone` redirects.

pub mod body;
pub mod driver;
pub mod io;
pub mod rid;
pub mod session;
pub mod table;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use presence_core::store::Store;
use tokio::sync::{mpsc, oneshot};

use self::body::{Answer, Condition, Request};
use self::table::{Incoming, Table};
use super::{Endpoint, Security, client_addr};
use crate::connection::serve_framed;

/// The path of the BOSH endpoint.
pub const BOSH_PATH: &str = "/http-bind";

/// The most requests held at once (`hold`); a client asking for more gets this.
pub const MAX_HOLD: u64 = 1;

/// The BOSH session settings a deployment may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The longest a request is held (`wait`); a client asking for more gets this. Default 60 s.
    pub max_wait: Duration,
    /// How long a session may go without a request held before it ends (`inactivity`). Default 60 s.
    pub inactivity: Duration,
    /// The longest `pause` a client may ask for (`maxpause`). Default 120 s.
    pub max_pause: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_wait: Duration::from_secs(60),
            inactivity: Duration::from_secs(60),
            max_pause: Duration::from_secs(120),
        }
    }
}

/// The shortest interval between a polling client's requests (`polling`), advertised to clients.
pub const POLLING: Duration = Duration::from_secs(2);

/// Output bytes that may wait in a session for the client's next request, at least.
const OUTBOX_BYTES: usize = 1024 * 1024;

/// Messages between a session's stream and its driver.
const STREAM_CHANNEL: usize = 16;

/// How long an HTTP request waits for its session's answer beyond `wait` before it is answered empty.
const ANSWER_SLACK: Duration = Duration::from_secs(15);

/// The content type of every answer.
const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// What the BOSH route serves: the XMPP service and the live sessions.
struct Bosh<S> {
    endpoint: Endpoint<S>,
    table: Arc<Table>,
}

impl<S> Clone for Bosh<S> {
    fn clone(&self) -> Self {
        Bosh {
            endpoint: self.endpoint.clone(),
            table: self.table.clone(),
        }
    }
}

/// The BOSH routes: `POST /http-bind` and its CORS preflight `OPTIONS /http-bind`. Needs connection info, as
/// [`super::routes`] does.
pub fn routes<S: Store + Send + Sync + 'static>(endpoint: Endpoint<S>) -> Router {
    let limit = super::message_limit(&endpoint.shared.limits);
    Router::new()
        .route(BOSH_PATH, post(request::<S>).options(preflight))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Bosh {
            endpoint,
            table: Arc::new(Table::default()),
        })
}

/// The CORS headers of every answer.
fn cors(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

async fn preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    cors(h);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    r
}

/// An answer as an HTTP response.
fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut r = (status, answer.body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    cors(h);
    r
}

fn refuse(condition: Condition, legacy: bool) -> Response {
    respond(body::terminate(Some(condition), &[], legacy))
}

async fn request<S: Store + Send + Sync + 'static>(
    State(bosh): State<Bosh<S>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let request = match Request::parse(&bytes) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "malformed BOSH request");
            return refuse(Condition::BadRequest, false);
        }
    };
    let Some(sid) = request.sid.clone() else {
        return create(bosh, client_addr(peer, &headers), request).await;
    };
    let Some(driver) = bosh.table.get(&sid) else {
        return refuse(Condition::ItemNotFound, false);
    };
    let (reply, answer) = oneshot::channel();
    match driver.try_send(Incoming { request, reply }) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::debug!(%peer, "BOSH client over its request window");
            return refuse(Condition::PolicyViolation, false);
        }
        Err(mpsc::error::TrySendError::Closed(_)) => return refuse(Condition::ItemNotFound, false),
    }
    wait_for(answer, &bosh.endpoint.bosh).await
}

/// The session's answer; an empty one if the session somehow kept it past `wait`, `item-not-found` if it
/// ended without one.
async fn wait_for(answer: oneshot::Receiver<Answer>, settings: &Settings) -> Response {
    match tokio::time::timeout(settings.max_wait + ANSWER_SLACK, answer).await {
        Ok(Ok(a)) => respond(a),
        Ok(Err(_)) => refuse(Condition::ItemNotFound, false),
        Err(_) => respond(body::data(&[])),
    }
}

/// The session creation request (XEP-0124 §7.1, XEP-0206 §4): admitted under the connection caps, the session
/// and its stream are started and the request is answered with the session's attributes and stream features.
async fn create<S: Store + Send + Sync + 'static>(
    bosh: Bosh<S>,
    peer: SocketAddr,
    request: Request,
) -> Response {
    let shared = bosh.endpoint.shared.clone();
    let settings = bosh.endpoint.bosh;
    let legacy = request.ver.is_none();
    let to_us = request
        .to
        .as_deref()
        .is_some_and(|to| to.eq_ignore_ascii_case(&shared.domain));
    if !to_us {
        tracing::debug!(%peer, to = ?request.to, "BOSH session for another domain refused");
        return refuse(Condition::HostUnknown, legacy);
    }
    let admitted = match shared.hub.admission().admit(peer.ip()) {
        Ok(place) => place,
        Err(refused) => {
            shared.hub.metrics().rejected(refused.rejection());
            tracing::debug!(%peer, %refused, "BOSH session refused");
            return refuse(Condition::PolicyViolation, legacy);
        }
    };
    let wait = request
        .wait
        .map(Duration::from_secs)
        .unwrap_or(settings.max_wait)
        .clamp(
            Duration::from_secs(1),
            settings.max_wait.max(Duration::from_secs(1)),
        );
    let hold = request.hold.unwrap_or(1).min(MAX_HOLD);
    let requests = hold + 1;
    let sid: String = presence_core::runtime::random_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let security = bosh.endpoint.security;
    let mut creation = vec![
        ("sid", sid.clone()),
        ("wait", wait.as_secs().to_string()),
        ("requests", requests.to_string()),
        ("hold", hold.to_string()),
        ("inactivity", settings.inactivity.as_secs().to_string()),
        ("polling", POLLING.as_secs().to_string()),
        ("maxpause", settings.max_pause.as_secs().to_string()),
        ("ver", version(request.ver.as_deref()).to_owned()),
        ("from", shared.domain.clone()),
        ("secure", (security == Security::Encrypted).to_string()),
        ("xmlns:xmpp", body::NS_XBOSH.to_owned()),
        ("xmpp:version", "1.0".to_owned()),
        ("xmpp:restartlogic", "true".to_owned()),
    ];
    if let Some(content) = &request.content {
        creation.push(("content", content.clone()));
    }
    let params = session::Params {
        domain: shared.domain.clone(),
        wait,
        hold: usize::try_from(hold).unwrap_or(1),
        requests,
        inactivity: settings.inactivity,
        maxpause: settings.max_pause,
        legacy,
        lang: request.lang.clone(),
        outbox_bytes: OUTBOX_BYTES.max(shared.limits.max_stanza_size.saturating_mul(2)),
    };
    let (reply, answer) = oneshot::channel();
    let session = session::Session::new(Instant::now(), params, request, reply, creation);
    let (driver_tx, driver_rx) = mpsc::channel(usize::try_from(requests).unwrap_or(2) + 2);
    let (to_stream, inbound) = mpsc::channel(2);
    let (outbound, from_stream) = mpsc::channel(STREAM_CHANNEL);
    bosh.table.insert(sid.clone(), driver_tx);
    tracing::debug!(%peer, sid, "BOSH session created");
    tokio::spawn(driver::drive(
        sid,
        session,
        driver_rx,
        from_stream,
        to_stream,
        bosh.table.clone(),
    ));
    tokio::spawn(serve_framed(
        io::BoshIo::new(inbound, outbound),
        peer,
        shared,
        Ok(admitted),
        security,
        "bosh",
    ));
    wait_for(answer, &settings).await
}

/// The protocol version to answer with: the client's if it is older than ours (XEP-0124 §7.1), else ours.
fn version(client: Option<&str>) -> &str {
    let parse = |v: &str| {
        let (major, minor) = v.split_once('.')?;
        Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
    };
    match client {
        Some(v) if parse(v).is_some_and(|c| Some(c) < parse(body::VERSION)) => v,
        _ => body::VERSION,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_the_lower_of_the_two() {
        assert_eq!(version(Some("1.6")), "1.6");
        assert_eq!(version(Some("1.20")), "1.11");
        assert_eq!(version(Some("junk")), "1.11");
        assert_eq!(version(None), "1.11");
    }
}
