//! Watches: SIP-style subscriptions to a user's composed presence or watcher list (see [`crate::watch`]).
//!
//! A watch is authorised by the target's roster exactly like an XMPP contact: when the watcher has no standing
//! with the target, the engine sends the subscription request for it, as if the watcher's own client had. After
//! that, the watch only follows the target: its composition, its policy and its roster entry for the watcher.
//!
//! A watch is registered the moment the shell hands it in, before its target is loaded, so an `Unwatch` or a
//! replacement that overtakes the queued work still wins: queued work carries the registration's serial and does
//! nothing once that registration is gone.

use super::user::User;
use super::{Engine, Output, Work};
use crate::compose::Composed;
use crate::jid::BareJid;
use crate::roster::{Link, Roster, SubscriptionAction};
use crate::watch::{
    WatchEnd, WatchId, WatchKind, WatchState, WatchView, WatcherInfo, WatcherStatus,
};

/// A live watch.
#[derive(Debug)]
pub(super) struct Watch {
    watcher: BareJid,
    target: BareJid,
    kind: WatchKind,
    serial: u64,
    /// The state last reported; `None` until the first report, which waits for the subscription request (if
    /// any) to be decided so the shell does not see a `Pending` that is over at once.
    sent: Option<WatchState>,
}

/// Which of a target's watches a change can affect.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scope<'a> {
    /// The composed presence or the policy changed.
    Presence,
    /// The roster entry for this contact changed.
    Roster(&'a BareJid),
}

// A static rather than the constant, so a verdict can borrow it like a target's own composition.
static UNAVAILABLE: Composed = Composed::UNAVAILABLE;

/// A watch's state as the target's data has it now, borrowing that data so an unchanged watch costs nothing.
enum Verdict<'a> {
    Pending,
    Presence(&'a Composed),
    Watchers(Vec<WatcherInfo>),
    End(WatchEnd),
}

impl Verdict<'_> {
    fn is(&self, state: &WatchState) -> bool {
        match (self, state) {
            (Verdict::Pending, WatchState::Pending) => true,
            (Verdict::Presence(c), WatchState::Active(WatchView::Presence(s))) => *c == s,
            (Verdict::Watchers(w), WatchState::Active(WatchView::Watchers(s))) => w == s,
            (Verdict::End(e), WatchState::Terminated(s)) => e == s,
            _ => false,
        }
    }

    fn into_state(self) -> WatchState {
        match self {
            Verdict::Pending => WatchState::Pending,
            Verdict::Presence(c) => WatchState::Active(WatchView::Presence(c.clone())),
            Verdict::Watchers(w) => WatchState::Active(WatchView::Watchers(w)),
            Verdict::End(e) => WatchState::Terminated(e),
        }
    }
}

/// What `w` shows, given its target (`None`: no such user here).
fn verdict<'a>(target: Option<&'a User>, w: &Watch) -> Verdict<'a> {
    let Some(t) = target else {
        return Verdict::End(WatchEnd::NoResource);
    };
    match w.kind {
        // A watcher list is the target's own business (RFC 3857 §5.2 leaves authorisation to policy; ours is
        // that nobody else sees it).
        WatchKind::Watchers if w.watcher != w.target => Verdict::End(WatchEnd::Rejected),
        WatchKind::Watchers => Verdict::Watchers(watcher_list(&t.roster)),
        WatchKind::Presence if w.watcher == w.target => Verdict::Presence(&t.composed),
        WatchKind::Presence => {
            let shown = t.policy.shows_presence_to(&w.watcher);
            match (t.roster.subscription(&w.watcher).inbound, shown) {
                (Link::On, true) => Verdict::Presence(&t.composed),
                // Polite blocking (DESIGN §3): a hidden watcher sees "unavailable", never a refusal or a wait.
                (Link::On | Link::Pending, false) => Verdict::Presence(&UNAVAILABLE),
                (Link::Pending, true) => Verdict::Pending,
                (Link::Off | Link::PreApproved, _) => Verdict::End(WatchEnd::Rejected),
            }
        }
    }
}

fn watcher_list(roster: &Roster) -> Vec<WatcherInfo> {
    let mut list: Vec<WatcherInfo> = roster
        .entries()
        .filter_map(|(jid, e)| {
            let status = match e.subscription().inbound {
                Link::On => WatcherStatus::Active,
                Link::Pending => WatcherStatus::Pending,
                Link::Off | Link::PreApproved => return None,
            };
            Some(WatcherInfo {
                watcher: jid.clone(),
                status,
            })
        })
        .collect();
    list.sort_by(|a, b| a.watcher.cmp(&b.watcher));
    list
}

impl Engine {
    /// Registers a watch at once (see the module docs) and queues its first look behind the target's load.
    pub(super) fn open_watch(
        &mut self,
        watch: WatchId,
        watcher: BareJid,
        target: BareJid,
        kind: WatchKind,
    ) {
        self.forget_watch(watch);
        self.watch_serial += 1;
        let serial = self.watch_serial;
        self.watches_on
            .entry(target.clone())
            .or_default()
            .push(watch);
        self.watches.insert(
            watch,
            Watch {
                watcher,
                target: target.clone(),
                kind,
                serial,
                sent: None,
            },
        );
        self.submit(Work::Watch {
            watch,
            serial,
            target,
        });
    }

