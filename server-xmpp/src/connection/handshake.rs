//! From the TCP accept to an authenticated stream: STARTTLS (or TLS from the first byte on the direct-TLS
//! port), the stream header, in-band registration when it is on, and SASL. A WebSocket stream (RFC 7395) starts
//! at SASL: its transport is as secure as the HTTP listener it came through, or authentication is refused.

use super::*;

/// Plain TCP: only STARTTLS is allowed (on the direct-TLS port, TLS at once). Then TLS and SASL. Returns the
/// authenticated stream and user.
pub(super) async fn negotiate<S: Store + Send + Sync + 'static>(
    mut wire: Wire<TcpStream>,
    shared: &Shared<S>,
    permit: OwnedSemaphorePermit,
    transport: Transport,
    ip: std::net::IpAddr,
) -> Option<(Wire<crate::tls_stream::TlsStream<TcpStream>>, BareJid)> {
    let domain = shared.domain.as_str();
    loop {
        // On the direct-TLS port there is no plaintext stream at all; once TLS is up both ports offer the
        // same features, which never include STARTTLS again.
        if transport == Transport::DirectTls {
            break;
        }
        match wire.next().await {
            Ok(StreamEvent::Open(h)) => {
                if !open_stream(&mut wire, domain, &h).await {
                    return None;
                }
                let features = Element::new(ns::STREAMS, "features").with_child(
                    Element::new(ns::TLS, "starttls").with_child(Element::new(ns::TLS, "required")),
                );
                wire.send(&features).await.ok()?;
            }
            Ok(StreamEvent::Element(el)) => match Nonza::classify(&el) {
                Some(Nonza::StartTls) => {
                    wire.send(&Element::new(ns::TLS, "proceed")).await.ok()?;
                    break;
                }
                Some(Nonza::SaslAuth { .. }) => {
                    // RFC 6120 §6.4.5: no mechanism is available before TLS.
                    let failure = Element::new(ns::SASL, "failure")
                        .with_child(Element::new(ns::SASL, "encryption-required"));
                    wire.send(&failure).await.ok()?;
                }
                _ => {
                    wire.fail(domain, "policy-violation", Some("STARTTLS is required"))
                        .await;
                    return None;
                }
            },
            Ok(StreamEvent::Stanza(_)) => {
                wire.fail(
                    domain,
                    "not-authorized",
                    Some("STARTTLS and authentication come first"),
                )
                .await;
                return None;
            }
            Ok(StreamEvent::Close) => {
                wire.close().await;
                return None;
            }
            Err(e) => return end_with(&mut wire, domain, e).await,
        }
    }
    let (tcp, spare) = wire.into_io();
    let acceptor = match transport {
        Transport::StartTls => &shared.tls,
        Transport::DirectTls => &shared.direct_tls,
    };
    // A failed handshake (plaintext on the direct-TLS port, an ALPN other than xmpp-client) just closes. rustls's
    // unbuffered API, so that an idle client holds no TLS buffers (see `tls_stream`).
    let tls = crate::tls_stream::accept(acceptor.config().clone(), tcp)
        .await
        .ok()?;
    let mut wire = spare.with_io(tls);
    let user = authenticate(&mut wire, shared, ip, Security::Encrypted).await?;
    drop(permit);
    Some((wire, user))
}

/// Whether a stream's transport protects credentials, which decides whether SASL is offered at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS, or plain HTTP on a loopback listener (behind a TLS-terminating proxy): every mechanism is offered.
    Encrypted,
    /// Plain text that may cross a network: no mechanism is offered and authentication is refused with
    /// `<encryption-required/>` (RFC 6120 §6.4.5).
    Plain,
}

/// A WebSocket stream (RFC 7395): no STARTTLS (the transport is what it is), straight to SASL. Returns the
/// authenticated stream and user.
pub(super) async fn negotiate_framed<S, T>(
    mut wire: Wire<T>,
    shared: &Shared<S>,
    permit: OwnedSemaphorePermit,
    security: Security,
    ip: std::net::IpAddr,
) -> Option<(Wire<T>, BareJid)>
where
    S: Store + Send + Sync + 'static,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let user = authenticate(&mut wire, shared, ip, security).await?;
    drop(permit);
    Some((wire, user))
}

