//! `xmpp_load`: provisions accounts and rosters and drives many concurrent XMPP clients against `presenced`,
//! Prosody or ejabberd.
//!
//! Every client does STARTTLS, SASL SCRAM-SHA-1 (the mechanism all three servers share), resource binding, a
//! roster get and initial presence, then a workload: `login`, `chat`, `fanout`, `idle`, `resume`, `relogin`, `mam`,
//! `muc` or (for a presenced cluster) `failover`. A client that a cluster node sends on with `<see-other-host/>`
//! logs in at the named node. Each run prints one JSON line on stdout (for the scripts in `benches/`) and a
//! readable summary on stderr. See the "Load tool", "Cluster", "Mobile" and "Group chat" sections of
//! `benches/README.md`.

mod mobile;
mod muc;
mod scram;

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use clap::{Parser, Subcommand, ValueEnum};
use examples::store::RedbStore;
use examples::store::postgres::PgStore;
use presence_core::BareJid;
use presence_core::roster::{ItemDetails, Link, RosterEntry, Subscription};
use presence_core::store::{Account, AccountStore, RosterStore, ScramHash};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use xmpp_codec::{Element, Stanza, StreamEvent, StreamParser};

const DOMAIN: &str = "localhost";
/// Every account's password.
const PASSWORD: &str = "bench-pw";
/// Every client's stream header (client-to-server, `jabber:client`).
const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Bounds one whole login, so a stuck server cannot hang the run.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Parser)]
#[command(about = "Load tool for XMPP servers (c2s): presenced, Prosody, ejabberd")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Conn {
    /// The server's c2s address (loopback only).
    #[arg(long)]
    addr: SocketAddr,
    /// PEM certificate to trust as the only root (the server's self-signed certificate).
    #[arg(long)]
    ca: PathBuf,
    /// File of cached SCRAM keys (RFC 5802 §5.1), read at start and appended to; none: derive every time.
    #[arg(long)]
    scram_cache: Option<PathBuf>,
    /// Logins (or registrations) in flight at once.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
}

#[derive(Subcommand)]
enum Cmd {
    /// presenced only: writes users u0..u{N-1}@localhost straight into the store: the embedded redb store
    /// (`--data-dir`, before the server starts) or a PostgreSQL database (`--postgres`, any time).
    Provision {
        /// presenced's data_dir (the store is DATA_DIR/presenced.redb).
        #[arg(long, required_unless_present = "postgres")]
        data_dir: Option<PathBuf>,
        /// The `[store] url` of a PostgreSQL store (`postgresql://user@host:port/db`) instead of `--data-dir`.
        #[arg(long, conflicts_with = "data_dir")]
        postgres: Option<String>,
        /// Also append every user's SCRAM-SHA-1 client and server keys to this key cache (as `--scram-cache`
        /// of the runs), so the first login of each user costs the tool no PBKDF2.
        #[arg(long)]
        scram_cache: Option<PathBuf>,
        /// Number of users.
        #[arg(long)]
        users: usize,
        /// Mutual contacts of each of the first `--roster-users` users (ring neighbours, see `contacts`).
        #[arg(long, default_value_t = 0)]
        roster: usize,
        /// How many users (u0..) get rosters; default all.
        #[arg(long)]
        roster_users: Option<usize>,
    },
    /// Prosody only: writes users (SCRAM-SHA-1 verifiers, iteration count 4096) and mutual rosters straight into
    /// its `internal` file storage under DATA_PATH/localhost/ (before the server starts), and their client keys
    /// into the SCRAM key cache.
    ProsodyProvision {
        /// Prosody's data_path.
        #[arg(long)]
        data_path: PathBuf,
        #[arg(long)]
        users: usize,
        #[arg(long, default_value_t = 0)]
        roster: usize,
        #[arg(long)]
        roster_users: Option<usize>,
        /// The key cache to fill (as `--scram-cache` of the runs).
        #[arg(long)]
        scram_cache: PathBuf,
    },
    /// Any server: in-band registration (XEP-0077) of u0..u{N-1}; "conflict" (already there) counts as done.
    Register {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        users: usize,
    },
    /// Any server: mutual rosters among u0..u{U-1} over XMPP: every client subscribes to its R ring neighbours
    /// and approves every subscription request it gets, until every roster holds R contacts with
    /// subscription "both".
    Roster {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        users: usize,
        #[arg(long)]
        roster: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Logs N clients in concurrently and runs a workload.
    Run {
        #[command(flatten)]
        conn: Conn,
        /// Number of clients (users u0..u{N-1}).
        #[arg(long)]
        users: usize,
        #[arg(long, value_enum)]
        workload: Workload,
        /// chat: aggregate messages per second offered; fanout: presence changes per second (0: all at once).
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// Seconds of sending (chat, muc) or of holding the connections (idle).
        #[arg(long, alias = "secs", default_value_t = 10)]
        duration: u64,
        /// fanout: contacts per user (as provisioned), to know how many deliveries to expect.
        #[arg(long, default_value_t = 0)]
        roster: usize,
        /// The server's process id, for its CPU time and RSS; repeat it for a cluster (CPU is summed, RSS is the
        /// first one's).
        #[arg(long)]
        server_pid: Vec<u32>,
        /// A name for the server, copied into the JSON line.
        #[arg(long, default_value = "server")]
        label: String,
        /// failover: the node to `kill -9` once every client is logged in; the clock starts at the kill.
        #[arg(long)]
        kill_pid: Option<u32>,
        /// failover: the surviving node's c2s address, where every dropped client logs in again.
        #[arg(long)]
        failover_addr: Option<SocketAddr>,
        /// KEY=VALUE copied into the JSON line as a string (repeatable), e.g. the cluster's settings.
        #[arg(long)]
        tag: Vec<String>,
        /// resume/relogin: messages sent to each dropped client while it is away; mam: messages archived for,
        /// and then fetched by, each catching-up client.
        #[arg(long, default_value_t = 10)]
        messages: usize,
        /// mam: results asked for per page (RSM `<max/>`).
        #[arg(long, default_value_t = 250)]
        page: usize,
        /// mam: catch-ups each client does one after the other (more work measured against 10 ms CPU ticks).
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// muc: number of rooms (`--users` must be rooms × occupants; room r holds u{r·O}..u{r·O+O-1}).
        #[arg(long, default_value_t = 1)]
        rooms: usize,
        /// muc: occupants per room.
        #[arg(long, default_value_t = 50)]
        occupants: usize,
        /// muc: the MUC service's domain; rooms are bench{r}@SERVICE.
        #[arg(long, default_value = "conference.localhost")]
        muc_service: String,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Workload {
    /// Log in, report, close.
    Login,
    /// Every client sends messages to random other online clients.
    Chat,
    /// Every client changes its presence once; every contact's receipt is timed.
    Fanout,
    /// Hold the connections and measure the server's RSS per client.
    Idle,
    /// Cluster: kill -9 the node serving the clients (`--kill-pid`); every dropped client logs in again through
    /// `--failover-addr`, then each sends one message to another and waits for its reply.
    Failover,
    /// Mobile: clients u0..u{N-2} enable stream management with resumption (XEP-0198), drop their TCP
    /// connections without `</stream>`, the last client sends each of them `--messages` messages, then each
    /// reconnects (TLS, SASL) and resumes its session, reading until its messages are in. Measured: the reconnects.
    Resume,
    /// As `resume` without stream management: the dropped clients log in again (bind, roster, initial presence)
    /// and get their messages from offline storage.
    Relogin,
    /// Mobile: u{N/2}..u{N-1} each send `--messages` chat messages to u0..u{N/2-1} (archived by the server), then
    /// u0..u{N/2-1} page through their archives (XEP-0313 with RSM, `--page` per page). Measured: the catch-up.
    Mam,
    /// Group chat (XEP-0045): `--rooms` rooms of `--occupants` occupants at `--muc-service`; all join (the first
    /// occupant creates the room, as an instant room if it is locked), then `--rate` groupchat messages per second
    /// per room for `--duration` seconds, sent by the occupants in turn; every occupant times every receipt.
    Muc,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Provision {
            data_dir,
            postgres,
            scram_cache,
            users,
            roster,
            roster_users,
        } => provision(
            data_dir.as_deref(),
            postgres.as_deref(),
            scram_cache.as_deref(),
            users,
            roster,
            roster_users.unwrap_or(users),
        ),
        Cmd::ProsodyProvision {
            data_path,
            users,
            roster,
            roster_users,
            scram_cache,
        } => prosody_provision(
            &data_path,
            users,
            roster,
            roster_users.unwrap_or(users),
            &scram_cache,
        ),
        Cmd::Register { conn, users } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let t = Target::new(&conn)?;
                register_all(&t, users, conn.concurrency).await
            })
        }
        Cmd::Roster {
            conn,
            users,
            roster,
            timeout,
        } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let t = Target::new(&conn)?;
                let r = roster_all(&t, users, roster, conn.concurrency, timeout).await;
                t.cache.save()?;
                r
            })
        }
        Cmd::Run {
            conn,
            users,
            workload,
            rate,
            duration,
            roster,
            server_pid,
            label,
            kill_pid,
            failover_addr,
            tag,
            messages,
            page,
            rounds,
            rooms,
            occupants,
            muc_service,
        } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let t = Target::new(&conn)?;
                let r = run(RunArgs {
                    target: t.clone(),
                    users,
                    workload,
                    rate,
                    duration: Duration::from_secs(duration),
                    roster,
                    server_pid,
                    concurrency: conn.concurrency.max(1),
                    label,
                    kill_pid,
                    failover_addr,
                    tags: tag,
                    messages,
                    page,
                    rounds: rounds.max(1),
                    rooms,
                    occupants,
                    muc_service,
                })
                .await;
                t.cache.save()?;
                r
            })
        }
    }
}

