//! The last warnings and errors of the process for the status page: a `tracing` layer that copies every
//! `WARN` and `ERROR` event into a ring of the last [`KEPT`] entries, each message cut to [`MAX_MESSAGE`] bytes.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Entries the ring keeps; older ones are dropped.
pub const KEPT: usize = 50;

/// Bytes of one entry's text kept (the message and its fields); the rest is cut at a character boundary.
pub const MAX_MESSAGE: usize = 512;

/// One warning or error as the status page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When it was logged, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// `WARN` or `ERROR`.
    pub level: String,
    /// The module that logged it.
    pub target: String,
    /// The message followed by its fields (`key=value`).
    pub message: String,
}

/// The ring of recent warnings and errors; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct RecentErrors {
    entries: Arc<Mutex<VecDeque<LogEntry>>>,
}

impl RecentErrors {
    /// Adds an entry, dropping the oldest past [`KEPT`].
    pub fn push(&self, entry: LogEntry) {
        let mut entries = self.entries.lock();
        if entries.len() == KEPT {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// The entries, newest first.
    pub fn newest_first(&self) -> Vec<LogEntry> {
        self.entries.lock().iter().rev().cloned().collect()
    }

    /// A layer that feeds this ring.
    pub fn layer(&self) -> ErrorLayer {
        ErrorLayer { ring: self.clone() }
    }
}

/// The process's ring: the log subscriber feeds it, the status page reads it.
pub fn global() -> &'static RecentErrors {
    static RING: OnceLock<RecentErrors> = OnceLock::new();
    RING.get_or_init(RecentErrors::default)
}

/// The `tracing` layer behind [`RecentErrors::layer`].
#[derive(Debug, Clone)]
pub struct ErrorLayer {
    ring: RecentErrors,
}

impl<S: Subscriber> Layer<S> for ErrorLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // Lower is more severe: WARN and ERROR only.
        if *meta.level() > Level::WARN {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.ring.push(LogEntry {
            at_ms,
            level: meta.level().to_string(),
            target: meta.target().to_owned(),
            message: text.finish(),
        });
    }
}

/// Collects an event's message and fields into one bounded line.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn finish(self) -> String {
        let mut out = self.message;
        if !self.fields.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&self.fields);
        }
        truncate(&mut out, MAX_MESSAGE);
        out
    }
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // Stop growing once past the bound: what is kept is cut at MAX_MESSAGE anyway.
        if self.message.len() + self.fields.len() > MAX_MESSAGE {
            return;
        }
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.message.len() + self.fields.len() > MAX_MESSAGE {
            return;
        }
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value}", field.name());
        }
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary, marking the cut with `…`.
fn truncate(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn only_warnings_and_errors_are_kept_newest_first_and_bounded() {
        let ring = RecentErrors::default();
        let subscriber = tracing_subscriber::registry().with(ring.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not kept");
            tracing::warn!(peer = "10.0.0.1:5222", "first warning");
            tracing::error!(error = %"disk full", "store commit failed");
        });
        let seen = ring.newest_first();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].level, "ERROR");
        assert_eq!(seen[0].message, "store commit failed error=disk full");
        assert_eq!(seen[1].message, "first warning peer=10.0.0.1:5222");
        assert!(seen[0].at_ms > 0);

        let subscriber = tracing_subscriber::registry().with(ring.layer());
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..KEPT + 10 {
                tracing::warn!(i, "{}", "é".repeat(MAX_MESSAGE));
            }
        });
        let seen = ring.newest_first();
        assert_eq!(seen.len(), KEPT);
        assert!(seen.iter().all(|e| e.message.len() <= MAX_MESSAGE));
        assert!(seen[0].message.ends_with('…'));
    }
}
