//! The `failover` workload (a presenced cluster): kill -9 one node, every dropped client logs in again through the
//! surviving node, then one message round trip each.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use xmpp_codec::{Stanza, StreamEvent};

use crate::accounts::DOMAIN;
use crate::connect::{Target, next_event};
use crate::login::{Client, login_from};
use crate::report::Json;
use crate::{Error, RunArgs};

/// Bounds the whole failover workload after the kill: drops, logins again, and the message round trips.
pub(crate) const FAILOVER_TIMEOUT: Duration = Duration::from_secs(120);
/// Bounds the message round trips once everybody who could is logged in again.
pub(crate) const ROUNDTRIP_TIMEOUT: Duration = Duration::from_secs(30);
/// How soon a client whose login through the surviving node failed (or was sent back to the dead one) tries again.
pub(crate) const RETRY_EVERY: Duration = Duration::from_millis(200);

/// What one client saw during the failover workload.
#[derive(Default)]
pub(crate) struct FailoverOutcome {
    /// Its connection to the killed node ended.
    pub(crate) dropped_at: Option<Instant>,
    /// Logged in again (through the surviving node).
    pub(crate) relogged_at: Option<Instant>,
    /// The reply to its message arrived.
    pub(crate) done_at: Option<Instant>,
    /// Login attempts after the drop.
    pub(crate) attempts: u32,
    /// What went wrong last, if it did not finish.
    pub(crate) error: Option<String>,
}

/// One message to a partner and its reply: `ping I` goes to the next online client, which answers `pong`.
pub(crate) async fn ping_partner(
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
pub(crate) async fn failover_client(
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

pub(crate) async fn failover(
    a: &RunArgs,
    clients: &mut [Option<Client>],
    j: &mut Json,
) -> Result<(), Error> {
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
