//! Critical services and the rule that only a continuous outage counts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::reason::Reason;

/// A service whose outage makes the node unfit to serve users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CriticalService {
    /// The node's database; its loss is reported as a database failure.
    Database,
    /// The presence engine.
    PresenceEngine,
    /// The message router.
    Router,
    /// The SIP proxy.
    SipProxy,
    /// The message archiver, when archiving is on.
    MessageArchiver,
    /// The presence datastore.
    PresenceDatastore,
}

/// Tracks when each service went down and which outages have lasted the full delay.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceMonitor {
    down_since: BTreeMap<CriticalService, Instant>,
    confirmed: BTreeSet<CriticalService>,
}

impl ServiceMonitor {
    pub(crate) fn down(&mut self, service: CriticalService, now: Instant) {
        self.down_since.entry(service).or_insert(now);
    }

    /// A service coming back, even briefly, restarts its outage clock: flapping never triggers.
    pub(crate) fn up(&mut self, service: CriticalService) {
        self.down_since.remove(&service);
        self.confirmed.remove(&service);
    }

    pub(crate) fn deadline(&self, delay: Duration) -> Option<Instant> {
        self.down_since
            .iter()
            .filter(|(s, _)| !self.confirmed.contains(*s))
            .map(|(_, t)| *t + delay)
            .min()
    }

    /// Confirms outages that lasted `delay`; true if any new one was confirmed.
    pub(crate) fn confirm_due(&mut self, now: Instant, delay: Duration) -> bool {
        let due: Vec<_> = self
            .down_since
            .iter()
            .filter(|(s, t)| !self.confirmed.contains(*s) && **t + delay <= now)
            .map(|(s, _)| *s)
            .collect();
        self.confirmed.extend(due.iter().copied());
        !due.is_empty()
    }

    pub(crate) fn healthy(&self) -> bool {
        self.confirmed.is_empty()
    }

    /// The reason to report for the confirmed outages; the database takes precedence.
    pub(crate) fn fault(&self) -> Option<Reason> {
        if self.confirmed.contains(&CriticalService::Database) {
            Some(Reason::DatabaseFailure)
        } else if self.confirmed.is_empty() {
            None
        } else {
            Some(Reason::CriticalServiceDown)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_continuous_outage_is_confirmed() {
        let t0 = Instant::now();
        let delay = Duration::from_secs(90);
        let mut m = ServiceMonitor::default();
        m.down(CriticalService::Router, t0);
        assert_eq!(m.deadline(delay), Some(t0 + delay));
        m.up(CriticalService::Router);
        m.down(CriticalService::Router, t0 + Duration::from_secs(60));
        assert!(
            !m.confirm_due(t0 + delay, delay),
            "the flap restarted the clock"
        );
        assert!(m.confirm_due(t0 + Duration::from_secs(150), delay));
        assert_eq!(m.fault(), Some(Reason::CriticalServiceDown));
        m.down(CriticalService::Database, t0 + Duration::from_secs(150));
        m.confirm_due(t0 + Duration::from_secs(240), delay);
        assert_eq!(m.fault(), Some(Reason::DatabaseFailure));
        m.up(CriticalService::Database);
        m.up(CriticalService::Router);
        assert!(m.healthy());
        assert_eq!(m.deadline(delay), None);
    }
}
