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
use presence_core::{Engine, FullJid, Input, Jid, Output, SessionId};
use tokio::sync::mpsc;

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
}

/// The connections the hub delivers to, by session and by bound address.
#[derive(Default)]
struct Directory {
    conns: HashMap<SessionId, mpsc::UnboundedSender<ToConn>>,
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
            .is_some_and(|tx| tx.send(msg).is_err());
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
            dir.conns.insert(session, tx);
        }
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
            Output::ContactsAdded { .. } => {}
            // Watches are the SIP shell's; this hub never opens one.
            Output::Watch { .. } => {}
        }
    }
    commit(store, &mut writes);
    for (session, msg) in deliveries {
        dir.send(session, msg);
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
