//! Caps on the SIP state one user, and one endpoint of theirs, may hold (publications, subscriptions, registered
//! bindings), and the counts they are checked against.
//!
//! An *endpoint* is a user's flow: the UDP source address and port, or the TCP connection, a request came over
//! (what [`Flow`] names). It is what the server itself observes about a device, so a flooding client cannot make
//! itself look like many devices by varying text it writes (a Contact, a `+sip.instance`, an entity tag), and it is
//! per user, so a NAT, an SBC or a load generator that carries many users over one address is not penalised as
//! one device (the per-address byte rate, `[limits] sip_rate`, covers the address itself). The per-endpoint cap
//! keeps one runaway phone from using the user's whole allowance, so the user's other devices keep working; the
//! per-user cap is the hard bound on what one account can make the server hold.
//!
//! Something counts against the endpoint it was last created or refreshed over. Only requests that would create
//! something are ever refused: a refresh or modification of what a user already holds is not, even when a move
//! between flows puts an endpoint above its cap for a while.

use std::hash::Hash;

use hashbrown::HashMap;
use presence_core::BareJid;

use crate::core::Flow;

/// How many of one kind of thing a user and each of their endpoints may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    /// For the user, across all their endpoints.
    pub per_user: usize,
    /// For one endpoint (flow) of the user.
    pub per_endpoint: usize,
}

/// The caps of the SIP state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateCaps {
    /// PUBLISHed event states (RFC 3903), one per entity tag.
    pub publications: Cap,
    /// SUBSCRIBE dialogs a user holds as subscriber (RFC 6665).
    pub subscriptions: Cap,
    /// Registered contact bindings (RFC 3261 §10).
    pub bindings: Cap,
}

impl Default for StateCaps {
    /// Sized for real phones: a user has a handful of devices. A device keeps one publication per event package
    /// it publishes (a few, allowing for a PUBLISH that replaces a lost entity tag), a subscription per buddy
    /// (a BLF/buddy list of a few hundred on a receptionist's phone), and one or two bindings (a few during a
    /// change of address).
    fn default() -> Self {
        StateCaps {
            publications: Cap {
                per_user: 32,
                per_endpoint: 8,
            },
            subscriptions: Cap {
                per_user: 512,
                per_endpoint: 256,
            },
            bindings: Cap {
                per_user: 16,
                per_endpoint: 4,
            },
        }
    }
}

/// Which cap a request would go over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// The user's.
    User,
    /// The endpoint's.
    Endpoint,
}

impl Cap {
    /// Whether `adding` more things fit beside `user` held by the user and `endpoint` by the endpoint.
    pub fn check(&self, user: usize, endpoint: usize, adding: usize) -> Result<(), Over> {
        if user.saturating_add(adding) > self.per_user {
            Err(Over::User)
        } else if endpoint.saturating_add(adding) > self.per_endpoint {
            Err(Over::Endpoint)
        } else {
            Ok(())
        }
    }
}

/// Who holds each thing (by key) and how many each user and endpoint hold, so a cap check costs O(1) whatever
/// the counts.
#[derive(Debug)]
pub struct Holdings<K> {
    owners: HashMap<K, (BareJid, Flow)>,
    users: HashMap<BareJid, usize>,
    endpoints: HashMap<(BareJid, Flow), usize>,
}

impl<K> Default for Holdings<K> {
    fn default() -> Self {
        Holdings {
            owners: HashMap::new(),
            users: HashMap::new(),
            endpoints: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq> Holdings<K> {
    /// Records that `user` now holds `key` over `flow` (moving it there if they already held it).
    pub fn insert(&mut self, key: K, user: &BareJid, flow: Flow) {
        self.remove(&key);
        *self.users.entry(user.clone()).or_default() += 1;
        *self.endpoints.entry((user.clone(), flow)).or_default() += 1;
        self.owners.insert(key, (user.clone(), flow));
    }

    /// Moves a held thing to another flow of its holder (a refresh over a new flow).
    pub fn move_to(&mut self, key: &K, flow: Flow) {
        let Some((user, old)) = self.owners.get_mut(key) else {
            return;
        };
        if *old == flow {
            return;
        }
        let (user, old) = (user.clone(), std::mem::replace(old, flow));
        Self::decrement(&mut self.endpoints, (user.clone(), old));
        *self.endpoints.entry((user, flow)).or_default() += 1;
    }

    /// Forgets a held thing.
    pub fn remove(&mut self, key: &K) {
        let Some((user, flow)) = self.owners.remove(key) else {
            return;
        };
        Self::decrement(&mut self.endpoints, (user.clone(), flow));
        Self::decrement(&mut self.users, user);
    }

    fn decrement<T: Hash + Eq>(counts: &mut HashMap<T, usize>, at: T) {
        if let hashbrown::hash_map::Entry::Occupied(mut e) = counts.entry(at) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }

    /// How many things `user` holds.
    pub fn of_user(&self, user: &BareJid) -> usize {
        self.users.get(user).copied().unwrap_or(0)
    }

    /// How many things `user` holds over `flow`.
    pub fn of_endpoint(&self, user: &BareJid, flow: Flow) -> usize {
        // A lookup by (user, flow) needs an owned key; the clone is one per request.
        self.endpoints
            .get(&(user.clone(), flow))
            .copied()
            .unwrap_or(0)
    }

    /// Whether `adding` more things of `user` over `flow` fit under `cap`.
    pub fn check(&self, cap: Cap, user: &BareJid, flow: Flow, adding: usize) -> Result<(), Over> {
        cap.check(self.of_user(user), self.of_endpoint(user, flow), adding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_inserts_moves_and_removals() {
        let alice = BareJid::new("alice@example.com").expect("valid");
        let bob = BareJid::new("bob@example.com").expect("valid");
        let (a, b) = (Flow::Tcp(1), Flow::Tcp(2));
        let cap = Cap {
            per_user: 3,
            per_endpoint: 2,
        };
        let mut h = Holdings::default();
        h.insert(1, &alice, a);
        h.insert(2, &alice, a);
        assert_eq!(h.check(cap, &alice, a, 1), Err(Over::Endpoint));
        assert_eq!(h.check(cap, &alice, b, 1), Ok(()));
        assert_eq!(h.check(cap, &bob, a, 1), Ok(()), "another user's flow");
        h.insert(3, &alice, b);
        assert_eq!(h.check(cap, &alice, b, 1), Err(Over::User));
        h.move_to(&2, b);
        assert_eq!((h.of_endpoint(&alice, a), h.of_endpoint(&alice, b)), (1, 2));
        h.insert(2, &alice, a);
        assert_eq!((h.of_endpoint(&alice, a), h.of_user(&alice)), (2, 3));
        for k in [1, 2, 3, 4] {
            h.remove(&k);
        }
        assert_eq!(h.of_user(&alice), 0);
        assert!(h.users.is_empty() && h.endpoints.is_empty() && h.owners.is_empty());
    }
}
