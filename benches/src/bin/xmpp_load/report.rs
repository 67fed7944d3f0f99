//! The run's report: one JSON line on stdout (read by `results_table.py` and the other table writers, so keys
//! keep their names) and the figures derived from the samples.

/// The p-quantile of sorted nanosecond samples, in milliseconds (nearest rank).
pub(crate) fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1e6
}

/// One JSON object, written by hand (numbers and plain strings only; NaN becomes null).
#[derive(Default)]
pub(crate) struct Json(Vec<String>);

impl Json {
    pub(crate) fn num(&mut self, k: &str, v: f64) {
        let v = if v.is_finite() {
            format!("{v:.3}")
        } else {
            "null".into()
        };
        self.0.push(format!("\"{k}\":{v}"));
    }
    pub(crate) fn str(&mut self, k: &str, v: &str) {
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
    pub(crate) fn line(&self) -> String {
        format!("{{{}}}", self.0.join(","))
    }
}

/// The loader-independent figures: CPU microseconds the server and the tool spent per delivered message (or
/// presence) over the measured phase. Delivered/s depends on how much load the tool manages to offer from the same
/// cores; the server's CPU per delivery does not, so it compares servers (and builds) even when the tool is the
/// bottleneck. Keys `server_cpu_us_per_delivery` and `tool_cpu_us_per_delivery`; null when nothing arrived. CPU
/// time is read in 10 ms ticks, so phases of a few seconds give a figure good to a few per cent.
pub(crate) fn per_delivery(j: &mut Json, server_cpu_s: f64, tool_cpu_s: f64, delivered: usize) {
    let per = |cpu_s: f64| {
        if delivered == 0 {
            f64::NAN
        } else {
            cpu_s * 1e6 / delivered as f64
        }
    };
    j.num("server_cpu_us_per_delivery", per(server_cpu_s));
    j.num("tool_cpu_us_per_delivery", per(tool_cpu_s));
}
