//! The LDAP side, through `ldap3`: a connection per operation (bound as the service account, or as the user to
//! check a password), every operation under the configured timeout.

use std::collections::HashSet;
use std::future::Future;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, ldap_escape};
use presence_core::BareJid;
use presence_core::directory::{DirectoryRecord, DirectoryUser};
use server_xmpp::directory::{SearchHit, SearchQuery};

use super::config::LdapConfig;

/// LDAP result code of a bind with a wrong password (or an unknown or locked entry).
const INVALID_CREDENTIALS: u32 = 49;
/// LDAP result code of a search that stopped at its size limit: the entries up to it are good.
const SIZE_LIMIT_EXCEEDED: u32 = 4;
/// The operational attribute that changes whenever the entry (its password included) does.
const MODIFIED: &str = "modifyTimestamp";

/// Why the directory could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Connecting, TLS, or the connection failed or timed out.
    #[error("the directory at {url} cannot be reached: {detail}")]
    Unreachable {
        /// The configured URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The directory refused an operation.
    #[error("the directory refused {what}: result code {rc} {text}")]
    Refused {
        /// Which operation.
        what: &'static str,
        /// The LDAP result code.
        rc: u32,
        /// The server's message.
        text: String,
    },
}

fn unreachable(config: &LdapConfig, e: impl std::fmt::Display) -> DirectoryError {
    DirectoryError::Unreachable {
        url: config.url.clone(),
        detail: e.to_string(),
    }
}

/// Runs one directory operation under the configured timeout.
async fn timed<T>(
    config: &LdapConfig,
    op: impl Future<Output = Result<T, LdapError>>,
) -> Result<T, DirectoryError> {
    match tokio::time::timeout(config.timeout, op).await {
        Err(_) => Err(unreachable(
            config,
            format!("no answer within {:?}", config.timeout),
        )),
        Ok(Err(LdapError::LdapResult { result })) => Err(DirectoryError::Refused {
            what: "an operation",
            rc: result.rc,
            text: result.text,
        }),
        Ok(Err(e)) => Err(unreachable(config, e)),
        Ok(Ok(v)) => Ok(v),
    }
}

/// A fresh connection, not bound yet.
async fn connect(config: &LdapConfig) -> Result<Ldap, DirectoryError> {
    let settings = LdapConnSettings::new()
        .set_conn_timeout(config.timeout)
        .set_starttls(config.starttls);
    let (conn, ldap) = timed(config, LdapConnAsync::with_settings(settings, &config.url)).await?;
    // The connection's driver: it ends when the last handle is dropped (or the server goes away).
    tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!(error = %e, "directory connection ended");
        }
    });
    Ok(ldap)
}

/// A connection bound as the service account (anonymous without one).
pub async fn service(config: &LdapConfig) -> Result<Ldap, DirectoryError> {
    let mut ldap = connect(config).await?;
    if let (Some(dn), Some(password)) = (&config.bind_dn, &config.bind_password) {
        let result = timed(config, ldap.simple_bind(dn, password)).await?;
        if result.rc != 0 {
            return Err(DirectoryError::Refused {
                what: "the service account's bind",
                rc: result.rc,
                text: result.text,
            });
        }
    }
    Ok(ldap)
}

/// Whether `password` is the password of the entry `dn`: a simple bind as it. An empty password is never tried,
/// since LDAP takes it as an unauthenticated bind that succeeds (RFC 4513 §5.1.2).
pub async fn check_password(
    config: &LdapConfig,
    dn: &str,
    password: &str,
) -> Result<bool, DirectoryError> {
    if password.is_empty() {
        return Ok(false);
    }
    let mut ldap = connect(config).await?;
    let result = timed(config, ldap.simple_bind(dn, password)).await?;
    let _ = ldap.unbind().await;
    match result.rc {
        0 => Ok(true),
        INVALID_CREDENTIALS => Ok(false),
        rc => Err(DirectoryError::Refused {
            what: "the user's bind",
            rc,
            text: result.text,
        }),
    }
}

fn attributes(config: &LdapConfig) -> Vec<&str> {
    vec![
        config.uid_attribute.as_str(),
        config.name_attribute.as_str(),
        config.mail_attribute.as_str(),
        config.phone_attribute.as_str(),
        MODIFIED,
    ]
}

/// Searches users with `filter` (already combined with the user filter), at most `limit` (0: no limit).
async fn search_users(
    config: &LdapConfig,
    ldap: &mut Ldap,
    filter: &str,
    limit: usize,
    domain: &str,
) -> Result<Vec<DirectoryUser>, DirectoryError> {
    if limit > 0 {
        ldap.with_search_options(
            ldap3::SearchOptions::new().sizelimit(i32::try_from(limit).unwrap_or(i32::MAX)),
        );
    }
    let result = timed(
        config,
        ldap.search(&config.base_dn, Scope::Subtree, filter, attributes(config)),
    )
    .await?;
    if result.1.rc != 0 && result.1.rc != SIZE_LIMIT_EXCEEDED {
        return Err(DirectoryError::Refused {
            what: "the user search",
            rc: result.1.rc,
            text: result.1.text,
        });
    }
    let mut users: Vec<DirectoryUser> = result
        .0
        .into_iter()
        .filter_map(|e| user(config, SearchEntry::construct(e), domain))
        .collect();
    if let Some(group_filter) = &config.group_filter {
        let members = members(config, ldap, group_filter).await?;
        users.retain(|u| members.contains(&u.record.dn.to_ascii_lowercase()));
    }
    Ok(users)
}