fn jid(i: usize) -> BareJid {
    BareJid::new(&format!("u{i}@{DOMAIN}")).expect("valid jid")
}

/// The R contacts of user `i` among `n` users: its ring neighbours i±1..i±R/2 (mod n). Symmetric, so every pair
/// is mutual; R is rounded down to even and capped so that no neighbour repeats.
fn contacts(i: usize, n: usize, r: usize) -> Vec<usize> {
    let half = (r / 2).min(n.saturating_sub(1) / 2);
    let mut out = Vec::with_capacity(2 * half);
    for k in 1..=half {
        out.push((i + k) % n);
        out.push((i + n - k) % n);
    }
    out
}

/// Where `provision` writes: the embedded store or a PostgreSQL database.
enum ProvisionStore {
    Redb(RedbStore),
    Pg(PgStore),
}

impl ProvisionStore {
    fn roster(&self) -> &dyn RosterStore {
        match self {
            ProvisionStore::Redb(s) => s,
            ProvisionStore::Pg(s) => s,
        }
    }
}

fn provision(
    data_dir: Option<&Path>,
    postgres: Option<&str>,
    scram_cache: Option<&Path>,
    users: usize,
    roster: usize,
    roster_users: usize,
) -> Result<(), Error> {
    let store = match (postgres, data_dir) {
        // A few connections: the inserts are spread over them from as many threads.
        (Some(url), _) => ProvisionStore::Pg(PgStore::connect(url, PG_WRITERS)?),
        (None, Some(dir)) => {
            std::fs::create_dir_all(dir)?;
            ProvisionStore::Redb(RedbStore::open(dir.join(examples::config::STORE_FILE))?)
        }
        (None, None) => return Err("provision needs --data-dir or --postgres".into()),
    };
    let start = Instant::now();
    // Verifiers cost two PBKDF2 runs each (and the cached client keys one more): derive them on every core,
    // write them from this thread (redb) or from PG_WRITERS threads (PostgreSQL).
    let want_keys = scram_cache.is_some();
    let accounts = parallel_map(users, |i| {
        let account = examples::credentials::new_account(jid(i), PASSWORD)?;
        let line = if want_keys {
            cache_line(i, &account)?
        } else {
            String::new()
        };
        Ok::<_, Error>((account, line))
    });
    let accounts: Vec<(Account, String)> = accounts.into_iter().collect::<Result<_, _>>()?;
    let derived = start.elapsed();
    match &store {
        ProvisionStore::Redb(s) => {
            for (account, _) in &accounts {
                s.put_account(account)?;
            }
        }
        ProvisionStore::Pg(s) => {
            let chunk = accounts.len().div_ceil(PG_WRITERS).max(1);
            std::thread::scope(|scope| {
                let handles: Vec<_> = accounts
                    .chunks(chunk)
                    .map(|part| {
                        let s = s.clone();
                        scope.spawn(move || {
                            part.iter()
                                .try_for_each(|(account, _)| s.put_account(account))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .try_for_each(|h| h.join().expect("no panic"))
            })?;
        }
    }
    if let Some(cache) = scram_cache {
        let text: String = accounts
            .iter()
            .flat_map(|(_, l)| [l.as_str(), "\n"])
            .collect();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(cache)?
            .write_all(text.as_bytes())?;
    }
    let written = start.elapsed();
    let entry = RosterEntry::Listed {
        details: ItemDetails::default(),
        subscription: Subscription {
            outbound: Link::On,
            inbound: Link::On,
        },
    };
    let n = roster_users.min(users);
    for i in 0..n {
        for j in contacts(i, n, roster) {
            store.roster().put_roster_entry(&jid(i), &jid(j), &entry)?;
        }
    }
    eprintln!(
        "provisioned {users} users in {:.1} s ({:.1} s deriving verifiers, {:.1} s writing to {}), \
{} mutual contacts each for u0..u{} in {:.1} s",
        written.as_secs_f64(),
        derived.as_secs_f64(),
        (written - derived).as_secs_f64(),
        if postgres.is_some() {
            "PostgreSQL"
        } else {
            "redb"
        },
        contacts(0, n, roster).len(),
        n.saturating_sub(1),
        (start.elapsed() - written).as_secs_f64()
    );
    Ok(())
}

/// Connections (and threads) `provision --postgres` writes with.
const PG_WRITERS: usize = 4;

/// The SCRAM key cache line of user `i` (see [`ScramCache`]), derived from the SCRAM-SHA-1 verifier's salt and
/// checked against its stored key.
fn cache_line(i: usize, account: &Account) -> Result<String, Error> {
    use sha1::Digest as _;
    let c = account
        .credentials
        .iter()
        .find(|c| c.hash == ScramHash::Sha1)
        .ok_or("the account has no SCRAM-SHA-1 verifier")?;
    let k = scram::Keys::derive(PASSWORD, &c.salt, c.iterations);
    if sha1::Sha1::digest(k.client_key).as_slice() != c.stored_key.as_slice()
        || k.server_key.as_slice() != c.server_key.as_slice()
    {
        return Err("derived SCRAM keys do not match the stored verifier".into());
    }
    Ok(format!(
        "u{i} {} {} {} {}",
        B64.encode(&c.salt),
        c.iterations,
        hex(&k.client_key),
        hex(&k.server_key)
    ))
}

/// Runs `f(i)` for i in 0..n on every core, results in order.
fn parallel_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let f = &f;
    let mut parts: Vec<Vec<(usize, T)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| s.spawn(move || (t..n).step_by(threads).map(|i| (i, f(i))).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect()
    });
    let mut all: Vec<(usize, T)> = parts.iter_mut().flat_map(std::mem::take).collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

/// Prosody's `internal` storage: one Lua file per user and store, `DATA/localhost/{accounts,roster}/USER.dat`.
fn prosody_provision(
    data_path: &Path,
    users: usize,
    roster: usize,
    roster_users: usize,
    cache: &Path,
) -> Result<(), Error> {
    use sha1::Digest as _;
    const ITERATIONS: u32 = 4096;
    let start = Instant::now();
    let host = data_path.join(DOMAIN);
    std::fs::create_dir_all(host.join("accounts"))?;
    std::fs::create_dir_all(host.join("roster"))?;
    let keys = parallel_map(users, |i| {
        let salt = format!("bench-salt-u{i}");
        (
            salt.clone(),
            scram::Keys::derive(PASSWORD, salt.as_bytes(), ITERATIONS),
        )
    });
    let mut cache_lines = String::new();
    for (i, (salt, k)) in keys.iter().enumerate() {
        let stored_key = sha1::Sha1::digest(k.client_key);
        std::fs::write(
            host.join("accounts").join(format!("u{i}.dat")),
            format!(
                "return {{\n\t[\"iteration_count\"] = {ITERATIONS};\n\t[\"salt\"] = \"{salt}\";\n\
\t[\"server_key\"] = \"{}\";\n\t[\"stored_key\"] = \"{}\";\n}};\n",
                hex(&k.server_key),
                hex(&stored_key)
            ),
        )?;
        cache_lines.push_str(&format!(
            "u{i} {} {ITERATIONS} {} {}\n",
            B64.encode(salt),
            hex(&k.client_key),
            hex(&k.server_key)
        ));
    }
    let n = roster_users.min(users);
    for i in 0..n {
        let mut f = String::from(
            "return {\n\t[false] = {\n\t\t[\"version\"] = 1;\n\t\t[\"pending\"] = {};\n\t};\n",
        );
        for j in contacts(i, n, roster) {
            f.push_str(&format!(
                "\t[\"u{j}@{DOMAIN}\"] = {{\n\t\t[\"groups\"] = {{}};\n\t\t[\"subscription\"] = \"both\";\n\t}};\n"
            ));
        }
        f.push_str("};\n");
        std::fs::write(host.join("roster").join(format!("u{i}.dat")), f)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cache)?
        .write_all(cache_lines.as_bytes())?;
    eprintln!(
        "prosody: wrote {users} accounts and {n} rosters of {} contacts in {:.1} s",
        contacts(0, n, roster).len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Cached SCRAM keys by "user salt iterations".
struct ScramCache {
    path: Option<PathBuf>,
    map: Mutex<HashMap<String, scram::Keys>>,
    new: Mutex<Vec<String>>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex20(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    if s.len() != 40 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl ScramCache {
    fn load(path: Option<PathBuf>) -> Result<ScramCache, Error> {
        let mut map = HashMap::new();
        if let Some(p) = &path
            && let Ok(text) = std::fs::read_to_string(p)
        {
            for line in text.lines() {
                let f: Vec<&str> = line.split(' ').collect();
                if let [user, salt, iter, ck, sk] = f[..]
                    && let (Some(client_key), Some(server_key)) = (unhex20(ck), unhex20(sk))
                {
                    map.insert(
                        format!("{user} {salt} {iter}"),
                        scram::Keys {
                            client_key,
                            server_key,
                        },
                    );
                }
            }
        }
        Ok(ScramCache {
            path,
            map: Mutex::new(map),
            new: Mutex::new(Vec::new()),
        })
    }

    async fn keys(&self, user: usize, sf: &scram::ServerFirst) -> Result<scram::Keys, Error> {
        let key = format!("u{user} {} {}", sf.salt_b64, sf.iterations);
        if let Some(k) = self.map.lock().expect("not poisoned").get(&key) {
            return Ok(*k);
        }
        let (salt, i) = (sf.salt.clone(), sf.iterations);
        let k =
            tokio::task::spawn_blocking(move || scram::Keys::derive(PASSWORD, &salt, i)).await?;
        if self.path.is_some() {
            self.new.lock().expect("not poisoned").push(format!(
                "{key} {} {}",
                hex(&k.client_key),
                hex(&k.server_key)
            ));
        }
        self.map.lock().expect("not poisoned").insert(key, k);
        Ok(k)
    }

    fn save(&self) -> Result<(), Error> {
        let new = std::mem::take(&mut *self.new.lock().expect("not poisoned"));
        if let (Some(p), false) = (&self.path, new.is_empty()) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?;
            let mut text = new.join("\n");
            text.push('\n');
            f.write_all(text.as_bytes())?;
        }
        Ok(())
    }
}

#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    tls: TlsConnector,
    cache: Arc<ScramCache>,
}

impl Target {
    fn new(c: &Conn) -> Result<Target, Error> {
        if !c.addr.ip().is_loopback() {
            return Err("only loopback addresses are allowed".into());
        }
        Ok(Target {
            addr: c.addr,
            tls: tls_connector(&c.ca)?,
            cache: Arc::new(ScramCache::load(c.scram_cache.clone())?),
        })
    }
}

fn tls_connector(ca: &Path) -> Result<TlsConnector, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    // Every client is a new device: a full handshake each time, whatever the server's ticket support.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Pulls the next stream event, reading more bytes as needed.
async fn next_event<S: AsyncRead + Unpin>(
    s: &mut S,
    parser: &mut StreamParser,
    buf: &mut [u8],
) -> Result<StreamEvent, Error> {
    loop {
        if let Some(ev) = parser.next_event()? {
            return Ok(ev);
        }
        let n = s.read(buf).await?;
        if n == 0 {
            return Err("server closed the connection".into());
        }
        parser.feed(&buf[..n]);
    }
}

/// Reads the server's stream header and then its `<stream:features/>`.
async fn open_and_features<S: AsyncRead + Unpin>(
    s: &mut S,
    parser: &mut StreamParser,
    buf: &mut [u8],
) -> Result<Element, Error> {
    match next_event(s, parser, buf).await? {
        StreamEvent::Open(_) => {}
        other => return Err(format!("expected stream header, got {other:?}").into()),
    }
    match next_event(s, parser, buf).await? {
        StreamEvent::Element(el) if el.name == "features" => Ok(el),
        other => Err(format!("expected features, got {other:?}").into()),
    }
}

/// Next top-level element that is not a stanza (SASL nonzas), skipping stanzas.
async fn next_nonza<S: AsyncRead + Unpin>(
    s: &mut S,
    parser: &mut StreamParser,
    buf: &mut [u8],
) -> Result<Element, Error> {
    loop {
        match next_event(s, parser, buf).await? {
            StreamEvent::Element(el) => return Ok(el),
            StreamEvent::Stanza(_) => {}
            other => return Err(format!("expected an element, got {other:?}").into()),
        }
    }
}

type Tls = TlsStream<TcpStream>;

/// TCP, stream, STARTTLS, TLS handshake, stream again: the encrypted stream and its features.
async fn connect_tls(
    t: &Target,
    addr: SocketAddr,
    parser: &mut StreamParser,
    buf: &mut [u8],
) -> Result<(Tls, Element), Error> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    tcp.write_all(HEADER).await?;
    open_and_features(&mut tcp, parser, buf).await?;
    tcp.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await?;
    match next_event(&mut tcp, parser, buf).await? {
        StreamEvent::Element(el) if el.name == "proceed" => {}
        other => return Err(format!("STARTTLS refused: {other:?}").into()),
    }
    parser.reset();
    let mut s = t
        .tls
        .connect(ServerName::try_from(DOMAIN).expect("valid name"), tcp)
        .await?;
    s.write_all(HEADER).await?;
    let features = open_and_features(&mut s, parser, buf).await?;
    Ok((s, features))
}

struct Client {
    rd: ReadHalf<Tls>,
    wr: WriteHalf<Tls>,
    parser: StreamParser,
    /// The node it is logged in to.
    addr: SocketAddr,
    /// `<see-other-host/>` redirects it followed to get there.
    redirects: u32,
    /// Messages with a body that arrived during the login, before the bind and roster results were in (offline
    /// messages a server flushes early): the `resume`/`relogin` workloads count them.
    early: Vec<String>,
}

/// Where one login attempt ended: logged in, or sent to another node.
enum Landing {
    In(Box<Client>),
    Redirect(SocketAddr),
}

/// At most this many `<see-other-host/>` redirects per login (a cluster needs one).
const MAX_REDIRECTS: u32 = 3;

/// The address of a `<see-other-host/>` (`host:port`, `[v6]:port`): `localhost` is 127.0.0.1 (the certificate
/// is checked against `localhost` anyway); only loopback addresses are accepted.
fn resolve_redirect(host_port: &str) -> Result<SocketAddr, Error> {
    let (host, port) = host_port
        .rsplit_once(':')
        .ok_or_else(|| format!("see-other-host {host_port:?} has no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("see-other-host {host_port:?}: bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = if host.eq_ignore_ascii_case("localhost") {
        std::net::Ipv4Addr::LOCALHOST.into()
    } else {
        host.parse()
            .map_err(|_| format!("see-other-host {host_port:?}: not an IP address or localhost"))?
    };
    if !ip.is_loopback() {
        return Err(format!("see-other-host {host_port:?} is not a loopback address").into());
    }
    Ok(SocketAddr::new(ip, port))
}

fn random_nonce() -> Result<String, Error> {
    let mut r = [0u8; 18];
    getrandom::fill(&mut r).map_err(|e| format!("getrandom: {e}"))?;
    Ok(B64.encode(r))
}

/// SCRAM-SHA-1 over an encrypted stream whose features were just read.
async fn scram_sha1(
    t: &Target,
    user: usize,
    s: &mut Tls,
    parser: &mut StreamParser,
    buf: &mut [u8],
    features: &Element,
) -> Result<(), Error> {
    let offered = features
        .child(NS_SASL, "mechanisms")
        .is_some_and(|m| m.elements().any(|e| e.text() == "SCRAM-SHA-1"));
    if !offered {
        return Err("server does not offer SCRAM-SHA-1".into());
    }
    let cnonce = random_nonce()?;
    let first_bare = format!("n=u{user},r={cnonce}");
    s.write_all(
        format!(
            "<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-1'>{}</auth>",
            B64.encode(format!("n,,{first_bare}"))
        )
        .as_bytes(),
    )
    .await?;
    let el = next_nonza(s, parser, buf).await?;
    if el.name != "challenge" {
        return Err(format!("SASL: expected challenge, got {el:?}").into());
    }
    let server_first = String::from_utf8(B64.decode(el.text().trim())?)?;
    let sf = scram::parse_server_first(&server_first, &cnonce)?;
    let keys = t.cache.keys(user, &sf).await?;
    let (msg, server_sig) = scram::client_final(&keys, &first_bare, &server_first, &sf.nonce);
    s.write_all(format!("<response xmlns='{NS_SASL}'>{}</response>", B64.encode(msg)).as_bytes())
        .await?;
    let mut el = next_nonza(s, parser, buf).await?;
    if el.name == "challenge" {
        // Additional data in a challenge, then an empty response (RFC 6120 §6.3.10 allows either form).
        let v = String::from_utf8(B64.decode(el.text().trim())?)?;
        if !scram::verify_server_final(&v, &server_sig) {
            return Err("bad server signature".into());
        }
        s.write_all(format!("<response xmlns='{NS_SASL}'/>").as_bytes())
            .await?;
        el = next_nonza(s, parser, buf).await?;
        if el.name != "success" {
            return Err(format!("SASL failed: {el:?}").into());
        }
        return Ok(());
    }
    if el.name != "success" {
        return Err(format!("SASL failed: {el:?}").into());
    }
    let v = String::from_utf8(B64.decode(el.text().trim())?)?;
    if !scram::verify_server_final(&v, &server_sig) {
        return Err("bad server signature".into());
    }
    Ok(())
}

/// STARTTLS, SASL SCRAM-SHA-1, bind, roster get, initial presence at the `--addr` node, following
/// `<see-other-host/>` to the node that serves the user.
async fn login(t: &Target, user: usize) -> Result<Client, Error> {
    login_from(t, t.addr, user).await
}

/// [`login`] starting at `addr`.
async fn login_from(t: &Target, addr: SocketAddr, user: usize) -> Result<Client, Error> {
    let mut at = addr;
    for hop in 0..=MAX_REDIRECTS {
        match login_once(t, at, user).await? {
            Landing::In(mut c) => {
                c.redirects = hop;
                return Ok(*c);
            }
            Landing::Redirect(to) => at = to,
        }
    }
    Err(format!("more than {MAX_REDIRECTS} see-other-host redirects").into())
}

/// A connection through TLS and SASL up to the first element of the restarted stream: its features, or a stream
/// error right after SASL (a cluster node's `<see-other-host/>`). Returns the stream, its parser and read buffer.
pub(crate) async fn authenticated(
    t: &Target,
    addr: SocketAddr,
    user: usize,
) -> Result<(Tls, StreamParser, Vec<u8>, StreamEvent), Error> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut parser = StreamParser::new();
    let (mut s, features) = connect_tls(t, addr, &mut parser, &mut buf).await?;
    scram_sha1(t, user, &mut s, &mut parser, &mut buf, &features).await?;
    parser.reset_keep_buffered();
    s.write_all(HEADER).await?;
    match next_event(&mut s, &mut parser, &mut buf).await? {
        StreamEvent::Open(_) => {}
        other => return Err(format!("expected stream header, got {other:?}").into()),
    }
    let first = next_event(&mut s, &mut parser, &mut buf).await?;
    Ok((s, parser, buf, first))
}

/// One login at `addr`. A cluster node that does not serve the user ends the restarted stream after SASL
/// success with `<see-other-host/>` (RFC 6120 §4.9.3.19): that is a [`Landing::Redirect`].
async fn login_once(t: &Target, addr: SocketAddr, user: usize) -> Result<Landing, Error> {
    let (mut s, mut parser, mut buf, first) = authenticated(t, addr, user).await?;
    match first {
        StreamEvent::Element(el) if el.name == "features" => {}
        StreamEvent::Element(el) if el.name == "error" => {
            return match el.elements().find(|e| e.name == "see-other-host") {
                Some(to) => {
                    let _ = s.write_all(b"</stream:stream>").await;
                    Ok(Landing::Redirect(resolve_redirect(to.text().trim())?))
                }
                None => Err(format!("stream error after SASL: {el:?}").into()),
            };
        }
        other => return Err(format!("expected features, got {other:?}").into()),
    }
    // Bind, roster get and initial presence pipelined in one write.
    s.write_all(
        b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>load</resource></bind></iq>\
<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/>",
    )
    .await?;
    let (mut bound, mut roster) = (false, false);
    let mut early = Vec::new();
    while !(bound && roster) {
        let ev = next_event(&mut s, &mut parser, &mut buf).await?;
        if let StreamEvent::Stanza(Stanza::Message(el)) = &ev
            && let Some(b) = el.child("jabber:client", "body")
        {
            early.push(b.text());
        }
        if let StreamEvent::Stanza(Stanza::Iq(el)) = ev {
            let ok = el.attr("type") == Some("result");
            match el.attr("id") {
                Some("b") if ok => bound = true,
                Some("r") if ok => roster = true,
                Some(id @ ("b" | "r")) => return Err(format!("iq {id} failed: {el:?}").into()),
                _ => {}
            }
        }
    }
    let (rd, wr) = tokio::io::split(s);
    Ok(Landing::In(Box::new(Client {
        rd,
        wr,
        parser,
        addr,
        redirects: 0,
        early,
    })))
}

/// In-band registration of one account; an existing account counts as registered.
async fn register(t: &Target, user: usize) -> Result<(), Error> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut parser = StreamParser::new();
    let (mut s, _) = connect_tls(t, t.addr, &mut parser, &mut buf).await?;
    s.write_all(
        format!(
            "<iq type='set' id='reg'><query xmlns='jabber:iq:register'>\
<username>u{user}</username><password>{PASSWORD}</password></query></iq>"
        )
        .as_bytes(),
    )
    .await?;
    loop {
        if let StreamEvent::Stanza(Stanza::Iq(el)) =
            next_event(&mut s, &mut parser, &mut buf).await?
            && el.attr("id") == Some("reg")
        {
            let conflict = el
                .elements()
                .find(|e| e.name == "error")
                .is_some_and(|e| e.elements().any(|c| c.name == "conflict"));
            let _ = s.write_all(b"</stream:stream>").await;
            return if el.attr("type") == Some("result") || conflict {
                Ok(())
            } else {
                Err(format!("registration of u{user} failed: {el:?}").into())
            };
        }
    }
}

async fn register_all(t: &Target, users: usize, concurrency: usize) -> Result<(), Error> {
    let start = Instant::now();
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::new();
    for user in 0..users {
        let (sem, t) = (sem.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            tokio::time::timeout(LOGIN_TIMEOUT, register(&t, user))
                .await
                .map_err(|_| Error::from("registration timed out"))?
        }));
    }
    let mut errors = 0;
    for task in tasks {
        if let Err(e) = task.await? {
            if errors == 0 {
                eprintln!("first registration error: {e}");
            }
            errors += 1;
        }
    }
    eprintln!(
        "registered {} of {users} users in {:.1} s",
        users - errors,
        start.elapsed().as_secs_f64()
    );
    if errors > 0 {
        return Err(format!("{errors} registrations failed").into());
    }
    Ok(())
}

/// Logs u0..u{n-1} in with at most `concurrency` logins in flight; `None` for the ones that failed.
async fn login_all(
    t: &Target,
    n: usize,
    concurrency: usize,
) -> (Vec<Option<Client>>, usize, Option<String>) {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(n);
    for user in 0..n {
        let (sem, t) = (sem.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            tokio::time::timeout(LOGIN_TIMEOUT, login(&t, user))
                .await
                .map_err(|_| Error::from("login timed out"))?
        }));
    }
    let mut clients = Vec::with_capacity(n);
    let (mut errors, mut first_error) = (0, None);
    for task in tasks {
        match task.await {
            Ok(Ok(c)) => clients.push(Some(c)),
            Ok(Err(e)) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
                clients.push(None);
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
                clients.push(None);
            }
        }
    }
    (clients, errors, first_error)
}

