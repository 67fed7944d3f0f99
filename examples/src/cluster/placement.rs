//! Where every user of the cluster is served, as this node knows it, and the runtime's [`Cluster`] view of it.
//!
//! PostgreSQL holds the truth (`cluster_placement.host`). A node loads it at start, applies the changes other
//! nodes broadcast over NATS as they make them, and reloads it periodically in case a broadcast was missed.
//! Every change that moves a user onto or off this node is returned as a [`Diff`], which the caller hands to
//! the engine (`Input::Rehome`) and to the failover manager.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use presence_core::message::MessageKind;
use presence_core::runtime::{Cluster, Handle, Location, NodeAddress};
use presence_core::stanza::{ErrorAbout, ErrorCondition, Stanza, StanzaError};
use presence_core::{BareJid, Input};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::model::{NodeRow, PlacementRow};

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
    nodes: RwLock<HashMap<Arc<str>, Arc<NodeAddress>>>,
    /// Stanzas for other nodes, to the link's forwarder (bounded: a full link bounces messages).
    outbound: mpsc::Sender<Stanza>,
    /// The engine, for bounces; set once the runtime runs.
    handle: OnceLock<Handle>,
}

impl Placement {
    /// An empty view for node `me`; stanzas for other nodes go to `outbound`.
    pub fn new(me: &str, outbound: mpsc::Sender<Stanza>) -> Self {
        Placement {
            me: me.into(),
            users: RwLock::new(HashMap::new()),
            nodes: RwLock::new(HashMap::new()),
            outbound,
            handle: OnceLock::new(),
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
        for r in rows {
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

    /// Tells the sender of a message or an IQ request that it could not be carried (it is never dropped
    /// silently). Other stanzas acknowledge nothing and are only logged.
    pub fn bounce(&self, stanza: Stanza, condition: ErrorCondition, text: &str) {
        let (to, about) = match stanza {
            Stanza::Message {
                from, to, message, ..
            } if message.kind != MessageKind::Error => {
                debug!(%from, %to, ?condition, text, "a message for another node comes back to its sender");
                (from, ErrorAbout::Message { id: message.id, to })
            }
            // An IQ request gets its answer too, or its sender waits for one forever.
            Stanza::Iq { from, iq } if iq.kind.is_request() => (
                from,
                ErrorAbout::Iq {
                    id: iq.id,
                    to: iq.to,
                },
            ),
            stanza => {
                debug!(?stanza, "a stanza for another node could not be carried");
                return;
            }
        };
        let error = StanzaError {
            to,
            about,
            condition,
            text: Some(text.into()),
        };
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
        if let Err(e) = self.outbound.try_send(stanza) {
            let stanza = match e {
                mpsc::error::TrySendError::Full(s) | mpsc::error::TrySendError::Closed(s) => s,
            };
            self.bounce(
                stanza,
                ErrorCondition::ResourceConstraint,
                "the link to the recipient's node is full; try again shortly",
            );
        }
    }
}
