//! Watches: a subscription to one user's presence that is not an XMPP session, such as a SIP SUBSCRIBE dialog
//! (RFC 3856 `presence`, RFC 3857 `presence.winfo`).
//!
//! The shell opens a watch with `Input::Watch` and the engine answers with `Output::Watch` carrying the watch's
//! state: once when the watch has been looked at, then every time that state or what it shows changes. A watch
//! sees the target's *composed* presence (DESIGN §2), authorised by the target's roster and policy exactly as an
//! XMPP contact would be (DESIGN §3). A terminated watch is forgotten by the engine.

use crate::compose::Composed;
use crate::jid::BareJid;

/// The shell's handle for one watch, unique while the watch lives (a new watch with a live id replaces it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchId(pub u64);

/// What a watch is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// The target's composed presence (RFC 3856 event package `presence`).
    Presence,
    /// Who watches the target, for the target itself (RFC 3857 event package `presence.winfo`).
    Watchers,
}

/// Where a watch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchState {
    /// The target has not answered the watcher's subscription request yet.
    Pending,
    /// The watch is authorised; this is what the watcher sees now.
    Active(WatchView),
    /// The watch is over and forgotten by the engine.
    Terminated(WatchEnd),
}

/// What an active watch shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchView {
    /// The target's composed presence, or [`Composed::UNAVAILABLE`] when it is offline or hides its presence from
    /// this watcher (polite blocking).
    Presence(Composed),
    /// The target's watchers, sorted by address.
    Watchers(Vec<WatcherInfo>),
}

/// One entry of a watcher list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherInfo {
    /// The contact that receives, or asked to receive, the target's presence.
    pub watcher: BareJid,
    /// Whether it has been approved.
    pub status: WatcherStatus,
}

/// Whether a watcher on a watcher list has been approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatcherStatus {
    /// Its request awaits the target's answer.
    Pending,
    /// It receives the target's presence.
    Active,
}

/// Why a watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEnd {
    /// The target refused or cancelled the subscription, or the watch asked for something only the target may see.
    Rejected,
    /// There is no such user here (no account, or a domain this node does not host).
    NoResource,
    /// The target's or the watcher's data could not be loaded: the watch may be opened again later.
    StoreUnavailable,
    /// The target is now served by another node of the cluster: subscribe again to reach it there.
    Moved,
}
