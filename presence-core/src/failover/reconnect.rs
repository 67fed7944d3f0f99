//! When disconnected clients should try to sign in again.

use std::time::Duration;

use super::config::Config;
use crate::assignment::UserId;

/// Tells one client how long to wait before signing in again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectHint {
    /// The user whose sessions end.
    pub user: UserId,
    /// Delay before the client should sign in again.
    pub after: Duration,
}

/// The window in which `users` disconnected clients should come back.
///
/// The lower limit is the critical-service-down delay (the peer may still be deciding); the
/// upper limit adds the time the node needs to absorb everybody at its login rate.
pub fn reconnect_window(config: &Config, users: usize) -> (Duration, Duration) {
    let lower = config.critical_service_down_delay;
    let users = u64::try_from(users).unwrap_or(u64::MAX);
    let spread_ms = users.saturating_mul(1000) / u64::from(config.login_rate_per_second.max(1));
    (lower, lower + Duration::from_millis(spread_ms))
}

/// Spreads `users` evenly over the reconnect window, in the given order.
pub fn reconnect_hints(config: &Config, users: Vec<UserId>) -> Vec<ReconnectHint> {
    let n = users.len();
    let (lower, upper) = reconnect_window(config, n);
    let span = upper - lower;
    users
        .into_iter()
        .enumerate()
        .map(|(i, user)| ReconnectHint {
            user,
            // Deterministic even spacing: no randomness needed, and no two clients collide.
            after: lower + span.mul_f64(i as f64 / n as f64),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_spread_from_lower_towards_upper_limit() {
        let config = Config::default();
        let users: Vec<UserId> = (0..100)
            .map(|i| UserId::new(format!("u{i}@x")).unwrap())
            .collect();
        let (lower, upper) = reconnect_window(&config, 100);
        assert_eq!(lower, Duration::from_secs(90));
        assert_eq!(upper, Duration::from_secs(94));
        let hints = reconnect_hints(&config, users);
        assert_eq!(hints[0].after, lower);
        assert!(hints.windows(2).all(|w| w[0].after < w[1].after));
        assert!(hints.iter().all(|h| h.after >= lower && h.after < upper));
    }
}
