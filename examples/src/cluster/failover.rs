//! The live failover manager of one node of a redundancy pair: the core's [`FailoverNode`] over real signals.
//!
//! Heartbeats and announcements travel over NATS ([`super::peer`]); the critical services watched are the
//! cluster database (PostgreSQL) and the NATS link itself; user moves are one `UPDATE` per batch in
//! PostgreSQL, applied to this node's engine and broadcast to the others; state changes are persisted for
//! `presenced cluster status` and for the next start.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use presence_core::BareJid;
use presence_core::assignment::UserId;
use presence_core::failover::{
    self, AdminCommand, CriticalService, FailoverNode, Input, Output, PeerMessage,
};
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::{info, warn};

use super::db::Db;
use super::link;
use super::peer;
use super::placement::Placement;

/// What the rest of the node tells its failover manager.
pub enum Event {
    /// The peer took these users (seen in a placement broadcast or reload).
    Claimed(Vec<BareJid>),
    /// An administrator's command, answered with the refusal if any.
    Admin(AdminCommand, oneshot::Sender<Result<(), String>>),
    /// The node is stopping: say goodbye to the peer, then answer.
    Shutdown(oneshot::Sender<()>),
    /// The assignment changed (see `failover::Input::Homes`).
    Homes {
        own: Vec<UserId>,
        peer: Vec<UserId>,
        hosted: Vec<UserId>,
    },
}

/// Everything the manager needs from its node.
pub struct Pair {
    pub node: FailoverNode,
    pub group: String,
    pub me: String,
    pub peer: String,
    pub client: async_nats::Client,
    pub db: Arc<Db>,
    pub placement: Arc<Placement>,
    /// Held while placement is read from or written to the database, so a reload never undoes a move.
    pub placement_lock: Arc<Mutex<()>>,
    pub config: failover::Config,
}

/// Runs the manager until the node shuts down.
pub async fn run(mut pair: Pair, mut events: mpsc::Receiver<Event>) {
    let mut from_peer = match pair
        .client
        .subscribe(peer::subject(&pair.group, &pair.me))
        .await
    {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot hear the peer: failover is off on this node");
            return;
        }
    };
    let to_peer = peer::subject(&pair.group, &pair.peer);
    let mut health = tokio::time::interval(
        (pair.config.heartbeat_interval / 2).max(std::time::Duration::from_millis(100)),
    );
    let mut down: Vec<CriticalService> = Vec::new();
    loop {
        drain(&mut pair, &to_peer).await;
        let wake = pair.node.poll_timeout();
        tokio::select! {
            _ = sleep_until(wake) => pair.node.handle_timeout(Instant::now()),
            msg = from_peer.next() => {
                let Some(msg) = msg else { return };
                match peer::decode(&msg.payload) {
                    Some(m) => pair.node.handle(Instant::now(), Input::FromPeer(m)),
                    None => warn!("an unreadable message from the failover peer"),
                }
            }
            ev = events.recv() => match ev {
                None => return,
                Some(Event::Claimed(users)) => {
                    let users = users.iter().filter_map(|u| UserId::new(u.as_str()).ok()).collect();
                    pair.node.handle(Instant::now(), Input::UsersClaimedByPeer(users));
                }
                Some(Event::Homes { own, peer, hosted }) => {
                    pair.node.handle(Instant::now(), Input::Homes { own, peer, hosted });
                }
                Some(Event::Admin(cmd, reply)) => {
                    let result = pair.node.admin(Instant::now(), cmd).map_err(|r| r.to_string());
                    let _ = reply.send(result);
                }
                Some(Event::Shutdown(done)) => {
                    pair.node.handle(Instant::now(), Input::Shutdown);
                    drain(&mut pair, &to_peer).await;
                    let _ = pair.client.flush().await;
                    let _ = done.send(());
                    return;
                }
            },
            _ = health.tick() => {
                let now_down = check_services(&pair).await;
                for s in &now_down {
                    if !down.contains(s) {
                        warn!(service = ?s, "critical service down");
                        pair.node.handle(Instant::now(), Input::ServiceDown(*s));
                    }
                }
                for s in &down {
                    if !now_down.contains(s) {
                        info!(service = ?s, "critical service up again");
                        pair.node.handle(Instant::now(), Input::ServiceUp(*s));
                    }
                }
                down = now_down;
            }
        }
    }
}

async fn check_services(pair: &Pair) -> Vec<CriticalService> {
    let mut down = Vec::new();
    if !pair.db.ping().await {
        down.push(CriticalService::Database);
    }
    if pair.client.connection_state() != async_nats::connection::State::Connected {
        down.push(CriticalService::Router);
    }
    down
}

/// Carries out what the manager asked for.
async fn drain(pair: &mut Pair, to_peer: &str) {
    while let Some(out) = pair.node.poll_output() {
        match out {
            Output::ToPeer(m) => {
                let flush = matches!(m, PeerMessage::Goodbye { .. });
                let _ = pair
                    .client
                    .publish(to_peer.to_owned(), peer::encode(&m).into())
                    .await;
                if flush {
                    let _ = pair.client.flush().await;
                }
            }
            Output::StateChanged(c) => {
                info!(from = %c.from, to = %c.to, reason = %c.reason, "failover state changed");
                if let Err(e) = pair
                    .db
                    .record_state(&pair.me, &c.to.to_string(), &c.reason.to_string())
                    .await
                {
                    warn!(error = %e, "the failover state could not be recorded");
                }
            }
            // The listeners stay up: clients of a node that serves nobody are sent to their users' node.
            Output::StopCriticalServices => info!("critical services stop (manual failover)"),
            Output::StartCriticalServices => pair
                .node
                .handle(Instant::now(), Input::CriticalServicesStarted),
            Output::MoveUsers(batch) => {
                let users: Vec<String> =
                    batch.users.iter().map(|u| u.as_str().to_owned()).collect();
                let jids: Vec<BareJid> =
                    users.iter().filter_map(|u| BareJid::new(u).ok()).collect();
                let guard = pair.placement_lock.lock().await;
                let input = match pair.db.host(&users, &pair.me).await {
                    Ok(()) => {
                        let diff = pair.placement.update(&jids, Some(&pair.me));
                        link::apply(&pair.placement, &diff);
                        drop(guard);
                        link::broadcast(&pair.client, &jids, &pair.me).await;
                        info!(users = users.len(), "users moved onto this node");
                        Input::MoveSucceeded(batch.id)
                    }
                    Err(e) => {
                        drop(guard);
                        warn!(error = %e, users = users.len(), "a batch of users could not be moved");
                        Input::MoveFailed(batch.id)
                    }
                };
                pair.node.handle(Instant::now(), input);
            }
            // Sessions of users the peer claimed were ended when the placement changed (see `link::apply`).
            Output::EndSessions(hints) => info!(
                users = hints.len(),
                "sessions ended for users served elsewhere now"
            ),
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
