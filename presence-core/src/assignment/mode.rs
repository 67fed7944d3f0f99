//! How new users are spread over the nodes.

/// The cluster-wide user assignment mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssignmentMode {
    /// Round-robin over every node: 1A, 2A, 3A, 1B, 2B, 3B, 1A ….
    #[default]
    Balanced,
    /// Only the first node of each group takes users: 1A, 2A, 3A, 1A …; the second is a standby.
    ActiveStandby,
    /// Nothing is automatic: the operator assigns every user.
    None,
}
