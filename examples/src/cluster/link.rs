//! The NATS link between nodes: stanzas to the node serving their recipient, acknowledged after its commit,
//! and placement changes broadcast to every node.
//!
//! Subjects (one NATS server or cluster per presenced cluster):
//! - `presenced.node.<name>`: stanzas for users served by node `<name>` ([`super::wire`] frames). A message
//!   carries a reply subject; the receiving node answers `+` once the message is delivered or held (committed)
//!   and `-` when it could not take it. A message with no answer within [`ACK_TIMEOUT`], an answer `-`, or
//!   NATS's "no responders" (the node is gone) comes back to its sender as an error: it is never dropped
//!   silently, even when the node dies with it in flight. Presence and subscriptions acknowledge nothing.
//! - `presenced.placement`: "these users are now served by that node", from the node that moved them.
//!
//! Everything for one node leaves through one task in the order the engine emitted it, and NATS keeps the
//! order of one connection's publications, so per sender and recipient the order holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use presence_core::BareJid;
use presence_core::message::MessageKind;
use presence_core::runtime::Location;
use presence_core::stanza::{ErrorCondition, Stanza};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::placement::{Diff, Placement};
use super::wire::{self, Frame};
use presence_core::engine::RoomTraffic;

/// How long a node has to acknowledge a message before its sender is told it was not delivered.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages awaiting acknowledgement at most; past it, new ones bounce at once.
const MAX_PENDING: usize = 65_536;
/// Stanzas waiting for the forwarder (the engine never blocks on the link).
pub const OUTBOUND_QUEUE: usize = 65_536;

/// The subject of node `name`'s stanzas.
pub fn node_subject(name: &str) -> String {
    format!("presenced.node.{name}")
}

/// The subject of placement broadcasts.
pub const PLACEMENT_SUBJECT: &str = "presenced.placement";

/// Sends what the engine routes to other nodes; runs until the engine's side of `outbound` is gone.
pub async fn forward(
    client: async_nats::Client,
    placement: Arc<Placement>,
    mut outbound: mpsc::Receiver<Frame>,
) {
    let inbox = client.new_inbox();
    let mut acks = match client.subscribe(format!("{inbox}.*")).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot subscribe to acknowledgements: cross-node messages will bounce");
            while let Some(frame) = outbound.recv().await {
                placement.bounce_frame(frame, ErrorCondition::RecipientUnavailable, NOT_CARRIED);
            }
            return;
        }
    };
    let mut pending: HashMap<u64, (Instant, Frame)> = HashMap::new();
    let mut next_id = 0u64;
    let mut sweep = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            frame = outbound.recv() => {
                let Some(frame) = frame else { return };
                next_id += 1;
                send(&client, &placement, &inbox, next_id, frame, &mut pending).await;
            }
            Some(ack) = acks.next() => {
                let id = ack.subject.rsplit('.').next().and_then(|s| s.parse::<u64>().ok());
                let Some((_, frame)) = id.and_then(|id| pending.remove(&id)) else { continue };
                debug!(status = ?ack.status, payload = ?ack.payload, "acknowledgement");
                if ack.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                    placement.bounce_frame(frame, ErrorCondition::RecipientUnavailable, NODE_GONE);
                } else if ack.payload.as_ref() != b"+" {
                    placement.bounce_frame(frame, ErrorCondition::RecipientUnavailable, NOT_TAKEN);
                }
            }
            _ = sweep.tick() => {
                let now = Instant::now();
                let expired: Vec<u64> = pending
                    .iter()
                    .filter(|(_, (at, _))| now.duration_since(*at) >= ACK_TIMEOUT)
                    .map(|(id, _)| *id)
                    .collect();
                for id in expired {
                    if let Some((_, frame)) = pending.remove(&id) {
                        placement.bounce_frame(frame, ErrorCondition::RecipientUnavailable, NO_ANSWER);
                    }
                }
            }
        }
    }
}

const NOT_CARRIED: &str = "the recipient's node cannot be reached; try again later";
const NODE_GONE: &str = "the recipient's node is not running; try again shortly";
const NOT_TAKEN: &str = "the recipient's node could not take the message; try again shortly";
const NO_ANSWER: &str =
    "the recipient's node did not confirm the message; it may not have been delivered";
