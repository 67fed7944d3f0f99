//! The states a node of a redundancy pair can be in.

use std::fmt;

/// A node's high-availability state, as shown to the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeState {
    /// Just started; waiting to hear the peer before deciding (transition).
    Initializing,
    /// Services stopped after a manual failover; serves nobody until a fallback.
    Idle,
    /// Serving its own users; the peer is healthy (stable).
    Normal,
    /// Serving its own users and the peer's (stable).
    RunningInBackupMode,
    /// Moving the peer's users onto this node (transition).
    TakingOver,
    /// Handing its users to the peer (transition).
    FailingOver,
    /// Its users live on the peer; its services run, so it is ready for fallback (stable).
    FailedOver,
    /// Its users live on the peer and some critical service is down (stable).
    FailedOverCriticalServicesNotRunning,
    /// Handing the peer's users back to it (transition).
    FallingBack,
    /// Taking its own users back from the peer (transition).
    TakingBack,
    /// Something went wrong during a transition or in backup mode; needs recovery.
    RunningInFailedMode,
    /// The pair is not set up consistently.
    Unknown,
}

impl NodeState {
    /// Every state, in declaration order.
    pub const ALL: [Self; 12] = [
        Self::Initializing,
        Self::Idle,
        Self::Normal,
        Self::RunningInBackupMode,
        Self::TakingOver,
        Self::FailingOver,
        Self::FailedOver,
        Self::FailedOverCriticalServicesNotRunning,
        Self::FallingBack,
        Self::TakingBack,
        Self::RunningInFailedMode,
        Self::Unknown,
    ];

    /// Whether this is a transition state (users may be moving; HA may not be switched).
    pub fn is_transition(self) -> bool {
        matches!(
            self,
            Self::Initializing
                | Self::TakingOver
                | Self::FailingOver
                | Self::FallingBack
                | Self::TakingBack
        )
    }

    /// Whether a node in this state keeps serving the users it hosts.
    pub fn serves_users(self) -> bool {
        matches!(
            self,
            Self::Normal
                | Self::RunningInBackupMode
                | Self::TakingOver
                | Self::TakingBack
                | Self::FallingBack
        )
    }

    /// Whether users may be rebalanced onto or off a node in this state (the docs allow only
    /// Normal and Running in Backup Mode).
    pub fn allows_rebalance(self) -> bool {
        matches!(self, Self::Normal | Self::RunningInBackupMode)
    }

    /// Whether the node counts as failed for a manual recovery.
    pub fn is_failed(self) -> bool {
        matches!(self, Self::RunningInFailedMode | Self::Unknown)
    }

    /// A short identifier without spaces, used in the state diagram.
    pub fn diagram_id(self) -> &'static str {
        match self {
            Self::Initializing => "Initializing",
            Self::Idle => "Idle",
            Self::Normal => "Normal",
            Self::RunningInBackupMode => "BackupMode",
            Self::TakingOver => "TakingOver",
            Self::FailingOver => "FailingOver",
            Self::FailedOver => "FailedOver",
            Self::FailedOverCriticalServicesNotRunning => "FailedOverCSNR",
            Self::FallingBack => "FallingBack",
            Self::TakingBack => "TakingBack",
            Self::RunningInFailedMode => "FailedMode",
            Self::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Initializing => "Initializing",
            Self::Idle => "Idle",
            Self::Normal => "Normal",
            Self::RunningInBackupMode => "Running in Backup Mode",
            Self::TakingOver => "Taking Over",
            Self::FailingOver => "Failing Over",
            Self::FailedOver => "Failed Over",
            Self::FailedOverCriticalServicesNotRunning => {
                "Failed Over with Critical Services Not Running"
            }
            Self::FallingBack => "Falling Back",
            Self::TakingBack => "Taking Back",
            Self::RunningInFailedMode => "Running in Failed Mode",
            Self::Unknown => "Unknown",
        })
    }
}
