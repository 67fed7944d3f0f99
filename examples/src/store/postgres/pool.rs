//! A small, fixed-size pool of synchronous PostgreSQL connections.
//!
//! Connections are opened lazily, up to the pool size, and returned after each use. A connection that reports
//! itself closed, or whose last operation failed below SQL (I/O, a closed socket, a timeout), is dropped rather
//! than returned, together with every idle one (after such a failure they most likely all point at a server that
//! went away); the next checkout connects afresh, so the pool recovers by itself once PostgreSQL is back. An idle
//! connection is also checked with a round trip before reuse when it has not been used for a while.
//!
//! The `postgres` client drives its socket with a private tokio runtime, which panics when entered from a thread
//! already running async code. [`Pool::run`] therefore leaves the caller's runtime first when it is called from a
//! multi-threaded runtime's worker (`block_in_place`) or on a thread of its own from a current-thread runtime (the
//! SIP service); calls from plain threads and from `spawn_blocking` run directly.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::{Client, Config, NoTls};
use presence_core::store::StoreError;

/// How long a checkout waits for a busy pool before giving up.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle connection older than this is checked with a round trip before it is handed out.
const VALIDATE_AFTER: Duration = Duration::from_secs(5);
/// How long that check may take.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(2);

struct Idle {
    client: Client,
    since: Instant,
}

struct State {
    idle: Vec<Idle>,
    /// Connections that exist: idle plus checked out.
    open: usize,
}

/// A pool of at most `size` connections to one database.
pub struct Pool {
    config: Config,
    /// The database as shown in messages: host, port, database and user, never the password.
    target: String,
    size: usize,
    state: Mutex<State>,
    returned: Condvar,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.target)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// `user@host:port/dbname` of a parsed URL, without its password.
pub fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

/// Runs `f` where the `postgres` client may block: see the module documentation.
pub fn outside_async<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        // A current-thread runtime (the SIP service's) cannot step aside: the call runs on a short-lived thread
        // of its own, which the caller waits for exactly as it would for the query.
        Ok(_) => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
        Err(_) => f(),
    }
}

/// An error on one line: the server's own message for statement errors (`postgres::Error` shows only "db
/// error" for those), the client's description with its cause otherwise.
pub fn error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!(
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            );
            if let Some(detail) = db.detail() {
                text.push_str("; ");
                text.push_str(detail);
            }
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        }
        None => e.to_string(),
    }
}

/// Whether an error leaves the connection unusable (anything but an error the server reported for a statement).
fn is_connection_error(e: &postgres::Error) -> bool {
    e.is_closed() || e.as_db_error().is_none()
}

impl Pool {
    /// A pool for `url` holding at most `size` connections (at least 1); connects nothing yet.
    pub fn new(url: &str, size: usize) -> Result<Self, StoreError> {
        let mut config: Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("presenced");
        }
        let target = describe(&config);
        Ok(Pool {
            config,
            target,
            size: size.max(1),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        })
    }

    /// The database as shown in messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent: every update is one statement.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes an idle connection, or the right to open a new one (`None`), waiting while all are busy.
    fn checkout(&self) -> Result<Option<Idle>, StoreError> {
        let deadline = Instant::now() + CHECKOUT_TIMEOUT;
        let mut state = self.lock();
        loop {
            if let Some(idle) = state.idle.pop() {
                return Ok(Some(idle));
            }
            if state.open < self.size {
                state.open += 1;
                return Ok(None);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::Backend(format!(
                    "PostgreSQL {}: all {} pooled connections stayed busy for {}s",
                    self.target,
                    self.size,
                    CHECKOUT_TIMEOUT.as_secs()
                )));
            }
            state = self
                .returned
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Gives up one connection slot (its connection was dropped or never opened).
    fn forget(&self, drop_idle: bool) -> Vec<Idle> {
        let mut state = self.lock();
        state.open -= 1;
        let gone = if drop_idle {
            let gone = std::mem::take(&mut state.idle);
            state.open -= gone.len();
            gone
        } else {
            Vec::new()
        };
        drop(state);
        self.returned.notify_all();
        gone
    }

    fn give_back(&self, client: Client) {
        self.lock().idle.push(Idle {
            client,
            since: Instant::now(),
        });
        self.returned.notify_one();
    }

    /// A usable connection: a pooled one that still works, or a new one.
    fn usable(&self) -> Result<Client, StoreError> {
        loop {
            match self.checkout()? {
                Some(Idle { mut client, since }) => {
                    let alive = !client.is_closed()
                        && (since.elapsed() < VALIDATE_AFTER
                            || client.is_valid(VALIDATE_TIMEOUT).is_ok());
                    if alive {
                        return Ok(client);
                    }
                    tracing::info!(db = %self.target, "dropping a broken PostgreSQL connection");
                    drop(client);
                    drop(self.forget(true));
                }
                None => {
                    return self.config.connect(NoTls).map_err(|e| {
                        drop(self.forget(false));
                        StoreError::Backend(format!(
                            "cannot connect to PostgreSQL {}: {}",
                            self.target,
                            error_text(&e)
                        ))
                    });
                }
            }
        }
    }

    /// Runs `f` on a pooled connection; a connection-level failure drops the connection (see the module docs).
    pub fn run<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, StoreError> {
        outside_async(|| {
            let mut client = self.usable()?;
            match f(&mut client) {
                Ok(v) => {
                    if client.is_closed() {
                        drop(client);
                        drop(self.forget(true));
                    } else {
                        self.give_back(client);
                    }
                    Ok(v)
                }
                Err(e) => {
                    let message = format!("PostgreSQL {}: {}", self.target, error_text(&e));
                    if is_connection_error(&e) || client.is_closed() {
                        tracing::warn!(db = %self.target, error = %error_text(&e), "PostgreSQL connection failed; reconnecting on next use");
                        drop(client);
                        drop(self.forget(true));
                    } else {
                        self.give_back(client);
                    }
                    Err(StoreError::Backend(message))
                }
            }
        })
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.lock().idle);
        if idle.is_empty() {
            return;
        }
        // Closing a client blocks on its private runtime, which must not start inside another one.
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        } else {
            drop(idle);
        }
    }
}
