//! Calendar presence (DESIGN §2): a [`CalendarConnector`] reads each user's current calendar events from a
//! calendar server, and [`spawn_calendar`] polls it and tells the engine the user's [`CalendarState`] through
//! [`Input::Calendar`], the same input a trusted SIP peer's calendar state takes, so composition (a calendar alone
//! never makes a user available; the "DND in a meeting" setting) is the engine's, shared by both paths.
//!
//! What an event means is decided here, not by each connector ([`CalendarEvent::show_as`]):
//!
//! - cancelled events and transparent ("show as free") events are free;
//! - an event the organiser's server marks out of office (`X-MICROSOFT-CDO-BUSYSTATUS:OOF`, as Exchange and
//!   Outlook write it) is out of office, and so is an **all-day** event categorised `Out of office`, `OOO`,
//!   `Vacation` or `Holiday`, or whose summary starts with `Out of office` or `OOO` (how people mark it by hand
//!   in calendars without that property); a timed event with such a summary is only a meeting;
//! - a tentative event (`STATUS:TENTATIVE`, or `BUSYSTATUS:TENTATIVE`) is tentative, which reads as free;
//! - anything else that is current is busy: "In a meeting".
//!
//! Of a user's current events the strongest wins: out of office, then busy, then tentative.
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
use crate::store::StoreError;
use crate::{BareJid, Input};

/// Most events kept per user between polls; a calendar with more current events than this is still decided
/// on the first ones (any one of them already makes the user busy).
const MAX_EVENTS_PER_USER: usize = 64;

/// The status an event's organiser gave it, where the calendar says so (Exchange's `X-MICROSOFT-CDO-BUSYSTATUS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BusyStatus {
    /// Shown as free.
    Free,
    /// Shown as tentative.
    Tentative,
    /// Shown as busy.
    Busy,
    /// Shown as out of office.
    OutOfOffice,
}

/// An event's `STATUS` (RFC 5545 §3.8.1.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EventStatus {
    /// Confirmed, or no status given.
    #[default]
    Confirmed,
    /// Tentative.
    Tentative,
    /// Cancelled.
    Cancelled,
}

/// One event that covers the moment a connector was asked about, in the terms every calendar has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CalendarEvent {
    /// Its summary (title).
    pub summary: String,
    /// Its categories.
    pub categories: Vec<String>,
    /// Whether it lasts whole days (`DTSTART;VALUE=DATE`).
    pub all_day: bool,
    /// Whether it is transparent: it does not take up the time (`TRANSP:TRANSPARENT`).
    pub transparent: bool,
    /// Its status.
    pub status: EventStatus,
    /// The busy status its calendar gave it, if any.
    pub busy_status: Option<BusyStatus>,
    /// When it ends, if the connector could tell in absolute time; `None` keeps it current until the next
    /// successful read.
    pub ends: Option<SystemTime>,
}

/// Summaries and categories that mark an all-day event as out of office (compared case-insensitively).
const OOO_CATEGORIES: [&str; 4] = ["out of office", "ooo", "vacation", "holiday"];
const OOO_SUMMARY_PREFIXES: [&str; 2] = ["out of office", "ooo"];

impl CalendarEvent {
    /// What the event makes of its user while it lasts (the rules in the module docs).
    pub fn show_as(&self) -> CalendarState {
        if self.status == EventStatus::Cancelled {
            return CalendarState::Free;
        }
        match self.busy_status {
            Some(BusyStatus::OutOfOffice) => return CalendarState::OutOfOffice,
            Some(BusyStatus::Free) => return CalendarState::Free,
            _ => {}
        }
        if self.all_day && self.marked_out_of_office() {
            return CalendarState::OutOfOffice;
        }
        if self.transparent {
            return CalendarState::Free;
        }
        if self.status == EventStatus::Tentative || self.busy_status == Some(BusyStatus::Tentative)
        {
            return CalendarState::Tentative;
        }
        CalendarState::Busy
    }

    fn marked_out_of_office(&self) -> bool {
        let summary = self.summary.trim().to_lowercase();
        self.categories
            .iter()
            .any(|c| OOO_CATEGORIES.contains(&c.trim().to_lowercase().as_str()))
            || OOO_SUMMARY_PREFIXES.iter().any(|p| {
                summary
                    .strip_prefix(p)
                    .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric()))
            })
    }

    /// Whether the event is still going on at `now` (an unknown end is taken as going on).
    pub fn current_at(&self, now: SystemTime) -> bool {
        self.ends.is_none_or(|end| end > now)
    }
}

