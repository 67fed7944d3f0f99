//! The one thread that owns the engine and the store: it feeds the engine what connections send, answers its
//! loads, makes its writes durable in groups, and hands deliveries to the connections.
//!
//! The engine is single-threaded by design (DESIGN §1); store calls block, so the hub runs on its own OS thread
//! with a current-thread runtime instead of on the I/O workers. Writes produced by everything waiting in the queue
//! are committed in one transaction before any delivery that depends on them goes out (group commit).

use std::sync::Arc;
use std::time::Instant;

use hashbrown::HashMap;
use presence_core::engine::{BindError, CloseReason};
use presence_core::message::MessageKind;
use presence_core::stanza::{ErrorAbout, ErrorCondition, Stanza, StanzaError};
use presence_core::store::{Store, StoreWrite};
use presence_core::{Engine, FullJid, Input, Jid, Output, SessionId, WatchId, WatchState};
use tokio::sync::mpsc;

/// How the shells reach the hub: every shell (XMPP, SIP) of one process holds a clone, so all of them feed one
/// engine (DESIGN §1: one model, two protocols).
pub type HubHandle = mpsc::UnboundedSender<HubMsg>;

/// Starts the hub on its own thread and returns the handle shells send to. The thread ends when every handle is
/// dropped.
pub fn spawn<S: Store + Send + Sync + 'static>(
    engine: Engine,
    store: Arc<S>,
) -> std::io::Result<HubHandle> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("presence-engine".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a current-thread runtime builds");
            rt.block_on(run(engine, store, rx));
        })?;
    Ok(tx)
}

/// Messages to the hub.
// Nearly every message is an input; boxing it would add an allocation per stanza to spare a rare attach.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum HubMsg {
    /// A connection is about to bind `session`; deliveries for it go to `tx`.
    Attach {
        /// The session.
        session: SessionId,
        /// Where its deliveries go.
        tx: mpsc::UnboundedSender<ToConn>,
    },
    /// Like `Attach`, for a shell that multiplexes many sessions over one channel (the SIP service): deliveries
    /// arrive tagged with their session.
    AttachShared {
        /// The session.
        session: SessionId,
        /// Where its deliveries go.
        tx: mpsc::UnboundedSender<(SessionId, ToConn)>,
    },
    /// Where the engine's watch updates go (one sink per process: the SIP service owns every watch).
    Watches(mpsc::UnboundedSender<(WatchId, WatchState)>),
    /// Answer `ToConn::Flushed(token)` to `session` once everything queued before this has been processed,
    /// committed and delivered, so a shell learns the outcome of what it sent (a SIP MESSAGE's final response).
    Flush {
        /// Who to tell.
        session: SessionId,
        /// Echoed back.
        token: u64,
    },
    /// An input for the engine.
    Input(Input),
}

/// Messages from the hub to one connection.
#[derive(Debug)]
pub enum ToConn {
    /// The session is bound to this address.
    Bound(FullJid),
    /// The bind was refused.
    BindRefused(BindError),
    /// A stanza to write.
    Stanza(Stanza),
    /// The engine ended the session.
    Close(CloseReason),
    /// Everything sent before the matching `HubMsg::Flush` has been handled.
    Flushed(u64),
}

/// Where one session's deliveries go.
enum Sink {
    /// A connection's own channel.
    Conn(mpsc::UnboundedSender<ToConn>),
    /// A channel shared by many sessions.
    Shared(mpsc::UnboundedSender<(SessionId, ToConn)>),
}

impl Sink {
    /// Hands over a message; `false` when the receiver is gone.
    fn send(&self, session: SessionId, msg: ToConn) -> bool {
        match self {
            Sink::Conn(tx) => tx.send(msg).is_ok(),
            Sink::Shared(tx) => tx.send((session, msg)).is_ok(),
        }
    }
}

/// The connections the hub delivers to, by session and by bound address.
#[derive(Default)]
struct Directory {
    conns: HashMap<SessionId, Sink>,
    watches: Option<mpsc::UnboundedSender<(WatchId, WatchState)>>,
    flushes: Vec<(SessionId, u64)>,
    jids: HashMap<SessionId, FullJid>,
    by_jid: HashMap<FullJid, SessionId>,
}

impl Directory {
    fn bound(&mut self, session: SessionId, jid: FullJid) {
        self.by_jid.insert(jid.clone(), session);
        self.jids.insert(session, jid);
    }

    fn forget(&mut self, session: SessionId) {
        self.conns.remove(&session);
        if let Some(jid) = self.jids.remove(&session)
            && self.by_jid.get(&jid) == Some(&session)
        {
            self.by_jid.remove(&jid);
        }
    }

    fn send(&mut self, session: SessionId, msg: ToConn) {
        let ends = matches!(msg, ToConn::Close(_) | ToConn::BindRefused(_));
        let gone = self
            .conns
            .get(&session)
            .is_some_and(|sink| !sink.send(session, msg));
        if ends || gone {
            self.forget(session);
        }
    }
}

/// How many queued messages the hub takes before committing and delivering.
const BATCH: usize = 512;

