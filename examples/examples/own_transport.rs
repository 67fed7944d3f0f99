//! Embedding the engine with its tokio runtime, your own store and your own transport: a line protocol over TCP.
//!
//! Run with `cargo run -p examples --example own_transport`. It listens on 127.0.0.1 (a free port), connects two
//! clients of its own, lets them chat, prints what each one reads and exits. Point `nc` at the printed port
//! instead to try it by hand (`LOGIN alice`, `SAY bob hello`, `AWAY`, `BACK`).
//!
//! What it shows, all from `presence_core::runtime`'s docs:
//! - `runtime::spawn` with a `Store` of your own (here: the memory store behind a commit counter, through
//!   `store::Layer`; a database of yours implements the four store traits and passes `store::conformance`);
//! - one `Handle` for the transport: `new_session`, a bounded `session_channel` per connection, `attach`, `submit`
//!   (refused with `SubmitError::Busy` when the engine is saturated), `close`;
//! - the deliveries (`ToSession`) turned back into your wire format;
//! - `shutdown`, which commits what is pending and ends every session.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use presence_core::compose::{EndpointPresence, Show};
use presence_core::message::{Message, MessageKind};
use presence_core::roster::SubscriptionAction;
use presence_core::runtime::{self, Handle, RuntimeConfig, ToSession};
use presence_core::stanza::{PresenceKind, Stanza};
use presence_core::store::{
    Account, AccountStore, Layer, MemoryStore, Store, StoreError, StoreWrite,
};
use presence_core::{BareJid, Engine, EngineConfig, Input, Jid};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const DOMAIN: &str = "example.com";

/// Your store: here the memory store, counting the group commits the runtime makes.
#[derive(Default)]
struct CountingStore {
    inner: MemoryStore,
    commits: AtomicUsize,
}

/// The runtime calls `apply` once per batch: make it one transaction in your database. (`Layer` forwards every
/// other store method to `inner`; implement the four store traits directly for a store of your own from scratch.)
impl Layer for CountingStore {
    type Inner = MemoryStore;

    fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    fn commit(&self, writes: &[StoreWrite]) -> Result<(), StoreError> {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.inner.apply(writes)
    }
}

fn user(local: &str) -> Option<BareJid> {
    BareJid::from_parts(Some(local), DOMAIN).ok()
}

