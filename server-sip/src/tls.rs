//! SIP over TLS (RFC 3261 §26.2, `sips:` and `;transport=tls`): what the TLS listener needs beyond the server
//! identity, which the embedder builds (the bundled server shares the XMPP listener's certificate handling).
//!
//! Trusted call-control peers may be recognised by their client certificate instead of their IP address: a
//! certificate the configured CA verified, whose subject is listed, makes the connection trusted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// How the TLS listener is set up.
#[derive(Debug, Clone)]
pub struct SipTls {
    /// Where to listen for TLS (the default SIPS port is 5061).
    pub bind: SocketAddr,
    /// The server identity, with a client certificate verifier when trusted peers are known by certificate.
    /// TLS 1.2 must stay enabled: deployed phones (and pjsua2's bundled OpenSSL 1.0.2) cannot speak 1.3.
    pub config: Arc<ServerConfig>,
    /// Subjects of client certificates that make a connection a trusted call-control peer (DESIGN §7), matched
    /// by [`trusted_subject`].
    pub trusted_subjects: Vec<String>,
}

/// Why the client certificate verifier could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SipTlsError {
    /// The CA file could not be read or holds no usable certificate.
    #[error("cannot read client CA certificates from {path}: {detail}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// rustls refused the CA certificates.
    #[error("the client CA certificates in {path} are not usable: {detail}")]
    Verifier {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

/// A verifier for client certificates issued by the CAs in `ca_file` (PEM). Client certificates stay optional
/// (phones present none); one that is presented must verify, or the handshake fails.
pub fn client_verifier(ca_file: &Path) -> Result<Arc<dyn ClientCertVerifier>, SipTlsError> {
    let read = |detail: String| SipTlsError::Read {
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
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| SipTlsError::Verifier {
            path: ca_file.to_owned(),
            detail: e.to_string(),
        })
}

/// The names a certificate is issued to: its DNS subject alternative names, or, only when it has no subject
/// alternative name extension at all, its subject's common name (RFC 5922 §7.1 allows the CN only then).
/// Unparsable certificates name nothing.
pub fn subject_names(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                _ => None,
            })
            .collect(),
        Ok(None) => cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
            .collect(),
        // A malformed or duplicated extension: the certificate names nothing we could trust.
        Err(_) => Vec::new(),
    }
}

/// The listed subject the peer's (already verified) leaf certificate is issued to, if any. Names compare
/// exactly, ignoring ASCII case; a wildcard certificate matches no listed name (RFC 5922 §7.2: SIP does not
/// accept wildcards), so `*.example.com` never stands for `pbx.example.com`.
pub fn trusted_subject(
    peer_certs: Option<&[CertificateDer<'_>]>,
    listed: &[String],
) -> Option<String> {
    let leaf = peer_certs?.first()?;
    subject_names(leaf)
        .into_iter()
        .find(|name| listed.iter().any(|l| l.eq_ignore_ascii_case(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(sans: &[&str], cn: Option<&str>) -> CertificateDer<'static> {
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().clone()
    }

    fn listed(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_listed_dns_name_makes_the_peer_trusted_whatever_its_case() {
        let c = cert(&["gw.example.com", "PBX.example.com"], Some("other"));
        assert_eq!(
            trusted_subject(Some(&[c]), &listed(&["pbx.example.com"])),
            Some("PBX.example.com".into())
        );
    }

    #[test]
    fn the_common_name_counts_only_without_subject_alternative_names() {
        let cn_only = cert(&[], Some("pbx.example.com"));
        assert_eq!(subject_names(&cn_only), vec!["pbx.example.com".to_owned()]);
        let both = cert(&["gw.example.com"], Some("pbx.example.com"));
        assert_eq!(
            trusted_subject(Some(&[both]), &listed(&["pbx.example.com"])),
            None
        );
    }

    #[test]
    fn wildcards_unlisted_names_and_missing_certificates_are_not_trusted() {
        let wild = cert(&["*.example.com"], None);
        assert_eq!(
            trusted_subject(Some(&[wild]), &listed(&["pbx.example.com"])),
            None
        );
        let other = cert(&["phone.example.com"], None);
        assert_eq!(
            trusted_subject(Some(&[other]), &listed(&["pbx.example.com"])),
            None
        );
        assert_eq!(trusted_subject(None, &listed(&["pbx.example.com"])), None);
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x01, 0xff]);
        assert!(subject_names(&garbage).is_empty());
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let path = std::env::temp_dir().join(format!(
            "server-sip-ca-{}-{:x}.pem",
            std::process::id(),
            u64::from_be_bytes(presence_core::runtime::random_bytes::<8>())
        ));
        std::fs::write(&path, "not a certificate\n").expect("write");
        let err = client_verifier(&path).map(|_| ()).expect_err("refused");
        let _ = std::fs::remove_file(&path);
        assert!(err.to_string().contains("no certificate"), "{err}");
    }
}
