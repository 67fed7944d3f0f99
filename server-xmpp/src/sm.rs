//! XEP-0198 Stream Management: the counters and unacknowledged queue of one stream, and the registry of
//! sessions that a new connection of the same user may resume.
//!
//! Decisions:
//! - **Counting.** Every `<message/>`, `<presence/>` and `<iq/>` read after `<enable/>` counts as handled when it
//!   has been read and passed on (to the engine, or answered here); every one written counts as sent. Both
//!   counters wrap at 2^32 (XEP-0198 §4).
//! - **The unacked queue** keeps what was written, rendered, so a resumed stream gets exactly those bytes
//!   again, plus the engine's message for each `<message/>`, so what is never acknowledged can be handed back
//!   to the engine ([`presence_core::Input::HoldUndelivered`]) rather than lost.
//! - **The bound** (`sm_max_unacked`) counts unacknowledged stanzas plus deliveries that arrived while the
//!   connection was gone. Past it the session ends: the stream (if any) gets `<policy-violation/>`, the engine
//!   closes the session as after any lost connection, and the messages among those stanzas are handed back to
//!   be held offline. Nothing is dropped to stay under the bound.
//! - **While detached** (the connection dropped without `</stream>`), the engine session stays bound and its
//!   session channel stays open: the detached task ([`park`]) drains it into the parked state. Contacts see no
//!   change. When the resume timeout passes, the session is closed through the engine's normal path (contacts
//!   see unavailable) and the messages are handed back.
//! - **Resumption ids** are 128 random bits; only the user who enabled a session may resume it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use presence_core::engine::Undelivered;
use presence_core::runtime::{Handle, SessionReceiver, SubmitError, ToSession};
use presence_core::stanza::Stanza as CoreStanza;
use presence_core::{BareJid, FullJid, Input, SessionId};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;
use xmpp_codec::{Element, ns};

use crate::translate::Outgoing;

/// After this many stanzas sent since the last `<r/>`, the server asks for an acknowledgement.
pub const REQUEST_EVERY: u32 = 5;

/// A stanza written and not yet acknowledged.
#[derive(Debug, Clone)]
struct Unacked {
    out: Outgoing,
    message: Option<Undelivered>,
}

/// The client acknowledged more than was sent (XEP-0198 `<handled-count-too-high/>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the client acknowledged {h} stanzas, but only {sent} were sent")]
pub struct TooHigh {
    /// What the client said.
    pub h: u32,
    /// What the server had sent.
    pub sent: u32,
}

/// One stream's acknowledgement state.
#[derive(Debug)]
pub struct Counters {
    /// The resumption id, when the client asked for resumption.
    pub id: Option<String>,
    handled: u32,
    sent: u32,
    acked: u32,
    unacked: VecDeque<Unacked>,
    since_request: u32,
}

impl Counters {
    /// A stream on which management was just enabled.
    pub fn new(id: Option<String>) -> Self {
        Counters {
            id,
            handled: 0,
            sent: 0,
            acked: 0,
            unacked: VecDeque::new(),
            since_request: 0,
        }
    }

    /// One more inbound stanza handled.
    pub fn handled(&mut self) {
        self.handled = self.handled.wrapping_add(1);
    }

    /// The inbound count, for `<a h=…/>` and `<resumed h=…/>`.
    pub fn h(&self) -> u32 {
        self.handled
    }

    /// One more stanza written (with the engine's message, when it is one).
    pub fn sent(&mut self, out: Outgoing, message: Option<Undelivered>) {
        self.sent = self.sent.wrapping_add(1);
        self.since_request = self.since_request.saturating_add(1);
        self.unacked.push_back(Unacked { out, message });
    }

    /// The client has handled `h` of the stanzas sent: the oldest ones leave the queue.
    pub fn ack(&mut self, h: u32) -> Result<(), TooHigh> {
        // The distance from the last acknowledgement, modulo 2^32: an `h` that wrapped past zero still counts
        // forward.
        let newly = h.wrapping_sub(self.acked) as usize;
        if newly > self.unacked.len() {
            return Err(TooHigh { h, sent: self.sent });
        }
        self.unacked.drain(..newly);
        self.acked = h;
        Ok(())
    }

    /// How many written stanzas are not acknowledged yet.
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// What a resumed stream writes again, oldest first.
    pub fn resend(&self) -> impl Iterator<Item = &Outgoing> {
        self.unacked.iter().map(|u| &u.out)
    }

