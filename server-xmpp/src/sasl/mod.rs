//! A sans-IO SASL server for XMPP stream authentication (RFC 6120 §6): SCRAM-SHA-256 (RFC 7677), SCRAM-SHA-1
//! (RFC 5802) and PLAIN (RFC 4616), all checked against stored SCRAM verifiers.
//!
//! The shell owns the wire: it base64-decodes `<auth/>` and `<response/>` text (mapping `=` to an empty response),
//! calls [`SaslServer::start`] and [`SaslServer::step`], and base64-encodes what comes back into `<challenge/>`,
//! `<success/>` or `<failure/>`. Randomness (the server nonce) and the server secret come in as [`Params`], and
//! credentials through [`CredentialLookup`], so this module does no I/O and every exchange can be replayed.
//!
//! Channel binding is not offered (no `-PLUS` mechanisms), so gs2 flags `n` and `y` are accepted and a client that
//! asks for binding (`p=`) is refused with `malformed-request`: XMPP's `<failure/>` has no room for RFC 5802's
//! `e=channel-binding-not-supported`, and sending it in a `<success/>` would be wrong.

pub mod credentials;
mod plain;

pub use plain::{PlainMessage, parse as parse_plain};
mod scram;

use presence_core::store::{ScramCredentials, ScramHash, StoreError};

/// A SASL mechanism this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// SCRAM-SHA-1 (RFC 5802).
    ScramSha1,
    /// PLAIN (RFC 4616), only over an encrypted stream.
    Plain,
}

impl Mechanism {
    /// The IANA name, as sent in `<mechanism/>` and `<auth mechanism=".."/>`.
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::Plain => "PLAIN",
        }
    }

    /// The mechanism of an IANA name; exact match, because RFC 4422 §3.1 names are upper case.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Mechanism::ScramSha256,
            Mechanism::ScramSha1,
            Mechanism::Plain,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

/// The mechanisms to offer, most preferred first; PLAIN only when the stream is encrypted (RFC 6120 §6.4.1 lets a
/// server hide mechanisms it would refuse).
pub fn offered(tls: bool) -> Vec<Mechanism> {
    let mut m = vec![Mechanism::ScramSha256, Mechanism::ScramSha1];
    if tls {
        m.push(Mechanism::Plain);
    }
    m
}

/// Makes a server nonce from the caller's random bytes: hex, because a nonce must be printable and comma-free.
pub fn server_nonce(random: &[u8; 18]) -> String {
    random.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the SASL server finds a user's SCRAM verifiers.
pub trait CredentialLookup {
    /// The verifiers of the user whose localpart is `username` (already normalised), `Ok(None)` if there is none.
    fn credentials(&self, username: &str) -> Result<Option<Vec<ScramCredentials>>, StoreError>;
}

impl<F> CredentialLookup for F
where
    F: Fn(&str) -> Result<Option<Vec<ScramCredentials>>, StoreError>,
{
    fn credentials(&self, username: &str) -> Result<Option<Vec<ScramCredentials>>, StoreError> {
        self(username)
    }
}

/// What one exchange needs from the shell besides the client's messages.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    /// Whether the stream is encrypted (TLS); PLAIN is refused otherwise.
    pub tls: bool,
    /// This exchange's server nonce: fresh random, printable ASCII without `,` (see [`server_nonce`]).
    pub server_nonce: &'a str,
    /// A long-lived server secret; fake salts of unknown users derive from it so they stay the same across tries.
    pub secret: &'a [u8],
}

/// The next thing to send the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send `<challenge/>` with these bytes and wait for a `<response/>`.
    Challenge(Vec<u8>),
    /// Send `<success/>` with `additional_data` (empty for PLAIN, `v=..` for SCRAM): the client is `username`.
    Success {
        /// The authenticated localpart, normalised as in a JID.
        username: String,
        /// The authorization identity the client asked for, if any; the shell must send `invalid-authzid` unless
        /// it is the user's own bare JID, because this module does not know the domain.
        authzid: Option<String>,
        /// Additional data with success (RFC 6120 §6.3.10).
        additional_data: Vec<u8>,
    },
    /// Send `<failure/>` with this condition; the exchange is over.
    Failure(Failure),
}

/// Why authentication failed: the RFC 6120 §6.5 conditions this server produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Failure {
    /// The client aborted the exchange.
    #[error("the exchange was aborted")]
    Aborted,
    /// The mechanism needs an encrypted stream.
    #[error("this mechanism needs an encrypted stream")]
    EncryptionRequired,
    /// The authorization identity is not one the user may act as.
    #[error("the authorization identity is not allowed")]
    InvalidAuthzid,
    /// The mechanism is not offered.
    #[error("the mechanism is not supported")]
    InvalidMechanism,
    /// A message could not be parsed or broke the mechanism's rules.
    #[error("the request is malformed")]
    MalformedRequest,
    /// Unknown user or wrong password: deliberately one condition.
    #[error("not authorized")]
    NotAuthorized,
    /// The server could not check the credentials now (store failure, bad server nonce).
    #[error("temporary authentication failure")]
    TemporaryAuthFailure,
}

