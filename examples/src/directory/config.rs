//! `[ldap]`: where the directory is and how its entries map to accounts.

use std::time::Duration;

use serde::Deserialize;

/// `[ldap]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host:port` or `ldaps://host:port` (TLS from the first byte).
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before anything is sent.
    #[serde(default)]
    pub starttls: bool,
    /// The service account the server searches as; absent: anonymous.
    pub bind_dn: Option<String>,
    /// Its password; never logged.
    pub bind_password: Option<String>,
    /// Where users are searched (the whole subtree).
    pub base_dn: String,
    /// Which entries are users.
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// The attribute that becomes the JID's localpart.
    #[serde(default = "default_uid")]
    pub uid_attribute: String,
    /// The display name (roster name in other users' lists).
    #[serde(default = "default_name")]
    pub name_attribute: String,
    /// The mail address.
    #[serde(default = "default_mail")]
    pub mail_attribute: String,
    /// The phone number.
    #[serde(default = "default_phone")]
    pub phone_attribute: String,
    /// When set, only members of the groups this filter selects are users.
    pub group_filter: Option<String>,
    /// Where groups are searched; `base_dn` when absent.
    pub group_base_dn: Option<String>,
    /// The group attribute that lists its members' DNs.
    #[serde(default = "default_member")]
    pub group_member_attribute: String,
    /// How often the server syncs accounts from the directory; `"0s"`: only `presenced directory sync`.
    #[serde(
        default = "default_sync_interval",
        deserialize_with = "crate::config::duration"
    )]
    pub sync_interval: Duration,
    /// How long one directory operation (connect, bind, search) may take before the directory counts as down.
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub timeout: Duration,
    /// The most users one contact search (XEP-0055) returns.
    #[serde(default = "default_search_limit")]
    pub search_limit: usize,
}

fn default_user_filter() -> String {
    "(objectClass=inetOrgPerson)".into()
}
fn default_uid() -> String {
    "uid".into()
}
fn default_name() -> String {
    "cn".into()
}
fn default_mail() -> String {
    "mail".into()
}
fn default_phone() -> String {
    "telephoneNumber".into()
}
fn default_member() -> String {
    "member".into()
}
fn default_sync_interval() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_search_limit() -> usize {
    50
}

impl std::fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapConfig")
            .field("url", &self.url)
            .field("starttls", &self.starttls)
            .field("bind_dn", &self.bind_dn)
            .field(
                "bind_password",
                &self.bind_password.as_ref().map(|_| "<redacted>"),
            )
            .field("base_dn", &self.base_dn)
            .field("user_filter", &self.user_filter)
            .field("group_filter", &self.group_filter)
            .field("sync_interval", &self.sync_interval)
            .finish_non_exhaustive()
    }
}

impl LdapConfig {
    /// The first setting that cannot work, as (key, value, problem).
    pub fn problem(&self) -> Option<(&'static str, String, String)> {
        let ldaps = self.url.starts_with("ldaps://");
        if !ldaps && !self.url.starts_with("ldap://") {
            return Some((
                "ldap.url",
                self.url.clone(),
                "is not an ldap:// or ldaps:// URL".into(),
            ));
        }
        if ldaps && self.starttls {
            return Some((
                "ldap.starttls",
                "true".into(),
                "is for ldap:// URLs: ldaps:// is TLS already".into(),
            ));
        }
        if self.bind_dn.is_some() != self.bind_password.is_some() {
            return Some((
                "ldap.bind_dn",
                self.bind_dn.clone().unwrap_or_default(),
                "bind_dn and bind_password go together".into(),
            ));
        }
        if self.base_dn.trim().is_empty() {
            return Some((
                "ldap.base_dn",
                String::new(),
                "must name where users are".into(),
            ));
        }
        for (key, filter) in [
            ("ldap.user_filter", Some(&self.user_filter)),
            ("ldap.group_filter", self.group_filter.as_ref()),
        ] {
            if let Some(f) = filter
                && !(f.starts_with('(') && f.ends_with(')'))
            {
                return Some((
                    key,
                    f.clone(),
                    "is not an LDAP filter in parentheses".into(),
                ));
            }
        }
        if self.search_limit == 0 {
            return Some((
                "ldap.search_limit",
                "0".into(),
                "would make every search empty (must be at least 1)".into(),
            ));
        }
        if self.timeout.is_zero() {
            return Some((
                "ldap.timeout",
                "0s".into(),
                "would time out every operation".into(),
            ));
        }
        None
    }

    /// Where groups are searched.
    pub fn group_base(&self) -> &str {
        self.group_base_dn.as_deref().unwrap_or(&self.base_dn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> LdapConfig {
        toml::from_str(text).expect("valid")
    }

    #[test]
    fn defaults_and_problems() {
        let c = parse("url = \"ldap://127.0.0.1:389\"\nbase_dn = \"ou=people,dc=x\"\n");
        assert_eq!(c.uid_attribute, "uid");
        assert_eq!(c.sync_interval, Duration::from_secs(900));
        assert_eq!(c.problem(), None);
        assert_eq!(c.group_base(), "ou=people,dc=x");
        let bad = parse("url = \"http://x\"\nbase_dn = \"dc=x\"\n");
        assert_eq!(bad.problem().map(|p| p.0), Some("ldap.url"));
        let bad = parse("url = \"ldaps://x\"\nstarttls = true\nbase_dn = \"dc=x\"\n");
        assert_eq!(bad.problem().map(|p| p.0), Some("ldap.starttls"));
        let bad = parse("url = \"ldap://x\"\nbind_dn = \"cn=a\"\nbase_dn = \"dc=x\"\n");
        assert_eq!(bad.problem().map(|p| p.0), Some("ldap.bind_dn"));
        let secret = parse(
            "url = \"ldap://x\"\nbind_dn = \"cn=a\"\nbind_password = \"hunter2\"\nbase_dn = \"dc=x\"\n",
        );
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