    /// Whether to ask the client for an acknowledgement now (and take it as asked).
    pub fn wants_request(&mut self) -> bool {
        if self.since_request >= REQUEST_EVERY && !self.unacked.is_empty() {
            self.since_request = 0;
            return true;
        }
        false
    }

    /// Copies of the messages among the unacknowledged stanzas, oldest first.
    pub fn unacked_messages(&self) -> Vec<Undelivered> {
        self.unacked
            .iter()
            .filter_map(|u| u.message.clone())
            .collect()
    }

    /// The messages among the unacknowledged stanzas, oldest first, leaving the queue empty.
    pub fn take_messages(&mut self) -> Vec<Undelivered> {
        self.unacked.drain(..).filter_map(|u| u.message).collect()
    }

    #[cfg(test)]
    fn starting_at(sent: u32) -> Self {
        let mut c = Counters::new(None);
        c.sent = sent;
        c.acked = sent;
        c.handled = sent;
        c
    }
}

/// The engine's message inside a delivery, for the unacked queue (`None` for anything else).
pub fn message_of(stanza: &CoreStanza) -> Option<Undelivered> {
    match stanza {
        CoreStanza::Message {
            from, to, message, ..
        } => Some(Undelivered {
            from: from.clone(),
            to: to.clone(),
            message: message.clone(),
        }),
        _ => None,
    }
}

/// `<enabled/>`.
pub fn enabled(id: Option<&str>, max: Duration) -> Element {
    let mut el = Element::new(ns::SM, "enabled");
    if let Some(id) = id {
        el = el
            .with_attr("id", id)
            .with_attr("resume", "true")
            .with_attr("max", max.as_secs().to_string());
    }
    el
}

/// `<a h=…/>`.
pub fn ack(h: u32) -> Element {
    Element::new(ns::SM, "a").with_attr("h", h.to_string())
}

/// `<r/>`.
pub fn request() -> Element {
    Element::new(ns::SM, "r")
}

/// `<resumed/>`.
pub fn resumed(previd: &str, h: u32) -> Element {
    Element::new(ns::SM, "resumed")
        .with_attr("previd", previd)
        .with_attr("h", h.to_string())
}

/// `<failed/>` with a stanza error condition.
pub fn failed(condition: &str) -> Element {
    Element::new(ns::SM, "failed").with_child(Element::new(ns::STANZA_ERRORS, condition))
}

/// A session between connections, or handed from one connection to the next.
#[derive(Debug)]
pub struct Parked {
    /// The engine session.
    pub session: SessionId,
    /// Its address.
    pub jid: FullJid,
    /// Its deliveries.
    pub rx: SessionReceiver,
    /// What was sent and not acknowledged.
    pub counters: Counters,
    /// Deliveries not written yet (arrived while detached, or held by client state indication).
    pub pending: VecDeque<CoreStanza>,
}

impl Parked {
    fn held(&self) -> usize {
        self.counters.unacked() + self.pending.len()
    }
}

/// How a connection that wants a session gets it from whoever holds it.
pub type Claim = oneshot::Sender<Parked>;

struct Entry {
    owner: BareJid,
    claims: mpsc::Sender<Claim>,
}

/// Why a resumption failed (all of them are `<item-not-found/>` to the client: an id of another user must not
/// be told apart from an unknown one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// No resumable session has this id (never had, expired, or ended).
    #[error("no resumable session has that id")]
    Unknown,
    /// The session belongs to another user.
    #[error("the session belongs to another user")]
    NotOwner,
    /// The holder ended the session before handing it over.
    #[error("the session ended before it could be handed over")]
    Gone,
}

/// Resumable sessions by id, whether their connection is up or gone.
#[derive(Default)]
pub struct Registry {
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// Registers a resumable session of `owner` under a fresh unguessable id; its holder listens on the
    /// returned receiver for a new connection's claim.
    pub fn register(&self, owner: BareJid) -> (String, mpsc::Receiver<Claim>) {
        let id: String = crate::random_bytes::<16>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let rx = self.register_as(&id, owner);
        (id, rx)
    }

    /// Lists a resumed session again under the id its client goes on using.
    pub fn register_as(&self, id: &str, owner: BareJid) -> mpsc::Receiver<Claim> {
        let (tx, rx) = mpsc::channel(1);
        self.lock()
            .insert(id.to_owned(), Entry { owner, claims: tx });
        rx
    }

