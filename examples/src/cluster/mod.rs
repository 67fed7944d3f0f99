//! Running presenced as a node of a cluster (DESIGN §6): PostgreSQL holds the shared state, NATS carries
//! stanzas, placement changes and heartbeats between nodes, and a redundancy pair fails over live.
//!
//! [`Node::join`] registers the node, places accounts that have no home yet and loads where every user is
//! served, before the engine starts (it serves exactly the users placed here). [`Node::start`] then runs the
//! link, the placement watcher, the admin subject and, for a node in a pair, the failover manager.

pub mod admin;
pub mod config;
pub mod db;
pub mod failover;
pub mod link;
pub mod model;
pub mod peer;
pub mod placement;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use presence_core::BareJid;
use presence_core::assignment::{AssignmentMode, UserId};
use presence_core::failover::{AdminCommand, Boot, FailoverNode, NodeState};
use presence_core::runtime::Handle;
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::{info, warn};

pub use config::ClusterConfig;
use db::{Db, DbError};
use model::{NodeRow, PlacementRow};
use placement::Placement;

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The cluster database refused or could not be reached.
    #[error(transparent)]
    Db(#[from] DbError),
    /// NATS could not be reached.
    #[error("cannot connect to NATS at {url}: {message}")]
    Nats {
        /// The configured URL.
        url: String,
        /// What the client said.
        message: String,
    },
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] config::ClusterConfigError),
}

/// The subject a node takes administrator requests on (`presenced cluster fallback|rebalance`).
pub fn admin_subject(node: &str) -> String {
    format!("presenced.admin.{node}")
}

/// This process as a node of its cluster.
pub struct Node {
    config: ClusterConfig,
    mode: AssignmentMode,
    failover: presence_core::failover::Config,
    row: NodeRow,
    db: Arc<Db>,
    client: async_nats::Client,
    placement: Arc<Placement>,
    lock: Arc<Mutex<()>>,
    outbound: Option<mpsc::Receiver<presence_core::stanza::Stanza>>,
    events: Option<mpsc::Sender<failover::Event>>,
    /// Whether the failover manager runs (this node has a peer).
    paired: Arc<std::sync::atomic::AtomicBool>,
    health: Arc<failover::Health>,
}

/// Events queued for the failover manager at most; past it, notices are dropped (the periodic reload
/// repeats what matters).
const EVENTS: usize = 1024;

impl Node {
    /// Registers this node, places accounts without a home, and loads the cluster's placement.
    pub async fn join(
        config: &ClusterConfig,
        db_url: &str,
        default_xmpp: String,
        default_sip: String,
    ) -> Result<Node, ClusterError> {
        config.validate()?;
        let mode = config.assignment_mode()?;
        let failover = config.failover_config()?;
        let db = Arc::new(Db::connect(db_url).await?);
        let xmpp = config.advertise_xmpp.clone().unwrap_or(default_xmpp);
        let sip = config.advertise_sip.clone().unwrap_or(default_sip);
        let row = db
            .register(&config.node, &config.group, Some(&xmpp), Some(&sip))
            .await?;
        let client = connect_nats(&config.nats, failover.connect_timeout).await?;
        let (tx, rx) = mpsc::channel(link::OUTBOUND_QUEUE);
        let placement = Arc::new(Placement::new(&config.node, tx));
        let placed = db.assign_unplaced(mode).await?;
        if placed > 0 {
            info!(users = placed, "placed accounts that had no home");
        }
        placement.set_nodes(&db.nodes().await?);
        placement.load(&db.placement().await?);
        info!(node = %config.node, group = %config.group, epoch = row.epoch, users = placement.hosted().len(), "joined the cluster");
        Ok(Node {
            config: config.clone(),
            mode,
            failover,
            row,
            db,
            client,
            placement,
            lock: Arc::new(Mutex::new(())),
            outbound: Some(rx),
            events: None,
            paired: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            health: Arc::default(),
        })
    }

    /// The runtime's view of the cluster (give it to `runtime::spawn_node`).
    pub fn placement(&self) -> Arc<Placement> {
        self.placement.clone()
    }

    /// Where the server reports its listeners ending on their own (critical services of the failover manager).
    pub fn health(&self) -> Arc<failover::Health> {
        self.health.clone()
    }

    /// The users this node serves now (give them to `Engine::serving_only`).
    pub fn hosted(&self) -> Vec<BareJid> {
        self.placement.hosted()
    }

