//! The mobile workloads (issue 14): stream resumption after a network drop (XEP-0198), its contrast with a plain
//! re-login, and a message archive catch-up (XEP-0313 with RSM paging).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use xmpp_codec::{Element, Stanza, StreamEvent};

use crate::accounts::DOMAIN;
use crate::connect::{Target, next_event};
use crate::login::{Client, authenticated, login};
use crate::report::Json;
use crate::sampling::CpuMark;
use crate::{Error, RunArgs};

const NS_SM: &str = "urn:xmpp:sm:3";
const NS_MAM: &str = "urn:xmpp:mam:2";
const NS_RSM: &str = "http://jabber.org/protocol/rsm";
/// Bodies of the messages sent to dropped clients start with this.
const AWAY: &str = "away ";
/// Bodies of the messages archived for the catch-up start with this.
const ARCHIVED: &str = "archived ";
/// Bounds each client's reconnect and receipt of its messages, and the archive fill and catch-up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);
/// Bounds the archive fill (not measured; ejabberd's mnesia archive takes minutes for 20,000 messages).
const FILL_TIMEOUT: Duration = Duration::from_secs(600);
/// A stream silent this long after `<enabled/>` is taken as drained: every stanza so far is counted.
const QUIET: Duration = Duration::from_millis(500);

/// A stream-managed client's state: the resumption id and the stanzas it handled (XEP-0198 `h`).
struct Managed {
    id: String,
    h: u32,
}

/// Reads one event, answering `<r/>` with `<a h/>` and counting stanzas into `h`.
async fn next_counted(c: &mut Client, h: &mut u32, buf: &mut [u8]) -> Result<StreamEvent, Error> {
    loop {
        let ev = next_event(&mut c.rd, &mut c.parser, buf).await?;
        match &ev {
            StreamEvent::Stanza(_) => *h = h.wrapping_add(1),
            StreamEvent::Element(el) if el.name == "r" => {
                c.wr.write_all(format!("<a xmlns='{NS_SM}' h='{h}'/>").as_bytes())
                    .await?;
                continue;
            }
            StreamEvent::Close => return Err("server closed the stream".into()),
            _ => {}
        }
        return Ok(ev);
    }
}

/// `<enable resume='true'/>`, `<enabled/>`, then reads (counting) until the stream is quiet.
async fn enable(c: &mut Client) -> Result<Managed, Error> {
    c.wr.write_all(format!("<enable xmlns='{NS_SM}' resume='true'/>").as_bytes())
        .await?;
    let mut buf = vec![0u8; 16 * 1024];
    let id = loop {
        match next_event(&mut c.rd, &mut c.parser, &mut buf).await? {
            StreamEvent::Element(el) if el.name == "enabled" => {
                let resumable = matches!(el.attr("resume"), Some("true" | "1"));
                match el.attr("id") {
                    Some(id) if resumable => break id.to_string(),
                    _ => return Err(format!("stream management without resumption: {el:?}").into()),
                }
            }
            StreamEvent::Element(el) if el.name == "failed" => {
                return Err(format!("<enable/> failed: {el:?}").into());
            }
            StreamEvent::Close => return Err("server closed the stream".into()),
            _ => {}
        }
    };
    let mut h = 0;
    while let Ok(ev) = tokio::time::timeout(QUIET, next_counted(c, &mut h, &mut buf)).await {
        ev?;
    }
    Ok(Managed { id, h })
}

/// Reads (without stream management) until the stream is quiet.
async fn drain(c: &mut Client) -> Result<(), Error> {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(ev) =
        tokio::time::timeout(QUIET, next_event(&mut c.rd, &mut c.parser, &mut buf)).await
    {
        if matches!(ev?, StreamEvent::Close) {
            return Err("server closed the stream".into());
        }
    }
    Ok(())
}

