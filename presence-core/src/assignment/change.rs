//! A change of one user's home, which the shell must act on.

use super::user::UserId;
use crate::cluster::NodeId;

/// One user's home changed; when `from` is set, the shell ends the user's sessions there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentChange {
    /// The user whose home changed.
    pub user: UserId,
    /// The previous home, if the user had one.
    pub from: Option<NodeId>,
    /// The new home, or `None` when the user was unassigned.
    pub to: Option<NodeId>,
}

impl AssignmentChange {
    /// Whether the user's current sessions must be ended (the user had a home before).
    pub fn ends_sessions(&self) -> bool {
        self.from.is_some()
    }
}
