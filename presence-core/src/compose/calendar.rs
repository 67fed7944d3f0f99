//! What a user's calendar events mean for their presence (DESIGN §2), decided here once for every connector
//! (the runtime's CalDAV poller, an embedder's own): sans-IO, the time is an argument.
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

use std::time::SystemTime;

use super::CalendarState;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
