//! Presence: composition on every change, broadcast to watchers and the user's own sessions, probes at sign-in,
//! directed presence, polite blocking (RFC 6121 §4, DESIGN §2).

use std::sync::Arc;

use super::hosting::serves;
use super::{Engine, Output};
use crate::compose::{EndpointPresence, compose};
use crate::feature::avatar::Known;
use crate::jid::{BareJid, FullJid, Jid};
use crate::policy::UserPolicy;
use crate::session::SessionId;
use crate::stanza::{Broadcast, PresenceKind, PresenceView, Stanza};

impl Engine {
    /// Recomposes a user's presence and tells watchers about every session whose view changed.
    pub(super) fn refresh_presence(&mut self, user: &BareJid) {
        let Some(u) = self.users.get_mut(user) else {
            return;
        };
        let none = Default::default();
        let overlays = self.overlays.get(user).unwrap_or(&none);
        let composed = compose(
            u.sessions.iter().filter_map(|s| s.presence.as_ref()),
            overlays,
            u.compose_settings(),
        );
        let mut changed = Vec::new();
        for s in u.sessions.iter_mut() {
            let Some(p) = &s.presence else { continue };
            let (show, status) = composed.apply_to(p);
            let view = PresenceView {
                show,
                status,
                priority: p.priority,
                composed: composed.state,
                extensions: p.extensions.clone(),
                avatar: Known::presence(u.avatar.as_deref(), p.avatar.as_ref()),
            };
            if s.last_broadcast.as_deref() != Some(&view) {
                s.last_broadcast = Some(Arc::new(view));
                changed.push(s.id);
            }
        }
        u.composed = composed;
        for id in changed {
            self.broadcast(user, id);
        }
        self.update_watches(user, super::Scope::Presence);
    }

    /// Sends one session's current view to every watcher allowed to see it and to the user's available sessions.
    fn broadcast(&mut self, user: &BareJid, id: SessionId) {
        let Some(u) = self.users.get(user) else {
            return;
        };
        let Some(s) = u.session(id) else { return };
        let Some(view) = s.last_broadcast.clone() else {
            return;
        };
        let from = Jid::Full(s.jid.clone());
        let own: Vec<(SessionId, FullJid)> = u
            .available_sessions()
            .map(|s| (s.id, s.jid.clone()))
            .collect();
        self.send_to_watchers(user, &from, PresenceKind::Available(view.clone()));
        for (sid, jid) in own {
            self.deliver(
                sid,
                Stanza::Presence {
                    from: from.clone(),
                    to: Jid::Full(jid),
                    kind: PresenceKind::Available(view.clone()),
                },
            );
        }
    }

    /// A session stops being available: everyone who saw it available hears it is gone.
    pub(super) fn go_unavailable(&mut self, user: &BareJid, id: SessionId) {
        let Some(u) = self.users.get_mut(user) else {
            return;
        };
        let Some(s) = u.session_mut(id) else { return };
        let was_available = s.presence.take().is_some();
        // Interests are an available client's (its shell tells them again with its next available presence).
        s.interests.clear();
        let was_seen = s.last_broadcast.take().is_some();
        let directed: Vec<Jid> = s
            .directed
            .take()
            .map_or_else(Vec::new, |d| d.into_iter().collect());
        let from = Jid::Full(s.jid.clone());
        let u = &self.users[user];
        let user_gone = was_available && u.available_sessions().next().is_none();
        // The session itself hears it too while it is still connected (RFC 6121 §4.5.2).
        let own: Vec<(SessionId, FullJid)> = u
            .sessions
            .iter()
            .filter(|o| o.is_available() || o.id == id)
            .map(|o| (o.id, o.jid.clone()))
            .collect();
        for t in directed {
            self.send_presence(from.clone(), t, PresenceKind::Unavailable);
        }
        if was_seen {
            self.send_to_watchers(user, &from, PresenceKind::Unavailable);
            for (sid, jid) in own {
                if self.sessions.contains_key(&sid) {
                    self.deliver(
                        sid,
                        Stanza::Presence {
                            from: from.clone(),
                            to: Jid::Full(jid),
                            kind: PresenceKind::Unavailable,
                        },
                    );
                }
            }
        }
        if user_gone {
            self.tell_available(user, false);
        }
    }

