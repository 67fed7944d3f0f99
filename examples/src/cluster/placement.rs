//! Where every user of the cluster is served, as this node knows it, and the runtime's [`Cluster`] view of it.
//!
//! PostgreSQL holds the truth (`cluster_placement.host`). A node loads it at start, applies the changes other
//! nodes broadcast over NATS as they make them, and reloads it periodically in case a broadcast was missed.
//! Every change that moves a user onto or off this node is returned as a [`Diff`], which the caller hands to
//! the engine (`Input::Rehome`) and to the failover manager.
//!
//! **Rooms** (issue 15) are placed by their address: `cluster::room_home` over the names of the nodes in
//! `cluster_nodes` gives a room's home node, and a home's rooms are served by the node that serves most of that
//! home's users: the home itself normally, its peer while it is failed over, the home again after failback, so
//! rooms follow their node's users without a table of their own. A home with no users serves its own rooms.
//! Homes are read with the placement (at start and at every reload); a rebalance that rehomes users is applied
//! at once by the node that made it and seen by the others at their next reload. [`Placement::room_placement`] says whose rooms this node serves, for the engine
//! (`Input::RoomPlacement`), whenever that changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use presence_core::runtime::{Cluster, Handle, Location, NodeAddress};
use presence_core::stanza::{ErrorCondition, Stanza};
use presence_core::{BareJid, Input};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::model::{NodeRow, PlacementRow};
use super::wire::Frame;
use presence_core::engine::RoomTraffic;

/// Users who came to this node and users who left it, in one change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Now served here.
    pub arrived: Vec<BareJid>,
    /// No longer served here.
    pub left: Vec<BareJid>,
}

/// This node's view of the cluster.
pub struct Placement {
    me: Arc<str>,
    users: RwLock<HashMap<BareJid, Arc<str>>>,
    /// Each user's home node (the failover pair member it belongs to), as last read from the database.
    homes: RwLock<HashMap<BareJid, Arc<str>>>,
    /// Which node serves each home's rooms, as of the last [`Placement::room_placement`].
    hosts: RwLock<HashMap<String, String>>,
    /// The room placement last given to the engine, to tell it only of changes.
    told: parking_lot::Mutex<Option<(Vec<String>, Vec<String>)>>,
    nodes: RwLock<HashMap<Arc<str>, Arc<NodeAddress>>>,
    /// Stanzas and room traffic for other nodes, to the link's forwarder (bounded: a full link bounces
    /// messages and room requests).
    outbound: mpsc::Sender<Frame>,
    /// Frames given to `outbound` and not yet settled by the forwarder (sent unacknowledged, acknowledged,
    /// or bounced), and acknowledgements not yet written, so an orderly stop can wait for them: a message a
    /// stopping node routes on, or the answer it owes, is otherwise lost with its process.
    in_flight: AtomicUsize,
    /// The engine, for bounces; set once the runtime runs.
    handle: OnceLock<Handle>,
}

impl Placement {
    /// An empty view for node `me`; stanzas for other nodes go to `outbound`.
    pub fn new(me: &str, outbound: mpsc::Sender<Frame>) -> Self {
        Placement {
            me: me.into(),
            users: RwLock::new(HashMap::new()),
            homes: RwLock::new(HashMap::new()),
            hosts: RwLock::new(HashMap::new()),
            told: parking_lot::Mutex::new(None),
            nodes: RwLock::new(HashMap::new()),
            outbound,
            in_flight: AtomicUsize::new(0),
            handle: OnceLock::new(),
        }
    }

