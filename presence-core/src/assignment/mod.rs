//! User assignment: which node is each user's home.
//!
//! Every user has at most one home node; a user with none gets no presence. New users are
//! placed according to the [`AssignmentMode`]; [`Assignments::rebalance`] spreads existing
//! users again after the topology changed. Any change of an existing home is returned as an
//! [`AssignmentChange`] because the shell must end that user's sessions: clients reconnect to
//! the new home.

mod assignments;
mod change;
mod error;
mod mode;
mod user;

pub use assignments::Assignments;
pub use change::AssignmentChange;
pub use error::{AssignmentError, InvalidUserId};
pub use mode::AssignmentMode;
pub use user::UserId;
