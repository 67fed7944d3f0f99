//! The identity of a user as far as assignment and failover care.

use std::fmt;

use super::error::InvalidUserId;

/// A user's bare address (`alice@example.com`), the unit that is assigned and moved.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(String);

impl UserId {
    /// Wraps a bare address; refuses an empty one or one carrying a resource.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidUserId> {
        let id = id.into();
        if id.is_empty() {
            return Err(InvalidUserId::Empty);
        }
        if id.contains('/') {
            return Err(InvalidUserId::HasResource(id));
        }
        Ok(Self(id))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