    /// Frames routed to other nodes and not yet sent or answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// One more frame (or acknowledgement) on its way to another node (see `in_flight`).
    pub(super) fn sending(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// The link is done with one frame or acknowledgement (see `in_flight`).
    pub(super) fn settled(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// The link gives a frame back to its sender: bounced, and settled (see `in_flight`).
    pub(super) fn bounce_and_settle(&self, frame: Frame, condition: ErrorCondition, text: &str) {
        self.bounce_frame(frame, condition, text);
        self.settled();
    }

    /// Hands a frame to the forwarder; a full or closed link bounces it.
    fn send_out(&self, frame: Frame) {
        self.sending();
        if let Err(e) = self.outbound.try_send(frame) {
            let (mpsc::error::TrySendError::Full(frame) | mpsc::error::TrySendError::Closed(frame)) =
                e;
            self.bounce_and_settle(frame, ErrorCondition::ResourceConstraint, LINK_FULL);
        }
    }

    /// This node's name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Connects the view to the running engine.
    pub fn set_handle(&self, handle: Handle) {
        let _ = self.handle.set(handle);
    }

    /// The engine, once running.
    pub fn handle(&self) -> Option<&Handle> {
        self.handle.get()
    }

    /// Replaces what is known of the nodes.
    pub fn set_nodes(&self, rows: &[NodeRow]) {
        let mut nodes = self.nodes.write();
        nodes.clear();
        for r in rows {
            let name: Arc<str> = r.name.as_str().into();
            nodes.insert(
                name.clone(),
                Arc::new(NodeAddress {
                    name: r.name.clone(),
                    xmpp: r.advertise_xmpp.clone(),
                    sip: r.advertise_sip.clone(),
                }),
            );
        }
    }

    /// Replaces the whole placement with what the database holds.
    pub fn load(&self, rows: &[PlacementRow]) -> Diff {
        let mut next: HashMap<BareJid, Arc<str>> = HashMap::with_capacity(rows.len());
        let mut names: HashMap<String, Arc<str>> = HashMap::new();
        let mut homes: HashMap<BareJid, Arc<str>> = HashMap::with_capacity(rows.len());
        for r in rows {
            if let Ok(jid) = BareJid::new(&r.jid) {
                let home = names
                    .entry(r.home.clone())
                    .or_insert_with(|| r.home.as_str().into())
                    .clone();
                homes.insert(jid, home);
            }
            let (Ok(jid), Some(host)) = (BareJid::new(&r.jid), r.host.as_ref()) else {
                continue;
            };
            let host = names
                .entry(host.clone())
                .or_insert_with(|| host.as_str().into())
                .clone();
            next.insert(jid, host);
        }
        let mut users = self.users.write();
        let mut diff = Diff::default();
        for (jid, host) in &next {
            let was_here = users.get(jid).is_some_and(|h| *h == self.me);
            if **host == *self.me && !was_here {
                diff.arrived.push(jid.clone());
            }
        }
        for (jid, host) in users.iter() {
            if *host == self.me && next.get(jid).is_none_or(|h| *h != self.me) {
                diff.left.push(jid.clone());
            }
        }
        *users = next;
        *self.homes.write() = homes;
        diff
    }

    /// Records that `users` are now served by `host` (`None`: by nobody).
    pub fn update(&self, users: &[BareJid], host: Option<&str>) -> Diff {
        let host: Option<Arc<str>> = host.map(Into::into);
        let mut map = self.users.write();
        let mut diff = Diff::default();
        for jid in users {
            let was_here = map.get(jid).is_some_and(|h| *h == self.me);
            let is_here = host.as_ref().is_some_and(|h| *h == self.me);
            match &host {
                Some(h) => map.insert(jid.clone(), h.clone()),
                None => map.remove(jid),
            };
            if is_here && !was_here {
                diff.arrived.push(jid.clone());
            } else if was_here && !is_here {
                diff.left.push(jid.clone());
            }
        }
        diff
    }

    /// Records that `users` have `home` as their home node now (a rebalance), so their home's rooms follow.
    /// Other nodes learn it at their next reload.
    pub fn rehome(&self, users: &[BareJid], home: &str) {
        let home: Arc<str> = home.into();
        let mut homes = self.homes.write();
        for jid in users {
            homes.insert(jid.clone(), home.clone());
        }
    }

    /// The users served here.
    pub fn hosted(&self) -> Vec<BareJid> {
        self.users
            .read()
            .iter()
            .filter(|(_, h)| **h == self.me)
            .map(|(j, _)| j.clone())
            .collect()
    }

    /// How many users each node serves.
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for host in self.users.read().values() {
            *counts.entry(host.to_string()).or_insert(0) += 1;
        }
        counts
    }

    /// The names of the nodes rooms are homed on (every registered node), sorted.
    fn node_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.nodes.read().keys().map(|n| n.to_string()).collect();
        names.sort();
        names
    }