    /// Starts carrying stanzas, watching placement, and (in a pair) the failover manager.
    pub async fn start(&mut self, handle: Handle) -> Result<(), ClusterError> {
        self.placement.set_handle(handle);
        let outbound = self.outbound.take().expect("started once");
        tokio::spawn(link::forward(
            self.client.clone(),
            self.placement.clone(),
            outbound,
        ));
        let inbound = self
            .client
            .subscribe(link::node_subject(&self.config.node))
            .await
            .map_err(|e| self.nats_error(e))?;
        tokio::spawn(link::receive(
            self.client.clone(),
            self.placement.clone(),
            inbound,
        ));
        let (events_tx, events_rx) = mpsc::channel(EVENTS);
        self.events = Some(events_tx.clone());
        // A pair's failover manager needs its peer's row; the first node of a group waits for the second.
        tokio::spawn(start_failover_when_paired(
            FailoverStart {
                config: self.config.clone(),
                failover: self.failover.clone(),
                row: self.row.clone(),
                db: self.db.clone(),
                client: self.client.clone(),
                placement: self.placement.clone(),
                lock: self.lock.clone(),
                started: self.paired.clone(),
                health: self.health.clone(),
            },
            events_rx,
            reload_period(&self.failover),
        ));
        let broadcasts = self
            .client
            .subscribe(link::PLACEMENT_SUBJECT)
            .await
            .map_err(|e| self.nats_error(e))?;
        tokio::spawn(watch_broadcasts(
            self.placement.clone(),
            self.lock.clone(),
            broadcasts,
            self.events.clone(),
        ));
        tokio::spawn(reload(
            self.db.clone(),
            self.placement.clone(),
            self.lock.clone(),
            self.mode,
            self.events.clone(),
            self.config.clone(),
            reload_period(&self.failover),
        ));
        let admin = self
            .client
            .subscribe(admin_subject(&self.config.node))
            .await
            .map_err(|e| self.nats_error(e))?;
        tokio::spawn(serve_admin(
            admin,
            self.client.clone(),
            self.events.clone(),
            Rebalancer {
                db: self.db.clone(),
                client: self.client.clone(),
                placement: self.placement.clone(),
                lock: self.lock.clone(),
                mode: self.mode,
                batch: self.failover.users_per_batch,
                pause: self.failover.batch_pause,
            },
        ));
        Ok(())
    }

    /// An orderly stop: the peer hears goodbye and takes this node's users over at once.
    pub async fn leave(&self) {
        if self.paired.load(std::sync::atomic::Ordering::Acquire)
            && let Some(events) = &self.events
        {
            let (tx, rx) = oneshot::channel();
            if events.send(failover::Event::Shutdown(tx)).await.is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(2), rx).await;
            }
        }
        let _ = self.client.flush().await;
    }

    fn nats_error(&self, e: impl std::fmt::Display) -> ClusterError {
        ClusterError::Nats {
            url: self.config.nats.clone(),
            message: e.to_string(),
        }
    }
}

/// Connects to NATS, retrying until it answers: a node that starts before its NATS server waits for it. Each
/// attempt is bounded by `[cluster.failover] connect_timeout` (the link to the peer is NATS).
pub async fn connect_nats(
    url: &str,
    timeout: Duration,
) -> Result<async_nats::Client, ClusterError> {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(timeout)
        .connect(url)
        .await
        .map_err(|e| ClusterError::Nats {
            url: url.to_owned(),
            message: e.to_string(),
        })
}

fn peer_name(nodes: &[NodeRow], config: &ClusterConfig) -> Option<String> {
    nodes
        .iter()
        .find(|n| n.group == config.group && n.name != config.node)
        .map(|n| n.name.clone())
}

