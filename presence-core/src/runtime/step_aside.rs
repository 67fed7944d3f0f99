//! Calls that may block — a store call, a compliance write, a shell's full sink — made while an I/O worker runs
//! the engine inline ([`super::Handle::submit_here`]): the worker steps aside first (`block_in_place`), handing
//! its other connections to another thread instead of stalling them behind the call. On the engine's own
//! thread, a service thread or a current-thread runtime the call runs in place, as it always did.
//!
//! Stepping aside costs a thread hand-off, about what queuing the input for the engine's thread costs; it is
//! paid only when the input turns out to need the store, which an inline run cannot know before it runs. A
//! message between two online users without archiving needs none, and is then handled, delivered and written
//! on the worker that read it without waking another thread.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `f`, which may block, off the I/O worker if called on one.
pub(crate) fn may_block<R>(f: impl FnOnce() -> R) -> R {
    match Handle::try_current() {
        Ok(rt) if rt.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
