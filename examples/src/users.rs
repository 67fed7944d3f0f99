//! Account management behind `presenced user …`: checks the address against the served domain and stores only
//! SCRAM verifiers.

use presence_core::store::{AccountStore, StoreError};
use presence_core::{BareJid, JidError};

use crate::credentials::{CredentialError, new_account};

/// Why a user command failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The argument is not a JID at all.
    #[error("{input:?} is not a valid address: {source}")]
    BadAddress {
        /// What was given.
        input: String,
        /// Why it did not parse.
        source: JidError,
    },
    /// The argument is a bare domain or names another domain.
    #[error("{input:?} is not a user of this server: expected local@{domain}")]
    NotLocal {
        /// What was given.
        input: String,
        /// The served domain.
        domain: String,
    },
    /// `add` for an existing account.
    #[error("user {0} already exists")]
    Exists(BareJid),
    /// `del` for an unknown account.
    #[error("no such user {0}")]
    Unknown(BareJid),
    /// The password was refused or no salt could be made.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request cannot be run this way (a directory sync without `[ldap]`, or on the synchronous path).
    #[error("{0}")]
    Unsupported(&'static str),
}

/// Parses `input` as `local@domain` on the served `domain`.
pub fn parse_user(input: &str, domain: &str) -> Result<BareJid, UserError> {
    let jid = BareJid::new(input).map_err(|source| UserError::BadAddress {
        input: input.to_owned(),
        source,
    })?;
    if jid.local().is_none() || jid.domain() != domain {
        return Err(UserError::NotLocal {
            input: input.to_owned(),
            domain: domain.to_owned(),
        });
    }
    Ok(jid)
}

/// Creates an account; refuses to overwrite one.
pub fn add_user(store: &impl AccountStore, jid: BareJid, password: &str) -> Result<(), UserError> {
    if store.account(&jid)?.is_some() {
        return Err(UserError::Exists(jid));
    }
    store.put_account(&new_account(jid, password)?)?;
    Ok(())
}

/// Replaces the password of an existing account (new salts, SCRAM verifiers and SIP digest secrets).
pub fn set_password(
    store: &impl AccountStore,
    jid: BareJid,
    password: &str,
) -> Result<(), UserError> {
    if store.account(&jid)?.is_none() {
        return Err(UserError::Unknown(jid));
    }
    store.put_account(&new_account(jid, password)?)?;
    Ok(())
}

/// Deletes an account with everything stored for it.
pub fn remove_user(store: &impl AccountStore, jid: BareJid) -> Result<(), UserError> {
    if store.remove_account(&jid)? {
        Ok(())
    } else {
        Err(UserError::Unknown(jid))
    }
}

#[cfg(test)]
mod tests {
    use presence_core::store::MemoryStore;

    use super::*;

    #[test]
    fn only_local_users_of_the_domain_are_accepted() {
        assert_eq!(
            parse_user("Alice@Example.com", "example.com")
                .expect("ok")
                .as_str(),
            "alice@example.com"
        );
        for bad in ["example.com", "alice@other.com", "a b@example.com", ""] {
            assert!(parse_user(bad, "example.com").is_err(), "{bad}");
        }
    }

    #[test]
    fn add_refuses_duplicates_and_del_unknowns() {
        let s = MemoryStore::new();
        let alice = parse_user("alice@x.org", "x.org").expect("ok");
        add_user(&s, alice.clone(), "pw").expect("add");
        assert!(matches!(
            add_user(&s, alice.clone(), "pw"),
            Err(UserError::Exists(_))
        ));
        let before = s.account(&alice).expect("read").expect("exists");
        set_password(&s, alice.clone(), "new password").expect("passwd");
        let after = s.account(&alice).expect("read").expect("exists");
        assert_ne!(before.credentials, after.credentials, "new verifiers");
        remove_user(&s, alice.clone()).expect("del");
        assert!(matches!(
            set_password(&s, alice.clone(), "pw"),
            Err(UserError::Unknown(_))
        ));
        assert!(matches!(remove_user(&s, alice), Err(UserError::Unknown(_))));
    }
}