/// What a client that tries to authenticate over an unprotected WebSocket is told.
pub(super) const PLAIN_TEXT: &str = "authentication is refused over this unencrypted connection: connect with \
    https/wss, or serve WebSocket through a TLS-terminating proxy on a loopback [http] bind";

/// Answers a stream header: checks it is for us, then opens our side.
pub(super) async fn open_stream<T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
    domain: &str,
    h: &StreamHeader,
) -> bool {
    if h.content_ns != ns::CLIENT {
        wire.fail(
            domain,
            "invalid-namespace",
            Some("this is a client-to-server port"),
        )
        .await;
        return false;
    }
    if h.to.as_deref().map(str::to_ascii_lowercase).as_deref() != Some(domain) {
        wire.fail(
            domain,
            "host-unknown",
            Some("this server does not serve that domain"),
        )
        .await;
        return false;
    }
    if wire
        .open(domain, &crate::random_id(), h.lang.as_deref())
        .await
        .is_err()
    {
        return false;
    }
    true
}

pub(super) async fn end_with<T: AsyncRead + AsyncWrite + Unpin, R>(
    wire: &mut Wire<T>,
    domain: &str,
    e: Ended,
) -> Option<R> {
    if let Ended::Codec(err) = &e {
        wire.fail(domain, err.condition().as_str(), Some(&err.to_string()))
            .await;
    }
    None
}

/// The store as SASL sees it: owned, because every SASL step runs on the blocking pool (the verifier lookup
/// reads the store and PLAIN runs PBKDF2; neither may hold up an I/O worker).
pub(super) struct Accounts<S> {
    store: Arc<S>,
    domain: String,
}

impl<S: Store> CredentialLookup for Accounts<S> {
    fn credentials(&self, username: &str) -> Result<Option<Vec<ScramCredentials>>, StoreError> {
        let Ok(jid) = BareJid::from_parts(Some(username), &self.domain) else {
            return Ok(None);
        };
        Ok(self.store.account(&jid)?.map(|a| a.credentials))
    }
}

/// Starts a SASL exchange off the I/O workers.
pub(super) async fn sasl_start<S: Store + Send + Sync + 'static>(
    lookup: Arc<Accounts<S>>,
    mechanism: String,
    initial: Option<Vec<u8>>,
    secret: [u8; 16],
) -> Result<(SaslServer, Step), sasl::Failure> {
    let nonce = sasl::server_nonce(&crate::random_bytes::<18>());
    let reads_store = initial.is_some();
    let start = move || {
        let params = sasl::Params {
            tls: true,
            server_nonce: &nonce,
            secret: &secret,
        };
        SaslServer::start(&mechanism, initial.as_deref(), params, lookup.as_ref())
    };
    // Without an initial response nothing is read yet: answered here, without a trip to the blocking pool.
    if !reads_store {
        return start();
    }
    tokio::task::spawn_blocking(start)
        .await
        .unwrap_or(Err(sasl::Failure::TemporaryAuthFailure))
}

/// Takes a SASL response off the I/O workers.
pub(super) async fn sasl_step<S: Store + Send + Sync + 'static>(
    lookup: Arc<Accounts<S>>,
    mut server: SaslServer,
    response: Vec<u8>,
) -> (Option<SaslServer>, Step) {
    // SCRAM's final message only checks the proof against what its first message read: a few hashes, done here.
    // A trip to the blocking pool and back costs more (two thread wake-ups, about 5 % of a login's CPU).
    let reads_store = server.step_reads_store();
    let step = move || {
        let step = server.step(&response, lookup.as_ref());
        (Some(server), step)
    };
    if !reads_store {
        return step();
    }
    tokio::task::spawn_blocking(step)
        .await
        .unwrap_or((None, Step::Failure(sasl::Failure::TemporaryAuthFailure)))
}

