//! Certificate authentication of peer domains (SASL EXTERNAL, RFC 6120 §13.7.1.2 / RFC 6125): the trust store
//! (`[s2s] ca_file`), whether a certificate chain is valid for a domain, and the TLS server's acceptance of
//! whatever certificate a peer shows, so that the check can be made later against the domain its stream names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// Why the trust store could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The CA file could not be read or holds no usable certificate.
    #[error("cannot read the s2s CA certificates from {path}: {detail}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

/// The CAs whose certificates prove a peer's domain; empty (no `ca_file`): no certificate is trusted and every
/// peer is authenticated with dialback.
#[derive(Clone)]
pub struct TrustStore {
    verifier: Option<Arc<WebPkiServerVerifier>>,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("trusts_any_ca", &self.verifier.is_some())
            .finish()
    }
}

impl TrustStore {
    /// Trusts no certificate.
    pub fn none() -> Self {
        TrustStore { verifier: None }
    }

    /// Trusts the CAs in `ca_file` (PEM).
    pub fn load(ca_file: &Path) -> Result<Self, TrustError> {
        let read = |detail: String| TrustError::Read {
            path: ca_file.to_owned(),
            detail,
        };
        let certs = CertificateDer::pem_file_iter(ca_file)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| read(e.to_string()))?;
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots.add(cert).map_err(|e| read(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(read("no certificate in the file".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| read(e.to_string()))?;
        Ok(TrustStore {
            verifier: Some(verifier),
        })
    }

    /// Whether any certificate can be trusted (so whether peers are asked for one).
    pub fn is_empty(&self) -> bool {
        self.verifier.is_none()
    }

    /// Whether `chain` (end entity first) chains to a trusted CA, is in its validity period and is issued to
    /// `domain` (an RFC 6125 DNS-ID in its subjectAltName). webpki makes every check: the server-certificate
    /// verifier is used because what is checked is the same as for a server's name, whichever side shows it.
    pub fn vouches_for(&self, chain: &[CertificateDer<'static>], domain: &str) -> bool {
        let (Some(verifier), Some((end, intermediates))) = (&self.verifier, chain.split_first())
        else {
            return false;
        };
        let Ok(name) = ServerName::try_from(domain.to_owned()) else {
            return false;
        };
        verifier
            .verify_server_cert(end, intermediates, &name, &[], UnixTime::now())
            .is_ok()
    }
}

/// Asks every peer for a certificate and accepts any (or none) in the handshake: whether it proves a domain
/// is only known once the stream names one ([`TrustStore::vouches_for`]), and a peer whose certificate does not
/// is still served with dialback. The handshake signatures are checked, so a peer holds the key of what it shows.
#[derive(Debug)]
pub(crate) struct AnyPeerCert {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl AnyPeerCert {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(AnyPeerCert {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }
}

impl ClientCertVerifier for AnyPeerCert {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_store_vouches_for_nothing() {
        let cert = rcgen::generate_simple_self_signed(vec!["a.example".into()]).expect("cert");
        let chain = vec![cert.cert.der().clone()];
        assert!(TrustStore::none().is_empty());
        assert!(!TrustStore::none().vouches_for(&chain, "a.example"));
    }

    #[test]
    fn a_trusted_certificate_vouches_only_for_its_own_domain() {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).expect("params");
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let leaf = params.signed_by(&key, &issuer).expect("leaf");
        let dir = std::env::temp_dir().join(format!("s2s-trust-{}", crate::random_id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write");
        let store = TrustStore::load(&ca_file).expect("store");
        let chain = vec![leaf.der().clone()];
        assert!(store.vouches_for(&chain, "a.example"));
        assert!(store.vouches_for(&chain, "A.Example"));
        assert!(!store.vouches_for(&chain, "b.example"));
        let stranger = rcgen::generate_simple_self_signed(vec!["a.example".into()]).expect("cert");
        assert!(!store.vouches_for(&[stranger.cert.der().clone()], "a.example"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
