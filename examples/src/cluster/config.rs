//! `[cluster]` and `[cluster.failover]`: this node's place in a cluster and its failover timers.

use std::time::Duration;

use presence_core::assignment::AssignmentMode;
use presence_core::failover::{self, AutomaticFallback};
use serde::Deserialize;

/// `[cluster]` as written in the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's name, unique in the cluster.
    pub node: String,
    /// Its presence redundancy group: at most two nodes share one.
    pub group: String,
    /// The NATS server nodes talk through.
    pub nats: String,
    /// `"balanced"` (default) or `"active-standby"`.
    #[serde(default = "balanced")]
    pub assignment: String,
    /// Where XMPP clients reach this node (the `<see-other-host/>` target).
    pub advertise_xmpp: Option<String>,
    /// Where SIP endpoints reach this node (the `302` Contact).
    pub advertise_sip: Option<String>,
    /// The failover manager's timers.
    #[serde(default)]
    pub failover: FailoverSection,
}

fn balanced() -> String {
    "balanced".into()
}

/// `[cluster.failover]`: the fields of [`failover::Config`], durations as `"1s"`, `"250ms"`, `"30min"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailoverSection {
    pub heartbeat_interval: String,
    pub heartbeat_timeout: String,
    pub initialization_timeout: String,
    pub connect_timeout: String,
    pub critical_service_down_delay: String,
    pub users_per_batch: usize,
    pub batch_pause: String,
    pub automatic_fallback: bool,
    pub fallback_stable_period: String,
    pub login_rate_per_second: u32,
}

impl Default for FailoverSection {
    fn default() -> Self {
        // The source product's defaults, which `failover::Config::default` holds too.
        FailoverSection {
            heartbeat_interval: "60s".into(),
            heartbeat_timeout: "120s".into(),
            initialization_timeout: "240s".into(),
            connect_timeout: "30s".into(),
            critical_service_down_delay: "90s".into(),
            users_per_batch: 25,
            batch_pause: "1s".into(),
            automatic_fallback: false,
            fallback_stable_period: "30min".into(),
            login_rate_per_second: 25,
        }
    }
}

/// A `[cluster]` value that parsed but cannot be used: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster.{key} = {value:?} {problem}")]
pub struct ClusterConfigError {
    /// The key.
    pub key: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong.
    pub problem: String,
}

impl ClusterConfig {
    /// The assignment mode named by `assignment`.
    pub fn assignment_mode(&self) -> Result<AssignmentMode, ClusterConfigError> {
        match self.assignment.as_str() {
            "balanced" => Ok(AssignmentMode::Balanced),
            "active-standby" => Ok(AssignmentMode::ActiveStandby),
            other => Err(ClusterConfigError {
                key: "assignment",
                value: other.into(),
                problem: "is not \"balanced\" or \"active-standby\"".into(),
            }),
        }
    }

    /// The failover manager's settings, checked against each other.
    pub fn failover_config(&self) -> Result<failover::Config, ClusterConfigError> {
        let f = &self.failover;
        let d = |key: &'static str, value: &str| {
            parse_duration(value).map_err(|problem| ClusterConfigError {
                key,
                value: value.into(),
                problem,
            })
        };
        let config = failover::Config {
            heartbeat_interval: d("failover.heartbeat_interval", &f.heartbeat_interval)?,
            heartbeat_timeout: d("failover.heartbeat_timeout", &f.heartbeat_timeout)?,
            initialization_timeout: d(
                "failover.initialization_timeout",
                &f.initialization_timeout,
            )?,
            connect_timeout: d("failover.connect_timeout", &f.connect_timeout)?,
            critical_service_down_delay: d(
                "failover.critical_service_down_delay",
                &f.critical_service_down_delay,
            )?,
            users_per_batch: f.users_per_batch,
            batch_pause: d("failover.batch_pause", &f.batch_pause)?,
            automatic_fallback: if f.automatic_fallback {
                AutomaticFallback::Enabled
            } else {
                AutomaticFallback::Disabled
            },
            fallback_stable_period: d(
                "failover.fallback_stable_period",
                &f.fallback_stable_period,
            )?,
            login_rate_per_second: f.login_rate_per_second,
        };
        config.validate().map_err(|e| ClusterConfigError {
            key: "failover",
            value: String::new(),
            problem: e.to_string(),
        })?;
        Ok(config)
    }

    /// Checks every value, so a bad file is refused at start rather than when failover needs it.
    pub fn validate(&self) -> Result<(), ClusterConfigError> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        for (key, value) in [("node", &self.node), ("group", &self.group)] {
            if !name_ok(value) {
                return Err(ClusterConfigError {
                    key,
                    value: value.clone(),
                    problem: "must be 1-64 letters, digits, '-' or '_' (it names NATS subjects)"
                        .into(),
                });
            }
        }
        self.assignment_mode()?;
        self.failover_config()?;
        Ok(())
    }
}

/// Parses `"250ms"`, `"1s"`, `"30min"`, `"2h"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| "needs a unit (ms, s, min or h)".to_string())?;
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| "does not start with a whole number".to_string())?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "min" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        other => Err(format!("has unknown unit {other:?} (use ms, s, min or h)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ClusterConfig {
        toml::from_str(text).expect("valid toml")
    }

    #[test]
    fn durations_take_the_units_of_the_docs() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("30min"), Ok(Duration::from_secs(1800)));
        assert!(parse_duration("30").unwrap_err().contains("unit"));
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("1d").unwrap_err().contains("\"d\""));
    }

    #[test]
    fn defaults_are_the_source_products() {
        let c = parse("node = \"a\"\ngroup = \"g1\"\nnats = \"nats://127.0.0.1:4222\"\n");
        c.validate().unwrap();
        assert_eq!(c.failover_config().unwrap(), failover::Config::default());
        assert_eq!(c.assignment_mode().unwrap(), AssignmentMode::Balanced);
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut c = parse("node = \"a b\"\ngroup = \"g1\"\nnats = \"nats://x\"\n");
        assert_eq!(c.validate().unwrap_err().key, "node");
        c.node = "a".into();
        c.assignment = "random".into();
        assert_eq!(c.validate().unwrap_err().key, "assignment");
        c.assignment = "active-standby".into();
        c.failover.heartbeat_interval = "10s".into();
        c.failover.heartbeat_timeout = "15s".into();
        let e = c.validate().unwrap_err();
        assert!(e.problem.contains("twice"), "{e}");
        c.failover.heartbeat_timeout = "soon".into();
        assert_eq!(c.validate().unwrap_err().key, "failover.heartbeat_timeout");
    }
}
