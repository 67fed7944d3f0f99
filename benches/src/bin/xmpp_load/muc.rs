//! The group chat workload (issue 15): `--rooms` XEP-0045 rooms of `--occupants` occupants each at the MUC service
//! `--muc-service`, a rate of groupchat messages per room, every occupant reading.
//!
//! 1. Logged in (the common login phase), the server's RSS is sampled.
//! 2. The first occupant of every room joins it, creating it; if the room comes back locked (status 201), it
//!    submits an empty `muc#owner` form (an instant room, XEP-0045 §10.1.2) and waits for the result.
//! 3. Every other occupant joins at once (presence to room/nick with `<history maxstanzas='0'/>`). Each client
//!    reads the flood of occupant presences until it has seen every occupant of its room that joined; then the
//!    server's RSS is sampled again (after a settle): the growth ÷ occupants is the memory per idle occupant.
//! 4. For `--duration` seconds each room gets `--rate` groupchat messages per second, sent in turn by its
//!    occupants (occupant k of a room sends messages k, k+O, k+2O, …, one task per sender on a fixed schedule);
//!    the body is the send time in ns. Every occupant, the sender included (XEP-0045 reflects a message to its
//!    sender), times its receipt. Expected deliveries = Σ over sent messages of the joined occupants of its room.
//!    Readers wait until every expected delivery arrived or [`GRACE`] more.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::task::JoinHandle;
use xmpp_codec::{Element, Stanza, StreamEvent, StreamParser};

use crate::connect::{Tls, next_event};
use crate::login::Client;
use crate::report::{Json, percentile};
use crate::sampling::{CpuMark, rss_kib};
use crate::{Error, RunArgs};

const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const NS_DELAY: &str = "urn:xmpp:delay";
/// Bounds the room creation by its first occupant (join and instant configuration).
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bounds the join phase: every occupant in and every join presence read.
const JOIN_TIMEOUT: Duration = Duration::from_secs(180);
/// After the sends, how long readers may take to get the deliveries still in flight.
const GRACE: Duration = Duration::from_secs(10);
/// RSS is sampled every 100 ms for this long, before the first join and after the last join presence was read
/// (so queued output is written out), and the smallest sample taken: garbage a collector has yet to return (Lua,
/// Erlang) moves single samples by megabytes.
const SETTLE: Duration = Duration::from_secs(2);

