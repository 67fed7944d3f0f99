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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use presence_core::BareJid;
use presence_core::assignment::AssignmentMode;
use presence_core::failover::{AdminCommand, Boot, FailoverNode, NodeState};
use presence_core::runtime::Handle;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Mutex, mpsc, oneshot};

use tracing::{info, warn};

pub use config::ClusterConfig;
use db::{Db, DbError};
use model::NodeRow;
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

/// The subject a node takes administrator requests on (`presenced cluster failover|fallback|recover|rebalance`).
pub fn admin_subject(node: &str) -> String {
    format!("presenced.admin.{node}")
}

/// What every task of a node works with.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) config: ClusterConfig,
    pub(crate) mode: AssignmentMode,
    pub(crate) failover: presence_core::failover::Config,
    pub(crate) db: Arc<Db>,
    pub(crate) client: async_nats::Client,
    pub(crate) placement: Arc<Placement>,
    /// Held while placement is read from or written to the database, so a reload never undoes a move.
    pub(crate) lock: Arc<Mutex<()>>,
}

impl Shared {
    /// Places `users` on `node`: in the database (one statement, so all or none), in this node's view and
    /// engine, then in a broadcast to the other nodes.
    pub(crate) async fn place(
        &self,
        users: &[BareJid],
        node: &str,
        kind: link::Move,
    ) -> Result<(), DbError> {
        let names: Vec<String> = users.iter().map(|j| j.as_str().to_owned()).collect();
        {
            let _guard = self.lock.lock().await;
            match kind {
                link::Move::Claim => self.db.host(&names, node).await?,
                link::Move::Rehome => self.db.rehome(&names, node).await?,
            }
            let diff = self.placement.update(users, Some(node));
            // A rebalance gives users a new home, which their rooms follow (a claim keeps the home).
            if kind == link::Move::Rehome {
                self.placement.rehome(users, node);
            }
            link::apply(&self.placement, &diff);
        }
        link::broadcast(&self.client, users, node, kind).await;
        Ok(())
    }

    fn nats_error(&self, e: impl std::fmt::Display) -> ClusterError {
        ClusterError::Nats {
            url: self.config.nats.clone(),
            message: e.to_string(),
        }
    }
}