/// PLAIN checked by the user directory: its verdict decides, except for accounts it does not manage, which are
/// checked against their stored verifiers as without a directory.
async fn directory_plain<S: Store + Send + Sync + 'static>(
    directory: Arc<dyn crate::directory::Directory>,
    domain: &str,
    lookup: Arc<Accounts<S>>,
    secret: [u8; 16],
    message: Vec<u8>,
) -> Step {
    use crate::directory::PasswordVerdict;
    let plain = match sasl::parse_plain(&message) {
        Ok(p) => p,
        Err(f) => return Step::Failure(f),
    };
    let user = sasl::normalise_username(&plain.authcid)
        .and_then(|u| BareJid::from_parts(Some(&u), domain).ok().map(|j| (u, j)));
    let Some((username, user)) = user else {
        return Step::Failure(sasl::Failure::NotAuthorized);
    };
    match directory.check_password(&user, &plain.password).await {
        PasswordVerdict::Accepted => Step::Success {
            username,
            authzid: (!plain.authzid.is_empty()).then_some(plain.authzid),
            additional_data: Vec::new(),
        },
        PasswordVerdict::Refused => Step::Failure(sasl::Failure::NotAuthorized),
        PasswordVerdict::Unavailable => Step::Failure(sasl::Failure::TemporaryAuthFailure),
        PasswordVerdict::NotManaged => {
            match sasl_start(
                lookup,
                sasl::Mechanism::Plain.name().to_owned(),
                Some(message),
                secret,
            )
            .await
            {
                Ok((_, step)) => step,
                Err(f) => Step::Failure(f),
            }
        }
    }
}

/// SASL over TLS (RFC 6120 §6). Returns the authenticated user, with the stream restarted.
pub(super) async fn authenticate<
    S: Store + Send + Sync + 'static,
    T: AsyncRead + AsyncWrite + Unpin,
