//! Which users of the local domains this engine serves (DESIGN §6).
//!
//! A user's home is one node (and later one shard). A single engine serves every user of its domains; an engine
//! that is one node of a cluster serves only the users the cluster placed on it, and treats every other user of
//! its domains the way it treats a user of another domain: stanzas for them go to the router (`Output::Route`),
//! their presence is probed for, their rosters and held messages are never loaded here. What stays domain-based
//! is policy: a user of our own domain served by another node is not a federated contact.
//!
//! Placement changes arrive as `Input::Rehome`. A user who leaves is dropped at once: its sessions end (their
//! clients sign in again at the new home), watches on it end so their subscribers subscribe again there, and
//! work that waited for its load goes to the router, where the new home takes it.

use hashbrown::HashSet;

use super::{AddRefusal, BindError, CloseReason, Engine, Input, Output, Work};
use crate::jid::BareJid;
use crate::session::SessionId;
use crate::stanza::Stanza;
use crate::watch::{WatchEnd, WatchState};

/// The users an engine serves.
#[derive(Debug, Default)]
pub(super) enum Hosting {
    /// Every user of the local domains (a single node).
    #[default]
    Everyone,
    /// Only these (a node of a cluster).
    Only(HashSet<BareJid>),
    /// The users that hash to shard `index` of `count` (one engine shard of a node, see
    /// [`crate::cluster::shard_of`]): a rule, not a set, since every user of the domains belongs to one shard.
    Shard {
        /// This shard.
        index: usize,
        /// How many there are.
        count: usize,
    },
}

impl Hosting {
    pub(super) fn serves(&self, user: &BareJid) -> bool {
        match self {
            Hosting::Everyone => true,
            Hosting::Only(set) => set.contains(user),
            Hosting::Shard { index, count } => crate::cluster::shard_of(user, *count) == *index,
        }
    }
}

/// Whether an engine with `config` and `hosting` serves `user` (`Engine::is_here`, over the fields, for code that
/// holds others of the engine's fields at the same time).
pub(super) fn serves(config: &crate::EngineConfig, hosting: &Hosting, user: &BareJid) -> bool {
    config.is_local_domain(user.domain()) && hosting.serves(user)
}

/// Why an engine forgets a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dropped {
    /// The cluster placed the user on another node.
    Moved,
    /// The account was removed.
    Removed,
}

impl Engine {
    /// Serves only `users` of the local domains, not all of them: this engine is one node of a cluster, and
    /// stanzas for any other user of its domains go to the router. `Input::Rehome` changes the set later.
    pub fn serving_only(mut self, users: impl IntoIterator<Item = BareJid>) -> Self {
        self.hosting = Hosting::Only(users.into_iter().collect());
        self
    }

    /// Serves only the users of the local domains that hash to shard `index` of `count`: this engine is one
    /// shard of a node (the runtime's `RuntimeConfig::shards`), and stanzas for users of the other shards go to
    /// the router, exactly as between the nodes of a cluster. `Input::Rehome` does not apply to it.
    pub fn serving_shard(mut self, index: usize, count: usize) -> Self {
        self.hosting = Hosting::Shard {
            index,
            count: count.max(1),
        };
        self
    }

    /// Whether `user` is served by this engine: a user of a local domain placed here.
    pub(super) fn is_here(&self, user: &BareJid) -> bool {
        serves(&self.config, &self.hosting, user)
    }

    /// Tells the router that `user` now has an available session (their first) or none (their last went).
    /// Only an engine that is one of several says it: the others route presence to its users, and presence
    /// broadcast to a user without an available session reaches no one (`send_presence` delivers it to
    /// available sessions only), so a router that knows may leave it where it is. Said before anything the
    /// sign-in routes: another engine that learns of the sign-in through its probe then sees the user available.
    pub(super) fn tell_available(&mut self, user: &BareJid, available: bool) {
        if !matches!(self.hosting, Hosting::Everyone) {
            self.out(Output::Available {
                user: user.clone(),
                available,
            });
        }
    }

    /// Whether this engine serves `user` (the shells ask before binding a session).
    pub fn serves(&self, user: &BareJid) -> bool {
        self.is_here(user)
    }

    pub(super) fn rehome(&mut self, users: Vec<BareJid>, here: bool) {
        let Hosting::Only(set) = &mut self.hosting else {
            // A single node serves everyone and a shard's users follow from the hash; nobody can leave them.
            return;
        };
        if here {
            set.extend(users);
            return;
        }
        for user in &users {
            set.remove(user);
        }
        for user in users {
            self.drop_user(&user, Dropped::Moved);
        }
    }

    /// Forgets a user who left this engine: served elsewhere now, or whose account was removed.
    pub(super) fn drop_user(&mut self, user: &BareJid, why: Dropped) {
        let (close, end) = match why {
            Dropped::Moved => (CloseReason::Moved, WatchEnd::Moved),
            Dropped::Removed => (CloseReason::AccountRemoved, WatchEnd::NoResource),
        };
        let sessions: Vec<SessionId> = self
            .users
            .get(user)
            .map(|u| u.sessions.iter().map(|s| s.id).collect())
            .unwrap_or_default();
        for session in sessions {
            self.out(Output::Close {
                session,
                reason: close,
            });
            self.close_session(session);
        }
        let watches = self.watches_on.get(user).cloned().unwrap_or_default();
        for watch in watches {
            self.out(Output::Watch {
                watch,
                state: WatchState::Terminated(end),
            });
            self.forget_watch(watch);
        }
        if let Some(queue) = self.deferred.take(user) {
            for work in queue {
                match why {
                    Dropped::Moved => self.redirect(work),
                    // Run again from the start: the next load finds no account.
                    Dropped::Removed => self.submit(work),
                }
            }
        }
        self.overlays.remove(user);
        self.users.remove(user);
    }

    /// Hands work that waited for a user who left to where the user is now.
    fn redirect(&mut self, work: Work) {
        match work {
            Work::Input(Input::FromRemote(stanza)) | Work::Inbound(stanza) => {
                self.out(Output::Route(stanza))
            }
            Work::Input(Input::OpenSession { session, user, .. }) => {
                self.out(Output::BindRefused {
                    session,
                    reason: BindError::ServedElsewhere(user),
                })
            }
            Work::Input(Input::AddContacts { user, contacts }) => {
                let refused = contacts
                    .into_iter()
                    .map(|(contact, _)| AddRefusal::ServedElsewhere(contact))
                    .collect();
                self.out(Output::ContactsAdded {
                    user,
                    added: Vec::new(),
                    refused,
                });
            }
            Work::Reciprocal { from, to } => self.out(Output::Route(Stanza::Subscription {
                from,
                to,
                action: crate::roster::SubscriptionAction::Subscribe,
            })),
            // A watch whose target or watcher left ends like one whose data could not be read: its subscriber
            // subscribes again and reaches the new home.
            Work::Watch { watch, serial, .. } | Work::WatchSubscribe { watch, serial, .. } => {
                self.fail_watch(watch, serial, WatchEnd::Moved)
            }
            // A policy change for a user who left is the new home's to make.
            Work::Input(_) => {}
        }
    }
}
