//! The live failover manager of one node of a redundancy pair: the core's [`FailoverNode`] over real signals.
//!
//! Heartbeats and announcements travel over NATS ([`super::peer`]); the critical services watched are the
//! cluster database (PostgreSQL, as Database), NATS and the XMPP listener (as Router) and the SIP service (as
//! SIP Proxy); user moves are one `UPDATE` per batch in
//! PostgreSQL, applied to this node's engine and broadcast to the others; state changes are persisted for
//! `presenced cluster status` and for the next start.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use presence_core::BareJid;
use presence_core::assignment::UserId;
use presence_core::failover::{
    AdminCommand, CriticalService, FailoverNode, Input, Output, PeerMessage,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::link;
use super::peer;

/// Which of the node's own services have stopped, as the server saw them (the database and NATS are checked
/// by the manager itself).
#[derive(Debug, Default)]
pub struct Health {
    /// The XMPP listener ended although nobody asked it to.
    pub xmpp_down: std::sync::atomic::AtomicBool,
    /// The SIP service ended although nobody asked it to.
    pub sip_down: std::sync::atomic::AtomicBool,
}

/// What the rest of the node tells its failover manager.
pub enum Event {
    /// The peer took these users (seen in a placement broadcast or reload).
    Claimed(Vec<BareJid>),
    /// An administrator's command, answered with the refusal if any.
    Admin(AdminCommand, oneshot::Sender<Result<(), String>>),
    /// The node is stopping: say goodbye to the peer, then answer.
    Shutdown(oneshot::Sender<()>),
    /// The assignment changed (see `failover::Input::Homes`).
    Homes(super::model::Homes),
}

/// Everything the manager needs from its node.
pub struct Pair {
    pub node: FailoverNode,
    /// The peer's name.
    pub peer: String,
    pub(crate) shared: super::Shared,
    pub health: Arc<Health>,
}

/// Runs the manager until the node shuts down.
pub async fn run(mut pair: Pair, mut events: mpsc::Receiver<Event>) {
    let mut from_peer = match pair
        .shared
        .client
        .subscribe(peer::subject(
            &pair.shared.config.group,
            &pair.shared.config.node,
        ))
        .await
    {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot hear the peer: failover is off on this node");
            return;
        }
    };
    let to_peer = peer::subject(&pair.shared.config.group, &pair.peer);
    let mut health = tokio::time::interval(
        (pair.shared.failover.heartbeat_interval / 2).max(std::time::Duration::from_millis(100)),
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
                Some(Event::Homes(h)) => {
                    let homes = Input::Homes { own: h.own, peer: h.peer, hosted: h.hosted };
                    pair.node.handle(Instant::now(), homes);
                }
                Some(Event::Admin(cmd, reply)) => {
                    let result = pair.node.admin(Instant::now(), cmd).map_err(|r| r.to_string());
                    let _ = reply.send(result);
                }
                Some(Event::Shutdown(done)) => {
                    pair.node.handle(Instant::now(), Input::Shutdown);
                    drain(&mut pair, &to_peer).await;
                    let _ = pair.shared.client.flush().await;
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
    if !pair.shared.db.ping().await {
        down.push(CriticalService::Database);
    }
    // The router: NATS between nodes, and the XMPP listener clients come through.
    if pair.shared.client.connection_state() != async_nats::connection::State::Connected
        || pair
            .health
            .xmpp_down
            .load(std::sync::atomic::Ordering::Acquire)
    {
        down.push(CriticalService::Router);
    }
    if pair
        .health
        .sip_down
        .load(std::sync::atomic::Ordering::Acquire)
    {
        down.push(CriticalService::SipProxy);
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
                    .shared
                    .client
                    .publish(to_peer.to_owned(), peer::encode(&m).into())
                    .await;
                if flush {
                    let _ = pair.shared.client.flush().await;
                }
            }
            Output::StateChanged(c) => {
                info!(from = %c.from, to = %c.to, reason = %c.reason, "failover state changed");
                if let Err(e) = pair
                    .shared
                    .db
                    .record_state(
                        &pair.shared.config.node,
                        &c.to.to_string(),
                        &c.reason.to_string(),
                    )
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
                let jids: Vec<BareJid> = batch
                    .users
                    .iter()
                    .filter_map(|u| BareJid::new(u.as_str()).ok())
                    .collect();
                let me = pair.shared.config.node.clone();
                let input = match pair.shared.place(&jids, &me, link::Move::Claim).await {
                    Ok(()) => {
                        info!(users = jids.len(), "users moved onto this node");
                        Input::MoveSucceeded(batch.id)
                    }
                    Err(e) => {
                        warn!(error = %e, users = jids.len(), "a batch of users could not be moved");
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