/// This process as a node of its cluster.
pub struct Node {
    shared: Shared,
    row: NodeRow,
    outbound: Option<mpsc::Receiver<wire::Frame>>,
    events: mpsc::Sender<failover::Event>,
    events_rx: Option<mpsc::Receiver<failover::Event>>,
    /// Whether the failover manager runs (this node has a peer); until then nobody answers `events`.
    paired: Arc<AtomicBool>,
    /// Tells the task taking stanzas from other nodes to stop (see [`Node::stop`]).
    stop_receiving: Arc<tokio::sync::Notify>,
    /// That task, until it is stopped.
    receiving: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
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
        let placed = db.assign_unplaced(mode).await?.len();
        if placed > 0 {
            info!(users = placed, "placed accounts that had no home");
        }
        placement.set_nodes(&db.nodes().await?);
        placement.load(&db.placement().await?);
        info!(node = %config.node, group = %config.group, epoch = row.epoch, users = placement.hosted().len(), "joined the cluster");
        let (events, events_rx) = mpsc::channel(EVENTS);
        Ok(Node {
            shared: Shared {
                config: config.clone(),
                mode,
                failover,
                db,
                client,
                placement,
                lock: Arc::new(Mutex::new(())),
            },
            row,
            outbound: Some(rx),
            events,
            events_rx: Some(events_rx),
            paired: Arc::new(AtomicBool::new(false)),
            stop_receiving: Arc::default(),
            receiving: parking_lot::Mutex::new(None),
            health: Arc::default(),
        })
    }

    /// The runtime's view of the cluster (give it to `runtime::spawn_node`).
    pub fn placement(&self) -> Arc<Placement> {
        self.shared.placement.clone()
    }

    /// Where the server reports its listeners ending on their own (critical services of the failover manager).
    pub fn health(&self) -> Arc<failover::Health> {
        self.health.clone()
    }

    /// The users this node serves now (give them to `Engine::serving_only`).
    pub fn hosted(&self) -> Vec<BareJid> {
        self.shared.placement.hosted()
    }

    /// Starts carrying stanzas, watching placement, and (in a pair) the failover manager.
    pub async fn start(&mut self, handle: Handle) -> Result<(), ClusterError> {
        let shared = &self.shared;
        shared.placement.set_handle(handle);
        // The engine learns whose rooms it serves before any client reaches it.
        link::apply(&shared.placement, &placement::Diff::default());
        let outbound = self.outbound.take().expect("started once");
        tokio::spawn(link::forward(
            shared.client.clone(),
            shared.placement.clone(),
            outbound,
        ));
        let inbound = shared
            .client
            .subscribe(link::node_subject(&shared.config.node))
            .await
            .map_err(|e| shared.nats_error(e))?;
        *self.receiving.lock() = Some(tokio::spawn(link::receive(
            shared.client.clone(),
            shared.placement.clone(),
            inbound,
            self.stop_receiving.clone(),
        )));
        // A pair's failover manager needs its peer's row; the first node of a group waits for the second.
        tokio::spawn(start_failover_when_paired(
            shared.clone(),
            self.row.clone(),
            self.paired.clone(),
            self.health.clone(),
            self.events_rx.take().expect("started once"),
        ));
        let broadcasts = shared
            .client
            .subscribe(link::PLACEMENT_SUBJECT)
            .await
            .map_err(|e| shared.nats_error(e))?;
        tokio::spawn(watch_broadcasts(
            shared.clone(),
            broadcasts,
            self.events.clone(),
        ));
        tokio::spawn(reload(shared.clone(), self.events.clone()));
        let admin = shared
            .client
            .subscribe(admin_subject(&shared.config.node))
            .await
            .map_err(|e| shared.nats_error(e))?;
        tokio::spawn(serve_admin(
            shared.clone(),
            admin,
            self.events.clone(),
            self.paired.clone(),
        ));
        // `subscribe` only queues the SUB: until it is written, a broadcast another node makes is not delivered
        // here, and a user placed on this node meanwhile is unknown to it until the next reload (its client is
        // told "no node serves this user"). Written before this node opens its listeners. (CI saw this once,
        // under load: the first login after the accounts were placed was turned away.)
        shared
            .client
            .flush()
            .await
            .map_err(|e| shared.nats_error(e))?;
        Ok(())
    }

    /// An orderly stop, once the engine has stopped (so nothing this node held for its users changes after its
    /// peer loads them):
    /// 1. it stops taking stanzas from other nodes: its subscription is drained, what was already delivered
    ///    is refused (`-`), and later senders hear NATS's "no responders"; either way they send again where
    ///    the user is served next (`link::forward`);
    /// 2. the failover peer hears goodbye and takes this node's users over at once;
    /// 3. it waits until every stanza its engine routed to other nodes is sent and every message among them
    ///    answered, and every answer it owes is written (at most the acknowledgement timeout and a second).
    ///
    /// Without 1 a message published as this process ends is delivered to it and never answered, and its
    /// sender can only bounce it as "maybe not delivered"; without 3 a message this node was routing on would
    /// end with the process after it had acknowledged it to its sender.
    pub async fn stop(&self) {
        self.stop_receiving.notify_one();
        let receiving = self.receiving.lock().take();
        if let Some(task) = receiving
            && tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
        {
            warn!(
                "stanzas from other nodes were still arriving when this node stopped taking them"
            );
        }
        if self.paired.load(Ordering::Acquire) {
            let (tx, rx) = oneshot::channel();
            if self
                .events
                .send(failover::Event::Shutdown(tx))
                .await
                .is_ok()
            {
                let _ = tokio::time::timeout(Duration::from_secs(2), rx).await;
            }
        }
        let deadline = tokio::time::Instant::now() + link::ACK_TIMEOUT + Duration::from_secs(1);
        while self.shared.placement.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = self.shared.placement.in_flight();
        if left > 0 {
            warn!(
                left,
                "stopping with stanzas for other nodes not yet answered"
            );
        }
        let _ = self.shared.client.flush().await;
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

/// The other node of this node's group, if it has joined.
fn peer_of<'a>(nodes: &'a [NodeRow], config: &ClusterConfig) -> Option<&'a NodeRow> {
    nodes
        .iter()
        .find(|n| n.group == config.group && n.name != config.node)
}