/// The user's calendar state at `now` from the events last read for them: the strongest of those still going on.
pub fn state_at(events: &[CalendarEvent], now: SystemTime) -> CalendarState {
    let rank = |s: CalendarState| match s {
        CalendarState::Free => 0,
        CalendarState::Tentative => 1,
        CalendarState::Busy => 2,
        CalendarState::OutOfOffice => 3,
    };
    events
        .iter()
        .filter(|e| e.current_at(now))
        .map(CalendarEvent::show_as)
        .max_by_key(|s| rank(*s))
        .unwrap_or_default()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(summary: &str) -> CalendarEvent {
        CalendarEvent {
            summary: summary.into(),
            ..CalendarEvent::default()
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn an_ordinary_current_event_is_a_meeting() {
        assert_eq!(event("Weekly sync").show_as(), CalendarState::Busy);
    }

    #[test]
    fn cancelled_transparent_and_free_events_are_free() {
        let cancelled = CalendarEvent {
            status: EventStatus::Cancelled,
            ..event("Sync")
        };
        let transparent = CalendarEvent {
            transparent: true,
            ..event("Focus time")
        };
        let free = CalendarEvent {
            busy_status: Some(BusyStatus::Free),
            ..event("Optional talk")
        };
        for e in [cancelled, transparent, free] {
            assert_eq!(e.show_as(), CalendarState::Free, "{e:?}");
        }
    }

    #[test]
    fn tentative_by_status_or_busy_status() {
        let by_status = CalendarEvent {
            status: EventStatus::Tentative,
            ..event("Maybe")
        };
        let by_busy = CalendarEvent {
            busy_status: Some(BusyStatus::Tentative),
            ..event("Maybe")
        };
        assert_eq!(by_status.show_as(), CalendarState::Tentative);
        assert_eq!(by_busy.show_as(), CalendarState::Tentative);
    }

    #[test]
    fn out_of_office_by_exchange_status_even_when_timed() {
        let oof = CalendarEvent {
            busy_status: Some(BusyStatus::OutOfOffice),
            ..event("Dentist")
        };
        assert_eq!(oof.show_as(), CalendarState::OutOfOffice);
    }

    #[test]
    fn all_day_events_marked_by_category_or_summary_are_out_of_office() {
        let by_category = CalendarEvent {
            all_day: true,
            categories: vec!["Work".into(), " Vacation ".into()],
            ..event("Trip")
        };
        let by_summary = CalendarEvent {
            all_day: true,
            ..event("OOO: conference in Lisbon")
        };
        let spelled_out = CalendarEvent {
            all_day: true,
            // An all-day out-of-office event is usually shown as free by the client that made it.
            transparent: true,
            ..event("Out of office")
        };
        for e in [by_category, by_summary, spelled_out] {
            assert_eq!(e.show_as(), CalendarState::OutOfOffice, "{e:?}");
        }
    }

    #[test]
    fn out_of_office_words_alone_do_not_make_a_timed_event_or_another_word_out_of_office() {
        let timed = event("Out of office handover");
        let oooh = CalendarEvent {
            all_day: true,
            ..event("Ooohs and aahs workshop")
        };
        let plain_all_day = CalendarEvent {
            all_day: true,
            ..event("Offsite")
        };
        assert_eq!(timed.show_as(), CalendarState::Busy);
        assert_eq!(oooh.show_as(), CalendarState::Busy);
        assert_eq!(plain_all_day.show_as(), CalendarState::Busy);
    }

    #[test]
    fn the_strongest_current_event_wins() {
        let tentative = CalendarEvent {
            status: EventStatus::Tentative,
            ..event("Maybe")
        };
        let ooo = CalendarEvent {
            all_day: true,
            ..event("OOO")
        };
        let now = at(1_000);
        assert_eq!(state_at(&[], now), CalendarState::Free);
        assert_eq!(
            state_at(std::slice::from_ref(&tentative), now),
            CalendarState::Tentative
        );
        assert_eq!(
            state_at(&[tentative.clone(), event("Sync")], now),
            CalendarState::Busy
        );
        assert_eq!(
            state_at(&[event("Sync"), ooo, tentative], now),
            CalendarState::OutOfOffice
        );
    }

    #[test]
    fn an_event_whose_end_has_passed_no_longer_counts() {
        let until_1000 = CalendarEvent {
            ends: Some(at(1_000)),
            ..event("Sync")
        };
        assert_eq!(
            state_at(std::slice::from_ref(&until_1000), at(999)),
            CalendarState::Busy
        );
        assert_eq!(
            state_at(std::slice::from_ref(&until_1000), at(1_000)),
            CalendarState::Free
        );
        // An end the connector could not tell keeps the event until the next read says otherwise.
        let open = CalendarEvent {
            ends: None,
            ..until_1000
        };
        assert_eq!(state_at(&[open], at(5_000)), CalendarState::Busy);
    }
}
