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

use std::collections::{BTreeMap, VecDeque};
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
/// Messages awaiting acknowledgement or a retry at most; past it, new ones bounce at once.
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
///
/// A message the receiving node refused for sure (it answered `-`, or NATS says nobody listens on its subject)
/// was not taken there, so sending it again cannot duplicate it. It goes again where its recipient is served
/// then: at once when the placement has changed since (the user moved), else after [`RETRY_AFTER`], as while
/// a stopping node has ended its engine and its peer has not yet taken its users over. Only when that has
/// not worked within [`RETRY_WINDOW`] of its first sending does it bounce. A message that was not answered in
/// time may have been taken, so it bounces at once.
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
                placement.bounce_and_settle(
                    frame,
                    ErrorCondition::RecipientUnavailable,
                    NOT_CARRIED,
                );
            }
            return;
        }
    };
    let mut link = Link {
        client,
        placement,
        inbox,
        pending: BTreeMap::new(),
        retries: VecDeque::new(),
        next_id: 0,
    };
    let mut sweep = tokio::time::interval(RETRY_AFTER);
    loop {
        tokio::select! {
            frame = outbound.recv() => {
                let Some(frame) = frame else { return };
                link.send(frame, Instant::now()).await;
            }
            Some(ack) = acks.next() => {
                let id = ack.subject.rsplit('.').next().and_then(|s| s.parse::<u64>().ok());
                let Some(sent) = id.and_then(|id| link.pending.remove(&id)) else { continue };
                debug!(status = ?ack.status, payload = ?ack.payload, "acknowledgement");
                let refusal = if ack.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                    Some(NODE_GONE)
                } else if ack.payload.as_ref() != b"+" {
                    Some(NOT_TAKEN)
                } else {
                    None
                };
                match refusal {
                    None => link.placement.settled(),
                    Some(text) => link.refused(sent, text).await,
                }
            }
            _ = sweep.tick() => {
                let now = Instant::now();
                while link.retries.front().is_some_and(|(due, _)| *due <= now) {
                    let (_, sent) = link.retries.pop_front().expect("checked");
                    link.send(sent.frame, sent.since).await;
                }
                // Ids grow with sending time, so the unanswered past their time are the first ones: the sweep
                // reads only those, not every pending message ten times a second.
                while let Some(oldest) = link.pending.first_entry() {
                    if now.duration_since(oldest.get().at) < ACK_TIMEOUT {
                        break;
                    }
                    let sent = oldest.remove();
                    link.placement.bounce_and_settle(sent.frame, ErrorCondition::RecipientUnavailable, NO_ANSWER);
                }
            }
        }
    }
}

/// How long after a refusal a message whose recipient has not moved goes again.
const RETRY_AFTER: Duration = Duration::from_millis(100);
/// How long after its first sending a refused message may still go again.
const RETRY_WINDOW: Duration = ACK_TIMEOUT;

const NOT_CARRIED: &str = "the recipient's node cannot be reached; try again later";
const NODE_GONE: &str = "the recipient's node is not running; try again shortly";
const NOT_TAKEN: &str = "the recipient's node could not take the message; try again shortly";
const NO_ANSWER: &str =
    "the recipient's node did not confirm the message; it may not have been delivered";
const NOBODY: &str = "no node serves the recipient right now; try again shortly";

/// A message waiting for its node's answer.
struct Sent {
    at: Instant,
    frame: Frame,
    /// The node it went to.
    node: String,
    /// When it was first sent.
    since: Instant,
}

/// The forwarder's state: its NATS client, where answers come back, and what waits for one.
struct Link {
    client: async_nats::Client,
    placement: Arc<Placement>,
    inbox: String,
    /// By id: ids are given in sending order, so the first is the one waiting longest.
    pending: BTreeMap<u64, Sent>,
    /// Refused messages to send again, by when (in that order: each waits the same time).
    retries: VecDeque<(Instant, Sent)>,
    next_id: u64,
}

impl Link {
    /// Where the frame's recipient (or room) is served now.
    fn locate(&self, frame: &Frame) -> Option<Location> {
        use presence_core::runtime::Cluster;
        match frame {
            Frame::Stanza(stanza) => {
                let to = presence_core::runtime::cluster::recipient(stanza)?;
                Some(self.placement.locate(to))
            }
            Frame::Room(traffic) => Some(self.placement.locate_traffic(traffic)),
        }
    }

    /// A node refused `sent` for sure: send it where its recipient is served now, or bounce it.
    async fn refused(&mut self, sent: Sent, text: &'static str) {
        let now = Instant::now();
        if now.duration_since(sent.since) >= RETRY_WINDOW {
            return self.placement.bounce_and_settle(
                sent.frame,
                ErrorCondition::RecipientUnavailable,
                text,
            );
        }
        let moved = match self.locate(&sent.frame) {
            Some(Location::Node(node)) => node.name != sent.node,
            Some(Location::Here) | None => true,
            // Between placements (a user being taken over): it is served again shortly.
            Some(Location::Nowhere) => false,
        };
        if moved {
            debug!(from = %sent.node, "a refused message goes where its recipient moved");
            return self.send(sent.frame, sent.since).await;
        }
        self.retries.push_back((now + RETRY_AFTER, sent));
    }

