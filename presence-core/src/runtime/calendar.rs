//! Calendar presence (DESIGN §2): a [`CalendarConnector`] reads each user's current calendar events from a
//! calendar server, and [`spawn_calendar`] polls it and tells the engine the user's [`CalendarState`] through
//! [`Input::Calendar`], the same input a trusted SIP peer's calendar state takes, so composition (a calendar alone
//! never makes a user available; the "DND in a meeting" setting) is the engine's, shared by both paths.
//!
//! What an event means is decided once for every connector, without I/O, in [`crate::compose::calendar`]
//! ([`CalendarEvent::show_as`], [`state_at`]).
//!
//! A calendar server that is down or slow harms nothing else: each user's fetch is bounded by a timeout and the
//! fetches run at most [`CalendarPolling::concurrency`] at a time on their own task. A failed fetch keeps the
//! events last read for that user and re-decides them against the clock, so a meeting whose end is known still
//! ends on time and an outage never flips everyone to free and back.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info, warn};

use super::{Handle, Location};
use crate::compose::CalendarState;
pub use crate::compose::calendar::{BusyStatus, CalendarEvent, EventStatus, state_at};
use crate::store::StoreError;
use crate::{BareJid, Input};

/// Most events kept per user between polls; a calendar with more current events than this is still decided
/// on the first ones (any one of them already makes the user busy).
const MAX_EVENTS_PER_USER: usize = 64;

/// Why a connector could not read a user's calendar. Messages never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The calendar server could not be reached or broke off.
    #[error("calendar server unreachable: {0}")]
    Unreachable(String),
    /// The calendar server answered with something other than the events.
    #[error("calendar server answered {status}: {detail}")]
    Refused {
        /// The HTTP status (or 0 for a protocol without one).
        status: u16,
        /// What it said, briefly.
        detail: String,
    },
    /// The answer could not be read.
    #[error("unreadable calendar answer: {0}")]
    Malformed(String),
    /// No answer within the polling timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A source of users' calendars: reads the events of `user` that cover the moment `at`.
pub trait CalendarConnector: Send + Sync + 'static {
    /// The events of `user` going on at `at`; a user without a calendar has none.
    fn current_events(
        &self,
        user: &BareJid,
        at: SystemTime,
    ) -> impl Future<Output = Result<Vec<CalendarEvent>, CalendarError>> + Send;
}

/// How [`spawn_calendar`] polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarPolling {
    /// Time from the start of one round over every user to the start of the next (a round that takes longer is
    /// followed by the next at once).
    pub interval: Duration,
    /// Most reads in flight at once.
    pub concurrency: usize,
    /// How long one read may take before it counts as failed.
    pub timeout: Duration,
}

impl Default for CalendarPolling {
    fn default() -> Self {
        CalendarPolling {
            interval: Duration::from_secs(60),
            concurrency: 8,
            timeout: Duration::from_secs(10),
        }
    }
}

/// What the poller keeps of one user between rounds.
#[derive(Debug, Default)]
struct Known {
    /// The events of the last successful read.
    events: Vec<CalendarEvent>,
    /// The state the engine was last told (Free until told otherwise, as the engine starts).
    sent: CalendarState,
}

/// Polls `connector` for every user `users` lists (those served by this node) each `polling.interval`, and
/// submits each change of a user's calendar state to the engine as [`Input::Calendar`]. `users` is called on a
/// blocking thread (it reads the store). The task runs until aborted.
pub fn spawn_calendar<C, U>(
    handle: Handle,
    connector: Arc<C>,
    users: U,
    polling: CalendarPolling,
) -> JoinHandle<()>
where
    C: CalendarConnector,
    U: Fn() -> Result<Vec<BareJid>, StoreError> + Send + Sync + 'static,
{
    let users = Arc::new(users);
    tokio::spawn(async move {
        let mut known: HashMap<BareJid, Known> = HashMap::new();
        let mut failing = false;
        let mut ticks = tokio::time::interval(polling.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let list = users.clone();
            let all = match tokio::task::spawn_blocking(move || list()).await {
                Ok(Ok(all)) => all,
                Ok(Err(e)) => {
                    warn!(error = %e, "calendar: cannot list users; polling again next round");
                    continue;
                }
                Err(e) => {
                    warn!(error = %e, "calendar: listing users failed");
                    continue;
                }
            };
            let here: Vec<BareJid> = all
                .into_iter()
                .filter(|u| matches!(handle.locate(u), Location::Here))
                .collect();
            round(
                &handle,
                &connector,
                &here,
                polling,
                &mut known,
                &mut failing,
            )
            .await;
        }
    })
}

/// One pass over `users`: read each calendar (bounded concurrency and time), decide, tell the engine changes.
async fn round<C: CalendarConnector>(
    handle: &Handle,
    connector: &Arc<C>,
    users: &[BareJid],
    polling: CalendarPolling,
    known: &mut HashMap<BareJid, Known>,
    failing: &mut bool,
) {
    // Users no longer listed (deleted, moved to another node) are forgotten.
    let listed: HashSet<&BareJid> = users.iter().collect();
    known.retain(|u, _| listed.contains(u));
    let mut reads = JoinSet::new();
    let mut next = users.iter();
    let mut failed = 0usize;
    let mut first_error: Option<CalendarError> = None;
    loop {
        while reads.len() < polling.concurrency.max(1) {
            let Some(user) = next.next() else { break };
            let (connector, user, timeout) = (connector.clone(), user.clone(), polling.timeout);
            reads.spawn(async move {
                let now = SystemTime::now();
                let read = tokio::time::timeout(timeout, connector.current_events(&user, now))
                    .await
                    .unwrap_or(Err(CalendarError::Timeout(timeout)));
                (user, read)
            });
        }
        let Some(done) = reads.join_next().await else {
            break;
        };
        let Ok((user, read)) = done else { continue };
        let entry = known.entry(user.clone()).or_default();
        match read {
            Ok(mut events) => {
                events.truncate(MAX_EVENTS_PER_USER);
                entry.events = events;
            }
            Err(e) => {
                debug!(user = %user, error = %e, "calendar read failed; deciding on the events last read");
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
        let state = state_at(&entry.events, SystemTime::now());
        if state != entry.sent {
            match handle.submit(Input::Calendar {
                user: user.clone(),
                state,
            }) {
                Ok(()) => {
                    debug!(user = %user, ?state, "calendar state changed");
                    entry.sent = state;
                }
                // The engine is at its bound: this user is tried again next round.
                Err(r) => {
                    debug!(user = %user, error = %r.error, "engine busy; calendar state next round")
                }
            }
        }
        if entry.events.is_empty() && entry.sent == CalendarState::Free {
            known.remove(&user);
        }
    }
    // A warning when reads start failing and a note when they work again; each failure, and each further
    // failing round of an outage, is at debug, so a long outage does not flood the log.
    match first_error {
        Some(e) if !*failing => {
            warn!(failed, of = users.len(), error = %e, "calendar reads failed; users keep the events last read");
            *failing = true;
        }
        Some(e) => debug!(failed, of = users.len(), error = %e, "calendar reads still failing"),
        None if *failing && !users.is_empty() => {
            info!("calendar reads succeed again");
            *failing = false;
        }
        None => {}
    }
}