>(
    wire: &mut Wire<T>,
    shared: &Shared<S>,
    ip: std::net::IpAddr,
    security: Security,
) -> Option<BareJid> {
    let domain = shared.domain.as_str();
    let lookup = Arc::new(Accounts {
        store: shared.store.clone(),
        domain: domain.to_owned(),
    });
    let mut exchange: Option<SaslServer> = None;
    // A directory PLAIN exchange begun without an initial response waits for the password.
    let mut plain_pending = false;
    let mut failures = 0;
    loop {
        let event = match wire.next().await {
            Ok(ev) => ev,
            Err(e) => return end_with(wire, domain, e).await,
        };
        let step = match event {
            StreamEvent::Open(h) => {
                if !open_stream(wire, domain, &h).await {
                    return None;
                }
                let mut features = Element::new(ns::STREAMS, "features");
                if security == Security::Plain {
                    // Neither mechanisms nor registration: both would carry a password in the clear.
                    wire.send(&features).await.ok()?;
                    continue;
                }
                let mut mechs = Element::new(ns::SASL, "mechanisms");
                for m in sasl::offered(true) {
                    mechs =
                        mechs.with_child(Element::new(ns::SASL, "mechanism").with_text(m.name()));
                }
                features = features.with_child(mechs);
                if shared.features.registration().is_some() {
                    use translate::features::register::NS_REGISTER_FEATURE;
                    features = features.with_child(Element::new(NS_REGISTER_FEATURE, "register"));
                }
                wire.send(&features).await.ok()?;
                continue;
            }
            StreamEvent::Element(el) => match Nonza::classify(&el) {
                Some(Nonza::SaslAuth { mechanism, .. }) if security == Security::Plain => {
                    tracing::info!(%ip, mechanism, "authentication refused: plain-text WebSocket on a non-loopback [http] bind");
                    let failure = Element::new(ns::SASL, "failure")
                        .with_child(Element::new(ns::SASL, "encryption-required"))
                        .with_child(Element::new(ns::SASL, "text").with_text(PLAIN_TEXT));
                    wire.send(&failure).await.ok()?;
                    wire.fail(domain, "policy-violation", Some(PLAIN_TEXT))
                        .await;
                    return None;
                }
                Some(Nonza::SaslAuth {
                    mechanism,
                    initial_response,
                }) => match decode(&initial_response) {
                    // PLAIN for a configured directory: the directory checks the password.
                    Ok(initial)
                        if mechanism == sasl::Mechanism::Plain.name()
                            && let Some(directory) = shared.features.directory() =>
                    {
                        exchange = None;
                        match initial {
                            // RFC 6120 §6.4.2: no initial response, an empty challenge; the password follows.
                            None => {
                                plain_pending = true;
                                Ok(Step::Challenge(Vec::new()))
                            }
                            Some(bytes) => Ok(directory_plain(
                                directory.clone(),
                                domain,
                                lookup.clone(),
                                shared.secret,
                                bytes,
                            )
                            .await),
                        }
                    }
                    Ok(initial) => {
                        plain_pending = false;
                        match sasl_start(
                            lookup.clone(),
                            mechanism.to_owned(),
                            initial,
                            shared.secret,
                        )
                        .await
                        {
                            Ok((server, step)) => {
                                exchange = Some(server);
                                Ok(step)
                            }
                            Err(f) => Ok(Step::Failure(f)),
                        }
                    }
                    Err(()) => Err(()),
                },
                Some(Nonza::SaslResponse(data))
                    if plain_pending && let Some(directory) = shared.features.directory() =>
                {
                    plain_pending = false;
                    match decode(&data) {
                        Ok(bytes) => Ok(directory_plain(
                            directory.clone(),
                            domain,
                            lookup.clone(),
                            shared.secret,
                            bytes.unwrap_or_default(),
                        )
                        .await),
                        Err(()) => Err(()),
                    }
                }
                Some(Nonza::SaslResponse(data)) => match (exchange.take(), decode(&data)) {
                    (Some(server), Ok(bytes)) => {
                        let (server, step) =
                            sasl_step(lookup.clone(), server, bytes.unwrap_or_default()).await;
                        exchange = server;
                        Ok(step)
                    }
                    (None, _) => Ok(Step::Failure(sasl::Failure::MalformedRequest)),
                    (_, Err(())) => Err(()),
                },
                Some(Nonza::SaslAbort) => Ok(Step::Failure(sasl::Failure::Aborted)),
                _ => {
                    wire.fail(domain, "not-authorized", Some("authenticate first"))
                        .await;
                    return None;
                }
            },
            StreamEvent::Stanza(stanza) => {
                // In-band registration is the one thing a client may do before authenticating (XEP-0077 §3.1).
                if let Some(registration) = shared.features.registration()
                    && security == Security::Encrypted
                    && translate::features::register::is_request(&stanza)
                {
                    let answer = translate::features::register::unauthenticated(
                        registration.clone(),
                        shared.store.clone(),
                        domain,
                        ip,
                        &stanza,
                    )
                    .await;
                    wire.send(&answer).await.ok()?;
                    continue;
                }
                wire.fail(domain, "not-authorized", Some("authenticate first"))
                    .await;
                return None;
            }
            StreamEvent::Close => {
                wire.close().await;
                return None;
            }
        };
        // Undecodable base64 is its own condition (RFC 6120 §6.5.3).
        let step = step.unwrap_or_else(|()| {
            exchange = None;
            Step::Failure(sasl::Failure::MalformedRequest)
        });
        match step {
            Step::Challenge(data) => {
                wire.send(&Element::new(ns::SASL, "challenge").with_text(B64.encode(data)))
                    .await
                    .ok()?;
            }
            Step::Success {
                username,
                authzid,
                additional_data,
            } => {
                let user = BareJid::from_parts(Some(&username), domain).ok()?;
                // Acting for another user is not offered: an authzid may only name the user (RFC 6120 §6.3.8).
                if authzid.is_some_and(|a| BareJid::new(&a).ok().as_ref() != Some(&user)) {
                    failures += 1;
                    let failure = Element::new(ns::SASL, "failure").with_child(Element::new(
                        ns::SASL,
                        sasl::Failure::InvalidAuthzid.condition(),
                    ));
                    wire.send(&failure).await.ok()?;
                    continue;
                }
                let mut success = Element::new(ns::SASL, "success");
                if !additional_data.is_empty() {
                    success = success.with_text(B64.encode(additional_data));
                }
                wire.send(&success).await.ok()?;
                wire.restart();
                return Some(user);
            }
            Step::Failure(f) => {
                exchange = None;
                plain_pending = false;
                failures += 1;
                let failure = Element::new(ns::SASL, "failure")
                    .with_child(Element::new(ns::SASL, f.condition()));
                wire.send(&failure).await.ok()?;
                if failures >= MAX_AUTH_ATTEMPTS {
                    wire.fail(
                        domain,
                        "policy-violation",
                        Some("too many failed authentication attempts"),
                    )
                    .await;
                    return None;
                }
            }
        }
    }
}

/// SASL payloads are base64: no text means no data, a single `=` an empty response (RFC 6120 §6.4.2).
pub(super) fn decode(text: &str) -> Result<Option<Vec<u8>>, ()> {
    match text.trim() {
        "" => Ok(None),
        "=" => Ok(Some(Vec::new())),
        t => B64.decode(t).map(Some).map_err(|_| ()),
    }
}