    /// Takes the session `id` for `user`: the holder hands it over on the returned channel.
    pub fn claim(
        &self,
        id: &str,
        user: &BareJid,
    ) -> Result<oneshot::Receiver<Parked>, ResumeError> {
        let mut entries = self.lock();
        match entries.get(id) {
            None => return Err(ResumeError::Unknown),
            Some(e) if &e.owner != user => return Err(ResumeError::NotOwner),
            Some(_) => {}
        }
        let entry = entries.remove(id).expect("looked up under the same lock");
        let (tx, rx) = oneshot::channel();
        // Sent under the lock: a holder that finds its entry gone (see `forget`) finds the claim waiting.
        entry.claims.try_send(tx).map_err(|_| ResumeError::Gone)?;
        Ok(rx)
    }

    /// Removes `id`; `false` when it was gone already (claimed: the claim is waiting for the holder).
    pub fn forget(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    /// How many sessions are resumable.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic elsewhere while holding the lock leaves the map consistent (every change is one call).
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the detached task needs.
#[derive(Clone)]
pub struct Detach {
    /// The engine.
    pub hub: Handle,
    /// The registry the session is listed in.
    pub registry: Arc<Registry>,
    /// How long the session waits for its client.
    pub timeout: Duration,
    /// The bound on unacknowledged plus pending stanzas.
    pub max_unacked: usize,
}

/// Keeps a session whose connection dropped bound for `detach.timeout`, collecting its deliveries, until a new
/// connection claims it, the bound is passed, or the time is up (then it is closed and its messages handed
/// back).
pub fn park(detach: Detach, mut parked: Parked, id: String, mut claims: mpsc::Receiver<Claim>) {
    let session = parked.session;
    // From now on what the session is given wakes its device (XEP-0357), starting with what its client never
    // confirmed. A busy engine misses this notice: the device is then not woken, nothing is lost.
    let _ = detach.hub.submit(Input::Detached {
        session,
        unacked: parked.counters.unacked_messages(),
    });
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + detach.timeout;
        let engine_knows = loop {
            tokio::select! {
                claim = claims.recv() => {
                    if let Some(claim) = claim {
                        match claim.send(parked) {
                            Ok(()) => {
                                reattached(&detach.hub, session).await;
                                return;
                            }
                            Err(back) => parked = back,
                        }
                    }
                    break false;
                }
                msg = parked.rx.recv() => match msg {
                    Some(ToSession::Stanza(s)) => {
                        parked.pending.push_back(s);
                        if parked.held() > detach.max_unacked {
                            debug!(session = ?parked.session, "too much waits for a detached session: ending it");
                            break false;
                        }
                    }
                    Some(ToSession::Flushed { .. } | ToSession::Bound(_) | ToSession::BindRefused(_)) => {}
                    // The engine ended the session (a conflict, a move, shutdown).
                    Some(ToSession::Closed(_)) | None => break true,
                },
                _ = tokio::time::sleep_until(deadline) => break false,
            }
        };
        if !detach.registry.forget(&id) {
            // Claimed at the last moment: the claim is waiting and wins.
            if let Ok(claim) = claims.try_recv() {
                match claim.send(parked) {
                    Ok(()) => {
                        reattached(&detach.hub, session).await;
                        return;
                    }
                    Err(back) => parked = back,
                }
            }
        }
        debug!(session = ?parked.session, "stream management: session not resumed");
        end(&detach.hub, parked, !engine_knows).await;
    });
}