    /// For each home node, the node serving its rooms now: the node serving most of its users (ties go to
    /// the home itself, then to the first name), or the home itself when it has no served users.
    fn room_hosts(&self, names: &[String]) -> HashMap<String, String> {
        let users = self.users.read();
        let homes = self.homes.read();
        let mut counts: HashMap<(&str, &str), usize> = HashMap::new();
        for (jid, home) in homes.iter() {
            if let Some(host) = users.get(jid) {
                *counts.entry((home, host)).or_insert(0) += 1;
            }
        }
        names
            .iter()
            .map(|home| {
                let best = counts
                    .iter()
                    .filter(|((h, _), _)| *h == home.as_str())
                    .max_by(|((_, a), x), ((_, b), y)| {
                        x.cmp(y)
                            .then_with(|| (*a == home.as_str()).cmp(&(*b == home.as_str())))
                            .then_with(|| b.cmp(a))
                    })
                    .map_or(home.as_str(), |((_, host), _)| host);
                (home.clone(), best.to_owned())
            })
            .collect()
    }

    /// Where room traffic goes: to the host of the home it names (a listing, issue 17), else to where its
    /// room is served.
    pub fn locate_traffic(&self, traffic: &RoomTraffic) -> Location {
        match traffic.home() {
            Some(home) => self.locate_home(home),
            None => self.locate_room(traffic.room()),
        }
    }

    /// Where `room` is served: its home node's rooms' host.
    pub fn locate_room(&self, room: &BareJid) -> Location {
        let names = self.node_names();
        let Some(home) = presence_core::cluster::room_home(room, &names) else {
            // No node known yet (not joined): the room is ours.
            return Location::Here;
        };
        self.locate_home(home)
    }

    /// Where the rooms of home node `home` are served.
    fn locate_home(&self, home: &str) -> Location {
        // Read from what the last placement change computed: this runs for every room request.
        let host = self
            .hosts
            .read()
            .get(home)
            .cloned()
            .unwrap_or_else(|| home.to_owned());
        if *host == *self.me {
            return Location::Here;
        }
        let node = self.nodes.read().get(host.as_str()).cloned();
        Location::Node(node.unwrap_or_else(|| {
            Arc::new(NodeAddress {
                name: host,
                xmpp: None,
                sip: None,
            })
        }))
    }

    /// Every node's name and the homes whose rooms this node serves, when that differs from what was last
    /// returned (`None`: no change, nothing to tell the engine). Called after every placement change (it also
    /// refreshes what [`Placement::locate_room`] reads).
    pub fn room_placement(&self) -> Option<(Vec<String>, Vec<String>)> {
        let names = self.node_names();
        if names.is_empty() {
            return None;
        }
        let hosts = self.room_hosts(&names);
        let served: Vec<String> = names
            .iter()
            .filter(|home| hosts.get(*home).is_some_and(|h| *h == *self.me))
            .cloned()
            .collect();
        *self.hosts.write() = hosts;
        let next = (names, served);
        let mut told = self.told.lock();
        if told.as_ref() == Some(&next) {
            return None;
        }
        *told = Some(next.clone());
        Some(next)
    }

    /// Answers the sender of room traffic that could not be carried (a request always gets its answer).
    pub fn bounce_room(&self, traffic: RoomTraffic, condition: ErrorCondition, text: &str) {
        debug!(room = %traffic.room(), ?condition, text, "room traffic for another node comes back");
        let (Some(stanza), Some(handle)) = (traffic.bounce(condition, text), self.handle.get())
        else {
            return;
        };
        if handle.submit(Input::FromRemote(stanza)).is_err() {
            warn!("the engine is busy: a bounce for an undeliverable room request was dropped");
        }
    }

    /// Tells the sender of a message, an IQ request or a query that it could not be carried (it is never
    /// dropped silently). Other stanzas acknowledge nothing and are only logged.
    pub fn bounce(&self, stanza: Stanza, condition: ErrorCondition, text: &str) {
        let Some(error) = stanza.undelivered(condition, text) else {
            debug!(?stanza, "a stanza for another node could not be carried");
            return;
        };
        debug!(to = %error.to, ?condition, text, "a stanza for another node comes back to its sender");
        let Some(handle) = self.handle.get() else {
            return;
        };
        if handle
            .submit(Input::FromRemote(Stanza::Error(error)))
            .is_err()
        {
            warn!("the engine is busy: a bounce for an undeliverable message was dropped");
        }
    }
}

