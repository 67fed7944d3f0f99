//! `xmpp_load`: provisions accounts for `presenced` and drives many concurrent XMPP clients against it.
//!
//! Every client does STARTTLS, SASL PLAIN (simplest over TLS; the server still checks it against the stored
//! SCRAM-SHA-256 verifier, so each login costs the server one PBKDF2), resource binding, a roster get and initial
//! presence. See the "Load test" section of `benches/README.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::{Parser, Subcommand, ValueEnum};
use examples::store::RedbStore;
use presence_core::BareJid;
use presence_core::roster::{ItemDetails, Link, RosterEntry, Subscription};
use presence_core::store::{AccountStore, RosterStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use xmpp_codec::{Element, Stanza, StreamEvent, StreamParser};

const DOMAIN: &str = "localhost";
const PASSWORD: &str = "pw";
/// Every client's stream header (client-to-server, `jabber:client`).
const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
/// Bounds one whole login, so a stuck server cannot hang the run.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Parser)]
#[command(about = "Load tool for presenced (XMPP c2s)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes users u0..u{N-1}@localhost (password "pw") straight into the store; run before the server starts.
    Provision {
        /// presenced's data_dir (the store is DATA_DIR/presenced.redb).
        #[arg(long)]
        data_dir: PathBuf,
        /// Number of users.
        #[arg(long)]
        users: usize,
        /// Mutual contacts per user: u_i with u_{i+1..=i+R} (mod N).
        #[arg(long, default_value_t = 0)]
        roster: usize,
    },
    /// Logs N clients in concurrently and runs a workload.
    Run {
        /// The server's c2s address (loopback only).
        #[arg(long)]
        addr: SocketAddr,
        /// PEM certificate to trust as a root (presenced writes DATA_DIR/tls/cert.pem).
        #[arg(long)]
        ca: PathBuf,
        /// Number of clients (users u0..u{N-1}).
        #[arg(long)]
        users: usize,
        #[arg(long, value_enum)]
        workload: Workload,
        /// Aggregate messages per second over all clients (chat).
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// Seconds of sending (chat) or of holding the connections (idle).
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// The server's process id, for its CPU time and RSS.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Logins in flight at once.
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Workload {
    /// Log in, report, close.
    Login,
    /// Every client sends messages to random other online clients.
    Chat,
    /// Hold the connections and measure the server's RSS per client.
    Idle,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Provision {
            data_dir,
            users,
            roster,
        } => provision(&data_dir, users, roster),
        Cmd::Run {
            addr,
            ca,
            users,
            workload,
            rate,
            duration,
            server_pid,
            concurrency,
        } => {
            if !addr.ip().is_loopback() {
                return Err("only loopback addresses are allowed".into());
            }
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(run(RunArgs {
                addr,
                ca,
                users,
                workload,
                rate,
                duration: Duration::from_secs(duration),
                server_pid,
                concurrency: concurrency.max(1),
            }))
        }
    }
}

fn jid(i: usize) -> BareJid {
    BareJid::new(&format!("u{i}@{DOMAIN}")).expect("valid jid")
}

fn provision(data_dir: &std::path::Path, users: usize, roster: usize) -> Result<(), Error> {
    std::fs::create_dir_all(data_dir)?;
    let store = RedbStore::open(data_dir.join(examples::config::STORE_FILE))?;
    let start = Instant::now();
    for i in 0..users {
        let account = examples::credentials::new_account(jid(i), PASSWORD)?;
        store.put_account(&account)?;
    }
    let accounts = start.elapsed();
    let entry = RosterEntry::Listed {
        details: ItemDetails::default(),
        subscription: Subscription {
            outbound: Link::On,
            inbound: Link::On,
        },
    };
    let roster = roster.min(users.saturating_sub(1));
    for i in 0..users {
        for k in 1..=roster {
            let j = (i + k) % users;
            store.put_roster_entry(&jid(i), &jid(j), &entry)?;
            store.put_roster_entry(&jid(j), &jid(i), &entry)?;
        }
    }
    eprintln!(
        "provisioned {users} users in {:.1} s, {roster} mutual contacts each in {:.1} s",
        accounts.as_secs_f64(),
        (start.elapsed() - accounts).as_secs_f64()
    );
    Ok(())
}

struct RunArgs {
    addr: SocketAddr,
    ca: PathBuf,
    users: usize,
    workload: Workload,
    rate: f64,
    duration: Duration,
    server_pid: Option<u32>,
    concurrency: usize,
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

struct Client {
    rd: ReadHalf<TlsStream<TcpStream>>,
    wr: WriteHalf<TlsStream<TcpStream>>,
    parser: StreamParser,
}

/// STARTTLS, SASL PLAIN, bind, roster get, initial presence.
async fn login(addr: SocketAddr, tls: TlsConnector, user: usize) -> Result<Client, Error> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut parser = StreamParser::new();
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    tcp.write_all(HEADER).await?;
    open_and_features(&mut tcp, &mut parser, &mut buf).await?;
    tcp.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await?;
    match next_event(&mut tcp, &mut parser, &mut buf).await? {
        StreamEvent::Element(el) if el.name == "proceed" => {}
        other => return Err(format!("STARTTLS refused: {other:?}").into()),
    }
    parser.reset();
    let mut s = tls
        .connect(ServerName::try_from(DOMAIN).expect("valid name"), tcp)
        .await?;
    s.write_all(HEADER).await?;
    open_and_features(&mut s, &mut parser, &mut buf).await?;
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("\0u{user}\0{PASSWORD}"));
    s.write_all(
        format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>")
            .as_bytes(),
    )
    .await?;
    match next_event(&mut s, &mut parser, &mut buf).await? {
        StreamEvent::Element(el) if el.name == "success" => {}
        other => return Err(format!("SASL failed: {other:?}").into()),
    }
    parser.reset_keep_buffered();
    s.write_all(HEADER).await?;
    open_and_features(&mut s, &mut parser, &mut buf).await?;
    // Bind, roster get and initial presence pipelined in one write.
    s.write_all(
        b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>\
<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/>",
    )
    .await?;
    let (mut bound, mut roster) = (false, false);
    while !(bound && roster) {
        if let StreamEvent::Stanza(Stanza::Iq(el)) =
            next_event(&mut s, &mut parser, &mut buf).await?
        {
            if el.attr("type") != Some("result") {
                return Err(format!("iq {:?} failed", el.attr("id")).into());
            }
            match el.attr("id") {
                Some("b") => bound = true,
                Some("r") => roster = true,
                _ => {}
            }
        }
    }
    let (rd, wr) = tokio::io::split(s);
    Ok(Client { rd, wr, parser })
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

fn tls_connector(ca: &std::path::Path) -> Result<TlsConnector, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// A tiny xorshift generator: random enough to pick recipients and stagger start times.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1e6
}

