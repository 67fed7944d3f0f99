//! `[compliance]`: compliance archiving to PostgreSQL.

use serde::Deserialize;

/// `[compliance]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComplianceConfig {
    /// Whether every accepted message is archived. Off by default.
    pub enabled: bool,
    /// The PostgreSQL URL of the archive (`postgresql://user[:password]@host:port/dbname`); may be the store's
    /// database or another one. Required when enabled.
    pub url: Option<String>,
    /// What a failed archive write does to the messages.
    pub mode: ComplianceMode,
    /// How many connections to the archive this process keeps open at most.
    pub pool: usize,
}

/// `[compliance] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ComplianceMode {
    /// Messages flow even when the archive fails (the loss is logged and counted).
    #[default]
    BestEffort,
    /// A message is not delivered, held or acknowledged unless archived.
    Required,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        ComplianceConfig {
            enabled: false,
            url: None,
            mode: ComplianceMode::BestEffort,
            pool: 2,
        }
    }
}

impl ComplianceConfig {
    /// The first setting that cannot work, as (key, value, problem).
    pub fn problem(&self) -> Option<(&'static str, String, String)> {
        if self.pool == 0 {
            return Some((
                "compliance.pool",
                "0".into(),
                "would leave no connection to the archive (must be at least 1)".into(),
            ));
        }
        if !self.enabled {
            return None;
        }
        let Some(url) = &self.url else {
            return Some((
                "compliance.enabled",
                "true".into(),
                "needs compliance.url (postgresql://user@host:port/dbname)".into(),
            ));
        };
        if let Err(e) = url.parse::<postgres::Config>() {
            // The URL may hold a password: the message names the problem, not the value.
            return Some((
                "compliance.url",
                "…".into(),
                format!("is not a PostgreSQL URL: {e}"),
            ));
        }
        None
    }
}
