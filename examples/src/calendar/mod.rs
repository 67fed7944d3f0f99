//! `[calendar]`: calendar presence from users' calendars on a CalDAV server (see
//! `presence_core::runtime::calendar` for what an event means and how polling is bounded).

pub mod caldav;

use std::sync::Arc;
use std::time::Duration;

use presence_core::runtime::{self, CalendarPolling, Handle};
use presence_core::store::AccountStore;
use serde::Deserialize;
use tokio::task::JoinHandle;
use tracing::info;

/// `[calendar]`; absent, no calendar is read.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// Which kind of calendar server.
    pub kind: CalendarKind,
    /// Each user's calendar collection, `{user}` standing for the local part of their address
    /// (`https://mail.example.com/dav/{user}/calendar/`).
    pub url: String,
    /// The service account that may read every user's calendar.
    pub username: String,
    /// Its password; never logged.
    pub password: String,
    /// How often every calendar is read.
    #[serde(
        deserialize_with = "crate::config::duration",
        default = "default_poll_interval"
    )]
    pub poll_interval: Duration,
    /// How long one read may take.
    #[serde(
        deserialize_with = "crate::config::duration",
        default = "default_timeout"
    )]
    pub timeout: Duration,
    /// How many reads may be in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

/// `[calendar] kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CalendarKind {
    /// A CalDAV server (RFC 4791).
    Caldav,
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_concurrency() -> usize {
    8
}

impl std::fmt::Debug for CalendarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalendarConfig")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("username", &self.username)
            .field("poll_interval", &self.poll_interval)
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl CalendarConfig {
    /// The first setting that cannot work, as (key, value, problem).
    pub fn problem(&self) -> Option<(&'static str, String, String)> {
        if !self.url.contains("{user}") {
            return Some((
                "calendar.url",
                self.url.clone(),
                "must contain {user}, where each user's local part goes".into(),
            ));
        }
        match self.url.replace("{user}", "user").parse::<hyper::Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {}
            Ok(_) => {
                return Some((
                    "calendar.url",
                    self.url.clone(),
                    "is not an http:// or https:// URL with a host".into(),
                ));
            }
            Err(e) => {
                return Some((
                    "calendar.url",
                    self.url.clone(),
                    format!("is not a URL: {e}"),
                ));
            }
        }
        if self.poll_interval.is_zero() {
            return Some((
                "calendar.poll_interval",
                "0s".into(),
                "would poll without pause (must be positive)".into(),
            ));
        }
        if self.timeout.is_zero() {
            return Some((
                "calendar.timeout",
                "0s".into(),
                "would fail every read (must be positive)".into(),
            ));
        }
        if self.concurrency == 0 {
            return Some((
                "calendar.concurrency",
                "0".into(),
                "would read no calendar (must be at least 1)".into(),
            ));
        }
        None
    }

    /// How the runtime polls.
    pub fn polling(&self) -> CalendarPolling {
        CalendarPolling {
            interval: self.poll_interval,
            concurrency: self.concurrency,
            timeout: self.timeout,
        }
    }
}

/// Starts polling every account of `store` served here; abort the task to stop.
pub fn start<S>(config: &CalendarConfig, hub: Handle, store: Arc<S>) -> JoinHandle<()>
where
    S: AccountStore + Send + Sync + 'static,
{
    info!(
        url = %config.url,
        poll_interval = ?config.poll_interval,
        concurrency = config.concurrency,
        "calendar presence from CalDAV"
    );
    let connector = match config.kind {
        CalendarKind::Caldav => Arc::new(caldav::CalDav::new(
            &config.url,
            &config.username,
            &config.password,
        )),
    };
    runtime::spawn_calendar(
        hub,
        connector,
        move || store.list_accounts(),
        config.polling(),
    )
}
