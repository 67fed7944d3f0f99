//! Tunables of failure detection, user moves and client reconnects, with their checks.

use std::time::Duration;

/// Whether users return home by themselves after a stable period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutomaticFallback {
    /// Only a manual fallback brings users home (the default, as in the product).
    #[default]
    Disabled,
    /// Fallback starts after [`Config::fallback_stable_period`] in an eligible case.
    Enabled,
}

/// The failover manager's settings; [`Config::validate`] rejects unsafe combinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Time between two heartbeats sent to the peer.
    pub heartbeat_interval: Duration,
    /// Silence after which the peer is considered down; at least twice the interval.
    pub heartbeat_timeout: Duration,
    /// Silence tolerated while initializing before deciding the peer is down.
    pub initialization_timeout: Duration,
    /// How long the shell may spend connecting to the peer; the core opens no sockets.
    pub connect_timeout: Duration,
    /// How long a critical service must stay down, without interruption, to trigger failover.
    pub critical_service_down_delay: Duration,
    /// Users moved per batch.
    pub users_per_batch: usize,
    /// Pause between two batches.
    pub batch_pause: Duration,
    /// Whether users return home by themselves.
    pub automatic_fallback: AutomaticFallback,
    /// How long the pair must stay unchanged, with no heartbeat missed, before automatic fallback.
    pub fallback_stable_period: Duration,
    /// Logins per second a node absorbs; sets the upper bound of the reconnect spread.
    pub login_rate_per_second: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(60),
            heartbeat_timeout: Duration::from_secs(120),
            initialization_timeout: Duration::from_secs(240),
            connect_timeout: Duration::from_secs(30),
            critical_service_down_delay: Duration::from_secs(90),
            users_per_batch: 25,
            batch_pause: Duration::from_secs(1),
            automatic_fallback: AutomaticFallback::Disabled,
            fallback_stable_period: Duration::from_secs(30 * 60),
            login_rate_per_second: 25,
        }
    }
}

/// A rejected configuration, naming the offending values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A zero interval would flood the peer.
    #[error("heartbeat interval must be positive")]
    ZeroHeartbeatInterval,
    /// A timeout under two intervals fails over on a single late heartbeat.
    #[error("heartbeat timeout {timeout:?} is shorter than twice the interval {interval:?}")]
    HeartbeatTimeoutTooShort {
        /// The configured timeout.
        timeout: Duration,
        /// The configured interval.
        interval: Duration,
    },
    /// Initialization must tolerate at least the normal heartbeat timeout.
    #[error("initialization timeout {init:?} is shorter than the heartbeat timeout {timeout:?}")]
    InitializationTimeoutTooShort {
        /// The configured initialization timeout.
        init: Duration,
        /// The configured heartbeat timeout.
        timeout: Duration,
    },
    /// A connect attempt outlasting the heartbeat timeout could never succeed in time.
    #[error("connect timeout {connect:?} is not shorter than the heartbeat timeout {timeout:?}")]
    ConnectTimeoutTooLong {
        /// The configured connect timeout.
        connect: Duration,
        /// The configured heartbeat timeout.
        timeout: Duration,
    },
    /// Batches of zero users never finish.
    #[error("users per batch must be positive")]
    ZeroBatchSize,
    /// A zero login rate makes the reconnect spread infinite.
    #[error("login rate must be positive")]
    ZeroLoginRate,
}

impl Config {
    /// Checks the settings against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat_interval.is_zero() {
            return Err(ConfigError::ZeroHeartbeatInterval);
        }
        if self.heartbeat_timeout < self.heartbeat_interval * 2 {
            return Err(ConfigError::HeartbeatTimeoutTooShort {
                timeout: self.heartbeat_timeout,
                interval: self.heartbeat_interval,
            });
        }
        if self.initialization_timeout < self.heartbeat_timeout {
            return Err(ConfigError::InitializationTimeoutTooShort {
                init: self.initialization_timeout,
                timeout: self.heartbeat_timeout,
            });
        }
        if self.connect_timeout >= self.heartbeat_timeout {
            return Err(ConfigError::ConnectTimeoutTooLong {
                connect: self.connect_timeout,
                timeout: self.heartbeat_timeout,
            });
        }
        if self.users_per_batch == 0 {
            return Err(ConfigError::ZeroBatchSize);
        }
        if self.login_rate_per_second == 0 {
            return Err(ConfigError::ZeroLoginRate);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_values_and_valid() {
        let c = Config::default();
        assert_eq!(c.heartbeat_interval, Duration::from_secs(60));
        assert_eq!(c.connect_timeout, Duration::from_secs(30));
        assert_eq!(c.critical_service_down_delay, Duration::from_secs(90));
        assert_eq!(c.users_per_batch, 25);
        assert_eq!(c.automatic_fallback, AutomaticFallback::Disabled);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn rejects_unsafe_combinations() {
        let base = Config::default();
        let short = Config {
            heartbeat_timeout: Duration::from_secs(119),
            ..base.clone()
        };
        assert_eq!(
            short.validate(),
            Err(ConfigError::HeartbeatTimeoutTooShort {
                timeout: Duration::from_secs(119),
                interval: Duration::from_secs(60)
            })
        );
        let zero = Config {
            heartbeat_interval: Duration::ZERO,
            ..base.clone()
        };
        assert_eq!(zero.validate(), Err(ConfigError::ZeroHeartbeatInterval));
        let init = Config {
            initialization_timeout: Duration::from_secs(60),
            ..base.clone()
        };
        assert!(matches!(
            init.validate(),
            Err(ConfigError::InitializationTimeoutTooShort { .. })
        ));
        let connect = Config {
            connect_timeout: Duration::from_secs(120),
            ..base.clone()
        };
        assert!(matches!(
            connect.validate(),
            Err(ConfigError::ConnectTimeoutTooLong { .. })
        ));
        let batch = Config {
            users_per_batch: 0,
            ..base.clone()
        };
        assert_eq!(batch.validate(), Err(ConfigError::ZeroBatchSize));
        let rate = Config {
            login_rate_per_second: 0,
            ..base
        };
        assert_eq!(rate.validate(), Err(ConfigError::ZeroLoginRate));
    }
}
