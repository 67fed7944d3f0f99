//! In-band registration (XEP-0077) makes accounts exactly as `presenced user add` does.

use presence_core::BareJid;
use presence_core::store::Account;
use server_xmpp::sasl::credentials::CredentialError;
use server_xmpp::translate::features::register::AccountMaker;

/// SCRAM verifiers with fresh salts and SIP digest secrets, through [`crate::credentials::new_account`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NewAccounts;

impl AccountMaker for NewAccounts {
    fn make(&self, jid: BareJid, password: &str) -> Result<Account, CredentialError> {
        crate::credentials::new_account(jid, password)
    }
}