/// Runs the hub until every sender is gone.
pub async fn run<S: Store + Send + Sync + 'static>(
    mut engine: Engine,
    store: Arc<S>,
    mut rx: mpsc::UnboundedReceiver<HubMsg>,
) {
    let mut dir = Directory::default();
    loop {
        let wake = engine.poll_timeout();
        tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                let now = Instant::now();
                take(&mut engine, &mut dir, msg, now);
                for _ in 1..BATCH {
                    match rx.try_recv() {
                        Ok(msg) => take(&mut engine, &mut dir, msg, now),
                        Err(_) => break,
                    }
                    // Outputs are drained between inputs only when a load needs answering; see `drain`.
                }
            }
            _ = sleep_until(wake), if wake.is_some() => engine.handle_timeout(Instant::now()),
        }
        drain(&mut engine, store.as_ref(), &mut dir);
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

fn take(engine: &mut Engine, dir: &mut Directory, msg: HubMsg, now: Instant) {
    match msg {
        HubMsg::Attach { session, tx } => {
            dir.conns.insert(session, Sink::Conn(tx));
        }
        HubMsg::AttachShared { session, tx } => {
            dir.conns.insert(session, Sink::Shared(tx));
        }
        HubMsg::Watches(tx) => dir.watches = Some(tx),
        HubMsg::Flush { session, token } => dir.flushes.push((session, token)),
        HubMsg::Input(input) => {
            // The connection is gone: nothing more is delivered to it, whatever the engine says on its way out.
            if let Input::CloseSession { session } = &input {
                dir.forget(*session);
            }
            engine.handle(now, input)
        }
    }
}

/// Carries out everything the engine asked for: loads at once, writes in one group, then deliveries.
fn drain<S: Store>(engine: &mut Engine, store: &S, dir: &mut Directory) {
    let mut writes: Vec<StoreWrite> = Vec::new();
    let mut deliveries: Vec<(SessionId, ToConn)> = Vec::new();
    let mut watch_updates: Vec<(WatchId, WatchState)> = Vec::new();
    while let Some(out) = engine.poll_output() {
        match out {
            Output::Load(user) => {
                // Earlier writes must be visible to the load (the engine relies on that ordering).
                commit(store, &mut writes);
                let record = match store.load_user(&user) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("presenced: loading {user} failed: {e}");
                        None
                    }
                };
                engine.handle(Instant::now(), Input::Loaded { user, record });
            }
            Output::Store(w) => writes.push(w),
            Output::Deliver { session, stanza } => {
                deliveries.push((session, ToConn::Stanza(stanza)))
            }
            Output::Bound { session, jid } => {
                dir.bound(session, jid.clone());
                deliveries.push((session, ToConn::Bound(jid)));
            }
            Output::BindRefused { session, reason } => {
                deliveries.push((session, ToConn::BindRefused(reason)))
            }
            Output::Close { session, reason } => deliveries.push((session, ToConn::Close(reason))),
            Output::Route(stanza) => {
                if let Some((session, error)) = unroutable(&stanza, &dir.by_jid) {
                    deliveries.push((session, ToConn::Stanza(Stanza::Error(error))));
                }
            }
            Output::Watch { watch, state } => {
                watch_updates.push((watch, state));
            }
            Output::ContactsAdded { .. } => {}
        }
    }
    commit(store, &mut writes);
    for (session, msg) in deliveries {
        dir.send(session, msg);
    }
    if let Some(tx) = &dir.watches {
        for update in watch_updates {
            // The SIP service is gone only at shutdown; nothing is left to tell then.
            let _ = tx.send(update);
        }
    }
    for (session, token) in std::mem::take(&mut dir.flushes) {
        dir.send(session, ToConn::Flushed(token));
    }
}

fn commit<S: Store>(store: &S, writes: &mut Vec<StoreWrite>) {
    if writes.is_empty() {
        return;
    }
    if let Err(e) = store.apply(writes) {
        // Nothing else can be done from here; the operator must see it.
        eprintln!("presenced: committing {} writes failed: {e}", writes.len());
    }
    writes.clear();
}

/// Federation is not served yet: a message for another domain bounces to its local sender, so it is never lost
/// silently (RFC 6120 §8.3.3.17 `remote-server-not-found`). Presence and subscriptions for other domains are
/// dropped, as a server whose peer is unreachable would.
fn unroutable(
    stanza: &Stanza,
    by_jid: &HashMap<FullJid, SessionId>,
) -> Option<(SessionId, StanzaError)> {
    let Stanza::Message {
        from: Jid::Full(from),
        to,
        message,
        ..
    } = stanza
    else {
        return None;
    };
    if message.kind == MessageKind::Error {
        return None;
    }
    let session = *by_jid.get(from)?;
    Some((
        session,
        StanzaError {
            to: Jid::Full(from.clone()),
            about: ErrorAbout::Message {
                id: message.id.clone(),
                to: to.clone(),
            },
            condition: ErrorCondition::RemoteServerNotFound,
            text: Some("this server does not federate with other domains yet".into()),
        },
    ))
}