/// Tells the engine a detached session is back, waiting out a busy engine: a session it still took for
/// detached would wake its device for messages its client sees.
async fn reattached(hub: &Handle, session: SessionId) {
    for _ in 0..50 {
        match hub.submit(Input::Reattached { session }) {
            Err(r) if matches!(r.error, SubmitError::Busy { .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => return,
        }
    }
}

/// Ends a session for good: the engine closes it (when `close`), and every message it was given but not
/// confirmed, written or not, goes back to the engine.
pub async fn end(hub: &Handle, mut parked: Parked, close: bool) {
    let user = parked.jid.bare().clone();
    let mut messages = parked.counters.take_messages();
    messages.extend(parked.pending.iter().filter_map(message_of));
    if close {
        hub.close(parked.session);
    }
    // Whatever was on its way to the session before the engine let go of it is undelivered too; the channel
    // ends once the engine has forgotten the session.
    let drain = async {
        while let Some(msg) = parked.rx.recv().await {
            match msg {
                ToSession::Stanza(s) => messages.extend(message_of(&s)),
                ToSession::Closed(_) => break,
                _ => {}
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
    hand_back(hub, user, messages).await;
}

/// Gives undelivered messages back to the engine, waiting out a busy engine (they must not be lost to a
/// momentary overload).
pub async fn hand_back(hub: &Handle, user: BareJid, messages: Vec<Undelivered>) {
    if messages.is_empty() {
        return;
    }
    let mut input = Input::HoldUndelivered { user, messages };
    for _ in 0..50 {
        match hub.submit(input) {
            Ok(()) => return,
            Err(r) if matches!(r.error, SubmitError::Busy { .. }) => {
                input = *r.input;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) => break,
        }
    }
    tracing::warn!("unacknowledged messages could not be handed back to the engine");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(n: u32) -> Outgoing {
        Element::new(ns::CLIENT, "message")
            .with_attr("id", n.to_string())
            .into()
    }

    fn ids(c: &Counters) -> Vec<String> {
        c.resend()
            .map(|o| o.element.attr("id").unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn acks_drop_the_oldest_stanzas_and_a_too_high_count_is_refused() {
        let mut c = Counters::new(None);
        for n in 1..=5 {
            c.sent(out(n), None);
        }
        assert_eq!(c.unacked(), 5);
        c.ack(2).expect("two were sent");
        assert_eq!(ids(&c), ["3", "4", "5"]);
        // The same count again acknowledges nothing new.
        c.ack(2).expect("repeat");
        assert_eq!(c.unacked(), 3);
        assert_eq!(c.ack(9), Err(TooHigh { h: 9, sent: 5 }));
        assert_eq!(c.unacked(), 3, "a refused ack changes nothing");
        c.ack(5).expect("all");
        assert_eq!(c.unacked(), 0);
    }

    #[test]
    fn counters_wrap_at_two_to_the_thirty_second() {
        let mut c = Counters::starting_at(u32::MAX - 1);
        for n in 0..4 {
            c.sent(out(n), None);
            c.handled();
        }
        assert_eq!(c.h(), 2, "inbound count wrapped: MAX-1 + 4");
        // The client's h wraps as well: 1 is three stanzas past MAX-1.
        c.ack(1).expect("wrapped ack");
        assert_eq!(ids(&c), ["3"]);
        c.ack(2).expect("the last one");
        assert_eq!(c.unacked(), 0);
    }

    #[test]
    fn only_messages_are_handed_back_and_requests_come_every_few_stanzas() {
        let mut c = Counters::new(None);
        let msg = Undelivered {
            from: presence_core::Jid::new("bob@x/pc").expect("jid"),
            to: presence_core::Jid::new("alice@x/phone").expect("jid"),
            message: Default::default(),
        };
        for n in 0..REQUEST_EVERY {
            assert!(!c.wants_request());
            c.sent(out(n), (n % 2 == 0).then(|| msg.clone()));
        }
        assert!(c.wants_request());
        assert!(!c.wants_request(), "asked once per window");
        assert_eq!(c.take_messages().len(), 3);
        assert_eq!(c.unacked(), 0);
    }

    #[tokio::test]
    async fn a_session_is_claimed_only_by_its_owner_and_only_once() {
        let registry = Registry::default();
        let alice = BareJid::new("alice@x").expect("jid");
        let mallory = BareJid::new("mallory@x").expect("jid");
        let (id, mut claims) = registry.register(alice.clone());
        assert_eq!(id.len(), 32);
        assert_ne!(registry.register(alice.clone()).0, id, "ids differ");
        assert_eq!(
            registry.claim(&id, &mallory).err(),
            Some(ResumeError::NotOwner)
        );
        assert_eq!(
            registry.claim("bogus", &alice).err(),
            Some(ResumeError::Unknown)
        );
        let _rx = registry.claim(&id, &alice).expect("the owner claims it");
        assert!(claims.try_recv().is_ok(), "the holder sees the claim");
        assert_eq!(
            registry.claim(&id, &alice).err(),
            Some(ResumeError::Unknown)
        );
        assert!(!registry.forget(&id), "claimed already");
    }
}
