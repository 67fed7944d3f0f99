//! The runtime that drives an [`Engine`] for tokio shells (feature `tokio`), as `quinn` drives `quinn-proto`.
//!
//! The engine is sans-IO; something has to own it, feed it, make its writes durable and carry its deliveries.
//! That is this module, shared by every shell of a process (XMPP, SIP, an embedder's own transport):
//!
//! - **one engine thread** ([`spawn`]): store calls block, so the engine and its store run on their own OS
//!   thread, not as a task of the I/O workers; timers fire there too; or **one per shard** ([`spawn_sharded`],
//!   [`RuntimeConfig::shards`]): users hashed over several engines, each with its own thread, queue and group
//!   commit, stanzas between them routed as between the nodes of a cluster (see `shards.rs` for who owns
//!   which input); a shell's I/O worker or service thread may run an idle engine itself for its inputs
//!   ([`Handle::submit_here`]: the engine is held by whichever thread runs it, one at a time, the order of
//!   what each thread submits is kept, and a worker steps aside before anything that may block);
//! - **group commit, failing closed**: everything queued when the engine wakes is one batch whose writes are
//!   committed in one transaction before anything that depended on them goes out; when the commit fails, those
//!   deliveries and acknowledgements become errors (see `driver.rs` for the exact rules), and a failed load
//!   reaches the engine as `Input::LoadFailed`;
//! - **bounded queues**: the engine's input queue refuses work past [`RuntimeConfig::engine_queue`]
//!   ([`SubmitError::Busy`], which a shell turns into a temporary error); each session's outbound queue ends
//!   the session when its client stops reading ([`Ended::SlowConsumer`]); see [`sink`] for every bound;
//! - **one session-id allocator** ([`Handle::new_session`]) for every shell, flush tokens for shells that must
//!   learn the outcome of what they sent (a SIP MESSAGE's final response), watch sinks;
//! - **compliance archiving** ([`Compliance`], given with [`spawn_with`]): the engine's compliance records
//!   written in step with group commit (`required`: no delivery without its record) or beside it (`best_effort`);
//! - **connection caps** ([`Admission`]), **metrics** ([`Metrics`]) and the wall clock ([`timestamp`]).
//!
//! ```
//! use std::sync::Arc;
//! use presence_core::runtime::{self, RuntimeConfig, ToSession};
//! use presence_core::store::{Account, AccountStore, MemoryStore};
//! use presence_core::{BareJid, Engine, EngineConfig, Input};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = Arc::new(MemoryStore::new());
//! let alice = BareJid::new("alice@example.com").unwrap();
//! store.put_account(&Account { jid: alice.clone(), credentials: vec![], digest: vec![] }).unwrap();
//! let rt = runtime::spawn(Engine::new(EngineConfig::for_domain("example.com")), store, RuntimeConfig::default())
//!     .unwrap();
//! let handle = rt.handle();
//!
//! // A transport of your own: one session, its deliveries on a bounded channel.
//! let session = handle.new_session();
//! let (sink, mut deliveries) = runtime::session_channel(64, 256 * 1024);
//! handle.attach(session, sink).unwrap();
//! handle.submit(Input::OpenSession { session, user: alice, resource: Some("desk".into()) }).unwrap();
//! let Some(ToSession::Bound(jid)) = deliveries.recv().await else { panic!("bound") };
//! assert_eq!(jid.to_string(), "alice@example.com/desk");
//!
//! rt.shutdown().await;
//! # });
//! ```

mod admission;
pub mod calendar;
mod clock;
pub mod cluster;
pub mod compliance;
pub mod domains;
mod driver;
mod handle;
mod metrics;
mod queue;
mod service_channel;
mod shards;
pub mod sink;
mod step_aside;

pub use admission::{Admission, Permit, Refused};
pub use calendar::{CalendarConnector, CalendarPolling, spawn_calendar};
pub use clock::{random_bytes, timestamp};
pub use cluster::{Cluster, Location, NodeAddress};
pub use compliance::{Compliance, ComplianceError, ComplianceHook, Mode as ComplianceMode};
pub use domains::{Attached, DomainSink, DomainTaken};
pub use driver::undeliverable;
pub use handle::{Handle, Rejected};
pub use metrics::{Metrics, Protocol, Rejection, StanzaKind};
pub use queue::SubmitError;
pub use service_channel::ServiceReceiver;
pub use shards::MAX_SHARDS;
pub use sink::{
    Ended, SessionReceiver, SessionSink, SharedSink, ToSession, WatchSink, session_channel,
    shared_channel, watch_channel,
};