    /// Presence from a session: broadcast (`to: None`) or directed.
    pub(super) fn session_presence(
        &mut self,
        id: SessionId,
        to: Option<Jid>,
        presence: Option<EndpointPresence>,
    ) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        if let Some(target) = to {
            return self.directed_presence(&user, id, target, presence);
        }
        let Some(presence) = presence else {
            // Unavailable to everyone is unavailable to the rooms too (RFC 6121 §4.5.2, XEP-0045 §7.14).
            self.leave_rooms(id);
            self.go_unavailable(&user, id);
            self.refresh_presence(&user);
            return;
        };
        let Some(u) = self.users.get_mut(&user) else {
            return;
        };
        let user_was_available = u.available_sessions().next().is_some();
        let Some(s) = u.session_mut(id) else {
            return;
        };
        let initial = s.presence.is_none();
        let takes_messages = presence.priority >= 0;
        s.presence = Some(presence);
        if !user_was_available {
            // Before anything this sign-in routes (its probes): see `tell_available`.
            self.tell_available(&user, true);
        }
        self.refresh_presence(&user);
        if initial {
            self.sign_in(&user, id);
        }
        if takes_messages {
            self.flush_offline(&user, id);
        }
    }

    /// What a newly available session learns: contacts' presence (probes), its own other sessions, and the
    /// subscription requests waiting for an answer (RFC 6121 §3.1.3, §4.2).
    fn sign_in(&mut self, user: &BareJid, id: SessionId) {
        let Some(u) = self.users.get(user) else {
            return;
        };
        let Some(me) = u.session(id) else { return };
        let to = Jid::Full(me.jid.clone());
        let mut deliveries: Vec<Stanza> = Vec::new();
        let mut probes: Vec<BareJid> = Vec::new();
        for contact in u.roster.watched() {
            if !self.is_here(contact) {
                probes.push(contact.clone());
                continue;
            }
            // Local contacts answer from memory: the contact's own roster and policy decide, as for a probe.
            let Some(c) = self.users.get(contact) else {
                continue;
            };
            if !c.roster.subscription(user).shares_to_contact() || !c.policy.shows_presence_to(user)
            {
                continue;
            }
            for s in c.available_sessions() {
                if let Some(view) = &s.last_broadcast {
                    deliveries.push(Stanza::Presence {
                        from: Jid::Full(s.jid.clone()),
                        to: to.clone(),
                        kind: PresenceKind::Available(view.clone()),
                    });
                }
            }
        }
        for s in u.available_sessions().filter(|s| s.id != id) {
            if let Some(view) = &s.last_broadcast {
                deliveries.push(Stanza::Presence {
                    from: Jid::Full(s.jid.clone()),
                    to: to.clone(),
                    kind: PresenceKind::Available(view.clone()),
                });
            }
        }
        for requester in u.roster.pending_requests() {
            deliveries.push(Stanza::Subscription {
                from: requester.clone(),
                to: user.clone(),
                action: crate::roster::SubscriptionAction::Subscribe,
            });
        }
        for stanza in deliveries {
            self.deliver(id, stanza);
        }
        for contact in probes {
            self.out(Output::Route(Stanza::Presence {
                from: Jid::Bare(user.clone()),
                to: Jid::Bare(contact),
                kind: PresenceKind::Probe,
            }));
        }
    }

    fn directed_presence(
        &mut self,
        user: &BareJid,
        id: SessionId,
        target: Jid,
        presence: Option<EndpointPresence>,
    ) {
        let Some(u) = self.users.get_mut(user) else {
            return;
        };
        let subscribed = u.roster.subscription(target.bare()).shares_to_contact();
        let composed = u.composed.clone();
        let known = u.avatar.clone();
        let Some(s) = u.session_mut(id) else { return };
        let from = Jid::Full(s.jid.clone());
        let kind = match presence {
            Some(p) => {
                // Subscribers hear about the session's unavailability anyway; only others need remembering.
                if !subscribed {
                    s.directed.get_or_insert_default().insert(target.clone());
                }
                let (show, status) = composed.apply_to(&p);
                PresenceKind::Available(Arc::new(PresenceView {
                    show,
                    status,
                    priority: p.priority,
                    composed: if s.is_available() {
                        composed.state
                    } else {
                        p.show.state()
                    },
                    extensions: p.extensions.clone(),
                    avatar: Known::presence(known.as_deref(), p.avatar.as_ref()),
                }))
            }
            None => {
                if let Some(d) = &mut s.directed {
                    d.remove(&target);
                    if d.is_empty() {
                        s.directed = None;
                    }
                }
                PresenceKind::Unavailable
            }
        };
        self.send_presence(from, target, kind);
    }

    /// Sends a presence change of `user`'s to the watchers allowed to see it: to those served here at once,
    /// and to the others through the router as one broadcast (each is one delivery either way, in roster order
    /// per engine). Walks the roster by reference: a watcher served here costs no copy of its address.
    fn send_to_watchers(&mut self, user: &BareJid, from: &Jid, kind: PresenceKind) {
        let Some(u) = self.users.get(user) else {
            return;
        };
        let mut elsewhere = Vec::new();
        for w in visible_watchers(&u.roster, &u.policy) {
            if serves(&self.config, &self.hosting, w) {
                present(&self.users, &mut self.outputs, from, w, None, &kind);
            } else {
                elsewhere.push(w.clone());
            }
        }
        if !elsewhere.is_empty() {
            self.out(Output::RouteBroadcast(Broadcast {
                from: from.clone(),
                kind,
                to: elsewhere,
            }));
        }
    }

    /// Delivers presence to a local address (every available session for a bare one) or hands it to the router.
    pub(super) fn send_presence(&mut self, from: Jid, to: Jid, kind: PresenceKind) {
        if !self.is_here(to.bare()) {
            self.out(Output::Route(Stanza::Presence { from, to, kind }));
            return;
        }
        let resource = match &to {
            Jid::Full(f) => Some(f.resource()),
            Jid::Bare(_) => None,
        };
        present(
            &self.users,
            &mut self.outputs,
            &from,
            to.bare(),
            resource,
            &kind,
        );
    }

    /// A presence from another engine for several users served here: to each, as `inbound_presence` takes a
    /// broadcast presence (the recipient's roster must say it receives the sender's presence), without a
    /// stanza per recipient.
    pub(super) fn inbound_broadcast(&mut self, b: Broadcast) {
        for to in &b.to {
            let Some(u) = self.users.get(to) else {
                continue;
            };
            if u.roster.subscription(b.from.bare()).receives_from_contact() {
                present_to(u, &mut self.outputs, &b.from, None, &b.kind);
            }
        }
    }

    /// Presence from another domain for a local user.
    pub(super) fn inbound_presence(&mut self, from: Jid, to: Jid, kind: PresenceKind) {
        let Some(u) = self.users.get(to.bare()) else {
            if kind == PresenceKind::Probe {
                // An offline user is unavailable; the prober learns nothing else (no error either way).
                self.send_presence(
                    Jid::Bare(to.bare().clone()),
                    from,
                    PresenceKind::Unavailable,
                );
            }
            return;
        };
        match kind {
            PresenceKind::Probe => {
                let allowed = u.roster.subscription(from.bare()).shares_to_contact()
                    && u.policy.shows_presence_to(from.bare());
                let views: Vec<(Jid, Arc<PresenceView>)> = if allowed {
                    u.available_sessions()
                        .filter_map(|s| {
                            s.last_broadcast
                                .clone()
                                .map(|v| (Jid::Full(s.jid.clone()), v))
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                if views.is_empty() {
                    self.send_presence(
                        Jid::Bare(to.bare().clone()),
                        from.clone(),
                        PresenceKind::Unavailable,
                    );
                }
                for (jid, view) in views {
                    self.send_presence(jid, from.clone(), PresenceKind::Available(view));
                }
            }
            kind => {
                // Broadcast presence reaches a user who subscribed to it; directed presence to a session always does.
                let wanted = matches!(to, Jid::Full(_))
                    || u.roster.subscription(from.bare()).receives_from_contact();
                if wanted {
                    self.send_presence(from, to, kind);
                }
            }
        }
    }

    /// Replaces a user's policy; watchers whose view flips between real presence and polite "unavailable" are told.
    pub(super) fn set_policy(&mut self, user: &BareJid, policy: UserPolicy) {
        let Some(u) = self.users.get_mut(user) else {
            return;
        };
        let before: Vec<BareJid> = visible_watchers(&u.roster, &u.policy).cloned().collect();
        u.policy = policy.clone();
        let after: Vec<BareJid> = visible_watchers(&u.roster, &u.policy).cloned().collect();
        let sessions: Vec<(Jid, Option<Arc<PresenceView>>)> = u
            .available_sessions()
            .map(|s| (Jid::Full(s.jid.clone()), s.last_broadcast.clone()))
            .collect();
        self.out(Output::Store(crate::store::StoreWrite::PolicyPut {
            user: user.clone(),
            policy,
        }));
        for w in before.iter().filter(|w| !after.contains(w)) {
            for (from, _) in &sessions {
                self.send_presence(
                    from.clone(),
                    Jid::Bare(w.clone()),
                    PresenceKind::Unavailable,
                );
            }
        }
        for w in after.iter().filter(|w| !before.contains(w)) {
            for (from, view) in &sessions {
                if let Some(v) = view {
                    self.send_presence(
                        from.clone(),
                        Jid::Bare(w.clone()),
                        PresenceKind::Available(v.clone()),
                    );
                }
            }
        }
        // Also re-evaluates the user's watches against the new policy.
        self.refresh_presence(user);
        self.evict_if_idle(user);
    }

    /// Sends every available session's current view of `user` to `watcher` (after an approval).
    pub(super) fn send_current_presence(&mut self, user: &BareJid, watcher: &BareJid) {
        let Some(u) = self.users.get(user) else {
            return;
        };
        if !u.policy.shows_presence_to(watcher) {
            return;
        }
        let views: Vec<(Jid, Arc<PresenceView>)> = u
            .available_sessions()
            .filter_map(|s| {
                s.last_broadcast
                    .clone()
                    .map(|v| (Jid::Full(s.jid.clone()), v))
            })
            .collect();
        for (from, view) in views {
            self.send_presence(
                from,
                Jid::Bare(watcher.clone()),
                PresenceKind::Available(view),
            );
        }
    }

    /// Tells `watcher` that every available session of `user` is gone (after a subscription ended).
    pub(super) fn send_unavailable(&mut self, user: &BareJid, watcher: &BareJid) {
        let Some(u) = self.users.get(user) else {
            return;
        };
        let froms: Vec<Jid> = u
            .available_sessions()
            .map(|s| Jid::Full(s.jid.clone()))
            .collect();
        for from in froms {
            self.send_presence(from, Jid::Bare(watcher.clone()), PresenceKind::Unavailable);
        }
    }
}

/// Delivers presence to a user served here: the session with `resource`, or every available one. Over the
/// engine's fields rather than `&mut self`, so that a broadcast can walk the sender's roster while it pushes;
/// written straight into the output queue, as this runs once per watcher of every presence change.
fn present(
    users: &hashbrown::HashMap<BareJid, Box<super::user::User>>,
    outputs: &mut std::collections::VecDeque<Output>,
    from: &Jid,
    to: &BareJid,
    resource: Option<&str>,
    kind: &PresenceKind,
) {
    if let Some(u) = users.get(to) {
        present_to(u, outputs, from, resource, kind);
    }
}

/// Delivers presence to `u`: the session with `resource`, or every available one.
fn present_to(
    u: &super::user::User,
    outputs: &mut std::collections::VecDeque<Output>,
    from: &Jid,
    resource: Option<&str>,
    kind: &PresenceKind,
) {
    let mut push = |s: &crate::session::Session| {
        outputs.push_back(Output::Deliver {
            session: s.id,
            stanza: Stanza::Presence {
                from: from.clone(),
                to: Jid::Full(s.jid.clone()),
                kind: kind.clone(),
            },
        });
    };
    match resource {
        Some(r) => u.session_by_resource(r).into_iter().for_each(&mut push),
        None => u.available_sessions().for_each(&mut push),
    }
}

/// Watchers that are shown real presence (subscribed, not blocked, sharing on).
fn visible_watchers<'a>(
    roster: &'a crate::roster::Roster,
    policy: &'a UserPolicy,
) -> impl Iterator<Item = &'a BareJid> + 'a {
    roster.watchers().filter(|w| policy.shows_presence_to(w))
}
