//! The runtime's side of a cluster: where users are served, and a way to carry stanzas to other nodes.
//!
//! The engine only ever says "route this" (`Output::Route`); it never knows which transport carries it (DESIGN
//! §1). A runtime that is one node of a cluster is given a [`Cluster`]: for a stanza whose recipient is a user of
//! a local domain served by another node, the driver hands it to [`Cluster::forward`]; shells ask
//! [`Handle::locate`](super::Handle::locate) before binding a session, to send a client to its user's home.
//! The product binary implements it over NATS and PostgreSQL; an embedder can implement it over anything.

use std::sync::Arc;

use crate::engine::RoomTraffic;
use crate::jid::BareJid;
use crate::stanza::{Broadcast, Stanza};

/// How clients reach a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddress {
    /// The node's name, unique in the cluster.
    pub name: String,
    /// `host:port` where XMPP clients reach it (the `<see-other-host/>` target).
    pub xmpp: Option<String>,
    /// `host:port` where SIP endpoints reach it (the `302` Contact).
    pub sip: Option<String>,
}

/// Where a user of a local domain is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// By this node (always, for a runtime outside a cluster).
    Here,
    /// By another node.
    Node(Arc<NodeAddress>),
    /// By no node right now: unassigned, or between a failed node and its peer's takeover.
    Nowhere,
}

/// What a runtime needs from the cluster it is a node of. Both methods are called on hot paths (the engine
/// thread, connection tasks): they must answer from memory and never block.
pub trait Cluster: Send + Sync + 'static {
    /// Where `user` is served now.
    fn locate(&self, user: &BareJid) -> Location;
    /// Carries a stanza for a user served by another node there. The implementation owns what happens when it
    /// cannot: a message that is neither delivered nor held there must come back to its sender as an error
    /// (submitted to this node as `Input::FromRemote(Stanza::Error(..))`), never vanish.
    fn forward(&self, stanza: Stanza);
    /// Carries a presence for several users served by other nodes (`Output::RouteBroadcast`) there; every
    /// recipient is a user of the cluster's domains. The default carries it as [`Cluster::forward`] carries
    /// each of its stanzas; a cluster may instead send each node its recipients' part as one
    /// (`Input::FromRemoteBroadcast` there).
    fn forward_broadcast(&self, broadcast: Broadcast) {
        for stanza in broadcast.into_stanzas() {
            self.forward(stanza);
        }
    }
    /// Carries room traffic to the node that serves its room (`cluster::room_home` of the room, or the node
    /// serving that home's users while it is failed over). Handing it back says it cannot go: the runtime then
    /// answers its sender. Traffic that fails later (the node died meanwhile) must be answered the same way,
    /// by submitting [`RoomTraffic::bounce`] as `Input::FromRemote`. A cluster that does not carry rooms keeps
    /// the default, which hands everything back (its engines must then not be given `Input::RoomPlacement`).
    fn forward_room(&self, traffic: RoomTraffic) -> Result<(), Box<RoomTraffic>> {
        Err(Box::new(traffic))
    }
    /// A user served by this node has an available session now (their first) or none (their last went), as
    /// its engine says (`Output::Available`), told in order with what the engine routes. A cluster that shares
    /// this with the other nodes may leave broadcast presence for a user without one where it is: it would
    /// reach no one. The default shares nothing.
    fn user_available(&self, _user: &BareJid, _available: bool) {}
}

/// Whose stanza this is: the bare address of its recipient.
pub fn recipient(stanza: &Stanza) -> Option<&BareJid> {
    match stanza {
        Stanza::Presence { to, .. } | Stanza::Message { to, .. } => Some(to.bare()),
        Stanza::Subscription { to, .. } => Some(to),
        Stanza::Error(e) => Some(e.to.bare()),
        // A room served by one node speaks to an occupant whose session lives on another.
        Stanza::Room(room) => Some(room.addressee()),
        Stanza::Query(query) => Some(&query.to),
        Stanza::Reply(reply) => Some(reply.to.bare()),
        Stanza::Notification(n) => Some(n.audience.user()),
        _ => None,
    }
}