/// One connection of the line protocol.
async fn serve(stream: TcpStream, hub: Handle) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd).lines();
    let mut session = None;
    // Deliveries for this connection, at most 64 or 64 KiB waiting: past that the runtime ends the session.
    let (sink, mut rx) = runtime::session_channel(64, 64 * 1024);
    let mut sink = Some(sink);
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let mut words = line.splitn(3, ' ');
                let reply = match (words.next(), words.next(), words.next(), session) {
                    (Some("LOGIN"), Some(name), None, None) => match (user(name), sink.take()) {
                        (Some(me), Some(s)) => {
                            let id = hub.new_session();
                            hub.attach(id, s).ok();
                            session = Some(id);
                            hub.submit(Input::OpenSession { session: id, user: me, resource: Some("line".into()) })
                                .map(|()| None)
                                .unwrap_or_else(|e| Some(format!("ERR {e}")))
                        }
                        _ => Some("ERR bad name".to_owned()),
                    },
                    (Some("SAY"), Some(to), Some(text), Some(id)) => match user(to) {
                        Some(to) => {
                            let message = Message {
                                kind: MessageKind::Chat,
                                body: Some(text.to_owned()),
                                stamp: runtime::timestamp(),
                                ..Message::default()
                            };
                            hub.submit(Input::Message { session: id, to: Jid::Bare(to), message })
                                .err()
                                .map(|e| format!("ERR {e}"))
                        }
                        None => Some("ERR bad name".to_owned()),
                    },
                    (Some(cmd @ ("AWAY" | "BACK")), None, None, Some(id)) => {
                        let show = if cmd == "AWAY" { Show::Away } else { Show::Available };
                        let presence = EndpointPresence { show, ..EndpointPresence::default() };
                        hub.submit(Input::Presence { session: id, to: None, presence: Some(presence) })
                            .err()
                            .map(|e| format!("ERR {e}"))
                    }
                    // Subscribing adds the contact too (RFC 6121 §3.1.2); automatic authorization approves it.
                    (Some("ADD"), Some(contact), None, Some(id)) => match user(contact) {
                        Some(to) => {
                            hub.submit(Input::Subscription { session: id, to, action: SubscriptionAction::Subscribe })
                                .err()
                                .map(|e| format!("ERR {e}"))
                        }
                        None => Some("ERR bad name".to_owned()),
                    },
                    _ => Some("ERR say LOGIN name, SAY name text, ADD name, AWAY or BACK".to_owned()),
                };
                if let Some(r) = reply {
                    wr.write_all(format!("{r}\n").as_bytes()).await?;
                }
            }
            msg = rx.recv(), if session.is_some() => {
                let text = match msg {
                    Some(ToSession::Bound(jid)) => format!("OK you are {jid}"),
                    Some(ToSession::Stanza(Stanza::Message { from, message, .. })) => {
                        format!("FROM {from} {}", message.body.unwrap_or_default())
                    }
                    Some(ToSession::Stanza(Stanza::Presence { from, kind, .. })) => match kind {
                        PresenceKind::Available(v) => format!("PRESENCE {from} {:?}", v.show),
                        PresenceKind::Unavailable => format!("PRESENCE {from} offline"),
                        PresenceKind::Probe => continue,
                    },
                    Some(ToSession::Stanza(Stanza::Error(e))) => format!("ERR {:?}", e.condition),
                    Some(ToSession::Stanza(_)) | Some(ToSession::Flushed { .. }) => continue,
                    Some(ToSession::BindRefused(e)) => format!("ERR {e}"),
                    Some(ToSession::Closed(why)) => {
                        wr.write_all(format!("BYE {why:?}\n").as_bytes()).await?;
                        session = None;
                        break;
                    }
                    None => break,
                };
                wr.write_all(format!("{text}\n").as_bytes()).await?;
            }
        }
    }
    if let Some(id) = session {
        hub.close(id);
    }
    Ok(())
}

/// A client of the line protocol: logs in as `name`, waits until bound (input for a session that is not bound
/// yet is dropped by the engine), sends `lines`, then reads until it has seen `until`.
async fn client(port: u16, name: &str, lines: &[&str], until: &str) -> std::io::Result<()> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd).lines();
    wr.write_all(format!("LOGIN {name}\n").as_bytes()).await?;
    while let Some(line) = rd.next_line().await? {
        println!("{name:>5} reads: {line}");
        if line.starts_with("OK") {
            break;
        }
    }
    for l in lines {
        wr.write_all(format!("{l}\n").as_bytes()).await?;
    }
    while let Some(line) = rd.next_line().await? {
        println!("{name:>5} reads: {line}");
        if line.contains(until) {
            break;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(CountingStore::default());
    for name in ["alice", "bob"] {
        let jid = user(name).ok_or("bad name")?;
        store.put_account(&Account {
            jid,
            credentials: vec![],
            digest: vec![],
        })?;
    }
    let engine = Engine::new(EngineConfig::for_domain(DOMAIN));
    let rt = runtime::spawn(engine, store.clone(), RuntimeConfig::default())?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    println!("listening on 127.0.0.1:{port}");
    let hub = rt.handle();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, hub.clone()));
        }
    });

    // Bob is online first; Alice adds him (automatic authorization approves), comes online and says hello.
    let bob = tokio::spawn(client(port, "bob", &["BACK"], "FROM alice@example.com"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    client(
        port,
        "alice",
        &[
            "ADD bob",
            "BACK",
            "SAY bob hello from a transport of my own",
        ],
        "PRESENCE bob@example.com",
    )
    .await?;
    tokio::time::timeout(std::time::Duration::from_secs(10), bob).await???;
    rt.shutdown().await;
    println!("store commits: {}", store.commits.load(Ordering::Relaxed));
    Ok(())
}
