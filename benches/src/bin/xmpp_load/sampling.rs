//! What the tool samples from /proc: CPU time (utime + stime) of the server and of itself, and the server's RSS.
//! Read around each measured phase, so that every phase reports the CPU both sides spent in it.

use std::time::Instant;

/// utime + stime of a process in seconds (assumes the usual 100 clock ticks per second).
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// VmRSS of a process in KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds of the server and of this tool, read together.
#[derive(Clone, Copy)]
pub(crate) struct CpuMark {
    pub(crate) at: Instant,
    pub(crate) server: Option<f64>,
    pub(crate) tool: Option<f64>,
}

impl CpuMark {
    /// `pids`: the server's processes (one per node), summed; none if any of them is gone.
    pub(crate) fn now(pids: &[u32]) -> CpuMark {
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
    pub(crate) fn since(&self, pid: &[u32]) -> (f64, f64, f64) {
        let n = CpuMark::now(pid);
        let d = |a: Option<f64>, b: Option<f64>| a.zip(b).map_or(f64::NAN, |(a, b)| b - a);
        (
            (n.at - self.at).as_secs_f64(),
            d(self.server, n.server),
            d(self.tool, n.tool),
        )
    }
}
