//! Peers found by DNS: the runtime's "every other domain" sink, making one outbound route per peer domain the
//! first time a stanza goes there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use presence_core::runtime::DomainSink;
use presence_core::runtime::domains::destination_domain;
use presence_core::stanza::Stanza as CoreStanza;

use super::Shared;
use super::outbound::Peer;

/// Peer domains remembered at once. At the bound, the routes without a live stream are forgotten (they are
/// remade on the next stanza); when every one has a live stream, a stanza for yet another domain bounces
/// (`remote-server-not-found`, as for an unreachable domain) rather than growing the table without end.
const MAX_PEERS: usize = 1000;

/// Routes to the domains with no static route, made on demand.
pub(super) struct FoundPeers {
    shared: Arc<Shared>,
    peers: Mutex<HashMap<String, Arc<Peer>>>,
}

impl FoundPeers {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        FoundPeers {
            shared,
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// The route to `domain`, made if needed; `None` at the bound.
    fn peer(&self, domain: &str) -> Option<Arc<Peer>> {
        // Never poisoned in practice (nothing here panics); a poisoned map is still usable.
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = peers.get(domain) {
            return Some(p.clone());
        }
        if peers.len() >= MAX_PEERS {
            peers.retain(|_, p| p.has_stream());
        }
        if peers.len() >= MAX_PEERS {
            return None;
        }
        let p = Arc::new(Peer::new(domain, self.shared.clone()));
        peers.insert(domain.to_owned(), p.clone());
        Some(p)
    }
}

impl DomainSink for FoundPeers {
    fn send(&self, stanza: CoreStanza) -> Result<(), Box<CoreStanza>> {
        let Some(domain) = destination_domain(&stanza).map(str::to_ascii_lowercase) else {
            return Err(Box::new(stanza));
        };
        if !self.shared.settings.permits(&domain) {
            return Err(Box::new(stanza));
        }
        match self.peer(&domain) {
            Some(peer) => peer.send(stanza),
            None => Err(Box::new(stanza)),
        }
    }
}