const LINK_FULL: &str = "the link to the recipient's node is full; try again shortly";

impl Placement {
    /// Answers the sender of whatever a frame carried, which could not be carried.
    pub fn bounce_frame(&self, frame: Frame, condition: ErrorCondition, text: &str) {
        match frame {
            Frame::Stanza(stanza) => self.bounce(stanza, condition, text),
            Frame::Room(traffic) => self.bounce_room(traffic, condition, text),
        }
    }
}

impl Cluster for Placement {
    fn locate(&self, user: &BareJid) -> Location {
        let Some(host) = self.users.read().get(user).cloned() else {
            return Location::Nowhere;
        };
        if host == self.me {
            return Location::Here;
        }
        let node = self.nodes.read().get(&host).cloned();
        Location::Node(node.unwrap_or_else(|| {
            Arc::new(NodeAddress {
                name: host.to_string(),
                xmpp: None,
                sip: None,
            })
        }))
    }

    fn forward(&self, stanza: Stanza) {
        self.send_out(Frame::Stanza(stanza));
    }

    fn forward_room(&self, traffic: RoomTraffic) -> Result<(), Box<RoomTraffic>> {
        self.send_out(Frame::Room(traffic));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i16, name: &str) -> NodeRow {
        NodeRow {
            id,
            name: name.into(),
            group: "g".into(),
            advertise_xmpp: None,
            advertise_sip: None,
            epoch: 1,
            state: None,
            reason: None,
        }
    }

    fn row(jid: &str, home: &str, host: &str) -> PlacementRow {
        PlacementRow {
            jid: jid.into(),
            home: home.into(),
            host: Some(host.into()),
        }
    }

    fn view(me: &str) -> Placement {
        let (tx, _rx) = mpsc::channel(1);
        let p = Placement::new(me, tx);
        p.set_nodes(&[node(1, "a"), node(2, "b")]);
        p.load(&[
            row("u1@x", "a", "a"),
            row("u2@x", "a", "a"),
            row("u3@x", "b", "b"),
        ]);
        p
    }

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).expect("valid")
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rooms_follow_their_home_nodes_users_through_failover_and_failback() {
        let (a, b) = (view("a"), view("b"));
        let nodes = ["a", "b"];
        let room = (0..)
            .map(|i| jid(&format!("r{i}@conference.x")))
            .find(|r| presence_core::cluster::room_home(r, &nodes) == Some("a"))
            .expect("a room homed on a");
        assert_eq!(a.room_placement(), Some((strings(&nodes), strings(&["a"]))));
        assert_eq!(b.room_placement(), Some((strings(&nodes), strings(&["b"]))));
        assert_eq!(a.room_placement(), None, "told once");
        assert_eq!(a.locate_room(&room), Location::Here);
        assert!(matches!(b.locate_room(&room), Location::Node(n) if n.name == "a"));

        // Failover: b claims a's users, and with them a's rooms.
        let moved = [jid("u1@x"), jid("u2@x")];
        a.update(&moved, Some("b"));
        b.update(&moved, Some("b"));
        assert_eq!(a.room_placement(), Some((strings(&nodes), vec![])));
        assert_eq!(
            b.room_placement(),
            Some((strings(&nodes), strings(&["a", "b"])))
        );
        assert!(matches!(a.locate_room(&room), Location::Node(n) if n.name == "b"));
        assert_eq!(b.locate_room(&room), Location::Here);

        // Failback: they go home, and so do the rooms.
        a.update(&moved, Some("a"));
        b.update(&moved, Some("a"));
        assert_eq!(a.room_placement(), Some((strings(&nodes), strings(&["a"]))));
        assert_eq!(b.room_placement(), Some((strings(&nodes), strings(&["b"]))));
        assert_eq!(a.locate_room(&room), Location::Here);
    }
}