/// How often the placement is read again from the database: about every heartbeat, between 1 and 10 seconds.
fn reload_period(f: &presence_core::failover::Config) -> Duration {
    f.heartbeat_interval
        .clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// Applies the placement changes other nodes broadcast.
async fn watch_broadcasts(
    placement: Arc<Placement>,
    lock: Arc<Mutex<()>>,
    mut sub: async_nats::Subscriber,
    events: Option<mpsc::Sender<failover::Event>>,
) {
    while let Some(msg) = sub.next().await {
        let Some((host, users)) = link::read_broadcast(&msg.payload) else {
            continue;
        };
        let diff = {
            let _guard = lock.lock().await;
            let diff = placement.update(&users, Some(&host));
            link::apply(&placement, &diff);
            diff
        };
        if !diff.left.is_empty() {
            info!(users = diff.left.len(), to = %host, "users moved to another node");
            if let Some(events) = &events {
                let _ = events.try_send(failover::Event::Claimed(diff.left));
            }
        }
    }
}

/// Reads the placement again periodically (missed broadcasts, accounts added since), placing new accounts.
async fn reload(
    db: Arc<Db>,
    placement: Arc<Placement>,
    lock: Arc<Mutex<()>>,
    mode: AssignmentMode,
    events: Option<mpsc::Sender<failover::Event>>,
    config: ClusterConfig,
    period: Duration,
) {
    let me = placement.me().to_owned();
    let mut last_homes: Option<(usize, usize, usize)> = None;
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        if let Err(e) = db.assign_unplaced(mode).await {
            warn!(error = %e, "placing new accounts failed");
            continue;
        }
        let (rows, nodes) = {
            let _guard = lock.lock().await;
            let (rows, nodes) = match (db.placement().await, db.nodes().await) {
                (Ok(r), Ok(n)) => (r, n),
                (Err(e), _) | (_, Err(e)) => {
                    warn!(error = %e, "reading the placement failed");
                    continue;
                }
            };
            placement.set_nodes(&nodes);
            let diff = placement.load(&rows);
            link::apply(&placement, &diff);
            if !diff.left.is_empty()
                && let Some(events) = &events
            {
                let _ = events.try_send(failover::Event::Claimed(diff.left));
            }
            (rows, nodes)
        };
        let peer = peer_name(&nodes, &config);
        let (Some(events), Some(peer)) = (&events, &peer) else {
            continue;
        };

        let pick = |f: &dyn Fn(&PlacementRow) -> bool| -> Vec<UserId> {
            rows.iter()
                .filter(|r| f(r))
                .filter_map(|r| UserId::new(r.jid.clone()).ok())
                .collect()
        };
        let own = pick(&|r| r.home == me);
        let theirs = pick(&|r| r.home == *peer);
        let hosted = pick(&|r| r.host.as_deref() == Some(me.as_str()));
        let shape = (own.len(), theirs.len(), hosted.len());
        if last_homes != Some(shape) {
            last_homes = Some(shape);
            if events
                .try_send(failover::Event::Homes {
                    own,
                    peer: theirs,
                    hosted,
                })
                .is_err()
            {
                // Try again at the next reload.
                last_homes = None;
            }
        }
    }
}

/// Moves users to where the assignment mode puts them, in batches.
struct Rebalancer {
    db: Arc<Db>,
    client: async_nats::Client,
    placement: Arc<Placement>,
    lock: Arc<Mutex<()>>,
    mode: AssignmentMode,
    batch: usize,
    pause: Duration,
}

impl Rebalancer {
    async fn run(&self) -> Result<usize, DbError> {
        let nodes = self.db.nodes().await?;
        let rows = self.db.placement().await?;
        let t = model::topology(&nodes);
        let mut a = model::assignments(self.mode, &nodes, &rows);
        // Only nodes serving users normally take part (DESIGN §6: Normal and Running in Backup Mode); a node
        // that never reported a state (no peer, so no failover manager) counts as Normal.
        let eligible = |id: presence_core::cluster::NodeId| {
            nodes.iter().find(|n| n.node_id() == id).is_some_and(|n| {
                n.last_state()
                    .is_none_or(|(s, _)| s.allows_rebalance() || s == NodeState::Initializing)
            })
        };
        let changes = a
            .rebalance(&t, eligible)
            .map_err(|e| DbError::Topology(e.to_string()))?;
        let mut moved = 0;
        let mut by_node: std::collections::BTreeMap<String, Vec<BareJid>> = Default::default();
        for c in changes {
            let Some(node) = c.to.and_then(|id| nodes.iter().find(|n| n.node_id() == id)) else {
                continue;
            };
            if let Ok(j) = BareJid::new(c.user.as_str()) {
                by_node.entry(node.name.clone()).or_default().push(j);
            }
        }
        for (node, users) in by_node {
            for chunk in users.chunks(self.batch.max(1)) {
                if moved > 0 {
                    tokio::time::sleep(self.pause).await;
                }
                let names: Vec<String> = chunk.iter().map(|j| j.as_str().to_owned()).collect();
                {
                    let _guard = self.lock.lock().await;
                    self.db.rehome(&names, &node).await?;
                    let diff = self.placement.update(chunk, Some(&node));
                    link::apply(&self.placement, &diff);
                }
                link::broadcast(&self.client, chunk, &node).await;
                moved += chunk.len();
            }
        }
        Ok(moved)
    }
}