impl Failure {
    /// The RFC 6120 §6.5 element name of the condition.
    pub fn condition(&self) -> &'static str {
        match self {
            Failure::Aborted => "aborted",
            Failure::EncryptionRequired => "encryption-required",
            Failure::InvalidAuthzid => "invalid-authzid",
            Failure::InvalidMechanism => "invalid-mechanism",
            Failure::MalformedRequest => "malformed-request",
            Failure::NotAuthorized => "not-authorized",
            Failure::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }

    /// A human-readable text for the optional `<text/>` of `<failure/>`.
    pub fn text(&self) -> &'static str {
        match self {
            Failure::Aborted => "the exchange was aborted",
            Failure::EncryptionRequired => "this mechanism needs an encrypted stream",
            Failure::InvalidAuthzid => "the authorization identity is not allowed",
            Failure::InvalidMechanism => "the mechanism is not supported",
            Failure::MalformedRequest => "the request is malformed",
            Failure::NotAuthorized => "not authorized",
            Failure::TemporaryAuthFailure => "temporary authentication failure",
        }
    }
}

/// One authentication exchange, from `<auth/>` to `<success/>` or `<failure/>`.
#[derive(Debug)]
pub struct SaslServer {
    state: State,
}

#[derive(Debug)]
enum State {
    /// Waiting for the client's first SCRAM message (no initial response was sent).
    ScramFirst {
        hash: ScramHash,
        nonce: String,
        secret: Vec<u8>,
    },
    /// Waiting for the client's final SCRAM message.
    ScramFinal(Box<scram::Pending>),
    /// Waiting for the PLAIN message (no initial response was sent).
    Plain,
    /// Success or failure was returned; nothing more is accepted.
    Done,
}

impl SaslServer {
    /// Starts an exchange for `<auth mechanism=..>` with its decoded initial response (`None` when the element was
    /// empty, `Some(b"")` for `=`). Refuses unknown mechanisms and PLAIN without TLS before anything else.
    pub fn start(
        mechanism: &str,
        initial_response: Option<&[u8]>,
        params: Params<'_>,
        lookup: &impl CredentialLookup,
    ) -> Result<(SaslServer, Step), Failure> {
        let mechanism = Mechanism::from_name(mechanism).ok_or(Failure::InvalidMechanism)?;
        let state = match mechanism {
            Mechanism::Plain if !params.tls => return Err(Failure::EncryptionRequired),
            Mechanism::Plain => State::Plain,
            Mechanism::ScramSha256 | Mechanism::ScramSha1 => {
                if !scram::is_printable(params.server_nonce) || params.server_nonce.is_empty() {
                    return Err(Failure::TemporaryAuthFailure);
                }
                State::ScramFirst {
                    hash: if mechanism == Mechanism::ScramSha256 {
                        ScramHash::Sha256
                    } else {
                        ScramHash::Sha1
                    },
                    nonce: params.server_nonce.to_owned(),
                    secret: params.secret.to_vec(),
                }
            }
        };
        let mut server = SaslServer { state };
        let step = match initial_response {
            // RFC 6120 §6.4.2: without an initial response the server sends an empty challenge.
            None => Step::Challenge(Vec::new()),
            Some(response) => server.step(response, lookup),
        };
        Ok((server, step))
    }

    /// Takes the client's next (decoded) `<response/>`; after success or failure every step fails.
    pub fn step(&mut self, response: &[u8], lookup: &impl CredentialLookup) -> Step {
        let (next, step) = match std::mem::replace(&mut self.state, State::Done) {
            State::ScramFirst {
                hash,
                nonce,
                secret,
            } => match scram::first(hash, response, &nonce, &secret, lookup) {
                Ok((pending, challenge)) => (
                    State::ScramFinal(Box::new(pending)),
                    Step::Challenge(challenge),
                ),
                Err(f) => (State::Done, Step::Failure(f)),
            },
            State::ScramFinal(pending) => (State::Done, pending.finish(response)),
            State::Plain => (State::Done, plain::verify(response, lookup)),
            State::Done => (State::Done, Step::Failure(Failure::MalformedRequest)),
        };
        self.state = next;
        step
    }

    /// Whether the next [`SaslServer::step`] may read the store (SCRAM's first message and PLAIN look the account
    /// up; SCRAM's final message is checked against what the first one read).
    pub fn step_reads_store(&self) -> bool {
        matches!(self.state, State::ScramFirst { .. } | State::Plain)
    }

    /// Whether the exchange is over (success or failure was returned).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

/// Normalises a SASL username as the localpart of a JID (RFC 7622 `UsernameCaseMapped`, which replaced SASLprep for
/// XMPP usernames), so lookups use the same key as the account's JID; `None` if it cannot be a localpart.
pub fn normalise_username(username: &str) -> Option<String> {
    // The domain is a placeholder: only the localpart's rules are wanted, and they do not depend on it.
    let jid = presence_core::BareJid::from_parts(Some(username), "localhost").ok()?;
    jid.local().map(str::to_owned)
}

/// The credentials of `hash` for `username`: `Ok(None)` when the user or that verifier does not exist.
fn find_credentials(
    lookup: &impl CredentialLookup,
    username: &str,
    hash: ScramHash,
) -> Result<Option<ScramCredentials>, Failure> {
    let all = lookup
        .credentials(username)
        .map_err(|_| Failure::TemporaryAuthFailure)?;
    Ok(all.and_then(|v| v.into_iter().find(|c| c.hash == hash)))
}

#[cfg(test)]
mod tests;
