//! What an operator sees of one running node: the web status page at `/`, its JSON twin `/status.json` (read by
//! `presenced status`), and what feeds them.
//!
//! A [`StatusBoard`] is built once by the server. A task samples it every second ([`sample_forever`]: messages
//! and store failures of the last minute, in fixed rings), another reads the cluster's node rows every few
//! seconds when clustered ([`watch_cluster`]), and the log subscriber copies warnings and errors into
//! [`errors::global`]. A request only reads memory: [`StatusBoard::snapshot`] never touches the store.

pub mod access;
pub mod client;
pub mod errors;
pub mod page;
pub mod rate;
pub mod routes;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use presence_core::runtime::{Metrics, Protocol};
use serde::{Deserialize, Serialize};

use crate::config::{Config, StoreKind};
use errors::{LogEntry, RecentErrors};
use rate::PerSecond;

/// The version the binary was built as.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Cluster nodes kept for the page (a cluster has at most six: three groups of two).
const MAX_NODES: usize = 16;

/// How often the cluster's node rows are read.
const CLUSTER_EVERY: Duration = Duration::from_secs(5);

/// Everything the page and `/status.json` show, at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always `"up"`: a node that answers is up (`presenced status` reports down when nothing answers).
    pub status: String,
    /// The server's version.
    pub version: String,
    /// The served domain.
    pub domain: String,
    /// Seconds since the server started.
    pub uptime_seconds: u64,
    /// When it started, in seconds since the Unix epoch.
    pub started_at: u64,
    /// Bound sessions by protocol.
    pub sessions: Sessions,
    /// Messages received (XMPP `<message/>` and SIP MESSAGE) per second over the last minute.
    pub messages_per_second: f64,
    /// The same, second by second, oldest first (at most 60).
    pub messages_series: Vec<u64>,
    /// Messages held for offline users.
    pub offline_messages: i64,
    /// Work waiting for the engine.
    pub engine_queue: i64,
    /// The store.
    pub store: StoreStatus,
    /// The cluster, when the node is in one.
    pub cluster: Option<ClusterStatus>,
    /// The last warnings and errors, newest first.
    pub recent_errors: Vec<LogEntry>,
}

/// Bound sessions by protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    /// XMPP sessions (TCP and WebSocket).
    pub xmpp: i64,
    /// SIP sessions.
    pub sip: i64,
}

/// The store's kind, where it is, and whether it works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStatus {
    /// `embedded` or `postgres`.
    pub kind: String,
    /// The embedded file's path, or the PostgreSQL host and database (never the credentials).
    pub location: String,
    /// `ok`, or `failing` when an operation failed in the last minute.
    pub state: String,
    /// Failed store operations in the last minute.
    pub failures_last_minute: u64,
}

/// This node's cluster and the failover state of every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// This node's name.
    pub node: String,
    /// Its redundancy group.
    pub group: String,
    /// Every node as the cluster database last said (empty until first read).
    pub nodes: Vec<NodeStatus>,
    /// Why the cluster database could not be read the last time, if it could not.
    pub error: Option<String>,
}

/// One node's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Its name.
    pub name: String,
    /// Its redundancy group.
    pub group: String,
    /// Its failover state (`Normal`, `Failed Over`, …), if it recorded one.
    pub state: Option<String>,
    /// Why it is in that state.
    pub reason: Option<String>,
    /// Its start count.
    pub epoch: i64,
}

/// The rings the sampler fills.
#[derive(Debug, Default)]
struct Samples {
    messages: PerSecond,
    store_failures: PerSecond,
}

/// The live source of [`Snapshot`]s.
pub struct StatusBoard {
    started: Instant,
    started_at: u64,
    domain: String,
    metrics: Arc<Metrics>,
    store_kind: String,
    store_location: String,
    samples: Mutex<Samples>,
    cluster: Mutex<Option<ClusterStatus>>,
    errors: RecentErrors,
}

impl std::fmt::Debug for StatusBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusBoard").finish_non_exhaustive()
    }
}

impl StatusBoard {
    /// A board for the server of `config`, reading `metrics` and the process's error ring.
    pub fn new(config: &Config, metrics: Arc<Metrics>, errors: RecentErrors) -> Arc<Self> {
        let (store_kind, store_location) = match config.store.kind {
            StoreKind::Embedded => ("embedded", config.store_path().display().to_string()),
            StoreKind::Postgres => (
                "postgres",
                redact_url(config.store.url.as_deref().unwrap_or_default()),
            ),
        };
        let cluster = config.cluster.as_ref().map(|c| ClusterStatus {
            node: c.node.clone(),
            group: c.group.clone(),
            nodes: Vec::new(),
            error: None,
        });
        Arc::new(StatusBoard {
            started: Instant::now(),
            started_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            domain: config.domain.clone(),
            metrics,
            store_kind: store_kind.to_owned(),
            store_location,
            samples: Mutex::default(),
            cluster: Mutex::new(cluster),
            errors,
        })
    }

