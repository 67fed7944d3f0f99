//! Batches of users moved between the two nodes of a pair.

use std::collections::{BTreeSet, VecDeque};

use crate::assignment::UserId;
use crate::cluster::NodeId;

/// Identifies one batch so its outcome can be matched when it comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchId(pub u64);

/// Users the shell must rehome onto `to` in the shared store, reporting the outcome back.
///
/// The shell applies the batch atomically (each user's home becomes `to`), then feeds
/// [`super::Input::MoveSucceeded`] or [`super::Input::MoveFailed`] to this node and
/// [`super::Input::UsersClaimedByPeer`] to the node that lost the users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveBatch {
    /// The batch's identity.
    pub id: BatchId,
    /// The users to rehome, in move order.
    pub users: Vec<UserId>,
    /// The node that will serve them.
    pub to: NodeId,
}

/// Which way users travel; it decides the order and the failure reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MoveKind {
    /// Taking the peer's users (and any of our own the peer holds): signed-in users first.
    TakeOver,
    /// Taking our own users back: signed-out users first.
    TakeBack,
}

/// The remaining batches of a move and the one currently with the shell.
#[derive(Debug, Clone)]
pub(crate) struct MovePlan {
    pub(crate) kind: MoveKind,
    pub(crate) queue: VecDeque<Vec<UserId>>,
    pub(crate) in_flight: Option<(BatchId, Vec<UserId>)>,
    pub(crate) next_at: Option<std::time::Instant>,
}

impl MovePlan {
    /// Orders `users` for `kind` and cuts them into batches of `size`.
    pub(crate) fn new(
        kind: MoveKind,
        users: impl IntoIterator<Item = UserId>,
        signed_in: &BTreeSet<UserId>,
        size: usize,
        now: std::time::Instant,
    ) -> Self {
        let (online, offline): (Vec<_>, Vec<_>) =
            users.into_iter().partition(|u| signed_in.contains(u));
        let ordered: Vec<UserId> = match kind {
            MoveKind::TakeOver => online.into_iter().chain(offline).collect(),
            MoveKind::TakeBack => offline.into_iter().chain(online).collect(),
        };
        Self {
            kind,
            queue: ordered.chunks(size).map(<[UserId]>::to_vec).collect(),
            in_flight: None,
            next_at: Some(now),
        }
    }
}
