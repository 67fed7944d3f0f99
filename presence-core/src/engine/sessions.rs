//! Binding and ending sessions (RFC 6120 §7): resource choice, conflicts, the per-user session limit.

use super::{BindError, CloseReason, Engine, Output};
use crate::jid::BareJid;
use crate::session::{Session, SessionId};

impl Engine {
    pub(super) fn open_session(&mut self, id: SessionId, user: BareJid, resource: Option<String>) {
        if self.sessions.contains_key(&id) {
            self.out(Output::BindRefused {
                session: id,
                reason: BindError::DuplicateSession(id),
            });
            return;
        }
        if self.is_local(&user) && !self.is_here(&user) {
            self.out(Output::BindRefused {
                session: id,
                reason: BindError::ServedElsewhere(user),
            });
            return;
        }
        let limit = self.config.limits.max_sessions_per_user;
        let Some(u) = self.users.get(&user) else {
            self.out(Output::BindRefused {
                session: id,
                reason: BindError::NoSuchUser(user),
            });
            return;
        };
        // The engine picks a resource nobody holds when the client leaves it to the server (RFC 6120 §7.6).
        let resource = resource.unwrap_or_else(|| {
            (0u32..)
                .map(|n| {
                    if n == 0 {
                        format!("r{:x}", id.0)
                    } else {
                        format!("r{:x}-{n}", id.0)
                    }
                })
                .find(|r| u.session_by_resource(r).is_none())
                .expect("an unbounded range always yields a free name")
        });
        let jid = match user.with_resource(&resource) {
            Ok(j) => j,
            Err(e) => {
                self.out(Output::BindRefused {
                    session: id,
                    reason: BindError::BadResource(e),
                });
                return;
            }
        };
        // A second session on the same resource replaces the first (RFC 6120 §7.7.2.2, "override" policy).
        let replaced = u.session_by_resource(jid.resource()).map(|s| s.id);
        if replaced.is_none() && u.sessions.len() >= limit {
            self.out(Output::BindRefused {
                session: id,
                reason: BindError::TooManySessions { user, limit },
            });
            return;
        }
        if let Some(old) = replaced {
            self.end_session(old);
            self.out(Output::Close {
                session: old,
                reason: CloseReason::Conflict,
            });
        }
        let u = self
            .users
            .get_mut(&user)
            .expect("checked above and sessions do not evict while binding");
        // One slot at a time: a first push would make room for four 272-byte sessions, and most users have one
        // (816 bytes of every signed-in user, issue 17's heap profile).
        u.sessions.reserve_exact(1);
        u.sessions.push(Session::new(id, jid.clone()));
        self.sessions.insert(id, user);
        self.out(Output::Bound { session: id, jid });
    }

    pub(super) fn close_session(&mut self, id: SessionId) {
        let Some(user) = self.end_session(id) else {
            return;
        };
        self.evict_if_idle(&user);
    }

    /// Takes a session out: unavailable to whoever saw it, stickiness forgotten, the manual status cleared with the
    /// last session. Returns the user.
    fn end_session(&mut self, id: SessionId) -> Option<BareJid> {
        let user = self.sessions.remove(&id)?;
        self.leave_rooms(id);
        self.go_unavailable(&user, id);
        let u = self.users.get_mut(&user)?;
        u.sessions.retain(|s| s.id != id);
        u.sticky.retain(|_, s| s.session != id);
        if u.sessions.is_empty()
            && let Some(o) = self.overlays.get_mut(&user)
        {
            o.manual = None;
            self.tidy_overlays(&user);
        }
        self.refresh_presence(&user);
        Some(user)
    }
}