/// A new connection (TLS, SASL) that resumes `m` in place of binding a resource.
async fn resume(t: &Target, user: usize, m: &Managed) -> Result<(Client, u32), Error> {
    let (mut s, mut parser, mut buf, first) = authenticated(t, t.addr, user).await?;
    match first {
        StreamEvent::Element(el) if el.name == "features" => {
            if el.child(NS_SM, "sm").is_none() {
                return Err("no stream management offered after SASL".into());
            }
        }
        other => return Err(format!("expected features, got {other:?}").into()),
    }
    s.write_all(format!("<resume xmlns='{NS_SM}' previd='{}' h='{}'/>", m.id, m.h).as_bytes())
        .await?;
    let h = loop {
        match next_event(&mut s, &mut parser, &mut buf).await? {
            StreamEvent::Element(el) if el.name == "resumed" => break m.h,
            StreamEvent::Element(el) if el.name == "failed" => {
                return Err(format!("resumption failed: {el:?}").into());
            }
            StreamEvent::Element(el) => {
                return Err(format!("expected <resumed/>, got {el:?}").into());
            }
            StreamEvent::Close => return Err("server closed the stream".into()),
            _ => {}
        }
    };
    let (rd, wr) = tokio::io::split(s);
    Ok((
        Client {
            rd,
            wr,
            parser,
            addr: t.addr,
            redirects: 0,
            early: Vec::new(),
        },
        h,
    ))
}

/// Reads until `want` messages whose body starts with `prefix` arrived (counting stanzas into `h` and
/// answering `<r/>`), starting from `got` already seen.
async fn receive(
    c: &mut Client,
    h: &mut u32,
    prefix: &str,
    mut got: usize,
    want: usize,
) -> Result<usize, Error> {
    let mut buf = vec![0u8; 16 * 1024];
    while got < want {
        if let StreamEvent::Stanza(Stanza::Message(el)) = next_counted(c, h, &mut buf).await?
            && el
                .child("jabber:client", "body")
                .is_some_and(|b| b.text().starts_with(prefix))
        {
            got += 1;
        }
    }
    Ok(got)
}

/// One round trip to the server on `c` (a roster get): everything `c` sent before was read and handled.
async fn sync(c: &mut Client, id: &str) -> Result<(), Error> {
    c.wr.write_all(
        format!("<iq type='get' id='{id}'><query xmlns='jabber:iq:roster'/></iq>").as_bytes(),
    )
    .await?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if let StreamEvent::Stanza(Stanza::Iq(el)) =
            next_event(&mut c.rd, &mut c.parser, &mut buf).await?
            && el.attr("id") == Some(id)
        {
            return Ok(());
        }
    }
}

