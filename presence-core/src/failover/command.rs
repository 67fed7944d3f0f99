//! What an administrator can ask of the failover manager.

/// An administrator's request to the failover manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminCommand {
    /// Move this node's users to the peer and stop its critical services.
    Failover,
    /// Bring this node's users back home.
    Fallback,
    /// Restart the failover managers of both (failed) nodes.
    Recover,
}
