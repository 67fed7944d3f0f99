//! Why a node is in its current state.

use std::fmt;

/// The cause recorded with every state change, as shown to the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Nothing is wrong (the table shows "Normal" in the reason column of the healthy pair).
    Normal,
    /// An administrator asked for a failover, fallback or recovery.
    OnAdminRequest,
    /// The failover manager (re)started.
    Initialization,
    /// A critical service stayed down for the whole critical-service-down delay.
    CriticalServiceDown,
    /// The database stayed down for the whole critical-service-down delay.
    DatabaseFailure,
    /// Critical services did not start when taking users back.
    StartOfCriticalServicesFailed,
    /// The peer's heartbeat was lost.
    PeerDown,
    /// The peer announced a shutdown or came back with a new boot epoch.
    PeerReboot,
    /// The peer was never heard while this node initialized.
    PeerDownDuringInitialization,
    /// A batch of users could not be moved while taking over.
    TakeOverUsersFailed,
    /// A batch of users could not be moved while taking back.
    TakeBackUsersFailed,
    /// Users return home by themselves after a stable period.
    AutomaticFallback,
    /// The backup lost its database, so users move to the other node by themselves.
    AutoRecoverDatabaseFailure,
    /// The backup lost a critical service, so users move to the other node by themselves.
    AutoRecoverCriticalServiceDown,
    /// The failover manager restarted while its peer had failed, or the pair is misconfigured.
    Unknown,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Normal => "Normal",
            Self::OnAdminRequest => "On Admin Request",
            Self::Initialization => "Initialization",
            Self::CriticalServiceDown => "Critical Service Down",
            Self::DatabaseFailure => "Database Failure",
            Self::StartOfCriticalServicesFailed => "Start of Critical Services Failed",
            Self::PeerDown => "Peer Down",
            Self::PeerReboot => "Peer Reboot",
            Self::PeerDownDuringInitialization => "Peer Down During Initialization",
            Self::TakeOverUsersFailed => "Take Over Users Failed",
            Self::TakeBackUsersFailed => "Take Back Users Failed",
            Self::AutomaticFallback => "Automatic Fallback",
            Self::AutoRecoverDatabaseFailure => "Auto Recover Database Failure",
            Self::AutoRecoverCriticalServiceDown => "Auto Recover Critical Service Down",
            Self::Unknown => "Unknown",
        })
    }
}