const NOBODY: &str = "no node serves the recipient right now; try again shortly";

async fn send(
    client: &async_nats::Client,
    placement: &Arc<Placement>,
    inbox: &str,
    id: u64,
    frame: Frame,
    pending: &mut HashMap<u64, (Instant, Frame)>,
) {
    use presence_core::runtime::Cluster;
    let location = match &frame {
        Frame::Stanza(stanza) => {
            let Some(to) = presence_core::runtime::cluster::recipient(stanza) else {
                return;
            };
            placement.locate(to)
        }
        Frame::Room(traffic) => placement.locate_traffic(traffic),
    };
    match location {
        // Placement changed since the engine routed it: it is ours now.
        Location::Here => {
            let Some(handle) = placement.handle() else {
                return;
            };
            let taken = match &frame {
                Frame::Stanza(stanza) => handle.submit_remote(stanza.clone(), |_| ()),
                Frame::Room(traffic) => handle.submit_remote_room(traffic.clone(), |_| ()),
            };
            if let Err(e) = taken {
                debug!(error = %e, "engine busy for a stanza that came back");
                placement.bounce_frame(frame, ErrorCondition::ResourceConstraint, NOT_TAKEN);
            }
        }
        Location::Nowhere => {
            placement.bounce_frame(frame, ErrorCondition::RecipientUnavailable, NOBODY)
        }
        Location::Node(node) => {
            let subject = node_subject(&node.name);
            let payload = match &frame {
                Frame::Stanza(stanza) => match wire::encode(stanza) {
                    Ok(frame) => Bytes::from(frame),
                    Err(e) => {
                        return debug!(error = %e, "a stanza that stays on its node was routed");
                    }
                },
                Frame::Room(traffic) => Bytes::from(wire::encode_room(traffic)),
            };
            // Messages and room requests are acknowledged, so they never vanish and an IQ never hangs; presence,
            // subscriptions, errors and room stanzas toward occupants acknowledge nothing.
            let acknowledged = match &frame {
                Frame::Stanza(Stanza::Message { message, .. }) => {
                    message.kind != MessageKind::Error
                }
                Frame::Room(RoomTraffic::Request { .. }) => true,
                _ => false,
            };
            if !acknowledged {
                if let Err(e) = client.publish(subject, payload).await {
                    debug!(error = %e, "a stanza for another node was not sent");
                }
                return;
            }
            if pending.len() >= MAX_PENDING {
                return placement.bounce_frame(
                    frame,
                    ErrorCondition::ResourceConstraint,
                    NOT_TAKEN,
                );
            }
            match client
                .publish_with_reply(subject, format!("{inbox}.{id}"), payload)
                .await
            {
                Ok(()) => {
                    pending.insert(id, (Instant::now(), frame));
                }
                Err(e) => {
                    debug!(error = %e, "a message for another node was not sent");
                    placement.bounce_frame(
                        frame,
                        ErrorCondition::RecipientUnavailable,
                        NOT_CARRIED,
                    );
                }
            }
        }
    }
}

