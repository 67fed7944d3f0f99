//! The measured phase's receiving side, shared by chat, fan-out and idle: every online client's read half becomes a
//! task that times timestamped messages and presences; the write halves stay with the workload.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use xmpp_codec::{Element, Node, Stanza, StreamEvent, StreamParser};

use crate::Error;
use crate::accounts::{DOMAIN, bare};
use crate::connect::Tls;
use crate::login::Client;
use crate::scan::{Seen, StanzaScanner};

/// What every reader collects: latencies (ns) of timestamped messages and of timestamped presences from others.
#[derive(Default)]
pub(crate) struct Samples {
    pub(crate) msgs: Vec<u64>,
    pub(crate) presences: Vec<u64>,
}

/// Shared counters the readers bump as samples arrive.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) msgs: AtomicU64,
    pub(crate) presences: AtomicU64,
    /// Nanoseconds since the run started of the latest timestamped receipt.
    pub(crate) last_ns: AtomicU64,
}

/// The send timestamp (ns) an element's text holds, read from its text nodes in place: every received message
/// is timed, so this saves the String that `Element::text` would allocate for each one.
pub(crate) fn timestamp(el: &Element) -> Option<u64> {
    let mut v: u64 = 0;
    let mut digits = 0;
    for n in &el.children {
        if let Node::Text(t) = n {
            for b in t.bytes() {
                if !b.is_ascii_digit() {
                    return None;
                }
                v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
                digits += 1;
            }
        }
    }
    (digits > 0).then_some(v)
}

/// Reads one client's stream until it closes, fails or `stop` flips: message bodies and presence statuses that
/// are send timestamps (ns since `run_start`) become latency samples. The bytes are read by a [`StanzaScanner`]
/// once the login phase's parser has handed over.
pub(crate) fn spawn_reader(
    mut rd: ReadHalf<Tls>,
    mut parser: StreamParser,
    me: usize,
    run_start: Instant,
    counters: Arc<Counters>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Samples> {
    tokio::spawn(async move {
        let me = format!("u{me}@{DOMAIN}");
        let mut out = Samples::default();
        let mut buf = vec![0u8; 16 * 1024];
        // One stop future for the reader's life, not one per event: each new `wait_for` would subscribe to the
        // channel again, a cost paid on every received message.
        let stopped = stop.wait_for(|s| *s);
        tokio::pin!(stopped);
        let mut record = |seen: Seen| {
            let (lat, msg) = match seen {
                Seen::Message(t) | Seen::Presence(t) => {
                    let now = run_start.elapsed().as_nanos() as u64;
                    counters.last_ns.fetch_max(now, Ordering::Relaxed);
                    (now.saturating_sub(t), matches!(seen, Seen::Message(_)))
                }
                Seen::Close => return,
            };
            if msg {
                out.msgs.push(lat);
                counters.msgs.fetch_add(1, Ordering::Relaxed);
            } else {
                out.presences.push(lat);
                counters.presences.fetch_add(1, Ordering::Relaxed);
            }
        };
        // The login phase's parser may hold the start of an element: it reads on until it holds nothing, and
        // the scanner, which must start at an element boundary, takes over from there.
        let mut scanner: Option<StanzaScanner> = None;
        loop {
            while scanner.is_none() {
                match parser.next_event() {
                    Ok(Some(ev)) => match seen_in(&ev, &me) {
                        Some(Seen::Close) => return out,
                        Some(s) => record(s),
                        None => {}
                    },
                    Ok(None) if parser.buffered() == 0 => scanner = Some(StanzaScanner::new(&me)),
                    Ok(None) => break,
                    Err(_) => return out,
                }
            }
            let n = tokio::select! {
                n = rd.read(&mut buf) => n,
                _ = &mut stopped => break,
            };
            let Ok(n @ 1..) = n else { break };
            let mut closed = false;
            match scanner.as_mut() {
                Some(s) => s.feed(&buf[..n], |seen| match seen {
                    Seen::Close => closed = true,
                    other => record(other),
                }),
                None => parser.feed(&buf[..n]),
            }
            if closed {
                break;
            }
        }
        out
    })
}

/// What a stanza parsed by the login phase's parser says (see [`Seen`]).
fn seen_in(ev: &StreamEvent, me: &str) -> Option<Seen> {
    match ev {
        StreamEvent::Close => Some(Seen::Close),
        StreamEvent::Stanza(Stanza::Message(el)) => el
            .child("jabber:client", "body")
            .and_then(timestamp)
            .map(Seen::Message),
        StreamEvent::Stanza(Stanza::Presence(el))
            if el.attr("type").is_none() && el.attr("from").is_some_and(|f| bare(f) != me) =>
        {
            el.child("jabber:client", "status")
                .and_then(timestamp)
                .map(Seen::Presence)
        }
        _ => None,
    }
}

/// Online clients split into readers (collecting samples) and their write halves.
pub(crate) struct Split {
    pub(crate) writers: Vec<(usize, WriteHalf<Tls>)>,
    pub(crate) readers: Vec<tokio::task::JoinHandle<Samples>>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) stop: tokio::sync::watch::Sender<bool>,
}

pub(crate) fn split_all(clients: &mut [Option<Client>], run_start: Instant) -> Split {
    let counters = Arc::new(Counters::default());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (mut writers, mut readers) = (Vec::new(), Vec::new());
    for (i, c) in clients.iter_mut().enumerate() {
        let Some(Client { rd, wr, parser, .. }) = c.take() else {
            continue;
        };
        readers.push(spawn_reader(
            rd,
            parser,
            i,
            run_start,
            counters.clone(),
            stop_rx.clone(),
        ));
        writers.push((i, wr));
    }
    Split {
        writers,
        readers,
        counters,
        stop,
    }
}

impl Split {
    /// Stops the readers, closes every stream, and returns all samples.
    pub(crate) async fn finish(mut self) -> Result<Samples, Error> {
        let _ = self.stop.send(true);
        let mut all = Samples::default();
        for r in self.readers {
            let s = r.await?;
            all.msgs.extend(s.msgs);
            all.presences.extend(s.presences);
        }
        for (_, wr) in &mut self.writers {
            let _ = wr.write_all(b"</stream:stream>").await;
        }
        all.msgs.sort_unstable();
        all.presences.sort_unstable();
        Ok(all)
    }
}
