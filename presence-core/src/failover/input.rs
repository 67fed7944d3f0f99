//! What the shell feeds the failover manager.

use super::message::PeerMessage;
use super::moves::BatchId;
use super::service::CriticalService;
use super::state::NodeState;
use crate::assignment::UserId;

/// An event the shell reports to [`super::FailoverNode::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A message arrived from the peer's failover manager.
    FromPeer(PeerMessage),
    /// A critical service stopped running.
    ServiceDown(CriticalService),
    /// A critical service runs again.
    ServiceUp(CriticalService),
    /// The services asked for by [`Output::StartCriticalServices`] are running.
    CriticalServicesStarted,
    /// The services asked for by [`Output::StartCriticalServices`] did not start.
    CriticalServicesFailedToStart,
    /// The shell committed this batch.
    MoveSucceeded(BatchId),
    /// The shell could not commit this batch.
    MoveFailed(BatchId),
    /// The shared store reports that the peer rehomed these users onto itself.
    UsersClaimedByPeer(Vec<UserId>),
    /// The state the peer last wrote to the shared store, read there periodically whatever the
    /// link says. Optional: it keeps a node that stood down from retaking users across a
    /// partition while the peer still serves them.
    PeerStateInStore(NodeState),
    /// The user has at least one session; such users move first on failover.
    SignedIn(UserId),
    /// The user has no session left; such users move first on fallback.
    SignedOut(UserId),
    /// The node is about to shut down or reboot; tell the peer.
    Shutdown,
    /// The assignment changed (new accounts placed, a rebalance): the users whose home is this node and the
    /// peer now, and those the shared store places on this node now. Replaces what [`super::Boot`] said; a
    /// move in progress keeps its batches.
    Homes {
        /// Users whose assigned home is this node.
        own: Vec<UserId>,
        /// Users whose assigned home is the peer.
        peer: Vec<UserId>,
        /// Users the shared store places on this node.
        hosted: Vec<UserId>,
    },
}
