//! `[ldap]`: accounts, passwords and contact search from a corporate directory.
//!
//! - **Passwords.** XMPP PLAIN is checked by a simple bind as the user's entry (found by `uid_attribute` under
//!   `base_dn` with `user_filter` and, when set, membership of a `group_filter` group): a user the directory no
//!   longer lists, or a wrong password, is refused. A successful bind caches SCRAM verifiers and SIP digest
//!   secrets of that password in the account, so SCRAM and SIP digest work for users who signed in once, and
//!   cached users still sign in (PLAIN checked against the cache) while the directory is down; a user with
//!   nothing cached gets `temporary-auth-failure` then. A sync drops the cache of every entry that changed (its
//!   password may have). Accounts the directory does not manage (made with `presenced user add`) keep their
//!   own passwords.
//! - **Sync** ([`sync`]): accounts created, updated and removed from the directory, at start, every
//!   `sync_interval` and on `presenced directory sync`.
//! - **Search**: XEP-0055 queries become LDAP substring filters, at most `search_limit` results.

pub mod client;
pub mod config;
pub mod record;
pub mod sync;

use std::sync::Arc;

use presence_core::BareJid;
use presence_core::directory::DirectoryRecord;
use presence_core::store::{Account, Store, StoreError};
use server_xmpp::directory::{
    Answer, Directory, PasswordVerdict, SearchError, SearchHit, SearchQuery,
};
use subtle::ConstantTimeEq;

pub use config::LdapConfig;

/// The directory as the XMPP shell sees it: passwords and search, with the account cache in `store`.
pub struct Ldap<S> {
    config: Arc<LdapConfig>,
    domain: String,
    store: Arc<S>,
}

impl<S> std::fmt::Debug for Ldap<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ldap")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

impl<S: Store + Send + Sync + 'static> Ldap<S> {
    /// The directory of `config` for users of `domain`.
    pub fn new(config: Arc<LdapConfig>, domain: String, store: Arc<S>) -> Self {
        Ldap {
            config,
            domain,
            store,
        }
    }

    /// The account and its directory record, off the I/O workers.
    async fn held(
        &self,
        user: &BareJid,
    ) -> Result<(Option<Account>, Option<DirectoryRecord>), StoreError> {
        let (store, user) = (self.store.clone(), user.clone());
        tokio::task::spawn_blocking(move || {
            Ok((store.account(&user)?, record::read(store.as_ref(), &user)?))
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }

    /// Caches the credentials of a password the directory accepted, with the user's record (which makes an
    /// account for a user the sync has not seen yet).
    async fn cache(&self, user: &BareJid, password: &str, record: DirectoryRecord) {
        let (store, user, password) = (self.store.clone(), user.clone(), password.to_owned());
        let done = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let account = crate::credentials::new_account(user.clone(), &password)
                .map_err(|e| e.to_string())?;
            store.put_account(&account).map_err(|e| e.to_string())?;
            record::write(store.as_ref(), &user, &record).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        if let Err(e) = done {
            // The login stands (the directory said yes); only SCRAM, SIP and outage logins wait for the next one.
            tracing::warn!(error = %e, "caching directory credentials failed");
        }
    }
}

/// Whether `password` matches the cached verifiers (PBKDF2, so off the I/O workers).
async fn matches_cache(account: Account, password: &str) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        use server_xmpp::sasl::credentials::{prepare_password, scram_credentials};
        let Ok(prepared) = prepare_password(&password) else {
            return false;
        };
        account.credentials.iter().any(|c| {
            let candidate = scram_credentials(&prepared, c.hash, c.iterations, &c.salt);
            bool::from(candidate.stored_key.ct_eq(&c.stored_key))
        })
    })
    .await
    .unwrap_or(false)
}

impl<S: Store + Send + Sync + 'static> Directory for Ldap<S> {
    fn check_password<'a>(
        &'a self,
        user: &'a BareJid,
        password: &'a str,
    ) -> Answer<'a, PasswordVerdict> {
        Box::pin(async move {
            let (account, record) = match self.held(user).await {
                Ok(held) => held,
                Err(e) => {
                    tracing::warn!(%user, error = %e, "cannot read the account to authenticate");
                    return PasswordVerdict::Unavailable;
                }
            };
            if account.is_some() && record.is_none() {
                return PasswordVerdict::NotManaged;
            }
            let Some(local) = user.local() else {
                return PasswordVerdict::Refused;
            };
            let checked = async {
                match client::find(&self.config, local, &self.domain).await? {
                    None => Ok(None),
                    Some(found) => {
                        Ok(
                            client::check_password(&self.config, &found.record.dn, password)
                                .await?
                                .then_some(found),
                        )
                    }
                }
            };
            match checked.await {
                Ok(Some(found)) => {
                    self.cache(user, password, found.record).await;
                    PasswordVerdict::Accepted
                }
                Ok(None) => {
                    tracing::info!(%user, "directory login refused");
                    PasswordVerdict::Refused
                }
                Err(e @ client::DirectoryError::Refused { .. })
                | Err(e @ client::DirectoryError::Unreachable { .. }) => {
                    // The directory cannot say: a cached user is checked against the cache (never a login with
                    // a password that does not match it), anyone else must come back later.
                    match account {
                        Some(account) if !account.credentials.is_empty() => {
                            let ok = matches_cache(account, password).await;
                            tracing::warn!(%user, error = %e, accepted = ok, "directory unavailable: password checked against the cache");
                            if ok {
                                PasswordVerdict::Accepted
                            } else {
                                PasswordVerdict::Refused
                            }
                        }
                        _ => {
                            tracing::warn!(%user, error = %e, "directory unavailable and nothing cached: temporary failure");
                            PasswordVerdict::Unavailable
                        }
                    }
                }
            }
        })
    }

    fn search<'a>(
        &'a self,
        query: &'a SearchQuery,
    ) -> Answer<'a, Result<Vec<SearchHit>, SearchError>> {
        Box::pin(async move {
            client::search(&self.config, query, self.config.search_limit, &self.domain)
                .await
                .map_err(|e| SearchError::Unavailable(e.to_string()))
        })
    }

    fn search_limit(&self) -> usize {
        self.config.search_limit
    }
}