async fn run(a: RunArgs) -> Result<(), Error> {
    let tls = tls_connector(&a.ca)?;
    let pid = a.server_pid.map(|p| p.to_string());
    let server_cpu0 = pid.as_deref().and_then(cpu_seconds);
    let tool_cpu0 = cpu_seconds("self");
    let rss0 = a.server_pid.and_then(rss_kib);
    let run_start = Instant::now();

    // Login phase: at most `concurrency` logins in flight.
    let sem = Arc::new(Semaphore::new(a.concurrency));
    let mut tasks = Vec::with_capacity(a.users);
    for user in 0..a.users {
        let (sem, tls) = (sem.clone(), tls.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            tokio::time::timeout(LOGIN_TIMEOUT, login(a.addr, tls, user))
                .await
                .map_err(|_| Error::from("login timed out"))?
        }));
    }
    let mut clients = Vec::with_capacity(a.users);
    let mut errors = 0usize;
    let mut first_error = None;
    for t in tasks {
        match t.await? {
            Ok(c) => clients.push(Some(c)),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
                clients.push(None);
            }
        }
    }
    let login_wall = run_start.elapsed();
    if let Some(e) = &first_error {
        eprintln!("{errors} login errors, first: {e}");
    }
    let logins_per_s = (a.users - errors) as f64 / login_wall.as_secs_f64();

    let mut msgs_per_s = f64::NAN;
    let (mut p50, mut p99) = (f64::NAN, f64::NAN);
    let mut rss_per_client = "-".to_string();
    match a.workload {
        Workload::Login => {}
        Workload::Idle => {
            // Let the server settle (presence fan-out, buffers) before sampling.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let online = clients.iter().flatten().count().max(1) as f64;
            if let (Some(r0), Some(r1)) = (rss0, a.server_pid.and_then(rss_kib)) {
                eprintln!("server RSS before {r0} KiB, after {r1} KiB");
                // Total RSS per client, and the growth since before the logins per client.
                rss_per_client = format!(
                    "{:.1} / {:.1}",
                    r1 as f64 / online,
                    (r1 as f64 - r0 as f64) / online
                );
            }
            tokio::time::sleep(a.duration.saturating_sub(Duration::from_secs(2))).await;
        }
        Workload::Chat => {
            let online: Vec<usize> = clients
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.as_ref().map(|_| i))
                .collect();
            let per_client_rate = a.rate / online.len().max(1) as f64;
            let interval = Duration::from_secs_f64(1.0 / per_client_rate.max(1e-6));
            let sent = Arc::new(AtomicU64::new(0));
            let chat_start = Instant::now();
            let send_until = chat_start + a.duration;
            // Sending window + 2 s grace + 3 s for the streams to close.
            let read_until = tokio::time::Instant::from_std(send_until + Duration::from_secs(5));
            let online = Arc::new(online);
            let mut readers = Vec::new();
            let mut writers = Vec::new();
            for (i, c) in clients.iter_mut().enumerate() {
                let Some(c) = c.take() else { continue };
                let Client {
                    mut rd,
                    mut wr,
                    mut parser,
                } = c;
                // Receiver: latency of every message whose body is a send timestamp.
                readers.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut buf = vec![0u8; 16 * 1024];
                    // Stops at the stream's close, an error, or the deadline, keeping its samples either way.
                    while let Ok(Ok(ev)) = tokio::time::timeout_at(
                        read_until,
                        next_event(&mut rd, &mut parser, &mut buf),
                    )
                    .await
                    {
                        if ev == StreamEvent::Close {
                            break;
                        }
                        if let StreamEvent::Stanza(Stanza::Message(el)) = ev
                            && let Some(body) = el.child("jabber:client", "body")
                            && let Ok(t) = body.text().parse::<u64>()
                        {
                            let now = run_start.elapsed().as_nanos() as u64;
                            lat.push(now.saturating_sub(t));
                        }
                    }
                    lat
                }));
                let (online, sent) = (online.clone(), sent.clone());
                writers.push(tokio::spawn(async move {
                    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ ((i as u64 + 1) * 0x2545_F491);
                    // Stagger the first send over one interval so clients do not send in lockstep.
                    let offset = interval.mul_f64((xorshift(&mut rng) % 1000) as f64 / 1000.0);
                    let mut next = tokio::time::Instant::from_std(chat_start) + offset;
                    let mut out = Vec::new();
                    while next.into_std() < send_until {
                        tokio::time::sleep_until(next).await;
                        next += interval;
                        let to = loop {
                            let t = online[(xorshift(&mut rng) % online.len() as u64) as usize];
                            if t != i || online.len() == 1 {
                                break t;
                            }
                        };
                        out.clear();
                        let t = run_start.elapsed().as_nanos();
                        out.extend_from_slice(
                            format!(
                                "<message to='u{to}@{DOMAIN}' type='chat'><body>{t}</body></message>"
                            )
                            .as_bytes(),
                        );
                        if wr.write_all(&out).await.is_err() {
                            break;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    wr
                }));
            }
            let mut wrs = Vec::new();
            for w in writers {
                wrs.push(w.await?);
            }
            // Grace period for messages still in flight, then close every stream so the readers end.
            tokio::time::sleep(Duration::from_secs(2)).await;
            for wr in &mut wrs {
                let _ = wr.write_all(b"</stream:stream>").await;
            }
            let mut lat = Vec::new();
            for r in readers {
                lat.extend(r.await?);
            }
            drop(wrs);
            let sent_total = sent.load(Ordering::Relaxed);
            lat.sort_unstable();
            msgs_per_s = lat.len() as f64 / a.duration.as_secs_f64();
            p50 = percentile(&lat, 0.50);
            p99 = percentile(&lat, 0.99);
            eprintln!(
                "sent {sent_total}, delivered {} ({:.1}%)",
                lat.len(),
                100.0 * lat.len() as f64 / sent_total.max(1) as f64
            );
        }
    }
    // Close whatever is still open (login / idle).
    for c in clients.iter_mut().flatten() {
        let _ = c.wr.write_all(b"</stream:stream>").await;
    }
    drop(clients);

    let server_cpu = match (server_cpu0, pid.as_deref().and_then(cpu_seconds)) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    let tool_cpu = cpu_seconds("self")
        .zip(tool_cpu0)
        .map_or(f64::NAN, |(b, a)| b - a);
    let wall = run_start.elapsed().as_secs_f64();
    let rate = if a.workload == Workload::Chat {
        format!("{:.0}", a.rate)
    } else {
        "-".into()
    };
    println!(
        "| workload | clients | target msg/s | logins/s | login errors | msgs/s delivered | p50 ms | p99 ms | server RSS/client KiB (total / growth) | server CPU s | tool CPU s | wall s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {rate} | {logins_per_s:.0} | {errors} | {} | {} | {} | {} | {server_cpu:.2} | {tool_cpu:.2} | {wall:.1} |",
        format!("{:?}", a.workload).to_lowercase(),
        a.users,
        fmt_opt(msgs_per_s, 0),
        fmt_opt(p50, 2),
        fmt_opt(p99, 2),
        rss_per_client,
    );
    Ok(())
}

fn fmt_opt(v: f64, prec: usize) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.prec$}")
    }
}
