//! SCRAM verifiers, now kept with the SASL server that checks them (`server_xmpp::sasl::credentials`) and
//! re-exported so existing users keep compiling; only the random salts, which need the OS, are drawn here.

pub use server_xmpp::sasl::credentials::*;

use presence_core::BareJid;
use presence_core::store::Account;

/// An account for `jid` with SCRAM-SHA-1 and SCRAM-SHA-256 verifiers of `password`, each with its own random salt,
/// and the SIP digest secrets for the user's domain, so one password serves XMPP clients and SIP phones.
pub fn new_account(jid: BareJid, password: &str) -> Result<Account, CredentialError> {
    let mut salts = [[0u8; SALT_LEN]; 2];
    for salt in &mut salts {
        getrandom::fill(salt).map_err(|e| CredentialError::Random(e.to_string()))?;
    }
    let mut account = account_with_salts(jid, password, &salts[0], &salts[1])?;
    account.digest = server_sip::credentials::digest_secrets(&account.jid, password);
    Ok(account)
}