/// The DNs (lowercased) of every member of the groups `group_filter` selects.
async fn members(
    config: &LdapConfig,
    ldap: &mut Ldap,
    group_filter: &str,
) -> Result<HashSet<String>, DirectoryError> {
    ldap.with_search_options(ldap3::SearchOptions::new());
    let ldap3::SearchResult(entries, result) = timed(
        config,
        ldap.search(
            config.group_base(),
            Scope::Subtree,
            group_filter,
            vec![config.group_member_attribute.as_str()],
        ),
    )
    .await?;
    if result.rc != 0 {
        return Err(DirectoryError::Refused {
            what: "the group search",
            rc: result.rc,
            text: result.text,
        });
    }
    Ok(entries
        .into_iter()
        .map(SearchEntry::construct)
        .flat_map(|g| {
            g.attrs
                .get(&config.group_member_attribute)
                .cloned()
                .unwrap_or_default()
        })
        .map(|dn| dn.to_ascii_lowercase())
        .collect())
}

/// The user an entry stands for; `None` (with a warning) when its uid cannot be a JID's localpart.
fn user(config: &LdapConfig, entry: SearchEntry, domain: &str) -> Option<DirectoryUser> {
    let first = |attr: &str| {
        entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
            .and_then(|(_, v)| v.first().cloned())
            .filter(|v| !v.trim().is_empty())
    };
    let uid = first(&config.uid_attribute)?;
    let jid = match BareJid::from_parts(Some(&uid), domain) {
        Ok(jid) => jid,
        Err(e) => {
            tracing::warn!(dn = %entry.dn, %uid, error = %e, "directory entry skipped: its uid cannot be an address");
            return None;
        }
    };
    Some(DirectoryUser {
        jid,
        record: DirectoryRecord {
            dn: entry.dn.clone(),
            name: first(&config.name_attribute),
            mail: first(&config.mail_attribute),
            phone: first(&config.phone_attribute),
            changed: first(MODIFIED),
        },
    })
}

/// Every user of the directory, as accounts of `domain`.
pub async fn users(
    config: &LdapConfig,
    domain: &str,
) -> Result<Vec<DirectoryUser>, DirectoryError> {
    let mut ldap = service(config).await?;
    let users = search_users(config, &mut ldap, &config.user_filter, 0, domain).await;
    let _ = ldap.unbind().await;
    users
}

/// The directory user whose uid is `localpart`, if the filters let them in.
pub async fn find(
    config: &LdapConfig,
    localpart: &str,
    domain: &str,
) -> Result<Option<DirectoryUser>, DirectoryError> {
    let mut ldap = service(config).await?;
    let filter = format!(
        "(&{}({}={}))",
        config.user_filter,
        config.uid_attribute,
        ldap_escape(localpart)
    );
    let found = search_users(config, &mut ldap, &filter, 2, domain).await;
    let _ = ldap.unbind().await;
    let found = found?;
    // The uid maps to one address; the entry is the one whose uid normalises to the asked localpart.
    Ok(found.into_iter().find(|u| u.jid.local() == Some(localpart)))
}

/// The users matching a contact search, at most `limit`.
pub async fn search(
    config: &LdapConfig,
    query: &SearchQuery,
    limit: usize,
    domain: &str,
) -> Result<Vec<SearchHit>, DirectoryError> {
    let contains = |attr: &str, text: &str| format!("({attr}=*{}*)", ldap_escape(text.trim()));
    let mut filter = format!("(&{}", config.user_filter);
    if let Some(t) = &query.text {
        filter.push_str(&format!(
            "(|{}{}{})",
            contains(&config.uid_attribute, t),
            contains(&config.name_attribute, t),
            contains(&config.mail_attribute, t)
        ));
    }
    if let Some(n) = &query.name {
        filter.push_str(&contains(&config.name_attribute, n));
    }
    if let Some(m) = &query.mail {
        filter.push_str(&contains(&config.mail_attribute, m));
    }
    filter.push(')');
    let mut ldap = service(config).await?;
    let found = search_users(config, &mut ldap, &filter, limit, domain).await;
    let _ = ldap.unbind().await;
    let mut hits: Vec<SearchHit> = found?
        .into_iter()
        .map(|u| SearchHit {
            jid: u.jid,
            name: u.record.name,
            mail: u.record.mail,
            phone: u.record.phone,
        })
        .collect();
    hits.sort_by(|a, b| a.jid.cmp(&b.jid));
    hits.truncate(limit);
    Ok(hits)
}