/// The bare JID of a `from` attribute.
fn bare(from: &str) -> &str {
    from.split('/').next().unwrap_or(from)
}

async fn roster_all(
    t: &Target,
    users: usize,
    roster: usize,
    concurrency: usize,
    timeout: u64,
) -> Result<(), Error> {
    let start = Instant::now();
    let (clients, errors, first_error) = login_all(t, users, concurrency).await;
    if errors > 0 {
        return Err(format!("{errors} logins failed, first: {first_error:?}").into());
    }
    eprintln!(
        "roster: {users} logged in in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let want = contacts(0, users, roster).len();
    let complete = Arc::new(AtomicUsize::new(0));
    let debug = std::env::var_os("XMPP_LOAD_DEBUG").is_some();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut tasks = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        let Client {
            mut rd,
            wr,
            mut parser,
            ..
        } = c.expect("all logged in");
        let wr = Arc::new(tokio::sync::Mutex::new(wr));
        let mine = contacts(i, users, roster);
        let mut out = String::new();
        for j in &mine {
            out.push_str(&format!("<presence to='u{j}@{DOMAIN}' type='subscribe'/>"));
        }
        wr.lock().await.write_all(out.as_bytes()).await?;
        let complete = complete.clone();
        tasks.push(tokio::spawn(async move {
            let mut both: HashSet<String> = HashSet::new();
            let mut buf = vec![0u8; 16 * 1024];
            let mut done = false;
            while let Ok(Ok(ev)) =
                tokio::time::timeout_at(deadline, next_event(&mut rd, &mut parser, &mut buf)).await
            {
                if debug {
                    eprintln!("u{i} <- {ev:?}");
                }
                match ev {
                    StreamEvent::Stanza(Stanza::Presence(el))
                        if el.attr("type") == Some("subscribe") =>
                    {
                        let from = bare(el.attr("from").unwrap_or_default()).to_string();
                        let reply = format!("<presence to='{from}' type='subscribed'/>");
                        if wr.lock().await.write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                    StreamEvent::Stanza(Stanza::Iq(el)) if el.attr("type") == Some("set") => {
                        if let Some(q) = el.child("jabber:iq:roster", "query") {
                            for item in q.elements() {
                                if let Some(j) = item.attr("jid") {
                                    if item.attr("subscription") == Some("both") {
                                        both.insert(j.to_string());
                                    } else {
                                        both.remove(j);
                                    }
                                }
                            }
                        }
                        let reply = format!(
                            "<iq type='result' id='{}'/>",
                            el.attr("id").unwrap_or_default()
                        );
                        if wr.lock().await.write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                        if !done && both.len() >= want {
                            done = true;
                            complete.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    StreamEvent::Close => break,
                    _ => {}
                }
            }
            both.len()
        }));
    }
    // Wait until every roster is complete (or the deadline), then let the last replies go out and close.
    while complete.load(Ordering::Relaxed) < users && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let done = complete.load(Ordering::Relaxed);
    eprintln!(
        "roster: {done} of {users} rosters complete ({want} contacts, all 'both') after {:.1} s",
        start.elapsed().as_secs_f64()
    );
    for task in &tasks {
        task.abort();
    }
    if done < users {
        return Err(format!("only {done} of {users} rosters completed").into());
    }
    Ok(())
}

/// utime + stime of a process in seconds (assumes the usual 100 clock ticks per second).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// VmRSS of a process in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A tiny xorshift generator: random enough to pick recipients and stagger start times.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The p-quantile of sorted nanosecond samples, in milliseconds (nearest rank).
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1e6
}

struct RunArgs {
    target: Target,
    users: usize,
    workload: Workload,
    rate: f64,
    duration: Duration,
    roster: usize,
    server_pid: Vec<u32>,
    concurrency: usize,
    label: String,
    kill_pid: Option<u32>,
    failover_addr: Option<SocketAddr>,
    tags: Vec<String>,
    messages: usize,
    page: usize,
    rounds: usize,
    rooms: usize,
    occupants: usize,
    muc_service: String,
}

/// CPU seconds of the server and of this tool, read together.
#[derive(Clone, Copy)]
struct CpuMark {
    at: Instant,
    server: Option<f64>,
    tool: Option<f64>,
}

impl CpuMark {
    /// `pids`: the server's processes (one per node), summed; none if any of them is gone.
    fn now(pids: &[u32]) -> CpuMark {
        let server = if pids.is_empty() {
            None
        } else {
            pids.iter()
                .map(|p| cpu_seconds(&p.to_string()))
                .sum::<Option<f64>>()
        };
        CpuMark {
            at: Instant::now(),
            server,
            tool: cpu_seconds("self"),
        }
    }

    /// (wall s, server CPU s, tool CPU s) since `self`.
    fn since(&self, pid: &[u32]) -> (f64, f64, f64) {
        let n = CpuMark::now(pid);
        let d = |a: Option<f64>, b: Option<f64>| a.zip(b).map_or(f64::NAN, |(a, b)| b - a);
        (
            (n.at - self.at).as_secs_f64(),
            d(self.server, n.server),
            d(self.tool, n.tool),
        )
    }
}

/// One JSON object, written by hand (numbers and plain strings only; NaN becomes null).
#[derive(Default)]
struct Json(Vec<String>);

impl Json {
    fn num(&mut self, k: &str, v: f64) {
        let v = if v.is_finite() {
            format!("{v:.3}")
        } else {
            "null".into()
        };
        self.0.push(format!("\"{k}\":{v}"));
    }
    fn str(&mut self, k: &str, v: &str) {
        let esc: String = v
            .chars()
            .map(|c| match c {
                '"' => "\\\"".to_string(),
                '\\' => "\\\\".to_string(),
                c if (c as u32) < 0x20 => format!("\\u{:04x}", c as u32),
                c => c.to_string(),
            })
            .collect();
        self.0.push(format!("\"{k}\":\"{esc}\""));
    }
    fn line(&self) -> String {
        format!("{{{}}}", self.0.join(","))
    }
}

async fn run(a: RunArgs) -> Result<(), Error> {
    if a.workload == Workload::Muc && a.users != a.rooms * a.occupants {
        return Err(format!(
            "muc: --users must be --rooms × --occupants = {}",
            a.rooms * a.occupants
        )
        .into());
    }
    let pid = &a.server_pid[..];
    let rss_pid = pid.first().copied();
    let mut j = Json::default();
    j.str("server", &a.label);
    j.str("workload", &format!("{:?}", a.workload).to_lowercase());
    j.num("clients", a.users as f64);
    for tag in &a.tags {
        let (k, v) = tag.split_once('=').unwrap_or((tag, ""));
        j.str(k, v);
    }
    let rss0 = rss_pid.and_then(rss_kib);
    let run_mark = CpuMark::now(pid);
    let run_start = Instant::now();

    let (mut clients, errors, first_error) = login_all(&a.target, a.users, a.concurrency).await;
    let (login_wall, login_server_cpu, login_tool_cpu) = run_mark.since(pid);
    if let Some(e) = &first_error {
        eprintln!("{errors} login errors, first: {e}");
    }
    let ok = a.users - errors;
    j.num("logins_ok", ok as f64);
    j.num("login_errors", errors as f64);
    j.str("first_error", first_error.as_deref().unwrap_or(""));
    j.num("login_s", login_wall);
    j.num("logins_per_s", ok as f64 / login_wall);
    j.num("login_server_cpu_s", login_server_cpu);
    j.num("login_tool_cpu_s", login_tool_cpu);
    // Which node each client ended on (a cluster's nodes send clients on with <see-other-host/>).
    let mut per_node = std::collections::BTreeMap::<SocketAddr, usize>::new();
    for c in clients.iter().flatten() {
        *per_node.entry(c.addr).or_default() += 1;
    }
    let per_node = per_node
        .iter()
        .map(|(a, n)| format!("{a}={n}"))
        .collect::<Vec<_>>()
        .join(" ");
    let redirected = clients.iter().flatten().filter(|c| c.redirects > 0).count();
    j.str("per_node", &per_node);
    j.num("redirected", redirected as f64);
    if redirected > 0 {
        eprintln!(
            "[{}] {redirected} clients followed see-other-host; clients per node: {per_node}",
            a.label
        );
    }
    eprintln!(
        "[{}] {ok} logins in {login_wall:.2} s = {:.0}/s (server CPU {login_server_cpu:.2} s, tool CPU {login_tool_cpu:.2} s)",
        a.label,
        ok as f64 / login_wall
    );

    match a.workload {
        Workload::Login => {}
        Workload::Idle => {
            // Let the server settle (presence fan-out, buffers) before sampling; drain what it sends meanwhile.
            let online = clients.iter().flatten().count().max(1) as f64;
            let split = split_all(&mut clients, run_start);
            tokio::time::sleep(Duration::from_secs(3)).await;
            if let (Some(r0), Some(r1)) = (rss0, rss_pid.and_then(rss_kib)) {
                eprintln!(
                    "[{}] server RSS before {r0} KiB, with {online} clients {r1} KiB: {:.1} KiB/client ({:.1} growth)",
                    a.label,
                    r1 as f64 / online,
                    (r1 as f64 - r0 as f64) / online
                );
                j.num("rss_before_kib", r0 as f64);
                j.num("rss_kib", r1 as f64);
                j.num("rss_per_client_kib", r1 as f64 / online);
                j.num(
                    "rss_growth_per_client_kib",
                    (r1 as f64 - r0 as f64) / online,
                );
            }
            tokio::time::sleep(a.duration.saturating_sub(Duration::from_secs(3))).await;
            split.finish().await?;
        }
        Workload::Chat => chat(&a, &mut clients, run_start, &mut j).await?,
        Workload::Fanout => fanout(&a, &mut clients, &mut j).await?,
        Workload::Failover => failover(&a, &mut clients, &mut j).await?,
        Workload::Resume => mobile::reconnect(&a, &mut clients, true, &mut j).await?,
        Workload::Relogin => mobile::reconnect(&a, &mut clients, false, &mut j).await?,
        Workload::Mam => mobile::mam(&a, &mut clients, &mut j).await?,
        Workload::Muc => muc::muc(&a, &mut clients, run_start, &mut j).await?,
    }
    // Close whatever is still open.
    for c in clients.iter_mut().flatten() {
        let _ = c.wr.write_all(b"</stream:stream>").await;
    }
    drop(clients);
    let (wall, server_cpu, tool_cpu) = run_mark.since(pid);
    j.num("server_cpu_s", server_cpu);
    j.num("tool_cpu_s", tool_cpu);
    j.num("wall_s", wall);
    if let Some(r) = rss_pid.and_then(rss_kib) {
        j.num("rss_end_kib", r as f64);
    }
    println!("{}", j.line());
    Ok(())
}

/// What every reader collects: latencies (ns) of timestamped messages and of timestamped presences from others.
#[derive(Default)]
struct Samples {
    msgs: Vec<u64>,
    presences: Vec<u64>,
}

/// Shared counters the readers bump as samples arrive.
#[derive(Default)]
struct Counters {
    msgs: AtomicU64,
    presences: AtomicU64,
    /// Nanoseconds since the run started of the latest timestamped receipt.
    last_ns: AtomicU64,
}

/// Reads one client's stream until it closes, fails or `stop` flips: message bodies and presence statuses that
/// are send timestamps (ns since `run_start`) become latency samples.
fn spawn_reader(
    mut rd: ReadHalf<Tls>,
    mut parser: StreamParser,
    me: usize,
    run_start: Instant,
    counters: Arc<Counters>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Samples> {
    tokio::spawn(async move {
        let me = format!("u{me}@{DOMAIN}");
        let mut out = Samples::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let ev = tokio::select! {
                ev = next_event(&mut rd, &mut parser, &mut buf) => ev,
                _ = stop.wait_for(|s| *s) => break,
            };
            let Ok(ev) = ev else { break };
            let (stanza_ts, is_msg) = match &ev {
                StreamEvent::Close => break,
                StreamEvent::Stanza(Stanza::Message(el)) => (
                    el.child("jabber:client", "body")
                        .and_then(|b| b.text().parse::<u64>().ok()),
                    true,
                ),
                StreamEvent::Stanza(Stanza::Presence(el))
                    if el.attr("type").is_none()
                        && el.attr("from").is_some_and(|f| bare(f) != me) =>
                {
                    (
                        el.child("jabber:client", "status")
                            .and_then(|b| b.text().parse::<u64>().ok()),
                        false,
                    )
                }
                _ => (None, false),
            };
            if let Some(t) = stanza_ts {
                let now = run_start.elapsed().as_nanos() as u64;
                let lat = now.saturating_sub(t);
                if is_msg {
                    out.msgs.push(lat);
                    counters.msgs.fetch_add(1, Ordering::Relaxed);
                } else {
                    out.presences.push(lat);
                    counters.presences.fetch_add(1, Ordering::Relaxed);
                }
                counters.last_ns.fetch_max(now, Ordering::Relaxed);
            }
        }
        out
    })
}

/// Online clients split into readers (collecting samples) and their write halves.
struct Split {
    writers: Vec<(usize, WriteHalf<Tls>)>,
    readers: Vec<tokio::task::JoinHandle<Samples>>,
    counters: Arc<Counters>,
    stop: tokio::sync::watch::Sender<bool>,
}

fn split_all(clients: &mut [Option<Client>], run_start: Instant) -> Split {
    let counters = Arc::new(Counters::default());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (mut writers, mut readers) = (Vec::new(), Vec::new());
    for (i, c) in clients.iter_mut().enumerate() {
        let Some(Client { rd, wr, parser, .. }) = c.take() else {
            continue;
        };
        readers.push(spawn_reader(
            rd,
            parser,
            i,
            run_start,
            counters.clone(),
            stop_rx.clone(),
        ));
        writers.push((i, wr));
    }
    Split {
        writers,
        readers,
        counters,
        stop,
    }
}

impl Split {
    /// Stops the readers, closes every stream, and returns all samples.
    async fn finish(mut self) -> Result<Samples, Error> {
        let _ = self.stop.send(true);
        let mut all = Samples::default();
        for r in self.readers {
            let s = r.await?;
            all.msgs.extend(s.msgs);
            all.presences.extend(s.presences);
        }
        for (_, wr) in &mut self.writers {
            let _ = wr.write_all(b"</stream:stream>").await;
        }
        all.msgs.sort_unstable();
        all.presences.sort_unstable();
        Ok(all)
    }
}

async fn chat(
    a: &RunArgs,
    clients: &mut [Option<Client>],
    run_start: Instant,
    j: &mut Json,
) -> Result<(), Error> {
    let split = split_all(clients, run_start);
    let online: Arc<Vec<usize>> = Arc::new(split.writers.iter().map(|(i, _)| *i).collect());
    let per_client_rate = a.rate / online.len().max(1) as f64;
    let interval = Duration::from_secs_f64(1.0 / per_client_rate.max(1e-6));
    let sent = Arc::new(AtomicU64::new(0));
    // Let the login phase's presence traffic settle first (500 users with 200 contacts each log in, too).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mark = CpuMark::now(&a.server_pid);
    let chat_start = Instant::now();
    let send_until = chat_start + a.duration;
    let Split {
        writers,
        readers,
        counters,
        stop,
    } = split;
    let mut tasks = Vec::new();
    for (i, mut wr) in writers {
        let (online, sent) = (online.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ ((i as u64 + 1) * 0x2545_F491);
            // Stagger the first send over one interval so clients do not send in lockstep.
            let offset = interval.mul_f64((xorshift(&mut rng) % 1000) as f64 / 1000.0);
            let mut next = tokio::time::Instant::from_std(chat_start) + offset;
            while next.into_std() < send_until {
                tokio::time::sleep_until(next).await;
                next += interval;
                let to = loop {
                    let t = online[(xorshift(&mut rng) % online.len() as u64) as usize];
                    if t != i || online.len() == 1 {
                        break t;
                    }
                };
                let t = run_start.elapsed().as_nanos();
                let m =
                    format!("<message to='u{to}@{DOMAIN}' type='chat'><body>{t}</body></message>");
                if wr.write_all(m.as_bytes()).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            (i, wr)
        }));
    }
    let mut writers = Vec::new();
    for t in tasks {
        writers.push(t.await?);
    }
    let send_wall = chat_start.elapsed().as_secs_f64();
    // Grace for messages still in flight: until all arrived, at most 5 s.
    let sent_total = sent.load(Ordering::Relaxed);
    let grace_until = Instant::now() + Duration::from_secs(5);
    while counters.msgs.load(Ordering::Relaxed) < sent_total && Instant::now() < grace_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, server_cpu, tool_cpu) = mark.since(&a.server_pid);
    let samples = Split {
        writers,
        readers,
        counters: counters.clone(),
        stop,
    }
    .finish()
    .await?;
    let delivered = samples.msgs.len();
    // Delivered per second over the span from the first send to the last receipt.
    let last = counters.last_ns.load(Ordering::Relaxed) as f64 / 1e9
        - (chat_start - run_start).as_secs_f64();
    let span = last.max(a.duration.as_secs_f64());
    let (p50, p99) = (
        percentile(&samples.msgs, 0.50),
        percentile(&samples.msgs, 0.99),
    );
    j.num("offered_per_s", a.rate);
    j.num("sent", sent_total as f64);
    j.num("sent_per_s", sent_total as f64 / send_wall);
    j.num("delivered", delivered as f64);
    j.num("delivered_per_s", delivered as f64 / span);
    j.num("p50_ms", p50);
    j.num("p99_ms", p99);
    j.num("phase_s", span);
    j.num("phase_server_cpu_s", server_cpu);
    j.num("phase_tool_cpu_s", tool_cpu);
    eprintln!(
        "[{}] chat: offered {:.0}/s, sent {sent_total} ({:.0}/s), delivered {delivered} ({:.0}/s over {span:.1} s), \
p50 {p50:.2} ms, p99 {p99:.2} ms, server CPU {server_cpu:.1} s, tool CPU {tool_cpu:.1} s",
        a.label,
        a.rate,
        sent_total as f64 / send_wall,
        delivered as f64 / span
    );
    Ok(())
}