/// How often the placement is read again from the database: about every heartbeat, between 1 and 10 seconds.
fn reload_period(f: &presence_core::failover::Config) -> Duration {
    f.heartbeat_interval
        .clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// Applies the placement changes other nodes broadcast. Users the peer claimed are told to the failover
/// manager; users rehomed by a rebalance are not a claim (the manager learns their new homes at the reload).
async fn watch_broadcasts(
    shared: Shared,
    mut sub: async_nats::Subscriber,
    events: mpsc::Sender<failover::Event>,
) {
    while let Some(msg) = sub.next().await {
        let Some((kind, host, users)) = link::read_broadcast(&msg.payload) else {
            continue;
        };
        let diff = {
            let _guard = shared.lock.lock().await;
            let diff = shared.placement.update(&users, Some(&host));
            link::apply(&shared.placement, &diff);
            diff
        };
        if !diff.left.is_empty() {
            info!(users = diff.left.len(), to = %host, ?kind, "users moved to another node");
            if kind == link::Move::Claim {
                let _ = events.try_send(failover::Event::Claimed(diff.left));
            }
        }
    }
}

/// Reads the placement again periodically (missed broadcasts, accounts added since), placing new accounts.
async fn reload(shared: Shared, events: mpsc::Sender<failover::Event>) {
    let me = shared.config.node.clone();
    let mut last_homes: Option<model::Homes> = None;
    let mut tick = tokio::time::interval(reload_period(&shared.failover));
    loop {
        tick.tick().await;
        match shared.db.assign_unplaced(shared.mode).await {
            Ok(placed) => announce(&shared.client, placed).await,
            Err(e) => {
                warn!(error = %e, "placing new accounts failed");
                continue;
            }
        }
        let _guard = shared.lock.lock().await;
        let (rows, nodes) = match (shared.db.placement().await, shared.db.nodes().await) {
            (Ok(r), Ok(n)) => (r, n),
            (Err(e), _) | (_, Err(e)) => {
                warn!(error = %e, "reading the placement failed");
                continue;
            }
        };
        shared.placement.set_nodes(&nodes);
        let diff = shared.placement.load(&rows);
        link::apply(&shared.placement, &diff);
        // The homes go first: a user who left because a rebalance gave it another home is then no longer
        // this node's own when the claim below arrives, so only a real takeover reads as one.
        if let Some(peer) = peer_of(&nodes, &shared.config) {
            let homes = model::homes(&rows, &me, &peer.name);
            if last_homes.as_ref() != Some(&homes)
                && events
                    .try_send(failover::Event::Homes(homes.clone()))
                    .is_ok()
            {
                last_homes = Some(homes);
            }
        }
        if !diff.left.is_empty() {
            let _ = events.try_send(failover::Event::Claimed(diff.left));
        }
    }
}

/// Tells every node where new accounts were placed, so their node serves them at once rather than from its
/// next reload (a client signing in between was told that no node serves it).
async fn announce(client: &async_nats::Client, placed: Vec<(String, String)>) {
    let mut by_node: HashMap<String, Vec<BareJid>> = HashMap::new();
    for (jid, node) in placed {
        if let Ok(jid) = BareJid::new(&jid) {
            by_node.entry(node).or_default().push(jid);
        }
    }
    for (node, users) in by_node {
        info!(users = users.len(), %node, "placed new accounts");
        link::broadcast(client, &users, &node, link::Move::Rehome).await;
    }
}

/// Moves users to where the assignment mode puts them, in the failover batches.
async fn rebalance(shared: &Shared) -> Result<usize, DbError> {
    let nodes = shared.db.nodes().await?;
    let rows = shared.db.placement().await?;
    let t = model::topology(&nodes);
    let mut a = model::assignments(shared.mode, &nodes, &rows);
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
    let mut by_node: std::collections::BTreeMap<&str, Vec<BareJid>> = Default::default();
    for c in changes {
        let Some(node) = c.to.and_then(|id| nodes.iter().find(|n| n.node_id() == id)) else {
            continue;
        };
        if let Ok(j) = BareJid::new(c.user.as_str()) {
            by_node.entry(&node.name).or_default().push(j);
        }
    }
    let mut moved = 0;
    for (node, users) in by_node {
        for chunk in users.chunks(shared.failover.users_per_batch.max(1)) {
            if moved > 0 {
                tokio::time::sleep(shared.failover.batch_pause).await;
            }
            shared.place(chunk, node, link::Move::Rehome).await?;
            moved += chunk.len();
        }
    }
    Ok(moved)
}

/// Answers `failover`, `fallback`, `recover` and `rebalance` requests on the node's admin subject.
async fn serve_admin(
    shared: Shared,
    mut sub: async_nats::Subscriber,
    events: mpsc::Sender<failover::Event>,
    paired: Arc<AtomicBool>,
) {
    while let Some(msg) = sub.next().await {
        let command = match msg.payload.as_ref() {
            b"failover" => Some(AdminCommand::Failover),
            b"fallback" => Some(AdminCommand::Fallback),
            b"recover" => Some(AdminCommand::Recover),
            _ => None,
        };
        let answer = match (command, msg.payload.as_ref()) {
            // Until the manager runs nobody would answer the request.
            (Some(_), _) if !paired.load(Ordering::Acquire) => {
                "error this node has no failover peer yet".to_owned()
            }
            (Some(command), name) => {
                let (tx, rx) = oneshot::channel();
                let _ = events.send(failover::Event::Admin(command, tx)).await;
                match rx.await {
                    Ok(Ok(())) => format!("ok {} started", String::from_utf8_lossy(name)),
                    Ok(Err(refusal)) => format!("error {refusal}"),
                    Err(_) => "error the failover manager stopped".to_owned(),
                }
            }
            (None, b"rebalance") => match rebalance(&shared).await {
                Ok(n) => format!("ok moved {n} users"),
                Err(e) => format!("error {e}"),
            },
            (None, other) => format!("error unknown request {:?}", String::from_utf8_lossy(other)),
        };
        if let Some(reply) = msg.reply {
            let _ = shared.client.publish(reply, Bytes::from(answer)).await;
        }
    }
}

/// Starts the failover manager once this node's group has a second node.
async fn start_failover_when_paired(
    shared: Shared,
    row: NodeRow,
    started: Arc<AtomicBool>,
    health: Arc<failover::Health>,
    events: mpsc::Receiver<failover::Event>,
) {
    let mut announced = false;
    let (peer, rows) = loop {
        match (shared.db.nodes().await, shared.db.placement().await) {
            (Ok(nodes), Ok(rows)) => {
                if let Some(peer) = peer_of(&nodes, &shared.config) {
                    break (peer.clone(), rows);
                }
            }
            (Err(e), _) | (_, Err(e)) => warn!(error = %e, "reading the cluster failed"),
        }
        if !announced {
            info!("no peer in this group yet: failover starts when one joins");
            announced = true;
        }
        tokio::time::sleep(reload_period(&shared.failover)).await;
    };
    let homes = model::homes(&rows, &shared.config.node, &peer.name);
    let boot = Boot {
        node: row.node_id(),
        peer: peer.node_id(),
        epoch: u64::try_from(row.epoch).unwrap_or_default(),
        own_users: homes.own,
        peer_users: homes.peer,
        hosted: homes.hosted,
        last: row.last_state(),
    };
    let node = match FailoverNode::new(shared.failover.clone(), boot, Instant::now()) {
        Ok(n) => n,
        Err(e) => {
            warn!(error = %e, "the failover manager cannot start");
            return;
        }
    };
    info!(peer = %peer.name, "failover manager running");
    started.store(true, Ordering::Release);
    failover::run(
        failover::Pair {
            node,
            peer: peer.name,
            shared,
            health,
        },
        events,
    )
    .await;
}
