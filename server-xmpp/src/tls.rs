//! TLS for client connections (rustls, TLS 1.2 and 1.3): a configured certificate, or a self-signed one generated
//! into the data directory on first start; and the client side of our own outbound TLS ([`client_config`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed.
    #[error("cannot read {what} from {path}: {detail}")]
    Read {
        /// Certificate or key.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The self-signed certificate could not be generated or written.
    #[error("cannot create a self-signed certificate in {path}: {detail}")]
    Generate {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// rustls refused the certificate and key.
    #[error("the certificate and key do not form a usable TLS identity: {0}")]
    Identity(String),
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// PEM files given by the operator.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// `dir/cert.pem` and `dir/key.pem`, generated for `domain` when missing.
    SelfSigned {
        /// The directory.
        dir: PathBuf,
        /// The certificate's subject alternative name.
        domain: String,
    },
}

/// Builds the rustls server configuration.
pub fn server_config(source: &CertSource) -> Result<Arc<ServerConfig>, TlsError> {
    build(source, None)
}

/// The same identity and protocol versions, asking clients for a certificate that `verifier` checks (the SIP
/// listener's trusted peers prove themselves with one; whether one is required is the verifier's choice).
pub fn server_config_with_client_auth(
    source: &CertSource,
    verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
) -> Result<Arc<ServerConfig>, TlsError> {
    build(source, Some(verifier))
}

fn build(
    source: &CertSource,
    verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let (certs, key) = identity(source)?;
    let mut provider = rustls::crypto::ring::default_provider();
    // AES-128-GCM first, in TLS 1.3 and 1.2 alike (Mozilla's recommended order; every TLS 1.3 client has it):
    // its handshake hashes with SHA-256, which current x86 and ARM cores do in hardware, where AES-256-GCM's
    // SHA-384 is software (3 % of a login's server CPU in the login storm's profile). The rest keep rustls's
    // order. The server's order decides (`ignore_client_order`), as most clients list AES-256 first.
    provider
        .cipher_suites
        .sort_by_key(|suite| !prefer(suite.suite()));
    let builder = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Identity(e.to_string()))?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Identity(e.to_string()))?;
    // No TLS session resumption. rustls's default keeps a 256-entry session cache behind one lock and sends two
    // TLS 1.3 tickets after every handshake: random ids, a cache insert and a record written per login, for
    // resumptions that a server with thousands of clients evicts long before anyone comes back. XMPP clients
    // reconnect with XEP-0198 resumption, which needs authentication again anyway. Measured: server CPU for
    // 5,000 TLS logins 2.50 -> 2.34 s (interleaved runs, benches/README.md).
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// The cipher suites the server picks first when a client offers them (see [`build`]).
fn prefer(suite: rustls::CipherSuite) -> bool {
    use rustls::CipherSuite as S;
    matches!(
        suite,
        S::TLS13_AES_128_GCM_SHA256
            | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    )
}

/// The certificate chain and private key `source` names (generating the self-signed one when missing).
pub fn identity(
    source: &CertSource,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let (cert, key) = match source {
        CertSource::Files { cert, key } => (cert.clone(), key.clone()),
        CertSource::SelfSigned { dir, domain } => ensure_self_signed(dir, domain)?,
    };
    let certs = CertificateDer::pem_file_iter(&cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Read {
            what: "the certificate",
            path: cert.clone(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Read {
            what: "the certificate",
            path: cert,
            detail: "no certificate in the file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| TlsError::Read {
        what: "the private key",
        path: key.clone(),
        detail: e.to_string(),
    })?;
    Ok((certs, key))
}

/// The ALPN protocol name XEP-0368 gives client-to-server XMPP over direct TLS.
pub const ALPN_XMPP_CLIENT: &[u8] = b"xmpp-client";

/// The configuration for the direct-TLS port (XEP-0368): the same identity, answering ALPN `xmpp-client`.
///
/// A client that offers no ALPN at all is still served (most XMPP libraries send none); one that offers only
/// other protocols is refused in the handshake, since it is not speaking XMPP to us.
pub fn direct_tls_config(base: &ServerConfig) -> Arc<ServerConfig> {
    let mut config = base.clone();
    config.alpn_protocols = vec![ALPN_XMPP_CLIENT.to_vec()];
    Arc::new(config)
}

fn ensure_self_signed(dir: &Path, domain: &str) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let fail = |detail: String| TlsError::Generate {
        path: dir.to_owned(),
        detail,
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let generated = rcgen::generate_simple_self_signed(vec![domain.to_owned()])
        .map_err(|e| fail(e.to_string()))?;
    write_private(&key, generated.signing_key.serialize_pem().as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    std::fs::write(&cert, generated.cert.pem()).map_err(|e| fail(e.to_string()))?;
    Ok((cert, key))
}

/// Writes a file only its owner can read: the private key must not be readable by other local users.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_direct_tls_config_is_the_same_identity_speaking_alpn_xmpp_client() {
        let dir = std::env::temp_dir().join(format!(
            "server-xmpp-tls-{}-{}",
            std::process::id(),
            crate::random_id()
        ));
        let base = server_config(&CertSource::SelfSigned {
            dir: dir.clone(),
            domain: "example.com".into(),
        })
        .expect("a self-signed identity");
        let direct = direct_tls_config(&base);
        assert_eq!(direct.alpn_protocols, vec![b"xmpp-client".to_vec()]);
        // STARTTLS negotiates no ALPN: the stream is already XMPP when TLS starts.
        assert!(base.alpn_protocols.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Which certificate an outbound TLS connection of ours accepts from the server, where no CA vouches for it.
#[derive(Debug)]
pub enum Expected {
    /// Any: the peer is authenticated another way (server dialback, XEP-0220, whose point is to work with
    /// self-signed and mismatched certificates); TLS gives confidentiality.
    Any,
    /// Exactly this one, known in advance (`presenced status` reaching its own server's self-signed HTTPS).
    Exactly(CertificateDer<'static>),
}

/// A client configuration (TLS 1.2 and 1.3, ring) accepting the server certificate `expected`. The handshake's
/// signatures are checked either way, so the server holds the key of the certificate it shows.
pub fn client_config(expected: Expected) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("ring supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ExpectedCert { expected, provider }))
        .with_no_client_auth();
    Arc::new(config)
}

/// The same, presenting `source`'s certificate when the server asks for one (a federating server proves its
/// domain with it: SASL EXTERNAL, RFC 6120 §13.7).
pub fn client_config_presenting(
    expected: Expected,
    source: &CertSource,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let (certs, key) = identity(source)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Identity(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ExpectedCert { expected, provider }))
        .with_client_auth_cert(certs, key)
        .map_err(|e| TlsError::Identity(e.to_string()))?;
    Ok(Arc::new(config))
}

/// The verifier behind [`client_config`].
#[derive(Debug)]
struct ExpectedCert {
    expected: Expected,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for ExpectedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match &self.expected {
            Expected::Exactly(cert) if end_entity.as_ref() != cert.as_ref() => Err(
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            ),
            _ => Ok(rustls::client::danger::ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