/// `resume` (stream management) or `relogin` (plain login, offline messages): see [`super::Workload`].
pub(super) async fn reconnect(
    a: &RunArgs,
    clients: &mut [Option<Client>],
    sm: bool,
    j: &mut Json,
) -> Result<(), Error> {
    let n = a
        .users
        .checked_sub(1)
        .filter(|n| *n > 0)
        .ok_or("needs at least 2 users")?;
    let k = a.messages;
    let mut partner = clients[n]
        .take()
        .ok_or("the partner client did not log in")?;
    // 1. Stream management on (or just a quiet stream), then the drop: the socket is closed without </stream>.
    let mut tasks = Vec::new();
    for (user, c) in clients.iter_mut().enumerate().take(n) {
        let Some(mut c) = c.take() else { continue };
        tasks.push((
            user,
            tokio::spawn(async move {
                let r = if sm {
                    tokio::time::timeout(PHASE_TIMEOUT, enable(&mut c))
                        .await
                        .map_err(|_| Error::from("enable timed out"))
                        .and_then(|r| r.map(Some))
                } else {
                    tokio::time::timeout(PHASE_TIMEOUT, drain(&mut c))
                        .await
                        .map_err(|_| Error::from("drain timed out"))
                        .and_then(|r| r.map(|()| None))
                };
                drop(c);
                r
            }),
        ));
    }
    let mut away = Vec::new();
    let (mut failed, mut first_error) = (a.users - 1 - tasks.len(), None::<String>);
    for (user, task) in tasks {
        match task.await? {
            Ok(m) => away.push((user, m)),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    // 2. Let the server notice the drops, then the partner sends K messages to each (bare JID) and waits for its
    // roster result, so that all of them were read before the clock starts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut out = String::new();
    for (user, _) in &away {
        for m in 0..k {
            out.push_str(&format!(
                "<message to='u{user}@{DOMAIN}' type='chat' id='a{user}-{m}'><body>{AWAY}{m}</body></message>"
            ));
        }
    }
    partner.wr.write_all(out.as_bytes()).await?;
    tokio::time::timeout(FILL_TIMEOUT, sync(&mut partner, "sync"))
        .await
        .map_err(|_| Error::from("the partner's sync timed out"))??;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // 3. Measured: every dropped client reconnects (resumes or logs in) and reads its K messages.
    let mark = CpuMark::now(&a.server_pid);
    let start = Instant::now();
    let sem = Arc::new(Semaphore::new(a.concurrency));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (user, m) in away {
        let (t, sem, done) = (a.target.clone(), sem.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let work = async {
                let (mut c, mut h) = {
                    let _permit = sem.acquire().await.expect("semaphore open");
                    match &m {
                        Some(m) => resume(&t, user, m).await?,
                        None => (login(&t, user).await?, 0),
                    }
                };
                let early = c.early.iter().filter(|b| b.starts_with(AWAY)).count();
                let got = receive(&mut c, &mut h, AWAY, early, k).await?;
                Ok::<_, Error>((c, got, start.elapsed()))
            };
            let r = tokio::time::timeout(PHASE_TIMEOUT, work)
                .await
                .map_err(|_| Error::from("reconnect and receipt timed out"))
                .and_then(|r| r);
            if r.is_ok() {
                done.fetch_add(1, Ordering::Relaxed);
            }
            r
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await?);
    }
    let (wall, server_cpu, tool_cpu) = mark.since(&a.server_pid);
    let mut times = Vec::new();
    let mut received = 0;
    for r in results {
        match r {
            Ok((mut c, got, at)) => {
                received += got;
                times.push(at.as_secs_f64());
                let _ = c.wr.write_all(b"</stream:stream>").await;
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let _ = partner.wr.write_all(b"</stream:stream>").await;
    times.sort_by(f64::total_cmp);
    let ok = times.len();
    let p50 = times.get(ok / 2).copied().unwrap_or(f64::NAN);
    let per = server_cpu * 1000.0 / ok.max(1) as f64;
    j.str("mode", if sm { "resume" } else { "relogin" });
    j.num("reconnecting", n as f64);
    j.num("messages_each", k as f64);
    j.num("expected", (n * k) as f64);
    j.num("received", received as f64);
    j.num("reconnected", ok as f64);
    j.num("failed", failed as f64);
    j.str("phase_first_error", first_error.as_deref().unwrap_or(""));
    j.num("phase_s", wall);
    j.num("p50_client_s", p50);
    j.num("phase_server_cpu_s", server_cpu);
    j.num("phase_tool_cpu_s", tool_cpu);
    j.num("server_cpu_ms_per_reconnect", per);
    eprintln!(
        "[{}] {}: {ok} of {n} clients back with {received} of {} messages in {wall:.2} s (p50 {p50:.2} s); \
server CPU {server_cpu:.2} s = {per:.2} ms per reconnect; tool CPU {tool_cpu:.2} s; {failed} failed{}",
        a.label,
        if sm { "resume" } else { "relogin" },
        n * k,
        first_error
            .map(|e| format!(", first error: {e}"))
            .unwrap_or_default()
    );
    Ok(())
}

/// What one client's catch-up saw.
#[derive(Default)]
struct CatchUp {
    results: usize,
    pages: usize,
    largest_page: usize,
    complete: bool,
}

/// Pages through the client's archive: `<max>page</max>`, then `<after>last</after>` until `complete='true'`,
/// an empty page, or `want` results.
async fn catch_up(c: &mut Client, page: usize, want: usize) -> Result<CatchUp, Error> {
    let mut out = CatchUp::default();
    let mut after: Option<String> = None;
    let mut buf = vec![0u8; 64 * 1024];
    while out.results < want {
        let p = out.pages;
        let after_el = after
            .as_deref()
            .map(|a| format!("<after>{a}</after>"))
            .unwrap_or_default();
        c.wr.write_all(
            format!(
                "<iq type='set' id='mam{p}'><query xmlns='{NS_MAM}' queryid='q{p}'>\
<set xmlns='{NS_RSM}'><max>{page}</max>{after_el}</set></query></iq>"
            )
            .as_bytes(),
        )
        .await?;
        let queryid = format!("q{p}");
        let mut in_page = 0;
        let fin: Element = loop {
            match next_event(&mut c.rd, &mut c.parser, &mut buf).await? {
                StreamEvent::Stanza(Stanza::Message(el))
                    if el
                        .child(NS_MAM, "result")
                        .is_some_and(|r| r.attr("queryid") == Some(queryid.as_str())) =>
                {
                    in_page += 1;
                }
                StreamEvent::Stanza(Stanza::Iq(el))
                    if el.attr("id") == Some(&format!("mam{p}")) =>
                {
                    if el.attr("type") != Some("result") {
                        return Err(format!("MAM query failed: {el:?}").into());
                    }
                    break el
                        .child(NS_MAM, "fin")
                        .cloned()
                        .ok_or("MAM result without <fin/>")?;
                }
                StreamEvent::Close => return Err("server closed the stream".into()),
                _ => {}
            }
        };
        out.pages += 1;
        out.results += in_page;
        out.largest_page = out.largest_page.max(in_page);
        out.complete = matches!(fin.attr("complete"), Some("true" | "1"));
        after = fin
            .child(NS_RSM, "set")
            .and_then(|s| s.child(NS_RSM, "last"))
            .map(|l| l.text());
        if out.complete || in_page == 0 || after.is_none() {
            break;
        }
    }
    Ok(out)
}

/// `mam`: see [`super::Workload`].
pub(super) async fn mam(
    a: &RunArgs,
    clients: &mut [Option<Client>],
    j: &mut Json,
) -> Result<(), Error> {
    let m = a.users / 2;
    if m == 0 {
        return Err("mam needs at least 2 users".into());
    }
    let k = a.messages;
    // 1. Fill (not measured): u{m+i} sends K messages to u{i}, which reads them while online; the server archives
    // them for both.
    let fill_start = Instant::now();
    let mut receivers = Vec::new();
    for (user, c) in clients.iter_mut().enumerate().take(m) {
        let Some(mut c) = c.take() else { continue };
        receivers.push((
            user,
            tokio::spawn(async move {
                let mut h = 0;
                let r = tokio::time::timeout(FILL_TIMEOUT, receive(&mut c, &mut h, ARCHIVED, 0, k))
                    .await
                    .map_err(|_| Error::from("archive fill timed out"))
                    .and_then(|r| r);
                r.map(|_| c)
            }),
        ));
    }
    let mut senders = Vec::new();
    for (sender, c) in clients.iter_mut().enumerate().skip(m).take(m) {
        let Some(mut c) = c.take() else { continue };
        let to = sender - m;
        senders.push(tokio::spawn(async move {
            for chunk in (0..k).collect::<Vec<_>>().chunks(100) {
                let mut out = String::new();
                for i in chunk {
                    out.push_str(&format!(
                        "<message to='u{to}@{DOMAIN}' type='chat' id='m{i}'><body>{ARCHIVED}{i} from u{sender}</body></message>"
                    ));
                }
                c.wr.write_all(out.as_bytes()).await?;
            }
            Ok::<_, Error>(c)
        }));
    }
    let mut first_error = None::<String>;
    let mut keep = Vec::new();
    for s in senders {
        match s.await? {
            Ok(c) => keep.push(c),
            Err(e) => {
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let mut ready = Vec::new();
    let mut failed = m - receivers.len();
    for (user, r) in receivers {
        match r.await? {
            Ok(c) => ready.push((user, c)),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let fill_s = fill_start.elapsed().as_secs_f64();
    eprintln!(
        "[{}] mam: {} of {m} archives filled with {k} messages in {fill_s:.1} s",
        a.label,
        ready.len()
    );
    // Let the server finish writing its archives.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // 2. Measured: every filled client pages through its archive at once.
    let mark = CpuMark::now(&a.server_pid);
    let start = Instant::now();
    let (page, rounds) = (a.page, a.rounds);
    let mut tasks = Vec::new();
    for (_, mut c) in ready {
        tasks.push(tokio::spawn(async move {
            let work = async {
                let mut all = CatchUp::default();
                for _ in 0..rounds {
                    let o = catch_up(&mut c, page, k).await?;
                    if o.results < k {
                        return Ok(o);
                    }
                    all.results += o.results;
                    all.pages += o.pages;
                    all.largest_page = all.largest_page.max(o.largest_page);
                    all.complete |= o.complete;
                }
                Ok::<_, Error>(all)
            };
            let r = tokio::time::timeout(PHASE_TIMEOUT, work)
                .await
                .map_err(|_| Error::from("catch-up timed out"))
                .and_then(|r| r);
            r.map(|o| (c, o, start.elapsed()))
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await?);
    }
    let (wall, server_cpu, tool_cpu) = mark.since(&a.server_pid);
    let (mut received, mut pages, mut largest, mut complete, mut ok) = (0, 0, 0, 0, 0);
    let mut times = Vec::new();
    for r in results {
        match r {
            Ok((mut c, o, at)) => {
                received += o.results;
                pages += o.pages;
                largest = largest.max(o.largest_page);
                complete += usize::from(o.complete);
                times.push(at.as_secs_f64());
                if o.results >= k * rounds {
                    ok += 1;
                } else {
                    failed += 1;
                    first_error.get_or_insert(format!(
                        "only {} of {k} archived messages returned in a round",
                        o.results
                    ));
                }
                let _ = c.wr.write_all(b"</stream:stream>").await;
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    for mut c in keep {
        let _ = c.wr.write_all(b"</stream:stream>").await;
    }
    times.sort_by(f64::total_cmp);
    let p50 = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    // Per 1,000 messages fetched: what one client catching up on 1,000 messages costs the server.
    let per_1000 = server_cpu * 1000.0 / (received as f64 / 1000.0);
    j.num("catching_up", m as f64);
    j.num("rounds", rounds as f64);
    j.num("messages_each", k as f64);
    j.num("fill_s", fill_s);
    j.num("received", received as f64);
    j.num("caught_up", ok as f64);
    j.num("failed", failed as f64);
    j.str("phase_first_error", first_error.as_deref().unwrap_or(""));
    j.num("pages", pages as f64);
    j.num("largest_page", largest as f64);
    j.num("complete_seen", complete as f64);
    j.num("phase_s", wall);
    j.num("p50_client_s", p50);
    j.num("phase_server_cpu_s", server_cpu);
    j.num("phase_tool_cpu_s", tool_cpu);
    j.num("server_cpu_ms_per_1000", per_1000);
    eprintln!(
        "[{}] mam: {ok} of {m} clients caught up {rounds} times: {received} messages in {pages} pages (largest {largest}) in \
{wall:.2} s (p50 {p50:.2} s); server CPU {server_cpu:.2} s = {per_1000:.1} ms per 1,000 messages; tool CPU \
{tool_cpu:.2} s; {failed} failed{}",
        a.label,
        first_error
            .map(|e| format!(", first error: {e}"))
            .unwrap_or_default()
    );
    Ok(())
}