/// Answers `failover`, `fallback`, `recover` and `rebalance` requests on the node's admin subject.
async fn serve_admin(
    mut sub: async_nats::Subscriber,
    client: async_nats::Client,
    events: Option<mpsc::Sender<failover::Event>>,
    rebalancer: Rebalancer,
) {
    while let Some(msg) = sub.next().await {
        let command = match msg.payload.as_ref() {
            b"failover" => Some(AdminCommand::Failover),
            b"fallback" => Some(AdminCommand::Fallback),
            b"recover" => Some(AdminCommand::Recover),
            _ => None,
        };
        let answer = match (command, msg.payload.as_ref()) {
            (Some(command), name) => match &events {
                None => "error this node has no failover peer".to_owned(),
                Some(events) => {
                    let (tx, rx) = oneshot::channel();
                    let _ = events.send(failover::Event::Admin(command, tx)).await;
                    match rx.await {
                        Ok(Ok(())) => format!("ok {} started", String::from_utf8_lossy(name)),
                        Ok(Err(refusal)) => format!("error {refusal}"),
                        Err(_) => {
                            "error the failover manager is not running (no peer yet)".to_owned()
                        }
                    }
                }
            },
            (None, b"rebalance") => match rebalancer.run().await {
                Ok(n) => format!("ok moved {n} users"),
                Err(e) => format!("error {e}"),
            },
            (None, other) => format!("error unknown request {:?}", String::from_utf8_lossy(other)),
        };
        if let Some(reply) = msg.reply {
            let _ = client.publish(reply, Bytes::from(answer)).await;
        }
    }
}

/// What starting the failover manager takes.
struct FailoverStart {
    config: ClusterConfig,
    failover: presence_core::failover::Config,
    row: NodeRow,
    db: Arc<Db>,
    client: async_nats::Client,
    placement: Arc<Placement>,
    lock: Arc<Mutex<()>>,
    started: Arc<std::sync::atomic::AtomicBool>,
    health: Arc<failover::Health>,
}

/// Starts the failover manager once this node's group has a second node.
async fn start_failover_when_paired(
    s: FailoverStart,
    events: mpsc::Receiver<failover::Event>,
    period: Duration,
) {
    let mut announced = false;
    let (peer, rows) = loop {
        match (s.db.nodes().await, s.db.placement().await) {
            (Ok(nodes), Ok(rows)) => {
                if let Some(peer) = nodes
                    .iter()
                    .find(|n| n.group == s.config.group && n.name != s.config.node)
                {
                    break (peer.clone(), rows);
                }
            }
            (Err(e), _) | (_, Err(e)) => warn!(error = %e, "reading the cluster failed"),
        }
        if !announced {
            info!("no peer in this group yet: failover starts when one joins");
            announced = true;
        }
        tokio::time::sleep(period).await;
    };
    let users = |f: &dyn Fn(&PlacementRow) -> bool| -> Vec<UserId> {
        rows.iter()
            .filter(|r| f(r))
            .filter_map(|r| UserId::new(r.jid.clone()).ok())
            .collect()
    };
    let me = s.config.node.as_str();
    let boot = Boot {
        node: s.row.node_id(),
        peer: peer.node_id(),
        epoch: u64::try_from(s.row.epoch).unwrap_or_default(),
        own_users: users(&|r| r.home == me),
        peer_users: users(&|r| r.home == peer.name),
        hosted: users(&|r| r.host.as_deref() == Some(me)),
        last: s.row.last_state(),
    };
    let node = match FailoverNode::new(s.failover.clone(), boot, Instant::now()) {
        Ok(n) => n,
        Err(e) => {
            warn!(error = %e, "the failover manager cannot start");
            return;
        }
    };
    info!(peer = %peer.name, "failover manager running");
    s.started.store(true, std::sync::atomic::Ordering::Release);
    failover::run(
        failover::Pair {
            node,
            group: s.config.group.clone(),
            me: s.config.node.clone(),
            peer: peer.name.clone(),
            client: s.client,
            db: s.db,
            placement: s.placement,
            placement_lock: s.lock,
            config: s.failover,
            health: s.health,
        },
        events,
    )
    .await;
}
