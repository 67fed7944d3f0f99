//! The command line: subcommands and their flags. compare.sh, mobile.sh, muc.sh and cluster.sh pass these flags,
//! so names and defaults stay as they are.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(about = "Load tool for XMPP servers (c2s): presenced, Prosody, ejabberd")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
    /// Worker threads of the tool's tokio runtime (default: one per core). On the machine the server runs on,
    /// fewer leave it more of the cores.
    #[arg(long, global = true)]
    pub(crate) threads: Option<usize>,
}

#[derive(clap::Args, Clone)]
pub(crate) struct Conn {
    /// The server's c2s address (loopback only).
    #[arg(long)]
    pub(crate) addr: SocketAddr,
    /// PEM certificate to trust as the only root (the server's self-signed certificate).
    #[arg(long)]
    pub(crate) ca: PathBuf,
    /// File of cached SCRAM keys (RFC 5802 §5.1), read at start and appended to; none: derive every time.
    #[arg(long)]
    pub(crate) scram_cache: Option<PathBuf>,
    /// Logins (or registrations) in flight at once.
    #[arg(long, default_value_t = 200)]
    pub(crate) concurrency: usize,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
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
        /// chat: also send, in the same write, the messages of a client that fall due within this many ms (one
        /// TLS record and syscall for several; the schedule shifts earlier by at most this). 0: only those
        /// already overdue are coalesced.
        #[arg(long, default_value_t = 0)]
        batch_ms: u64,
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
pub(crate) enum Workload {
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