/// The smallest RSS of `pid` (KiB) over `SETTLE`, sampled every 100 ms.
async fn settled_rss(pid: Option<u32>) -> Option<u64> {
    let until = Instant::now() + SETTLE;
    let mut min = None::<u64>;
    loop {
        if let Some(r) = pid.and_then(rss_kib) {
            min = Some(min.map_or(r, |m| m.min(r)));
        }
        if Instant::now() >= until {
            return min;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client's join state, as its reader saw it.
const PENDING: u8 = 0;
const JOINED: u8 = 1;
const FAILED: u8 = 2;

/// The room of occupant slot `room`.
fn room_jid(room: usize, service: &str) -> String {
    format!("bench{room}@{service}")
}

/// The join presence for `room_jid` with nickname `nick`: no history.
fn join_presence(room_jid: &str, nick: &str) -> String {
    format!(
        "<presence to='{room_jid}/{nick}'><x xmlns='{NS_MUC}'><history maxstanzas='0'/></x></presence>"
    )
}

/// Writes and flushes one stanza: tokio-rustls may keep written bytes in its buffer until the next write or flush,
/// and a client here may write nothing else for a long time.
async fn send(wr: &mut WriteHalf<Tls>, stanza: &str) -> std::io::Result<()> {
    wr.write_all(stanza.as_bytes()).await?;
    wr.flush().await
}

/// The status codes of a MUC presence (`<x xmlns='…muc#user'><status code/>`).
fn status_codes(el: &Element) -> Vec<u16> {
    el.child(NS_MUC_USER, "x")
        .map(|x| {
            x.elements()
                .filter(|s| s.name == "status")
                .filter_map(|s| s.attr("code")?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `(bare, resource)` of a full JID.
fn split_jid(j: &str) -> (&str, &str) {
    j.split_once('/').unwrap_or((j, ""))
}

/// A short description of a stanza error for the report.
fn error_text(el: &Element) -> String {
    let cond = el
        .elements()
        .find(|e| e.name == "error")
        .map(|e| {
            e.elements()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    format!(
        "{} error from {}: {cond}",
        el.name,
        el.attr("from").unwrap_or("?")
    )
}

/// The first occupant creates the room: join, and if the room is locked (201), an instant configuration.
/// Returns the nicknames of occupants already seen (itself) and whether the room was new.
async fn create(c: &mut Client, room: &str, nick: &str) -> Result<(HashSet<String>, bool), Error> {
    c.wr.write_all(join_presence(room, nick).as_bytes()).await?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut seen = HashSet::new();
    let codes = loop {
        match next_event(&mut c.rd, &mut c.parser, &mut buf).await? {
            StreamEvent::Stanza(Stanza::Presence(el)) => {
                let (bare, res) = split_jid(el.attr("from").unwrap_or(""));
                if bare != room {
                    continue;
                }
                if el.attr("type") == Some("error") {
                    return Err(error_text(&el).into());
                }
                if el.attr("type").is_none() {
                    seen.insert(res.to_string());
                }
                let codes = status_codes(&el);
                if codes.contains(&110) || res == nick {
                    break codes;
                }
            }
            StreamEvent::Close => return Err("server closed the stream".into()),
            _ => {}
        }
    };
    let created = codes.contains(&201);
    if created {
        c.wr.write_all(
            format!(
                "<iq type='set' to='{room}' id='cfg'><query xmlns='{NS_MUC_OWNER}'>\
<x xmlns='jabber:x:data' type='submit'/></query></iq>"
            )
            .as_bytes(),
        )
        .await?;
        loop {
            match next_event(&mut c.rd, &mut c.parser, &mut buf).await? {
                StreamEvent::Stanza(Stanza::Iq(el)) if el.attr("id") == Some("cfg") => {
                    if el.attr("type") != Some("result") {
                        return Err(format!("instant room: {}", error_text(&el)).into());
                    }
                    break;
                }
                StreamEvent::Stanza(Stanza::Presence(el))
                    if split_jid(el.attr("from").unwrap_or("")).0 == room =>
                {
                    let res = split_jid(el.attr("from").unwrap_or("")).1.to_string();
                    if el.attr("type").is_none() {
                        seen.insert(res);
                    }
                }
                StreamEvent::Close => return Err("server closed the stream".into()),
                _ => {}
            }
        }
    }
    Ok((seen, created))
}

/// Shared by the readers and the coordinator.
struct Shared {
    /// Per client: [`PENDING`], [`JOINED`] or [`FAILED`].
    state: Vec<AtomicU8>,
    /// Per client: distinct occupants of its room it currently sees (itself included).
    seen: Vec<AtomicUsize>,
    /// Groupchat deliveries with a timestamp body.
    received: AtomicU64,
    /// ns since the run started of the latest timestamped receipt.
    last_ns: AtomicU64,
    /// Error stanzas (message or presence) that arrived after the join.
    stanza_errors: AtomicUsize,
    /// Readers whose stream ended before the run did.
    disconnected: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn error(&self, e: String) {
        self.first_error
            .lock()
            .expect("not poisoned")
            .get_or_insert(e);
    }
}

/// Reads one occupant's stream until `stop`: occupant presences of its room (join tracking), its own join
/// result, and timestamped groupchat messages (latency samples).
#[allow(clippy::too_many_arguments)]
fn spawn_reader(
    mut rd: ReadHalf<Tls>,
    mut parser: StreamParser,
    idx: usize,
    room: String,
    nick: String,
    mut present: HashSet<String>,
    run_start: Instant,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> JoinHandle<Vec<u64>> {
    tokio::spawn(async move {
        let mut lat = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        shared.seen[idx].store(present.len(), Ordering::Relaxed);
        loop {
            let ev = tokio::select! {
                ev = next_event(&mut rd, &mut parser, &mut buf) => ev,
                _ = stop.wait_for(|s| *s) => return lat,
            };
            let ev = match ev {
                Ok(StreamEvent::Close) => Err("server closed the stream".into()),
                other => other,
            };
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    if !*stop.borrow() {
                        shared.disconnected.fetch_add(1, Ordering::Relaxed);
                        shared.error(format!("occupant {nick}: {e}"));
                        let _ = shared.state[idx].compare_exchange(
                            PENDING,
                            FAILED,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                    return lat;
                }
            };
            match ev {
                StreamEvent::Stanza(Stanza::Message(el)) => {
                    let from = el.attr("from").unwrap_or("");
                    if el.attr("type") == Some("error") {
                        shared.stanza_errors.fetch_add(1, Ordering::Relaxed);
                        shared.error(error_text(&el));
                        continue;
                    }
                    if split_jid(from).0 != room
                        || el.attr("type") != Some("groupchat")
                        || el.child(NS_DELAY, "delay").is_some()
                    {
                        continue;
                    }
                    if let Some(t) = el
                        .child("jabber:client", "body")
                        .and_then(|b| b.text().parse::<u64>().ok())
                    {
                        let now = run_start.elapsed().as_nanos() as u64;
                        lat.push(now.saturating_sub(t));
                        shared.received.fetch_add(1, Ordering::Relaxed);
                        shared.last_ns.fetch_max(now, Ordering::Relaxed);
                    }
                }
                StreamEvent::Stanza(Stanza::Presence(el)) => {
                    let (bare, res) = split_jid(el.attr("from").unwrap_or(""));
                    if bare != room {
                        continue;
                    }
                    match el.attr("type") {
                        Some("error") => {
                            if shared.state[idx]
                                .compare_exchange(
                                    PENDING,
                                    FAILED,
                                    Ordering::Relaxed,
                                    Ordering::Relaxed,
                                )
                                .is_err()
                            {
                                shared.stanza_errors.fetch_add(1, Ordering::Relaxed);
                            }
                            shared.error(format!("join of {nick}: {}", error_text(&el)));
                        }
                        Some("unavailable") => {
                            present.remove(res);
                        }
                        None => {
                            present.insert(res.to_string());
                            if res == nick || status_codes(&el).contains(&110) {
                                let _ = shared.state[idx].compare_exchange(
                                    PENDING,
                                    JOINED,
                                    Ordering::Relaxed,
                                    Ordering::Relaxed,
                                );
                            }
                        }
                        Some(_) => {}
                    }
                    shared.seen[idx].store(present.len(), Ordering::Relaxed);
                }
                _ => {}
            }
        }
    })
}

/// `muc`: see [`super::Workload::Muc`].
pub(super) async fn muc(
    a: &RunArgs,
    clients: &mut [Option<Client>],
    run_start: Instant,
    j: &mut Json,
) -> Result<(), Error> {
    let (rooms, occ) = (a.rooms, a.occupants);
    let n = rooms * occ;
    if rooms == 0 || occ == 0 || clients.len() != n {
        return Err(format!(
            "muc needs --users = --rooms × --occupants ({rooms} × {occ}), got {}",
            clients.len()
        )
        .into());
    }
    let service = a.muc_service.as_str();
    let room_of = |i: usize| i / occ;
    let nick_of = |i: usize| format!("u{i}");
    let rss_pid = a.server_pid.first().copied();
    // Logins' own traffic (none: no rosters) settles: the RSS before any room exists.
    let rss_before = settled_rss(rss_pid).await;

    let shared = Arc::new(Shared {
        state: (0..n).map(|_| AtomicU8::new(PENDING)).collect(),
        seen: (0..n).map(|_| AtomicUsize::new(0)).collect(),
        received: AtomicU64::new(0),
        last_ns: AtomicU64::new(0),
        stanza_errors: AtomicUsize::new(0),
        disconnected: AtomicUsize::new(0),
        first_error: Mutex::new(None),
    });
    for (i, c) in clients.iter().enumerate() {
        if c.is_none() {
            shared.state[i].store(FAILED, Ordering::Relaxed);
        }
    }

    // 1. Every room's first online occupant creates it (all rooms at once).
    let join_mark = CpuMark::now(&a.server_pid);
    let join_start = Instant::now();
    let mut creators = Vec::new();
    for r in 0..rooms {
        let Some(i) = (r * occ..(r + 1) * occ).find(|i| clients[*i].is_some()) else {
            continue;
        };
        let mut c = clients[i].take().expect("online");
        let (room, nick) = (room_jid(r, service), nick_of(i));
        creators.push((
            i,
            tokio::spawn(async move {
                let r = tokio::time::timeout(CREATE_TIMEOUT, create(&mut c, &room, &nick))
                    .await
                    .map_err(|_| Error::from(format!("creating {room} timed out")))
                    .and_then(|r| r);
                (c, r)
            }),
        ));
    }
    let mut initial: Vec<HashSet<String>> = vec![HashSet::new(); n];
    let mut created = 0;
    for (i, t) in creators {
        let (c, r) = t.await?;
        match r {
            Ok((seen, new)) => {
                shared.state[i].store(JOINED, Ordering::Relaxed);
                created += usize::from(new);
                initial[i] = seen;
                clients[i] = Some(c);
            }
            Err(e) => {
                // Nobody else can join a room that could not be created: the whole room fails.
                shared.error(format!(
                    "room {} not created: {e}",
                    room_jid(room_of(i), service)
                ));
                let members = room_of(i) * occ..(room_of(i) + 1) * occ;
                for (k, other) in clients
                    .iter_mut()
                    .enumerate()
                    .take(members.end)
                    .skip(members.start)
                {
                    shared.state[k].store(FAILED, Ordering::Relaxed);
                    *other = None;
                }
                drop(c);
            }
        }
    }
    let create_s = join_start.elapsed().as_secs_f64();

    // 2. Readers for everyone, then every other occupant joins at once.
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut readers = Vec::new();
    let mut writers: Vec<(usize, WriteHalf<Tls>)> = Vec::new();
    for (i, c) in clients.iter_mut().enumerate() {
        let Some(Client { rd, wr, parser, .. }) = c.take() else {
            continue;
        };
        readers.push(spawn_reader(
            rd,
            parser,
            i,
            room_jid(room_of(i), service),
            nick_of(i),
            std::mem::take(&mut initial[i]),
            run_start,
            shared.clone(),
            stop_rx.clone(),
        ));
        writers.push((i, wr));
    }
    for (i, wr) in &mut writers {
        if shared.state[*i].load(Ordering::Relaxed) == PENDING
            && let Err(e) = send(
                wr,
                &join_presence(&room_jid(room_of(*i), service), &nick_of(*i)),
            )
            .await
        {
            shared.state[*i].store(FAILED, Ordering::Relaxed);
            shared.error(format!("join of u{i}: {e}"));
        }
    }
    // Until no join is pending and every joined occupant sees all joined occupants of its room.
    let deadline = join_start + JOIN_TIMEOUT;
    let joined_per_room = |shared: &Shared| -> Vec<usize> {
        let mut v = vec![0; rooms];
        for (i, s) in shared.state.iter().enumerate() {
            if s.load(Ordering::Relaxed) == JOINED {
                v[room_of(i)] += 1;
            }
        }
        v
    };
    let complete = loop {
        let joined = joined_per_room(&shared);
        let pending = shared
            .state
            .iter()
            .any(|s| s.load(Ordering::Relaxed) == PENDING);
        let all_seen = (0..n).all(|i| {
            shared.state[i].load(Ordering::Relaxed) != JOINED
                || shared.seen[i].load(Ordering::Relaxed) >= joined[room_of(i)]
        });
        if !pending && all_seen {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let join_s = join_start.elapsed().as_secs_f64();
    let (_, join_server_cpu, join_tool_cpu) = join_mark.since(&a.server_pid);
    let joined = joined_per_room(&shared);
    let joined_total: usize = joined.iter().sum();
    // Occupants still pending or not seeing everybody at the deadline count as failed joins.
    let mut join_failed = 0;
    for i in 0..n {
        let s = shared.state[i].load(Ordering::Relaxed);
        if s != JOINED || shared.seen[i].load(Ordering::Relaxed) < joined[room_of(i)] {
            join_failed += 1;
        }
    }
    if !complete {
        shared.error(format!(
            "join phase incomplete after {} s",
            JOIN_TIMEOUT.as_secs()
        ));
    }
    eprintln!(
        "[{}] muc: {created} rooms created in {create_s:.2} s; {joined_total} of {n} occupants in and seen by all \
in {join_s:.2} s (server CPU {join_server_cpu:.2} s, tool CPU {join_tool_cpu:.2} s); {join_failed} failed",
        a.label
    );
    let rss_after = settled_rss(rss_pid).await;

    // 3. Messages: per room `rate`/s, occupant k sending messages k, k+S, … of its room (S senders).
    let mut by_room: Vec<Vec<(usize, WriteHalf<Tls>)>> = (0..rooms).map(|_| Vec::new()).collect();
    let mut idle = Vec::new();
    for (i, wr) in writers {
        if shared.state[i].load(Ordering::Relaxed) == JOINED {
            by_room[room_of(i)].push((i, wr));
        } else {
            idle.push((i, wr));
        }
    }
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..rooms).map(|_| AtomicU64::new(0)).collect());
    let per_room = a.rate.max(1e-6);
    let mark = CpuMark::now(&a.server_pid);
    let msg_start = Instant::now();
    let send_until = msg_start + a.duration;
    let mut tasks = Vec::new();
    for (r, senders) in by_room.into_iter().enumerate() {
        let s = senders.len();
        if s == 0 {
            continue;
        }
        // Message m of the room is due at start + (r / rooms + m) / rate: rooms staggered over one interval.
        let step = Duration::from_secs_f64(1.0 / per_room);
        let room = room_jid(r, service);
        for (k, (i, mut wr)) in senders.into_iter().enumerate() {
            let (sent, shared, room) = (sent.clone(), shared.clone(), room.clone());
            let first = step.mul_f64(k as f64 + r as f64 / rooms as f64);
            let every = step * s as u32;
            tasks.push(tokio::spawn(async move {
                let mut next = tokio::time::Instant::from_std(msg_start + first);
                while next.into_std() < send_until {
                    tokio::time::sleep_until(next).await;
                    next += every;
                    let t = run_start.elapsed().as_nanos();
                    let m =
                        format!("<message to='{room}' type='groupchat'><body>{t}</body></message>");
                    if let Err(e) = send(&mut wr, &m).await {
                        shared.error(format!("send by u{i}: {e}"));
                        break;
                    }
                    sent[r].fetch_add(1, Ordering::Relaxed);
                }
                (i, wr)
            }));
        }
    }
    let mut writers = idle;
    for t in tasks {
        writers.push(t.await?);
    }
    let send_wall = msg_start.elapsed().as_secs_f64();
    let sent_total: u64 = sent.iter().map(|s| s.load(Ordering::Relaxed)).sum();
    let expected: u64 = sent
        .iter()
        .zip(&joined)
        .map(|(s, j)| s.load(Ordering::Relaxed) * *j as u64)
        .sum();
    let grace_until = Instant::now() + GRACE;
    while shared.received.load(Ordering::Relaxed) < expected && Instant::now() < grace_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, server_cpu, tool_cpu) = mark.since(&a.server_pid);
    let _ = stop.send(true);
    let mut lat = Vec::new();
    for r in readers {
        lat.extend(r.await?);
    }
    for (_, wr) in &mut writers {
        let _ = wr.write_all(b"</stream:stream>").await;
    }
    lat.sort_unstable();
    let received = lat.len();
    let last =
        shared.last_ns.load(Ordering::Relaxed) as f64 / 1e9 - (msg_start - run_start).as_secs_f64();
    let span = last.max(a.duration.as_secs_f64());
    let (p50, p99) = (percentile(&lat, 0.50), percentile(&lat, 0.99));
    let stanza_errors = shared.stanza_errors.load(Ordering::Relaxed);
    let disconnected = shared.disconnected.load(Ordering::Relaxed);
    let first_error = shared.first_error.lock().expect("not poisoned").clone();
    let per_delivery_us = server_cpu * 1e6 / received.max(1) as f64;
    let failed = join_failed + stanza_errors + disconnected;

    j.str("muc_service", service);
    j.num("rooms", rooms as f64);
    j.num("occupants", occ as f64);
    j.num("rate_per_room", a.rate);
    j.num("secs", a.duration.as_secs_f64());
    j.num("rooms_created", created as f64);
    j.num("create_s", create_s);
    j.num("joined", joined_total as f64);
    j.num("join_failed", join_failed as f64);
    j.num("join_s", join_s);
    j.num("join_server_cpu_s", join_server_cpu);
    j.num("join_tool_cpu_s", join_tool_cpu);
    if let (Some(r0), Some(r1)) = (rss_before, rss_after) {
        j.num("rss_before_join_kib", r0 as f64);
        j.num("rss_after_join_kib", r1 as f64);
        j.num(
            "rss_per_occupant_kib",
            (r1 as f64 - r0 as f64) / joined_total.max(1) as f64,
        );
    }
    j.num("sent", sent_total as f64);
    j.num("sent_per_s", sent_total as f64 / send_wall);
    j.num("expected", expected as f64);
    j.num("received", received as f64);
    j.num("delivered_per_s", received as f64 / span);
    j.num("p50_ms", p50);
    j.num("p99_ms", p99);
    j.num("phase_s", span);
    j.num("phase_server_cpu_s", server_cpu);
    j.num("phase_tool_cpu_s", tool_cpu);
    j.num("server_cpu_us_per_delivery", per_delivery_us);
    // The tool's share too, under the key chat and fan-out use (report::per_delivery).
    j.num(
        "tool_cpu_us_per_delivery",
        tool_cpu * 1e6 / received.max(1) as f64,
    );
    j.num("stanza_errors", stanza_errors as f64);
    j.num("disconnected", disconnected as f64);
    j.num("failed", failed as f64);
    j.str("phase_first_error", first_error.as_deref().unwrap_or(""));
    eprintln!(
        "[{}] muc: {rooms} rooms × {occ}: sent {sent_total} ({:.1}/s per room), received {received} of {expected} \
({:.0}/s over {span:.1} s), p50 {p50:.2} ms, p99 {p99:.2} ms, server CPU {server_cpu:.2} s = {per_delivery_us:.2} µs \
per delivery, tool CPU {tool_cpu:.2} s; RSS {} → {} KiB; {failed} failed{}",
        a.label,
        sent_total as f64 / send_wall / rooms as f64,
        received as f64 / span,
        rss_before.map_or("?".into(), |v| v.to_string()),
        rss_after.map_or("?".into(), |v| v.to_string()),
        first_error
            .map(|e| format!(", first error: {e}"))
            .unwrap_or_default()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_presence_and_status_codes() {
        assert_eq!(
            join_presence("bench0@conference.localhost", "u0"),
            "<presence to='bench0@conference.localhost/u0'><x xmlns='http://jabber.org/protocol/muc'>\
<history maxstanzas='0'/></x></presence>"
        );
        let mut p = StreamParser::new();
        p.feed(
            b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>\
<presence from='bench0@conference.localhost/u0'><x xmlns='http://jabber.org/protocol/muc#user'>\
<item affiliation='owner' role='moderator'/><status code='110'/><status code='201'/></x></presence>",
        );
        let _ = p.next_event().unwrap();
        let Some(StreamEvent::Stanza(Stanza::Presence(el))) = p.next_event().unwrap() else {
            panic!("no presence")
        };
        assert_eq!(status_codes(&el), vec![110, 201]);
        assert_eq!(
            split_jid(el.attr("from").unwrap()),
            ("bench0@conference.localhost", "u0")
        );
    }
}