async fn fanout(a: &RunArgs, clients: &mut [Option<Client>], j: &mut Json) -> Result<(), Error> {
    let run_start = Instant::now();
    let online: HashSet<usize> = clients
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.as_ref().map(|_| i))
        .collect();
    let expected: usize = online
        .iter()
        .map(|&i| {
            contacts(i, a.users, a.roster)
                .iter()
                .filter(|c| online.contains(c))
                .count()
        })
        .sum();
    let split = split_all(clients, run_start);
    // Let the initial presence storm of the login phase settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mark = CpuMark::now(&a.server_pid);
    let start = tokio::time::Instant::now();
    let first_ns = run_start.elapsed().as_nanos() as u64;
    let Split {
        writers,
        readers,
        counters,
        stop,
    } = split;
    let mut tasks = Vec::new();
    for (k, (i, mut wr)) in writers.into_iter().enumerate() {
        let at = if a.rate > 0.0 {
            start + Duration::from_secs_f64(k as f64 / a.rate)
        } else {
            start
        };
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let t = run_start.elapsed().as_nanos();
            let p = format!("<presence><show>away</show><status>{t}</status></presence>");
            let _ = wr.write_all(p.as_bytes()).await;
            (i, wr)
        }));
    }
    let mut writers = Vec::new();
    for t in tasks {
        writers.push(t.await?);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while (counters.presences.load(Ordering::Relaxed) as usize) < expected
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, server_cpu, tool_cpu) = mark.since(&a.server_pid);
    let samples = Split {
        writers,
        readers,
        counters: counters.clone(),
        stop,
    }
    .finish()
    .await?;
    let got = samples.presences.len();
    let span = (counters
        .last_ns
        .load(Ordering::Relaxed)
        .saturating_sub(first_ns)) as f64
        / 1e9;
    let (p50, p99) = (
        percentile(&samples.presences, 0.50),
        percentile(&samples.presences, 0.99),
    );
    j.num("roster", a.roster as f64);
    j.num("expected", expected as f64);
    j.num("delivered", got as f64);
    j.num("delivered_per_s", got as f64 / span);
    j.num("p50_ms", p50);
    j.num("p99_ms", p99);
    j.num("phase_s", span);
    j.num("phase_server_cpu_s", server_cpu);
    j.num("phase_tool_cpu_s", tool_cpu);
    eprintln!(
        "[{}] fanout: {} presence changes, {got} of {expected} deliveries in {span:.2} s ({:.0}/s), \
p50 {p50:.2} ms, p99 {p99:.2} ms, server CPU {server_cpu:.1} s, tool CPU {tool_cpu:.1} s",
        a.label,
        online.len(),
        got as f64 / span
    );
    Ok(())
}

