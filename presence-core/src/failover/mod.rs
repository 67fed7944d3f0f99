//! The redundancy-pair failover manager: detection, state machine and user moves (sans-IO).
//!
//! Each node of a two-node presence redundancy group with high availability enabled runs one
//! [`FailoverNode`]. The shell feeds it what happened ([`Input`]: peer messages, service
//! up/down, move outcomes, store notifications), administrator commands ([`AdminCommand`]) and
//! the time, and carries out what it asks ([`Output`]: messages for the peer, user-move batches,
//! service stop/start, ended sessions with reconnect delays, state changes to persist).
//!
//! # How ownership stays single
//!
//! A user is served by the node the shared store places it on. Only the receiving node moves
//! users, in batches the shell applies to the store atomically; the store then tells the losing
//! node ([`Input::UsersClaimedByPeer`]), which ends those sessions. A node whose services stop
//! (manual failover, a critical service or the database down) drops all its users at once. So a
//! user is never hosted by both nodes; it may be hosted by neither only between a drop and the
//! batch that picks it up.
//!
//! Across a partition both nodes may see the other as down. The lower-numbered node acts first
//! (the other waits one extra heartbeat interval); a node whose users are claimed stands down
//! to Failed Over / Peer Down. A claim proves the peer alive, so the node that stood down keeps
//! watching for the peer's silence, postponed by claims and by the peer's state as read from
//! the store ([`Input::PeerStateInStore`]) while that state serves users; if the peer then dies
//! or fails, the node takes the users again. When two nodes pull the same users at once, the
//! higher-numbered one gives way.
//!
//! # State diagram
//!
//! Generated from [`TRANSITIONS`]; a test fails if this block and the table disagree.
//!
//! ```mermaid
//! stateDiagram-v2
//!     [*] --> Initializing
//!     Initializing --> Normal: peer seen, both healthy
//!     Initializing --> Idle: restarted after a manual failover
//!     Initializing --> TakingOver: peer silent or failing over, or was backup
//!     Initializing --> TakingBack: restarted while taking back
//!     Initializing --> FallingBack: restarted while falling back
//!     Initializing --> FailedOver: peer hosts our users
//!     Initializing --> FailedOverCSNR: peer hosts our users, service down
//!     Initializing --> FailedMode: peer failed, or unhealthy alone
//!     Initializing --> Unknown: pair misconfigured
//!     Normal --> FailingOver: admin failover, service or database down
//!     Normal --> TakingOver: peer down, rebooted, failing over, failed without users, or failed over to us unserved
//!     Normal --> FailedOver: users claimed across a partition
//!     Normal --> FailedOverCSNR: users claimed while a service is down
//!     Normal --> FailedMode: service down, peer cannot take over
//!     TakingOver --> BackupMode: all users moved
//!     TakingOver --> FailedOver: lost a takeover race
//!     TakingOver --> FailedOverCSNR: lost a takeover race, service down
//!     TakingOver --> FailedMode: move or service failed
//!     FailingOver --> Idle: admin failover done
//!     FailingOver --> FailedOver: automatic failover done, services up
//!     FailingOver --> FailedOverCSNR: automatic failover done
//!     FailingOver --> FailedMode: peer failed or vanished
//!     BackupMode --> FallingBack: fallback
//!     BackupMode --> TakingOver: peer down while missing users
//!     BackupMode --> FailingOver: auto recover: backup lost a service
//!     BackupMode --> FailedOver: users claimed across a partition
//!     BackupMode --> FailedOverCSNR: users claimed, service down
//!     BackupMode --> FailedMode: service down, peer cannot take over
//!     Idle --> TakingBack: admin fallback
//!     Idle --> FailedMode: peer failed
//!     FailedOver --> TakingBack: fallback
//!     FailedOver --> TakingOver: backup down, or auto recover
//!     FailedOver --> FailedOverCSNR: service down
//!     FailedOver --> FailedMode: peer failed
//!     FailedOverCSNR --> FailedOver: services up
//!     FailedOverCSNR --> FailedMode: peer failed
//!     TakingBack --> Normal: all users back
//!     TakingBack --> TakingOver: peer down
//!     TakingBack --> FailedMode: start or move failed
//!     TakingBack --> FailedOver: lost a takeback race
//!     TakingBack --> FailedOverCSNR: lost a takeback race, service down
//!     FallingBack --> Normal: peer took its users back
//!     FallingBack --> TakingOver: peer down
//!     FallingBack --> FailedMode: peer failed or service down
//!     FailedMode --> FailedMode: peer restarted
//!     FailedMode --> Initializing: admin recovery
//!     Unknown --> Initializing: admin recovery
//! ```
//!
//! # Where the source tables were ambiguous, and what we decided
//!
//! 1. *Groups and nodes.* "Up to 6 nodes in presence redundancy groups of 1-2 nodes" and "up to
//!    3 groups" disagree once single-node groups exist: we enforce both (at most 3 groups of at
//!    most 2 nodes). Members of a group cannot change while its HA is on.
//! 2. *Reason of the healthy pair.* The table writes "Normal" in the reason column, but the list
//!    of reasons has no such entry; we added [`Reason::Normal`].
//! 3. *"Backup Activated" / "Failover Affected Services".* These are not in the list of states.
//!    We model auto-recovery as a failover in the other direction: the backup that lost its
//!    database or a service goes Failing Over, then Failed Over with Critical Services Not
//!    Running; the Failed Over peer goes Taking Over, then Running in Backup Mode; both carry
//!    Auto Recover Database Failure or Auto Recover Critical Service Down. If the peer is not
//!    Failed Over (Idle, or its services are down), the backup goes Running in Failed Mode /
//!    Critical Service Down (or Database Failure) and the peer follows.
//! 4. *Peer down vs peer reboot.* Heartbeats alone cannot tell them apart. A node that shuts
//!    down says goodbye ([`PeerMessage::Goodbye`]); a Normal peer that comes back with a new boot
//!    epoch also counts as rebooted (its sessions died). Only silence is Peer Down.
//! 5. *Link cut with both nodes alive.* The docs show only the survivor. See "How ownership
//!    stays single": the lower-numbered node takes over, the other stands down to Failed Over /
//!    Peer Down; once the link returns this is the "restored link" case of automatic fallback.
//! 6. *Who moves users.* The docs say the backup moves them on failover; we let the receiving
//!    node move them in both directions (Taking Over and Taking Back), so fallback failures are
//!    Take Back Users Failed. The node giving users back (Falling Back) keeps serving each user
//!    until the store reports it claimed, rather than disconnecting all at once.
//! 7. *Critical-service delay for the database.* Applied to the database too; it reports
//!    Database Failure instead of Critical Service Down.
//! 8. *Peer mirrors failure.* "Running in Failed Mode / … / same" is read as: whenever a node
//!    enters Running in Failed Mode, its peer follows with the same reason, unless the peer is
//!    Normal or already failed. A Normal peer keeps serving its own users, and takes over the
//!    failed node's users only if the failed node no longer hosts all of them (it failed while
//!    handing them over), since nobody else would.
//! 9. *Running in Failed Mode / Unknown.* Entered by a node that restarts and finds its peer
//!    failed; the failed peer then switches its own reason to Unknown as the table shows.
//!    [`NodeState::Unknown`] is entered only when the pair is misconfigured (a status names
//!    another node as sender or receiver) while initializing.
//! 10. *Recovery.* Allowed when this node is Running in Failed Mode or Unknown and the peer is
//!     too, or cannot be heard (it crashed, then this node's takeover failed: without this the
//!     node stayed failed for good); both managers restart and decide from which users
//!     each node holds: a node holding the peer's users becomes the backup, a node missing some
//!     of its own takes them back, otherwise both are Normal.
//! 11. *Restarts.* The shell persists each [`StateChange`] and passes the last one in [`Boot`].
//!     A node restarted while Idle, Running in Backup Mode, Taking Over, Taking Back or Falling
//!     Back returns to that state with reason Initialization (the table's restart rows);
//!     otherwise it decides from its peer's state as in 10. A node that hears nothing within
//!     the initialization timeout takes over with Peer Down During Initialization.
//! 12. *Missed heartbeat for automatic fallback.* A gap of more than 1.5 intervals between two
//!     heartbeats counts as missed and restarts the 30-minute stable period, as does any state
//!     change on either node. The three eligible cases are the backup's reasons Critical Service
//!     Down, Peer Reboot and Peer Down, with the peer Failed Over (services up). The source says
//!     once "10 minutes"; every other mention says 30, which is the default.
//! 13. *Stopped services.* Manual failover stops services; the resulting outage is not fed as
//!     service-down input, so it never counts as a critical-service failure. Fallback from Idle
//!     starts them first and fails with Start of Critical Services Failed if they do not start.
//! 14. *Races the table does not list.* Both nodes failing over at the same moment, or a
//!     failover announcement crossing the peer's own failure: nobody can take the users, so the
//!     node goes Running in Failed Mode. A node that initializes while its peer is Failing Over
//!     takes the users over.
//! 15. *Reconnect window.* The upper limit is computed (lower + users ÷ login rate), not a
//!     separate setting; hints are spread evenly over it, without randomness.
//! 16. *Admin preconditions.* Besides this node being Normal (failover) or Idle / Failed Over
//!     (fallback), we require the peer to be reachable and Normal (failover) or in backup mode
//!     (fallback); the docs only say the buttons appear "in the correct states".
//! 17. *Connect timeout.* The core opens no sockets; the setting is validated (shorter than the
//!     heartbeat timeout) and left to the shell. The initialization timeout must be at least
//!     the heartbeat timeout (the docs only recommend twice).
//! 18. *Assignment.* "Round-robin" is implemented as least-loaded with ties broken by slot order
//!     (1A, 2A, 3A, 1B, 2B, 3B), which equals round-robin from an even start and stays even when
//!     users leave. Rebalancing moves only surplus users, so it ends as few sessions as
//!     possible; nodes the caller marks ineligible (the docs: only Normal and Running in Backup
//!     Mode take part) neither give nor receive users. Turning HA off does not touch homes:
//!     failed-over users stay on the backup, as the docs say.

mod boot;
mod command;
mod config;
mod error;
mod input;
mod machine;
mod message;
mod moves;
mod output;
mod reason;
mod reconnect;
mod service;
mod state;
mod transition;

#[cfg(test)]
mod tests;

pub use boot::{Boot, BootError};
pub use command::AdminCommand;
pub use config::{AutomaticFallback, Config, ConfigError};
pub use error::Refusal;
pub use input::Input;
pub use machine::FailoverNode;
pub use message::{PeerMessage, Status};
pub use moves::{BatchId, MoveBatch};
pub use output::{Output, StateChange};
pub use reason::Reason;
pub use reconnect::{ReconnectHint, reconnect_hints, reconnect_window};
pub use service::CriticalService;
pub use state::NodeState;
pub use transition::{TRANSITIONS, is_allowed, render_mermaid};
