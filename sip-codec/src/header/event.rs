//! Event and Subscription-State headers (RFC 6665 §8.2).

use std::fmt;

use super::params::{Params, end, params};
use crate::grammar::{parse_delta_seconds, sws, token};

/// An event package with its parameters (`presence;id=7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The package name (`presence`, `presence.winfo`, `dialog` …).
    pub package: String,
    /// Parameters, including `id`.
    pub params: Params,
}

impl Event {
    /// An event without parameters.
    pub fn new(package: &str) -> Self {
        Event {
            package: package.to_owned(),
            params: Params::default(),
        }
    }

    /// The `id` parameter.
    pub fn id(&self) -> Option<&str> {
        self.params.get("id").flatten()
    }
}

/// The state of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubState {
    /// `active`
    Active,
    /// `pending`
    Pending,
    /// `terminated`
    Terminated,
    /// An extension state.
    Other(String),
}

/// A Subscription-State value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// The state.
    pub state: SubState,
    /// Parameters (`expires`, `reason`, `retry-after`).
    pub params: Params,
}

impl SubscriptionState {
    /// The `expires` parameter in seconds.
    pub fn expires(&self) -> Option<u32> {
        self.params
            .get("expires")
            .flatten()
            .and_then(parse_delta_seconds)
    }

    /// The `reason` parameter (`deactivated`, `timeout`, `rejected` …).
    pub fn reason(&self) -> Option<&str> {
        self.params.get("reason").flatten()
    }

    /// The `retry-after` parameter in seconds.
    pub fn retry_after(&self) -> Option<u32> {
        self.params
            .get("retry-after")
            .flatten()
            .and_then(parse_delta_seconds)
    }
}

fn token_with_params(s: &str) -> Result<(&str, Params), &'static str> {
    let (i, _) = sws(s).map_err(|_| "malformed value")?;
    let (i, t) = token(i).map_err(|_| "missing token")?;
    let (i, p) = params(i).map_err(|_| "malformed parameter")?;
    end(i).map_err(|_| "unexpected characters")?;
    Ok((t, p))
}

/// Parses an Event value.
pub fn parse_event(s: &str) -> Result<Event, &'static str> {
    let (package, params) = token_with_params(s)?;
    Ok(Event {
        package: package.to_owned(),
        params,
    })
}

/// Parses a Subscription-State value.
pub fn parse_subscription_state(s: &str) -> Result<SubscriptionState, &'static str> {
    let (state, params) = token_with_params(s)?;
    let state = match state.to_ascii_lowercase().as_str() {
        "active" => SubState::Active,
        "pending" => SubState::Pending,
        "terminated" => SubState::Terminated,
        _ => SubState::Other(state.to_owned()),
    };
    Ok(SubscriptionState { state, params })
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.package, self.params)
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match &self.state {
            SubState::Active => "active",
            SubState::Pending => "pending",
            SubState::Terminated => "terminated",
            SubState::Other(s) => s,
        };
        write!(f, "{s}{}", self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_and_state() {
        let e = parse_event("presence ; id = 17").unwrap();
        assert_eq!((e.package.as_str(), e.id()), ("presence", Some("17")));
        let s = parse_subscription_state("terminated;reason=timeout;retry-after=30").unwrap();
        assert_eq!(s.state, SubState::Terminated);
        assert_eq!((s.reason(), s.retry_after()), (Some("timeout"), Some(30)));
        assert_eq!(
            parse_subscription_state("active;expires=600")
                .unwrap()
                .expires(),
            Some(600)
        );
        assert!(parse_event("").is_err());
    }
}
