//! The `chat` workload: every client sends one-to-one messages to random other online clients at an aggregate
//! offered rate; receivers time them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::accounts::DOMAIN;
use crate::login::Client;
use crate::outbox::Outbox;
use crate::readers::{Split, split_all};
use crate::report::{Json, per_delivery, percentile};
use crate::sampling::CpuMark;
use crate::{Error, RunArgs};

/// A tiny xorshift generator: random enough to pick recipients and stagger start times.
pub(crate) fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Runs the workload on the logged-in `clients` (see the module doc and `benches/README.md`).
pub(crate) async fn chat(
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
    let batch = a.batch;
    for (i, wr) in writers {
        let (online, sent) = (online.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Outbox::new(wr);
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ ((i as u64 + 1) * 0x2545_F491);
            // Stagger the first send over one interval so clients do not send in lockstep.
            let offset = interval.mul_f64((xorshift(&mut rng) % 1000) as f64 / 1000.0);
            let end = tokio::time::Instant::from_std(send_until);
            let mut next = tokio::time::Instant::from_std(chat_start) + offset;
            while next < end {
                tokio::time::sleep_until(next).await;
                // Every message due by now (and, with --batch-ms, within the next few ms) goes out in one write:
                // one wakeup, TLS record and syscall for all of them. Without --batch-ms that only happens when
                // this task fell behind its schedule, so the offered load stays as even as before.
                let horizon = tokio::time::Instant::now() + batch;
                let t = run_start.elapsed().as_nanos();
                let mut n = 0;
                while next <= horizon && next < end {
                    next += interval;
                    let to = loop {
                        let r = online[(xorshift(&mut rng) % online.len() as u64) as usize];
                        if r != i || online.len() == 1 {
                            break r;
                        }
                    };
                    out.push(format_args!(
                        "<message to='u{to}@{DOMAIN}' type='chat'><body>{t}</body></message>"
                    ));
                    n += 1;
                }
                if out.flush().await.is_err() {
                    break;
                }
                sent.fetch_add(n, Ordering::Relaxed);
            }
            (i, out.into_inner())
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
    per_delivery(j, server_cpu, tool_cpu, delivered);
    eprintln!(
        "[{}] chat: offered {:.0}/s, sent {sent_total} ({:.0}/s), delivered {delivered} ({:.0}/s over {span:.1} s), \
p50 {p50:.2} ms, p99 {p99:.2} ms, server CPU {server_cpu:.1} s ({:.1} µs per delivery), tool CPU {tool_cpu:.1} s \
({:.1} µs per delivery)",
        a.label,
        a.rate,
        sent_total as f64 / send_wall,
        delivered as f64 / span,
        server_cpu * 1e6 / delivered.max(1) as f64,
        tool_cpu * 1e6 / delivered.max(1) as f64
    );
    Ok(())
}