/// Bounds the whole failover workload after the kill: drops, logins again, and the message round trips.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(120);
/// Bounds the message round trips once everybody who could is logged in again.
const ROUNDTRIP_TIMEOUT: Duration = Duration::from_secs(30);
/// How soon a client whose login through the surviving node failed (or was sent back to the dead one) tries again.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// What one client saw during the failover workload.
#[derive(Default)]
struct FailoverOutcome {
    /// Its connection to the killed node ended.
    dropped_at: Option<Instant>,
    /// Logged in again (through the surviving node).
    relogged_at: Option<Instant>,
    /// The reply to its message arrived.
    done_at: Option<Instant>,
    /// Login attempts after the drop.
    attempts: u32,
    /// What went wrong last, if it did not finish.
    error: Option<String>,
}

/// One message to a partner and its reply: `ping I` goes to the next online client, which answers `pong`.
async fn ping_partner(
    c: &mut Client,
    user: usize,
    online: &[usize],
    stop: &mut tokio::sync::watch::Receiver<bool>,
    done: &AtomicUsize,
) -> Result<Option<Instant>, Error> {
    let pos = online
        .binary_search(&user)
        .map_err(|_| "not in the online list")?;
    let to = online[(pos + 1) % online.len()];
    c.wr.write_all(
        format!("<message to='u{to}@{DOMAIN}' type='chat'><body>ping {user}</body></message>")
            .as_bytes(),
    )
    .await?;
    let mut done_at = None;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let ev = tokio::select! {
            ev = next_event(&mut c.rd, &mut c.parser, &mut buf) => ev?,
            _ = stop.wait_for(|s| *s) => break,
        };
        let StreamEvent::Stanza(Stanza::Message(el)) = ev else {
            if matches!(ev, StreamEvent::Close) {
                break;
            }
            continue;
        };
        if el.attr("type") == Some("error") {
            return Err(format!("message bounced: {el:?}").into());
        }
        let body = el
            .child("jabber:client", "body")
            .map(|b| b.text())
            .unwrap_or_default();
        if let Some(from) = body.strip_prefix("ping ") {
            let reply =
                format!("<message to='u{from}@{DOMAIN}' type='chat'><body>pong</body></message>");
            c.wr.write_all(reply.as_bytes()).await?;
        } else if body == "pong" && done_at.is_none() {
            done_at = Some(Instant::now());
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(done_at)
}

/// One client through the failover: wait for its connection to the killed node to end, log in again through
/// `b` (every RETRY_EVERY until it works), wait for everybody, then one message round trip.
#[allow(clippy::too_many_arguments)]
async fn failover_client(
    t: Target,
    b: SocketAddr,
    user: usize,
    mut c: Client,
    sem: Arc<Semaphore>,
    deadline: tokio::time::Instant,
    relogged: Arc<AtomicUsize>,
    ready: Arc<Mutex<Vec<usize>>>,
    done: Arc<AtomicUsize>,
    mut go: tokio::sync::watch::Receiver<Option<Arc<Vec<usize>>>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> FailoverOutcome {
    let mut out = FailoverOutcome::default();
    if c.addr != b {
        let mut buf = vec![0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, next_event(&mut c.rd, &mut c.parser, &mut buf))
                .await
            {
                Err(_) => {
                    out.error = Some("the connection to the killed node did not end".into());
                    return out;
                }
                Ok(Ok(StreamEvent::Close) | Err(_)) => break,
                Ok(Ok(_)) => {}
            }
        }
        out.dropped_at = Some(Instant::now());
        drop(c);
        c = loop {
            if tokio::time::Instant::now() >= deadline {
                out.error
                    .get_or_insert_with(|| "not logged in again in time".into());
                return out;
            }
            out.attempts += 1;
            let r = {
                let _permit = sem.acquire().await.expect("semaphore open");
                tokio::time::timeout_at(deadline, login_from(&t, b, user)).await
            };
            match r {
                Ok(Ok(c)) => break c,
                Ok(Err(e)) => out.error = Some(e.to_string()),
                Err(_) => out.error = Some("login timed out".into()),
            }
            tokio::time::sleep(RETRY_EVERY).await;
        };
        out.error = None;
        out.relogged_at = Some(Instant::now());
        relogged.fetch_add(1, Ordering::Relaxed);
    }
    ready.lock().expect("not poisoned").push(user);
    let online = match go.wait_for(|g| g.is_some()).await {
        Ok(g) => g.clone().expect("checked"),
        Err(_) => return out,
    };
    match ping_partner(&mut c, user, &online, &mut stop, &done).await {
        Ok(at) => out.done_at = at,
        Err(e) => out.error = Some(e.to_string()),
    }
    if out.done_at.is_none() && out.error.is_none() {
        out.error = Some("no reply to its message".into());
    }
    let _ = c.wr.write_all(b"</stream:stream>").await;
    out
}

async fn failover(a: &RunArgs, clients: &mut [Option<Client>], j: &mut Json) -> Result<(), Error> {
    let b = a
        .failover_addr
        .ok_or("the failover workload needs --failover-addr")?;
    let kill_pid = a.kill_pid.ok_or("the failover workload needs --kill-pid")?;
    let to_move = clients.iter().flatten().filter(|c| c.addr != b).count();
    let already = clients.iter().flatten().count() - to_move;
    // Let the login phase's presence traffic settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let deadline = tokio::time::Instant::now() + FAILOVER_TIMEOUT;
    let sem = Arc::new(Semaphore::new(a.concurrency));
    let (relogged, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // Clients online and waiting for the message phase (the ones that never dropped, then the ones back).
    let ready = Arc::new(Mutex::new(Vec::new()));
    let (go_tx, go_rx) = tokio::sync::watch::channel(None);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for (user, c) in clients.iter_mut().enumerate() {
        let Some(c) = c.take() else { continue };
        tasks.push((
            user,
            tokio::spawn(failover_client(
                a.target.clone(),
                b,
                user,
                c,
                sem.clone(),
                deadline,
                relogged.clone(),
                ready.clone(),
                done.clone(),
                go_rx.clone(),
                stop_rx.clone(),
            )),
        ));
    }
    eprintln!(
        "[{}] failover: {to_move} clients on the node to kill (pid {kill_pid}), {already} on {b}; kill -9 now",
        a.label
    );
    // The clock starts just before the kill (spawning `kill` adds a millisecond or two to every figure).
    let t0 = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-9", &kill_pid.to_string()])
        .status()?;
    if !status.success() {
        return Err(format!("kill -9 {kill_pid} failed: {status}").into());
    }
    while relogged.load(Ordering::Relaxed) < to_move && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Everybody (who made it) is online: each sends one message to the next and waits for the reply. A client
    // that comes back later than this finds itself missing from the list and counts as failed.
    let relogged_n = relogged.load(Ordering::Relaxed);
    let mut online = std::mem::take(&mut *ready.lock().expect("not poisoned"));
    online.sort_unstable();
    let online = Arc::new(online);
    let _ = go_tx.send(Some(online.clone()));
    let roundtrip_deadline = tokio::time::Instant::now() + ROUNDTRIP_TIMEOUT;
    while done.load(Ordering::Relaxed) < online.len()
        && tokio::time::Instant::now() < roundtrip_deadline
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let _ = stop_tx.send(true);
    let mut outcomes = Vec::new();
    for (_, task) in tasks {
        outcomes.push(task.await?);
    }
    let secs = |at: Option<Instant>| at.map(|at| (at - t0).as_secs_f64());
    let mut relog: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| secs(o.relogged_at))
        .collect();
    relog.sort_by(f64::total_cmp);
    let drops: Vec<f64> = outcomes.iter().filter_map(|o| secs(o.dropped_at)).collect();
    let dones: Vec<f64> = outcomes.iter().filter_map(|o| secs(o.done_at)).collect();
    let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    let q = |v: &[f64], p: f64| {
        if v.is_empty() {
            f64::NAN
        } else {
            v[((v.len() - 1) as f64 * p).round() as usize]
        }
    };
    let failed = a.users - dones.len();
    let attempts: u32 = outcomes.iter().map(|o| o.attempts).sum();
    let first_error = outcomes.iter().find_map(|o| o.error.clone());
    j.num("users", a.users as f64);
    j.num("moved_clients", to_move as f64);
    j.num("relogged", relogged_n as f64);
    j.num("drops_seen_s", max(&drops));
    j.num("first_relogin_s", q(&relog, 0.0));
    j.num("p50_relogin_s", q(&relog, 0.5));
    j.num("all_relogged_s", max(&relog));
    j.num("relogin_attempts", attempts as f64);
    j.num("roundtrips", dones.len() as f64);
    j.num("all_roundtrips_s", max(&dones));
    j.num("failed", failed as f64);
    j.str("failover_first_error", first_error.as_deref().unwrap_or(""));
    eprintln!(
        "[{}] failover: {relogged_n} of {to_move} dropped clients logged in again through {b} (first after {:.2} s, \
half after {:.2} s, all after {:.2} s; {attempts} attempts); {} of {} message round trips done {:.2} s after \
the kill; {failed} failed{}",
        a.label,
        q(&relog, 0.0),
        q(&relog, 0.5),
        max(&relog),
        dones.len(),
        online.len(),
        max(&dones),
        first_error
            .map(|e| format!(", first error: {e}"))
            .unwrap_or_default()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_mutual_and_distinct() {
        let (n, r) = (50, 20);
        for i in 0..n {
            let c = contacts(i, n, r);
            assert_eq!(c.len(), r);
            assert_eq!(c.iter().collect::<HashSet<_>>().len(), r);
            assert!(!c.contains(&i));
            for &k in &c {
                assert!(contacts(k, n, r).contains(&i));
            }
        }
        assert_eq!(contacts(0, 5, 200).len(), 4);
        assert!(contacts(0, 1, 4).is_empty());
    }

    #[test]
    fn percentiles_and_json() {
        let v: Vec<u64> = (1..=100).map(|x| x * 1_000_000).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert!(percentile(&[], 0.5).is_nan());
        let mut j = Json::default();
        j.str("a", "x\"y");
        j.num("b", f64::NAN);
        j.num("c", 1.5);
        assert_eq!(j.line(), r#"{"a":"x\"y","b":null,"c":1.500}"#);
        assert_eq!(bare("u1@localhost/load"), "u1@localhost");
        assert_eq!(
            resolve_redirect("localhost:5223").unwrap(),
            "127.0.0.1:5223".parse().unwrap()
        );
        assert_eq!(
            resolve_redirect("[::1]:7").unwrap(),
            "[::1]:7".parse().unwrap()
        );
        assert!(resolve_redirect("example.com:5222").is_err());
        assert!(resolve_redirect("10.0.0.1:5222").is_err());
        assert!(resolve_redirect("localhost").is_err());
        assert_eq!(unhex20(&hex(&[7u8; 20])), Some([7u8; 20]));
    }
}