    /// Sends one frame, first sent at `since`, where its recipient is served. Settles it unless it now waits
    /// for an answer.
    async fn send(&mut self, frame: Frame, since: Instant) {
        let placement = self.placement.clone();
        let Some(location) = self.locate(&frame) else {
            return placement.settled();
        };
        match location {
            // Placement changed since the engine routed it: it is ours now.
            Location::Here => {
                if let Some(handle) = placement.handle() {
                    let taken = match &frame {
                        Frame::Stanza(stanza) => handle.submit_remote(stanza.clone(), |_| ()),
                        Frame::Room(traffic) => handle.submit_remote_room(traffic.clone(), |_| ()),
                    };
                    if let Err(e) = taken {
                        debug!(error = %e, "engine busy for a stanza that came back");
                        placement.bounce_frame(
                            frame,
                            ErrorCondition::ResourceConstraint,
                            NOT_TAKEN,
                        );
                    }
                }
                placement.settled();
            }
            Location::Nowhere => {
                placement.bounce_and_settle(frame, ErrorCondition::RecipientUnavailable, NOBODY);
            }
            Location::Node(node) => {
                self.send_to(&node.name, frame, since).await;
            }
        }
    }

    async fn send_to(&mut self, node: &str, frame: Frame, since: Instant) {
        let placement = self.placement.clone();
        let subject = node_subject(node);
        let payload = match &frame {
            Frame::Stanza(stanza) => match wire::encode(stanza) {
                Ok(frame) => Bytes::from(frame),
                Err(e) => {
                    debug!(error = %e, "a stanza that stays on its node was routed");
                    return placement.settled();
                }
            },
            Frame::Room(traffic) => Bytes::from(wire::encode_room(traffic)),
        };
        // Messages and room requests are acknowledged, so they never vanish and an IQ never hangs; presence,
        // subscriptions, errors and room stanzas toward occupants acknowledge nothing.
        let acknowledged = match &frame {
            Frame::Stanza(Stanza::Message { message, .. }) => message.kind != MessageKind::Error,
            Frame::Room(RoomTraffic::Request { .. }) => true,
            _ => false,
        };
        if !acknowledged {
            if let Err(e) = self.client.publish(subject, payload).await {
                debug!(error = %e, "a stanza for another node was not sent");
            }
            return placement.settled();
        }
        if self.pending.len() + self.retries.len() >= MAX_PENDING {
            return placement.bounce_and_settle(
                frame,
                ErrorCondition::ResourceConstraint,
                NOT_TAKEN,
            );
        }
        self.next_id += 1;
        let id = self.next_id;
        match self
            .client
            .publish_with_reply(subject, format!("{}.{id}", self.inbox), payload)
            .await
        {
            Ok(()) => {
                self.pending.insert(
                    id,
                    Sent {
                        at: Instant::now(),
                        frame,
                        node: node.to_owned(),
                        since,
                    },
                );
            }
            Err(e) => {
                debug!(error = %e, "a message for another node was not sent");
                placement.bounce_and_settle(
                    frame,
                    ErrorCondition::RecipientUnavailable,
                    NOT_CARRIED,
                );
            }
        }
    }
}

/// Takes the stanzas other nodes send to this one into the engine, acknowledging messages after their commit.
/// When `stop` is notified, the subscription is drained: what NATS already delivered is still answered (the
/// engine has stopped by then, so it is refused) and the task ends when nothing more can come.
pub async fn receive(
    client: async_nats::Client,
    placement: Arc<Placement>,
    mut sub: async_nats::Subscriber,
    stop: Arc<tokio::sync::Notify>,
) {
    let rt = tokio::runtime::Handle::current();
    let mut stopping = false;
    loop {
        let msg = tokio::select! {
            msg = sub.next() => msg,
            _ = stop.notified(), if !stopping => {
                stopping = true;
                if let Err(e) = sub.drain().await {
                    return warn!(error = %e, "cannot stop taking stanzas from other nodes");
                }
                continue;
            }
        };
        let Some(msg) = msg else { return };
        let reply = Reply {
            to: msg.reply.clone(),
            client: client.clone(),
            placement: placement.clone(),
            rt: rt.clone(),
        };
        let stanza = match wire::decode_frame(&msg.payload) {
            Ok(Frame::Stanza(s)) => s,
            Ok(Frame::Room(traffic)) => {
                // The room must be served here; a sender with a stale view hears "not taken" and sends the
                // request again where the room is now.
                let here = matches!(placement.locate_traffic(&traffic), Location::Here);
                match placement.handle() {
                    Some(handle) if here => {
                        // Refused when the engine is busy or stopped: the dropped receipt answers `-`.
                        let _ = handle.submit_remote_room(traffic, move |ok| reply.send(ok));
                    }
                    _ => reply.send(false),
                }
                continue;
            }
            Err(e) => {
                warn!(error = %e, "an unreadable frame from another node");
                reply.send(false);
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
            // The sender's view is stale (the user moved on): it sends the stanza again where the user is now.
            reply.send(false);
            continue;
        }
        let Some(handle) = placement.handle() else {
            reply.send(false);
            continue;
        };
        let _ = handle.submit_remote(stanza, move |ok| reply.send(ok));
    }
}

/// The answer a stanza from another node is owed, if its sender asked for one: `+` once committed here, `-`
/// when not taken. Dropped unsent (the engine refused the stanza or stopped before its batch), it says `-`:
/// only a commit says `+`, so a `-` never hides a stanza that was taken.
struct Reply {
    to: Option<async_nats::Subject>,
    client: async_nats::Client,
    placement: Arc<Placement>,
    rt: tokio::runtime::Handle,
}

impl Reply {
    fn send(mut self, ok: bool) {
        self.answer(ok);
    }

    /// Written from a task of its own (a receipt runs on the engine's thread); counted in flight until
    /// written, so an orderly stop waits for it.
    fn answer(&mut self, ok: bool) {
        let Some(to) = self.to.take() else { return };
        let (client, placement) = (self.client.clone(), self.placement.clone());
        placement.sending();
        self.rt.spawn(async move {
            let body: &'static [u8] = if ok { b"+" } else { b"-" };
            let _ = client.publish(to, Bytes::from_static(body)).await;
            placement.settled();
        });
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        self.answer(false);
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
