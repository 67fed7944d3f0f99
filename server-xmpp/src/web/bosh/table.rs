//! The live BOSH sessions by `sid`. Each entry is the way into a session's driver; the entry leaves when the
//! driver ends. How many there are is bounded by the connection caps: a session is admitted like a TCP
//! connection and holds its place for as long as its stream runs.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};

use super::body::{Answer, Request};

/// One request on its way to its session's driver, with the way back to its HTTP response.
pub struct Incoming {
    /// The parsed request.
    pub request: Request,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Answer>,
}

/// The sessions, by `sid`.
#[derive(Default)]
pub struct Table {
    sessions: Mutex<HashMap<String, mpsc::Sender<Incoming>>>,
}

impl Table {
    /// Adds a session.
    pub fn insert(&self, sid: String, driver: mpsc::Sender<Incoming>) {
        self.lock().insert(sid, driver);
    }

    /// The way into session `sid`, if it is live.
    pub fn get(&self, sid: &str) -> Option<mpsc::Sender<Incoming>> {
        self.lock().get(sid).cloned()
    }

    /// Forgets a session whose driver ended.
    pub fn remove(&self, sid: &str) {
        self.lock().remove(sid);
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Incoming>>> {
        // A panic elsewhere while holding the lock leaves a map that is still consistent.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}