/// Takes the stanzas other nodes send to this one into the engine, acknowledging messages after their commit.
pub async fn receive(
    client: async_nats::Client,
    placement: Arc<Placement>,
    mut sub: async_nats::Subscriber,
) {
    let rt = tokio::runtime::Handle::current();
    while let Some(msg) = sub.next().await {
        let reply = msg.reply.clone();
        let (client2, rt2) = (client.clone(), rt.clone());
        let answer = move |ok: bool| {
            if let Some(reply) = reply.clone() {
                let client = client2.clone();
                rt2.spawn(async move {
                    let body: &'static [u8] = if ok { b"+" } else { b"-" };
                    let _ = client.publish(reply, Bytes::from_static(body)).await;
                });
            }
        };
        let stanza = match wire::decode_frame(&msg.payload) {
            Ok(Frame::Stanza(s)) => s,
            Ok(Frame::Room(traffic)) => {
                // The room must be served here; a sender with a stale view hears "not taken" and its request
                // is answered with an error, so the client tries again.
                let here = matches!(placement.locate_traffic(&traffic), Location::Here);
                match placement.handle() {
                    Some(handle) if here => {
                        if handle.submit_remote_room(traffic, answer.clone()).is_err() {
                            answer(false);
                        }
                    }
                    _ => answer(false),
                }
                continue;
            }
            Err(e) => {
                warn!(error = %e, "an unreadable frame from another node");
                answer(false);
                continue;
            }
        };
        let here = presence_core::runtime::cluster::recipient(&stanza).is_some_and(|to| {
            matches!(
                presence_core::runtime::Cluster::locate(placement.as_ref(), to),
                Location::Here
            )
        });
        if !here {
            // The sender's view is stale (the user moved on); it bounces and its sender tries again.
            answer(false);
            continue;
        }
        let Some(handle) = placement.handle() else {
            answer(false);
            continue;
        };
        if handle.submit_remote(stanza, answer.clone()).is_err() {
            answer(false);
        }
    }
}

/// Why users changed node, as a placement broadcast says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// The node serving them now took them over (failover, fallback); their home is unchanged.
    Claim,
    /// A rebalance gave them a new home, which serves them.
    Rehome,
}

impl Move {
    fn word(self) -> &'static str {
        match self {
            Move::Claim => "claim",
            Move::Rehome => "rehome",
        }
    }
}

/// Tells every node that `users` are now served by `host`: `<claim|rehome> <host>` then one user per line.
pub async fn broadcast(client: &async_nats::Client, users: &[BareJid], host: &str, kind: Move) {
    for chunk in users.chunks(2_000) {
        let body = broadcast_body(kind, host, chunk);
        if let Err(e) = client.publish(PLACEMENT_SUBJECT, Bytes::from(body)).await {
            warn!(error = %e, "a placement broadcast was not sent; peers catch up at their next reload");
        }
    }
    let _ = client.flush().await;
}

fn broadcast_body(kind: Move, host: &str, users: &[BareJid]) -> String {
    let mut body = String::with_capacity(host.len() + 8 + users.len() * 24);
    body.push_str(kind.word());
    body.push(' ');
    body.push_str(host);
    for u in users {
        body.push('\n');
        body.push_str(u.as_str());
    }
    body
}

/// Reads a placement broadcast: why, the host and its users.
pub fn read_broadcast(payload: &[u8]) -> Option<(Move, String, Vec<BareJid>)> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut lines = text.split('\n');
    let (kind, host) = lines.next()?.split_once(' ')?;
    let kind = [Move::Claim, Move::Rehome]
        .into_iter()
        .find(|m| m.word() == kind)?;
    let users = lines.filter_map(|l| BareJid::new(l).ok()).collect();
    Some((kind, host.to_owned(), users))
}

/// Hands a placement change to the engine.
pub fn apply(placement: &Placement, diff: &Diff) {
    let Some(handle) = placement.handle() else {
        return;
    };
    if !diff.left.is_empty() {
        handle.rehome(diff.left.clone(), false);
    }
    if !diff.arrived.is_empty() {
        handle.rehome(diff.arrived.clone(), true);
    }
    // Rooms follow their home node's users, so any move may change whose rooms this node serves.
    if let Some((nodes, served)) = placement.room_placement() {
        tracing::info!(?served, "this node serves the rooms of these homes");
        handle.room_placement(nodes, served);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_broadcasts_read_back_what_they_say() {
        let users = [
            BareJid::new("alice@example.com").unwrap(),
            BareJid::new("bob@example.com").unwrap(),
        ];
        for kind in [Move::Claim, Move::Rehome] {
            let body = broadcast_body(kind, "b", &users);
            assert_eq!(
                read_broadcast(body.as_bytes()),
                Some((kind, "b".to_owned(), users.to_vec()))
            );
        }
        assert_eq!(read_broadcast(b"b\nalice@example.com"), None, "no kind");
        assert_eq!(read_broadcast(b"steal b\nalice@example.com"), None);
    }
}
