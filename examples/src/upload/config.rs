//! `[upload]`: HTTP File Upload (XEP-0363) on the HTTP listener.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::Settings;

/// `[upload]`. Sizes are bytes; durations are strings with a unit (`"5min"`, `"30d"` is not a unit: `"720h"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadConfig {
    /// Whether clients may upload. Off by default: files are served from the HTTP listener, which is on loopback
    /// unless configured otherwise, so the operator has to make it reachable (and set `url`) first.
    pub enabled: bool,
    /// The largest file taken, in bytes (advertised in disco#info).
    pub max_file_size: u64,
    /// The most bytes one user may have stored at once.
    pub quota: u64,
    /// How long a PUT URL stays valid after the slot is handed out.
    #[serde(deserialize_with = "crate::config::duration")]
    pub put_valid_for: Duration,
    /// Files older than this are deleted by a periodic sweep; `"0s"` keeps them forever.
    #[serde(deserialize_with = "crate::config::duration")]
    pub expire_after: Duration,
    /// The base URL clients reach the HTTP listener at (`https://upload.example.com`, behind a proxy that
    /// forwards `/upload/` to `[http] bind`); by default `http://<[http] bind>`, with the domain in place of an
    /// unspecified address.
    pub url: Option<String>,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            enabled: false,
            max_file_size: 10 * 1024 * 1024,
            quota: 100 * 1024 * 1024,
            put_valid_for: Duration::from_secs(300),
            expire_after: Duration::from_secs(30 * 24 * 3600),
            url: None,
        }
    }
}

impl UploadConfig {
    /// Why the section cannot work, as (key, value, problem).
    pub fn problem(&self) -> Option<(&'static str, String, String)> {
        if self.max_file_size == 0 {
            return Some((
                "upload.max_file_size",
                "0".into(),
                "would refuse every file (must be at least 1)".into(),
            ));
        }
        if self.put_valid_for.is_zero() {
            return Some((
                "upload.put_valid_for",
                "0s".into(),
                "would make every upload URL expire at once".into(),
            ));
        }
        if let Some(url) = &self.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Some((
                "upload.url",
                url.clone(),
                "is not an http:// or https:// URL".into(),
            ));
        }
        None
    }

    /// The service's settings, with the URL derived from the HTTP listener's address unless configured.
    pub fn settings(&self, http_bind: SocketAddr, domain: &str) -> Settings {
        let url = match &self.url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None if http_bind.ip().is_unspecified() => {
                format!("http://{domain}:{}", http_bind.port())
            }
            None => format!("http://{http_bind}"),
        };
        Settings {
            max_file_size: self.max_file_size,
            quota: self.quota,
            put_valid_for: self.put_valid_for,
            expire_after: self.expire_after,
            url,
        }
    }
}