use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::Engine;
use crate::store::{Store, StoreError};

/// How the runtime is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Work items that may wait for the engine before shells are refused ([`SubmitError::Busy`]).
    pub engine_queue: usize,
    /// The most messages taken into one batch (one group commit).
    pub batch: usize,
    /// Connections the process accepts in total ([`Admission`]).
    pub max_connections: usize,
    /// Connections from one address (0: no cap).
    pub max_connections_per_ip: usize,
    /// Engine shards, each an engine on its own thread serving the users that hash to it (1 to
    /// [`MAX_SHARDS`]; see [`spawn_sharded`]). `engine_queue` bounds each shard's queue.
    pub shards: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            engine_queue: 65_536,
            batch: 512,
            max_connections: 65_536,
            max_connections_per_ip: 1024,
            shards: 1,
        }
    }
}

/// A running engine: its thread and the handle shells use.
#[derive(Debug)]
pub struct Runtime {
    handle: Handle,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// What an embedder may plug into the runtime besides its store; [`Hooks::default`] plugs nothing.
#[derive(Clone, Default)]
pub struct Hooks {
    /// The cluster this engine is a node of (see [`spawn_node`]).
    pub cluster: Option<Arc<dyn Cluster>>,
    /// Where the engine's compliance records go (see [`compliance`]); turn on
    /// [`EngineConfig::compliance`](crate::EngineConfig) too, or the engine emits none.
    pub compliance: Option<ComplianceHook>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("cluster", &self.cluster.is_some())
            .field("compliance", &self.compliance)
            .finish()
    }
}

/// Starts the engine thread over `store`.
pub fn spawn<S: Store + Send + Sync + 'static>(
    engine: Engine,
    store: Arc<S>,
    config: RuntimeConfig,
) -> std::io::Result<Runtime> {
    spawn_with(engine, store, config, Hooks::default())
}

/// Starts the engine thread of one node of a cluster: stanzas for users of the local domains that the engine
/// does not serve (see [`Engine::serving_only`]) go to `cluster`, and shells locate users through it.
pub fn spawn_node<S: Store + Send + Sync + 'static>(
    engine: Engine,
    store: Arc<S>,
    config: RuntimeConfig,
    cluster: Arc<dyn Cluster>,
) -> std::io::Result<Runtime> {
    let hooks = Hooks {
        cluster: Some(cluster),
        ..Hooks::default()
    };
    spawn_with(engine, store, config, hooks)
}

/// Starts the engine thread over `store` with what `hooks` plugs in (a cluster, a compliance sink). One engine
/// serves every shard's users: asking for more shards here is an error (build one engine per shard with
/// [`spawn_sharded`]).
pub fn spawn_with<S: Store + Send + Sync + 'static>(
    engine: Engine,
    store: Arc<S>,
    config: RuntimeConfig,
    hooks: Hooks,
) -> std::io::Result<Runtime> {
    if config.shards > 1 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "runtime.shards = {}: one engine was given; spawn_sharded builds one per shard",
                config.shards
            ),
        ));
    }
    let Hooks {
        cluster,
        compliance,
    } = hooks;
    let queue = Arc::new(queue::Queue::new(config.engine_queue));
    let metrics = Arc::new(Metrics::new());
    let admission = Admission::new(config.max_connections, config.max_connections_per_ip);
    let domains = Arc::new(domains::Domains::default());
    let batch = config.batch.max(1);
    let driver = Arc::new(Mutex::new(driver::Driver::new(
        engine,
        store,
        metrics.clone(),
        cluster.clone(),
        domains.clone(),
        compliance,
        None,
    )?));
    let handle = Handle::new(
        queue.clone(),
        None,
        Arc::new([inline(&driver)]),
        metrics,
        admission,
        cluster,
        domains,
    );
    let thread = std::thread::Builder::new()
        .name("presence-engine".into())
        .spawn(move || driver::Driver::run(&driver, &queue, batch))?;
    Ok(Runtime {
        handle,
        threads: vec![thread],
    })
}