    /// Drops a watch without a word; its target is evicted later if nothing else holds it.
    pub(super) fn forget_watch(&mut self, watch: WatchId) {
        let Some(w) = self.watches.remove(&watch) else {
            return;
        };
        if let Some(ids) = self.watches_on.get_mut(&w.target) {
            ids.retain(|i| *i != watch);
            if ids.is_empty() {
                self.watches_on.remove(&w.target);
                // Not evicted here: this can run deep inside work that still uses the target.
                self.released.push(w.target);
            }
        }
    }

    /// The watch registered as `watch`, if it is still the registration the queued work was made for.
    fn live_watch(&self, watch: WatchId, serial: u64) -> Option<&Watch> {
        self.watches.get(&watch).filter(|w| w.serial == serial)
    }

    /// The first look at a watch, with its target loaded (or known not to exist).
    pub(super) fn start_watch(&mut self, watch: WatchId, serial: u64) {
        let Some(w) = self.live_watch(watch, serial) else {
            return;
        };
        // A remote watcher cannot be subscribed for through our machinery (no federation yet); its watch is
        // decided by what the target's roster already says. Nor can a watcher of another engine shard from here:
        // its shard asked (`Input::SubscribeFor`), and the runtime hands this watch in only once that request
        // has been handled here, so the roster already holds the decision.
        let must_ask = w.kind == WatchKind::Presence
            && w.watcher != w.target
            && self.is_here(&w.watcher)
            && self
                .users
                .get(&w.target)
                .is_some_and(|t| t.roster.subscription(&w.watcher).inbound_off());
        if must_ask {
            let watcher = w.watcher.clone();
            self.submit(Work::WatchSubscribe {
                watch,
                serial,
                watcher,
            });
            return;
        }
        self.report_first(watch);
    }

    /// `Input::SubscribeFor`, with the watcher loaded: the request a watch on another shard waits for, unless
    /// the watcher already has the subscription or asked for it.
    pub(super) fn subscribe_for(&mut self, watcher: &BareJid, target: &BareJid) {
        let Some(u) = self.users.get(watcher) else {
            return;
        };
        if watcher != target && u.roster.subscription(target).outbound == Link::Off {
            self.outbound_subscription(watcher, None, target, SubscriptionAction::Subscribe);
        }
    }

    /// Sends the subscription request on the watcher's behalf, with the watcher loaded (or known not to exist).
    pub(super) fn watch_subscribe(&mut self, watch: WatchId, serial: u64) {
        let Some(w) = self.live_watch(watch, serial) else {
            return;
        };
        let (watcher, target) = (w.watcher.clone(), w.target.clone());
        // The link may have moved while the watcher loaded (its own client asked, or the target added it).
        if self
            .users
            .get(&target)
            .is_some_and(|t| t.roster.subscription(&watcher).inbound_off())
        {
            self.outbound_subscription(&watcher, None, &target, SubscriptionAction::Subscribe);
        }
        // The target is loaded, so its part ran to completion inside that call (work for a loaded user never
        // waits): if the link is still off now, the target refused.
        self.report_first(watch);
    }

    /// Ends a watch whose target or watcher could not be loaded, if it is still the registration the failed work
    /// was queued for (a replaced or closed watch is not the shell's concern any more).
    pub(super) fn fail_watch(&mut self, watch: WatchId, serial: u64, end: WatchEnd) {
        if self.live_watch(watch, serial).is_none() {
            return;
        }
        self.out(Output::Watch {
            watch,
            state: WatchState::Terminated(end),
        });
        self.forget_watch(watch);
    }

    fn report_first(&mut self, watch: WatchId) {
        let Some(w) = self.watches.get(&watch) else {
            return;
        };
        let target = if self.is_here(&w.target) {
            self.users.get(&w.target).map(|u| &**u)
        } else {
            None
        };
        let state = verdict(target, w).into_state();
        let ended = matches!(state, WatchState::Terminated(_));
        if let Some(w) = self.watches.get_mut(&watch) {
            w.sent = Some(state.clone());
        }
        self.out(Output::Watch { watch, state });
        if ended {
            self.forget_watch(watch);
        }
    }

    /// Re-evaluates the watches on `target` that `scope` can affect and reports those that changed. One hash
    /// lookup when `target` has no watches: this runs on every presence change.
    pub(super) fn update_watches(&mut self, target: &BareJid, scope: Scope<'_>) {
        if self.watches_on.is_empty() {
            return;
        }
        let Engine {
            watches_on,
            watches,
            users,
            outputs,
            ..
        } = self;
        let Some(ids) = watches_on.get(target) else {
            return;
        };
        let Some(t) = users.get(target) else {
            return;
        };
        let mut ended = false;
        for id in ids {
            let Some(w) = watches.get_mut(id) else {
                continue;
            };
            let Some(sent) = &w.sent else { continue };
            let affected = match scope {
                Scope::Presence => w.kind == WatchKind::Presence,
                Scope::Roster(contact) => w.kind == WatchKind::Watchers || w.watcher == *contact,
            };
            if !affected {
                continue;
            }
            let v = verdict(Some(t), w);
            if v.is(sent) {
                continue;
            }
            let state = v.into_state();
            ended |= matches!(state, WatchState::Terminated(_));
            w.sent = Some(state.clone());
            outputs.push_back(Output::Watch { watch: *id, state });
        }
        if ended {
            let dead: Vec<WatchId> = ids
                .iter()
                .copied()
                .filter(|i| {
                    watches
                        .get(i)
                        .is_some_and(|w| matches!(w.sent, Some(WatchState::Terminated(_))))
                })
                .collect();
            for id in dead {
                self.forget_watch(id);
            }
        }
    }
}
