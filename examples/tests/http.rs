//! The HTTP listener as a scraper sees it: real requests over TCP to `examples::http::serve` on a loopback port.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use examples::http::{HttpState, METRICS_CONTENT_TYPE, router, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A parsed HTTP/1.1 response.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` with `Connection: close` and reads the whole response.
async fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> Response {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header");
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

type Running = (
    std::net::SocketAddr,
    Arc<AtomicU64>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
);

/// Starts the listener with a metrics closure that counts its calls; returns the address, the call counter, the
/// shutdown trigger and the server task.
async fn start() -> Running {
    start_with(std::time::Duration::ZERO).await
}

/// [`start`] with a metrics closure that takes `render_time` to answer.
async fn start_with(render_time: std::time::Duration) -> Running {
    let scrapes = Arc::new(AtomicU64::new(0));
    let counter = scrapes.clone();
    let state = HttpState {
        metrics: Arc::new(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::sleep(render_time);
            format!("# TYPE presenced_scrapes_total counter\npresenced_scrapes_total {n}\n")
        }),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, None, router(state), async move {
        let _ = stopped.await;
    }));
    (addr, scrapes, stop, task)
}

#[tokio::test]
async fn metrics_are_served_in_the_prometheus_text_format() {
    let (addr, scrapes, _stop, _task) = start().await;
    let r = request(addr, "GET", "/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(METRICS_CONTENT_TYPE));
    assert_eq!(
        METRICS_CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(
        r.body,
        "# TYPE presenced_scrapes_total counter\npresenced_scrapes_total 1\n"
    );

    // Each scrape renders afresh: the body is the closure's current output, not a cached one.
    let r = request(addr, "GET", "/metrics").await;
    assert!(
        r.body.ends_with("presenced_scrapes_total 2\n"),
        "{}",
        r.body
    );
    assert_eq!(scrapes.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn other_paths_are_404_and_other_methods_405() {
    let (addr, scrapes, _stop, _task) = start().await;
    for path in ["/", "/metrics/extra", "/status", "/metricsx"] {
        let r = request(addr, "GET", path).await;
        assert_eq!(r.status, 404, "{path}");
    }
    let r = request(addr, "POST", "/metrics").await;
    assert_eq!(r.status, 405);
    assert_eq!(
        scrapes.load(Ordering::SeqCst),
        0,
        "no other request renders the metrics"
    );
}

#[tokio::test]
async fn shutdown_stops_the_listener_and_serve_returns_ok() {
    let (addr, _scrapes, stop, task) = start().await;
    assert_eq!(request(addr, "GET", "/metrics").await.status, 200);
    stop.send(()).expect("server still running");
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("serve returns after shutdown")
        .expect("task did not panic");
    assert!(result.is_ok(), "{result:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the port is closed after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_request_in_flight_finish() {
    let (addr, scrapes, stop, task) = start_with(std::time::Duration::from_millis(500)).await;
    let in_flight = tokio::spawn(async move { request(addr, "GET", "/metrics").await });
    // Wait until the handler is rendering, then ask the server to stop under it.
    while scrapes.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.send(()).expect("server still running");
    let r = in_flight.await.expect("request task");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        "# TYPE presenced_scrapes_total counter\npresenced_scrapes_total 1\n"
    );
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("serve returns after the last request")
        .expect("task did not panic")
        .expect("serve ok");
}
