//! The status page as server-rendered HTML: one self-contained document with inline CSS and an inline SVG
//! chart, no script. It refreshes itself every 10 seconds (`<meta http-equiv="refresh">`).

use std::fmt::Write as _;

use super::Snapshot;

/// The page for `s`.
pub fn render(s: &Snapshot) -> String {
    let mut o = String::with_capacity(8 * 1024);
    let title = format!("presenced · {}", s.domain);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"10\"><title>{}</title><style>{CSS}</style></head><body>\n",
        esc(&title)
    );
    let _ = write!(
        o,
        "<header><h1>presenced <span class=\"muted\">{}</span></h1>\
         <span class=\"badge up\" id=\"state\">{}</span></header>\n<main>\n",
        esc(&s.domain),
        esc(&s.status)
    );
    // The figures an operator looks at first.
    o.push_str("<section class=\"cards\">\n");
    card(&mut o, "uptime", "Uptime", &duration(s.uptime_seconds));
    card(&mut o, "version", "Version", &s.version);
    card(
        &mut o,
        "sessions-xmpp",
        "XMPP sessions",
        &s.sessions.xmpp.to_string(),
    );
    card(
        &mut o,
        "sessions-sip",
        "SIP sessions",
        &s.sessions.sip.to_string(),
    );
    card(
        &mut o,
        "messages-rate",
        "Messages/s (last minute)",
        &format!("{:.2}", s.messages_per_second),
    );
    card(
        &mut o,
        "offline",
        "Held offline",
        &s.offline_messages.to_string(),
    );
    o.push_str("</section>\n");

    o.push_str("<section><h2>Messages per second, last minute</h2>");
    chart(&mut o, &s.messages_series);
    o.push_str("</section>\n");

    let state_class = if s.store.state == "ok" { "ok" } else { "bad" };
    let _ = writeln!(
        o,
        "<section><h2>Store</h2><table><tr><th>Kind</th><td id=\"store-kind\">{}</td></tr>\
         <tr><th>Location</th><td><code>{}</code></td></tr>\
         <tr><th>State</th><td><span class=\"badge {state_class}\" id=\"store-state\">{}</span> \
         <span class=\"muted\">{} failed operations in the last minute</span></td></tr>\
         <tr><th>Engine queue</th><td>{}</td></tr></table></section>",
        esc(&s.store.kind),
        esc(&s.store.location),
        esc(&s.store.state),
        s.store.failures_last_minute,
        s.engine_queue
    );

    o.push_str("<section><h2>Cluster</h2>");
    match &s.cluster {
        None => o.push_str(
            "<p class=\"muted\" id=\"cluster\">Not clustered: this node serves every user.</p>",
        ),
        Some(c) => {
            let _ = write!(
                o,
                "<p id=\"cluster\">This node is <b>{}</b> in group <b>{}</b>.</p>",
                esc(&c.node),
                esc(&c.group)
            );
            if let Some(e) = &c.error {
                let _ = write!(o, "<p class=\"bad\">Cluster database: {}</p>", esc(e));
            }
            o.push_str(
                "<table class=\"list\"><tr><th>Node</th><th>Group</th><th>Failover state</th>\
                 <th>Reason</th><th>Epoch</th></tr>",
            );
            for n in &c.nodes {
                let state = n.state.as_deref().unwrap_or("-");
                let class = if state == "Normal" { "ok" } else { "warn" };
                let _ = write!(
                    o,
                    "<tr><td>{}{}</td><td>{}</td><td><span class=\"badge {class}\">{}</span></td>\
                     <td>{}</td><td>{}</td></tr>",
                    esc(&n.name),
                    if n.name == c.node { " (this node)" } else { "" },
                    esc(&n.group),
                    esc(state),
                    esc(n.reason.as_deref().unwrap_or("-")),
                    n.epoch
                );
            }
            o.push_str("</table>");
        }
    }
    o.push_str("</section>\n");

    let _ = write!(o, "<section><h2>Recent warnings and errors</h2>");
    if s.recent_errors.is_empty() {
        o.push_str("<p class=\"muted\" id=\"errors\">None since the start.</p>");
    } else {
        o.push_str(
            "<table class=\"list\" id=\"errors\"><tr><th>Time (UTC)</th><th>Level</th><th>Where</th>\
             <th>Message</th></tr>",
        );
        for e in &s.recent_errors {
            let class = if e.level == "ERROR" { "bad" } else { "warn" };
            let _ = write!(
                o,
                "<tr><td class=\"nowrap\">{}</td><td><span class=\"badge {class}\">{}</span></td>\
                 <td><code>{}</code></td><td>{}</td></tr>",
                utc(e.at_ms / 1000),
                esc(&e.level),
                esc(&e.target),
                esc(&e.message)
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</section>\n");
    let _ = writeln!(
        o,
        "</main><footer>Started {} UTC · <a href=\"/status.json\">status.json</a> · \
         <a href=\"/metrics\">metrics</a></footer></body></html>",
        utc(s.started_at)
    );
    o
}

const CSS: &str = "\
:root{--bg:#f5f7fa;--card:#fff;--ink:#1f2933;--muted:#687684;--line:#e1e6eb;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--accent:#0b5cad}\
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:var(--bg);color:var(--ink)}\
header{display:flex;align-items:center;justify-content:space-between;padding:18px 32px;background:#14212e;color:#fff}\
header h1{margin:0;font-size:20px;font-weight:600}header .muted{color:#9fb3c8;font-weight:400}\
main{max-width:1100px;margin:0 auto;padding:24px 32px}\
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin-bottom:18px}\
section.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;background:none;border:0;padding:0}\
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}\
.card .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}\
.card .value{font-size:26px;font-weight:600;margin-top:4px;font-variant-numeric:tabular-nums}\
h2{font-size:14px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:0 0 12px}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}\
th{color:var(--muted);font-weight:500;width:160px}table.list th{width:auto}tr:last-child td,tr:last-child th{border-bottom:0}\
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;color:#fff;background:var(--muted)}\
.badge.up,.badge.ok{background:var(--ok)}.badge.warn{background:var(--warn)}.badge.bad{background:var(--bad)}\
p.bad{color:var(--bad)}.muted{color:var(--muted)}.nowrap{white-space:nowrap}code{font-size:13px}\
svg{display:block;width:100%;height:90px}footer{text-align:center;color:var(--muted);font-size:13px;padding:8px 0 24px}\
a{color:var(--accent)}p.caption{margin:6px 0 0;font-size:13px}";

fn card(o: &mut String, id: &str, label: &str, value: &str) {
    let _ = write!(
        o,
        "<div class=\"card\"><div class=\"label\">{}</div><div class=\"value\" id=\"{id}\">{}</div></div>",
        esc(label),
        esc(value)
    );
}

/// A bar chart of the per-second series as inline SVG (60 bars at most).
fn chart(o: &mut String, series: &[u64]) {
    let max = series.iter().copied().max().unwrap_or(0).max(1);
    let _ = write!(
        o,
        "<svg viewBox=\"0 0 600 90\" preserveAspectRatio=\"none\" role=\"img\" \
         aria-label=\"messages per second, peak {max}\"><rect width=\"600\" height=\"90\" fill=\"#f0f3f6\"/>"
    );
    let slot = 600.0 / super::rate::WINDOW as f64;
    let offset = super::rate::WINDOW.saturating_sub(series.len());
    for (i, &n) in series.iter().enumerate() {
        let h = (n as f64 / max as f64) * 84.0;
        let _ = write!(
            o,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#0b5cad\"/>",
            (offset + i) as f64 * slot + 1.0,
            88.0 - h,
            slot - 2.0
        );
    }
    // The caption is HTML, not SVG text: the chart stretches to the page's width and would stretch it too.
    let _ = write!(
        o,
        "</svg><p class=\"muted caption\">Oldest second on the left; peak {max}/s.</p>"
    );
}

/// `3d 4h 5m 6s`, leaving out leading zero units.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

/// `YYYY-MM-DD HH:MM:SS` for seconds since the Unix epoch, in UTC.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `s` with the HTML special characters escaped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::errors::LogEntry;
    use super::super::{Sessions, StoreStatus};
    use super::*;

    #[test]
    fn times_and_durations_read_as_people_write_them() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_709_210_096), "2024-02-29 12:34:56");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3_723), "1h 2m 3s");
        assert_eq!(duration(90_061), "1d 1h 1m 1s");
    }

    #[test]
    fn log_text_is_escaped_not_markup() {
        let s = Snapshot {
            status: "up".into(),
            version: "0.1.0".into(),
            domain: "example.com".into(),
            uptime_seconds: 5,
            started_at: 0,
            sessions: Sessions { xmpp: 3, sip: 1 },
            messages_per_second: 0.5,
            messages_series: vec![0, 1, 2],
            offline_messages: 0,
            engine_queue: 0,
            store: StoreStatus {
                kind: "embedded".into(),
                location: "data/presenced.redb".into(),
                state: "ok".into(),
                failures_last_minute: 0,
            },
            cluster: None,
            recent_errors: vec![LogEntry {
                at_ms: 0,
                level: "WARN".into(),
                target: "server_xmpp".into(),
                message: "<script>alert(1)</script>".into(),
            }],
        };
        let html = render(&s);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("id=\"sessions-xmpp\">3<"));
        assert!(html.contains("Not clustered"));
    }
}