/// Starts [`RuntimeConfig::shards`] engines over `store`, each on its own thread serving the users that hash
/// to it; `engine(i)` builds shard `i`'s engine (the runtime makes it serve only its shard and tells it which
/// rooms are its). Shells use the one [`Handle`] as with a single engine. With one shard this is
/// [`spawn_with`]. A node of a cluster (`hooks.cluster`) runs one shard: more is refused.
pub fn spawn_sharded<S: Store + Send + Sync + 'static>(
    mut engine: impl FnMut(usize) -> Engine,
    store: Arc<S>,
    config: RuntimeConfig,
    hooks: Hooks,
) -> std::io::Result<Runtime> {
    let count = config.shards.max(1);
    if count == 1 {
        return spawn_with(engine(0), store, config, hooks);
    }
    let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
    if count > MAX_SHARDS {
        return Err(invalid(format!(
            "runtime.shards = {count}: at most {MAX_SHARDS} shards"
        )));
    }
    if hooks.cluster.is_some() {
        return Err(invalid(format!(
            "runtime.shards = {count}: a node of a cluster runs one shard"
        )));
    }
    let queues: Vec<Arc<queue::Queue>> = (0..count)
        .map(|_| Arc::new(queue::Queue::new(config.engine_queue)))
        .collect();
    let siblings = shards::Siblings::new(queues.clone());
    let metrics = Arc::new(Metrics::new());
    let domains = Arc::new(domains::Domains::default());
    let batch = config.batch.max(1);
    let names = shards::names(count);
    let mut drivers = Vec::with_capacity(count);
    for (i, queue) in queues.iter().enumerate() {
        let link = Arc::new(shards::ShardLink::new(i, siblings.clone(), metrics.clone()));
        // First in its queue, so no room work reaches the engine before it knows which rooms are its.
        let _ = queue.push_control(queue::Msg::Input(crate::Input::RoomPlacement {
            nodes: names.clone(),
            served: vec![names[i].clone()],
        }));
        drivers.push(Arc::new(Mutex::new(driver::Driver::new(
            engine(i).serving_shard(i, count),
            store.clone(),
            metrics.clone(),
            Some(link.clone() as Arc<dyn Cluster>),
            domains.clone(),
            hooks.compliance.clone(),
            Some(link),
        )?)));
    }
    // One list of the engines, for the handle's inline runs and the shards' routed messages.
    let engines: Arc<[_]> = drivers.iter().map(inline).collect();
    siblings.set_engines(engines.clone());
    let handle = Handle::new(
        queues[0].clone(),
        Some(Arc::new(shards::Router::new(siblings.clone()))),
        engines,
        metrics.clone(),
        Admission::new(config.max_connections, config.max_connections_per_ip),
        None,
        domains.clone(),
    );
    let mut threads = Vec::with_capacity(count);
    for (i, (queue, driver)) in queues.into_iter().zip(drivers).enumerate() {
        let thread = std::thread::Builder::new()
            .name(format!("presence-engine-{i}"))
            .spawn(move || driver::Driver::run(&driver, &queue, batch));
        match thread {
            Ok(t) => threads.push(t),
            Err(e) => {
                handle.shutdown();
                return Err(e);
            }
        }
    }
    Ok(Runtime { handle, threads })
}

impl Runtime {
    /// A handle for a shell (clone it freely).
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Asks the engine to finish what is queued, commit it, end every session ([`Ended::Shutdown`]) and stop;
    /// resolves once the engine thread (every shard's) has ended.
    pub async fn shutdown(self) {
        self.handle.shutdown();
        let threads = self.threads;
        // Joining blocks; the I/O workers must not.
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

/// How a handle reaches an engine to run an input on the submitting thread: weakly, so the engine ends with its
/// thread whatever handles remain.
fn inline<S: Store + Send + Sync + 'static>(
    driver: &Arc<Mutex<driver::Driver<S>>>,
) -> Weak<dyn driver::Inline> {
    let strong: Arc<dyn driver::Inline> = driver.clone();
    Arc::downgrade(&strong)
}

/// Runs a blocking store lookup off the I/O workers (SASL verifiers, digest secrets, account checks).
pub async fn lookup<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(StoreError::Backend(format!(
            "store lookup task failed: {e}"
        )))
    })
}
