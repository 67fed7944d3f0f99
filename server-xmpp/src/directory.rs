//! A user directory the embedding process supplies (the bundled server's LDAP connector): the XMPP shell asks it
//! whether a PLAIN password is right (a directory checks passwords itself, by binding as the user, so it cannot
//! hand out SCRAM verifiers) and who matches a contact search (XEP-0055, [`crate::translate::features::search`]).

use std::future::Future;
use std::pin::Pin;

use presence_core::BareJid;

/// A future the directory answers with; boxed so the trait can be a trait object.
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The directory's word on a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordVerdict {
    /// The password is the user's: the login succeeds.
    Accepted,
    /// Wrong password, or no such (or a disabled) user: `not-authorized`.
    Refused,
    /// The directory cannot say now and nothing cached can: `temporary-auth-failure`.
    Unavailable,
    /// Not a directory user (an account made by hand): checked against the stored verifiers as usual.
    NotManaged,
}

/// What a contact search asks for; every given field must match (a substring, case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SearchQuery {
    /// Matched against the user id, the display name and the mail address.
    pub text: Option<String>,
    /// Matched against the display name.
    pub name: Option<String>,
    /// Matched against the mail address.
    pub mail: Option<String>,
}

impl SearchQuery {
    /// Whether nothing was asked (a search for everybody, which is refused).
    pub fn is_empty(&self) -> bool {
        [&self.text, &self.name, &self.mail]
            .iter()
            .all(|f| f.as_deref().is_none_or(|t| t.trim().is_empty()))
    }
}

/// One user found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchHit {
    /// The user's address.
    pub jid: BareJid,
    /// The display name.
    pub name: Option<String>,
    /// The mail address.
    pub mail: Option<String>,
    /// The phone number.
    pub phone: Option<String>,
}

/// Why a search found nothing to say.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SearchError {
    /// The directory could not be reached or refused the query.
    #[error("the directory is not available: {0}")]
    Unavailable(String),
}

/// A user directory.
pub trait Directory: Send + Sync + std::fmt::Debug {
    /// Checks `password` for `user` (a local user of the served domain, its localpart normalised).
    fn check_password<'a>(
        &'a self,
        user: &'a BareJid,
        password: &'a str,
    ) -> Answer<'a, PasswordVerdict>;
    /// The users matching `query`, at most [`Directory::search_limit`] of them.
    fn search<'a>(
        &'a self,
        query: &'a SearchQuery,
    ) -> Answer<'a, Result<Vec<SearchHit>, SearchError>>;
    /// The most results one search returns.
    fn search_limit(&self) -> usize;
}
