//! The `fanout` workload: every user with a roster changes its presence once; every contact's receipt is timed.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::accounts::contacts;
use crate::login::Client;
use crate::readers::{Split, split_all};
use crate::report::{Json, per_delivery, percentile};
use crate::sampling::CpuMark;
use crate::{Error, RunArgs};

/// Runs the workload on the logged-in `clients` (see the module doc and `benches/README.md`).
pub(crate) async fn fanout(
    a: &RunArgs,
    clients: &mut [Option<Client>],
    j: &mut Json,
) -> Result<(), Error> {
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
    per_delivery(j, server_cpu, tool_cpu, got);
    eprintln!(
        "[{}] fanout: {} presence changes, {got} of {expected} deliveries in {span:.2} s ({:.0}/s), \
p50 {p50:.2} ms, p99 {p99:.2} ms, server CPU {server_cpu:.1} s, tool CPU {tool_cpu:.1} s",
        a.label,
        online.len(),
        got as f64 / span
    );
    Ok(())
}
