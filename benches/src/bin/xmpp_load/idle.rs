//! The `idle` workload: hold every connection and measure the server's RSS per client.

use std::time::{Duration, Instant};

use crate::login::Client;
use crate::readers::split_all;
use crate::report::Json;
use crate::sampling::rss_kib;
use crate::{Error, RunArgs};

/// `rss0`: the server's RSS just before the logins (KiB).
pub(crate) async fn idle(
    a: &RunArgs,
    clients: &mut [Option<Client>],
    run_start: Instant,
    rss0: Option<u64>,
    j: &mut Json,
) -> Result<(), Error> {
    let rss_pid = a.server_pid.first().copied();
    // Let the server settle (presence fan-out, buffers) before sampling; drain what it sends meanwhile.
    let online = clients.iter().flatten().count().max(1) as f64;
    let split = split_all(clients, run_start);
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
    Ok(())
}
