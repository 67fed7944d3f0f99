//! `xmpp_load`: provisions accounts and rosters and drives many concurrent XMPP clients against `presenced`,
//! Prosody or ejabberd.
//!
//! Every client does STARTTLS, SASL SCRAM-SHA-1 (the mechanism all three servers share), resource binding, a
//! roster get and initial presence, then a workload: `login`, `chat`, `fanout`, `idle`, `resume`, `relogin`, `mam`,
//! `muc` or (for a presenced cluster) `failover`. A client that a cluster node sends on with `<see-other-host/>`
//! logs in at the named node. Each run prints one JSON line on stdout (for the scripts in `benches/`) and a
//! readable summary on stderr. See the "Load tool", "Cluster", "Mobile" and "Group chat" sections of
//! `benches/README.md`.
//!
//! Layout: the shared parts are written once: `connect` (TCP, STARTTLS, TLS), `login` (SASL SCRAM-SHA-1, bind,
//! roster, initial presence; many clients at once), `readers` (timing what arrives), `outbox` (batched writes),
//! `sampling` (CPU and RSS from /proc), `report` (the JSON line). Each workload has its module: `login_storm`,
//! `chat`, `fanout`, `idle`, `failover`, `mobile` (resume, relogin, mam) and `muc`. Setting up accounts:
//! `accounts`, `provision`, `register`, `roster`, with `scram` and `scram_cache` for SCRAM-SHA-1.

mod accounts;
mod chat;
mod cli;
mod connect;
mod failover;
mod fanout;
mod idle;
mod login;
mod login_storm;
mod mobile;
mod muc;
mod outbox;
mod provision;
mod readers;
mod register;
mod report;
mod roster;
mod sampling;
mod scan;
mod scram;
mod scram_cache;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::AsyncWriteExt;

use crate::cli::{Cli, Cmd, Workload};
use crate::connect::Target;
use crate::report::Json;
use crate::sampling::{CpuMark, rss_kib};

/// The tool's allocator (see benches/Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The tokio runtime: `--threads` worker threads, or one per core (tokio's default). On a machine the server
/// shares, fewer threads for the tool leave the server its cores and make the tool's CPU easier to bound.
fn runtime(threads: Option<usize>) -> Result<tokio::runtime::Runtime, Error> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all();
    if let Some(n) = threads {
        b.worker_threads(n.max(1));
    }
    Ok(b.build()?)
}

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
        } => provision::provision(
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
        } => provision::prosody_provision(
            &data_path,
            users,
            roster,
            roster_users.unwrap_or(users),
            &scram_cache,
        ),
        Cmd::Register { conn, users } => {
            let rt = runtime(cli.threads)?;
            rt.block_on(async {
                let t = Target::new(&conn)?;
                register::register_all(&t, users, conn.concurrency).await
            })
        }
        Cmd::Roster {
            conn,
            users,
            roster,
            timeout,
        } => {
            let rt = runtime(cli.threads)?;
            rt.block_on(async {
                let t = Target::new(&conn)?;
                let r = roster::roster_all(&t, users, roster, conn.concurrency, timeout).await;
                t.cache.save()?;
                r
            })
        }
        Cmd::Run {
            conn,
            users,
            workload,
            rate,
            batch_ms,
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
            let rt = runtime(cli.threads)?;
            rt.block_on(async {
                let t = Target::new(&conn)?;
                let r = run(RunArgs {
                    target: t.clone(),
                    users,
                    workload,
                    rate,
                    batch: Duration::from_millis(batch_ms),
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

/// Everything a workload needs from the command line.
pub(crate) struct RunArgs {
    pub(crate) target: Target,
    pub(crate) users: usize,
    pub(crate) workload: Workload,
    pub(crate) rate: f64,
    /// chat: `--batch-ms`.
    pub(crate) batch: Duration,
    pub(crate) duration: Duration,
    pub(crate) roster: usize,
    pub(crate) server_pid: Vec<u32>,
    pub(crate) concurrency: usize,
    pub(crate) label: String,
    pub(crate) kill_pid: Option<u32>,
    pub(crate) failover_addr: Option<SocketAddr>,
    pub(crate) tags: Vec<String>,
    pub(crate) messages: usize,
    pub(crate) page: usize,
    pub(crate) rounds: usize,
    pub(crate) rooms: usize,
    pub(crate) occupants: usize,
    pub(crate) muc_service: String,
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

    let mut clients = login_storm::login_phase(&a, &run_mark, &mut j).await;

    match a.workload {
        Workload::Login => {}
        Workload::Idle => idle::idle(&a, &mut clients, run_start, rss0, &mut j).await?,
        Workload::Chat => chat::chat(&a, &mut clients, run_start, &mut j).await?,
        Workload::Fanout => fanout::fanout(&a, &mut clients, &mut j).await?,
        Workload::Failover => failover::failover(&a, &mut clients, &mut j).await?,
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use crate::accounts::{bare, contacts};
    use crate::login::resolve_redirect;
    use crate::readers::timestamp;
    use crate::report::{Json, percentile};
    use crate::scram_cache::{hex, unhex20};

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
        let mut el = xmpp_codec::Element::new("jabber:client", "body");
        el.children.push(xmpp_codec::Node::Text("1234".into()));
        assert_eq!(timestamp(&el), Some(1234));
        el.children.push(xmpp_codec::Node::Text("x".into()));
        assert_eq!(timestamp(&el), None);
        assert_eq!(
            timestamp(&xmpp_codec::Element::new("jabber:client", "body")),
            None
        );
    }
}
