//! Two engines over one store, each serving one user, with routed stanzas carried between them by hand: nodes
//! of a cluster, or shards of one node (they route alike).

use std::sync::Arc;

use presence_core::roster::SubscriptionAction;
use presence_core::store::MemoryStore;
use presence_core::{EngineConfig, Input, SessionId};

use super::Harness;

/// `a` serving alice@x and `b` serving bob@x, over one store holding both accounts.
pub fn pair() -> (Harness, Harness) {
    let store = Arc::new(MemoryStore::new());
    let a = Harness::node(EngineConfig::for_domain("x"), store.clone(), &["alice@x"]);
    a.account("alice@x");
    a.account("bob@x");
    let b = Harness::node(EngineConfig::for_domain("x"), store, &["bob@x"]);
    (a, b)
}

/// Carries routed stanzas to the other engine until nothing moves.
pub fn pump(a: &mut Harness, b: &mut Harness) {
    loop {
        let from_a = std::mem::take(&mut a.routed);
        let from_b = std::mem::take(&mut b.routed);
        if from_a.is_empty() && from_b.is_empty() {
            return;
        }
        for s in from_a {
            b.input(Input::FromRemote(s));
        }
        for s in from_b {
            a.input(Input::FromRemote(s));
        }
    }
}

/// Alice (session `sa` on `a`) and bob (`sb` on `b`) subscribe to each other and both approve.
pub fn mutual(a: &mut Harness, b: &mut Harness, sa: SessionId, sb: SessionId) {
    a.subscribe(sa, "bob@x", SubscriptionAction::Subscribe);
    pump(a, b);
    b.subscribe(sb, "alice@x", SubscriptionAction::Subscribed);
    pump(a, b);
    b.subscribe(sb, "alice@x", SubscriptionAction::Subscribe);
    pump(a, b);
    a.subscribe(sa, "bob@x", SubscriptionAction::Subscribed);
    pump(a, b);
}