    /// Takes one second's sample of the counters.
    pub fn sample(&self) {
        let messages = self.metrics.messages_in();
        let failures = self.metrics.store_failures_total();
        let mut s = self.samples.lock();
        s.messages.sample(messages);
        s.store_failures.sample(failures);
    }

    /// Records the cluster database's node rows, or why they could not be read.
    pub fn set_cluster_nodes(&self, nodes: Result<Vec<NodeStatus>, String>) {
        if let Some(c) = self.cluster.lock().as_mut() {
            match nodes {
                Ok(mut nodes) => {
                    nodes.truncate(MAX_NODES);
                    c.nodes = nodes;
                    c.error = None;
                }
                Err(e) => c.error = Some(e),
            }
        }
    }

    /// The status now.
    pub fn snapshot(&self) -> Snapshot {
        let (messages_per_second, messages_series, failures) = {
            let s = self.samples.lock();
            (
                s.messages.mean(),
                s.messages.series(),
                s.store_failures.sum(),
            )
        };
        Snapshot {
            status: "up".to_owned(),
            version: VERSION.to_owned(),
            domain: self.domain.clone(),
            uptime_seconds: self.started.elapsed().as_secs(),
            started_at: self.started_at,
            sessions: Sessions {
                xmpp: self.metrics.sessions(Protocol::Xmpp),
                sip: self.metrics.sessions(Protocol::Sip),
            },
            messages_per_second,
            messages_series,
            offline_messages: self.metrics.offline_messages(),
            engine_queue: self.metrics.engine_queue_depth(),
            store: StoreStatus {
                kind: self.store_kind.clone(),
                location: self.store_location.clone(),
                state: if failures == 0 { "ok" } else { "failing" }.to_owned(),
                failures_last_minute: failures,
            },
            cluster: self.cluster.lock().clone(),
            recent_errors: self.errors.newest_first(),
        }
    }
}

/// Starts the status board of the server of `config` (its sampler and, in a cluster, its node-row reader, as
/// tasks of the current runtime) and returns the routes to merge into the HTTP listener's router.
pub fn start(config: &Config, metrics: Arc<Metrics>) -> axum::Router {
    let board = StatusBoard::new(config, metrics, errors::global().clone());
    tokio::spawn(sample_forever(board.clone()));
    if config.cluster.is_some() {
        let url = config.store.url.clone().unwrap_or_default();
        tokio::spawn(watch_cluster(board.clone(), url));
    }
    routes::routes(
        board,
        access::AccessRule {
            password: config.http.admin_password.clone(),
            secure: config.http.secure(),
        },
    )
}

/// Samples `board` once a second, forever (abort the task to stop it).
pub async fn sample_forever(board: Arc<StatusBoard>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        board.sample();
    }
}

/// Reads the cluster's node rows from `db_url` every few seconds into `board`, forever.
pub async fn watch_cluster(board: Arc<StatusBoard>, db_url: String) {
    let mut db = None;
    loop {
        if db.is_none() {
            match crate::cluster::db::Db::connect(&db_url).await {
                Ok(d) => db = Some(d),
                Err(e) => board.set_cluster_nodes(Err(e.to_string())),
            }
        }
        if let Some(d) = &db {
            let rows = d.nodes().await.map_err(|e| e.to_string()).map(|rows| {
                rows.into_iter()
                    .map(|r| NodeStatus {
                        name: r.name,
                        group: r.group,
                        state: r.state,
                        reason: r.reason,
                        epoch: r.epoch,
                    })
                    .collect()
            });
            board.set_cluster_nodes(rows);
        }
        tokio::time::sleep(CLUSTER_EVERY).await;
    }
}

/// A database URL without its user and password: `postgresql://u:p@host:5432/db?x` gives `host:5432/db`.
pub fn redact_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('?').next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_page() {
        assert_eq!(
            redact_url("postgresql://presenced:s3cret@10.0.0.5:5432/presenced?sslmode=disable"),
            "10.0.0.5:5432/presenced"
        );
        assert_eq!(redact_url("postgresql://db.example/p"), "db.example/p");
    }

    #[test]
    fn the_snapshot_reads_the_metrics_and_the_rings() {
        let metrics = Arc::new(Metrics::new());
        let errors = RecentErrors::default();
        let board = StatusBoard::new(&Config::default(), metrics.clone(), errors.clone());
        board.sample();
        metrics.session_opened(Protocol::Xmpp);
        metrics.session_opened(Protocol::Sip);
        metrics.stanza_in(presence_core::runtime::StanzaKind::Message);
        metrics.sip_request_in("MESSAGE");
        board.sample();
        let s = board.snapshot();
        assert_eq!(s.status, "up");
        assert_eq!(s.sessions, Sessions { xmpp: 1, sip: 1 });
        assert_eq!(s.messages_series, vec![2]);
        assert!((s.messages_per_second - 2.0).abs() < 1e-9);
        assert_eq!(s.store.kind, "embedded");
        assert_eq!(s.store.state, "ok");
        assert!(s.cluster.is_none());
        let json = serde_json::to_string(&s).expect("serializes");
        let back: Snapshot = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, s);
    }
}
