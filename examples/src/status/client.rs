//! `presenced status`: asks the running server for `/status.json` on its HTTP listener, as the configuration
//! says where (`[http] bind`, `tls`, `admin_password`). An unspecified bind address (`0.0.0.0`, `::`) is reached
//! on loopback. Over `[http] tls` the server must present exactly the certificate the configuration names (the
//! XMPP listeners' `tls_cert`, or the one generated into the data directory): the client pins it rather than
//! trusting any CA, so it also works with the self-signed default.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Snapshot;
use super::access::authorization;
use crate::config::Config;

/// How long the whole exchange may take before the server counts as down.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The largest answer read (a snapshot is a few kilobytes; 50 log entries of 512 bytes at most).
const MAX_ANSWER: u64 = 1024 * 1024;

/// Why no status could be read: the server is down or unreachable, or answered something else.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Nothing answers on the address, or the exchange failed.
    #[error("down: cannot reach {addr}: {message}")]
    Unreachable {
        /// The address tried.
        addr: SocketAddr,
        /// What went wrong.
        message: String,
    },
    /// The certificate to pin could not be read.
    #[error("cannot read the server certificate {}: {message}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The server answered with an HTTP error (access refused, not found …).
    #[error("{addr} answered {status}: {body}")]
    Http {
        /// The address asked.
        addr: SocketAddr,
        /// The status line's code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The answer is not a status document.
    #[error("{addr} did not answer with a status document: {message}")]
    BadAnswer {
        /// The address asked.
        addr: SocketAddr,
        /// What was wrong.
        message: String,
    },
}

/// The address `presenced status` connects to for `config`.
pub fn target(config: &Config) -> SocketAddr {
    let bind = config.http.bind;
    let ip = match bind.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bind.port())
}

/// Reads the running server's status.
pub async fn fetch(config: &Config) -> Result<Snapshot, StatusError> {
    let addr = target(config);
    let pinned = if config.http.tls {
        Some(pinned_certificate(config)?)
    } else {
        None
    };
    let answer = tokio::time::timeout(TIMEOUT, exchange(config, addr, pinned))
        .await
        .map_err(|_| StatusError::Unreachable {
            addr,
            message: format!("no answer within {} s", TIMEOUT.as_secs()),
        })?
        .map_err(|e| StatusError::Unreachable {
            addr,
            message: e.to_string(),
        })?;
    parse_answer(addr, &answer)
}

async fn exchange(
    config: &Config,
    addr: SocketAddr,
    pinned: Option<CertificateDer<'static>>,
) -> std::io::Result<Vec<u8>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut request = format!(
        "GET /status.json HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n"
    );
    if let Some(password) = &config.http.admin_password {
        request.push_str(&format!("Authorization: {}\r\n", authorization(password)));
    }
    request.push_str("\r\n");
    match pinned {
        None => talk(tcp, &request).await,
        Some(cert) => {
            let tls = server_xmpp::tls::client_config(server_xmpp::tls::Expected::Exactly(cert));
            // The name is not checked (the certificate is pinned), only sent as SNI.
            let name = ServerName::try_from(config.domain.clone())
                .unwrap_or_else(|_| ServerName::IpAddress(addr.ip().into()));
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await?;
            talk(stream, &request).await
        }
    }
}

async fn talk(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    request: &str,
) -> std::io::Result<Vec<u8>> {
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut answer = Vec::new();
    let mut limited = (&mut stream).take(MAX_ANSWER);
    match limited.read_to_end(&mut answer).await {
        Ok(_) => Ok(answer),
        // A TLS peer that closes without close_notify after a complete answer is fine for a status read.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => Ok(answer),
        Err(e) => Err(e),
    }
}

/// The status in an HTTP/1.1 answer (the server sends `Content-Length`, and closes as asked).
fn parse_answer(addr: SocketAddr, answer: &[u8]) -> Result<Snapshot, StatusError> {
    let bad = |message: &str| StatusError::BadAnswer {
        addr,
        message: message.to_owned(),
    };
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no complete HTTP header"))?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let body = &answer[split + 4..];
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no HTTP status line"))?;
    if head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:"))
    {
        return Err(bad("a chunked answer (expected Content-Length)"));
    }
    if status != 200 {
        let text = String::from_utf8_lossy(body);
        return Err(StatusError::Http {
            addr,
            status,
            body: crate::admin::one_line(&text.chars().take(200).collect::<String>()),
        });
    }
    serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))
}

/// The certificate the server presents over `[http] tls`: the configured one, else the generated one.
fn pinned_certificate(config: &Config) -> Result<CertificateDer<'static>, StatusError> {
    let path = config
        .xmpp
        .tls_cert
        .clone()
        .unwrap_or_else(|| config.data_dir.join("tls").join("cert.pem"));
    let fail = |message: String| StatusError::Certificate {
        path: path.clone(),
        message,
    };
    let mut certs = CertificateDer::pem_file_iter(&path).map_err(|e| fail(e.to_string()))?;
    match certs.next() {
        Some(Ok(cert)) => Ok(cert),
        Some(Err(e)) => Err(fail(e.to_string())),
        None => Err(fail("no certificate in the file".into())),
    }
}

/// The lines `presenced status` prints for `s`.
pub fn describe(s: &Snapshot, addr: SocketAddr) -> String {
    let mut out = format!(
        "presenced {} is up on {addr} (domain {}), uptime {}\n",
        s.version,
        s.domain,
        super::page::duration(s.uptime_seconds)
    );
    out.push_str(&format!(
        "sessions: xmpp {}, sip {}\n",
        s.sessions.xmpp, s.sessions.sip
    ));
    out.push_str(&format!(
        "messages: {:.2}/s over the last minute, {} held offline\n",
        s.messages_per_second, s.offline_messages
    ));
    out.push_str(&format!(
        "store: {} ({}) {}, {} failed operations in the last minute\n",
        s.store.kind, s.store.location, s.store.state, s.store.failures_last_minute
    ));
    match &s.cluster {
        None => out.push_str("cluster: not clustered\n"),
        Some(c) => {
            let nodes: Vec<String> = c
                .nodes
                .iter()
                .map(|n| format!("{} {}", n.name, n.state.as_deref().unwrap_or("-")))
                .collect();
            out.push_str(&format!(
                "cluster: node {} in group {}; nodes: {}\n",
                c.node,
                c.group,
                if nodes.is_empty() {
                    "not read yet".to_owned()
                } else {
                    nodes.join(", ")
                }
            ));
            if let Some(e) = &c.error {
                out.push_str(&format!("cluster database: {e}\n"));
            }
        }
    }
    out.push_str(&format!(
        "recent warnings and errors: {}\n",
        s.recent_errors.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_binds_are_reached_on_loopback() {
        let mut c = Config::default();
        c.http.bind = "0.0.0.0:5280".parse().expect("addr");
        assert_eq!(
            target(&c),
            "127.0.0.1:5280".parse::<SocketAddr>().expect("addr")
        );
        c.http.bind = "[::]:8080".parse().expect("addr");
        assert_eq!(
            target(&c),
            "[::1]:8080".parse::<SocketAddr>().expect("addr")
        );
    }

    #[test]
    fn refusals_and_garbage_are_errors_not_statuses() {
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let refused = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 5\r\n\r\nnope\n";
        assert!(matches!(
            parse_answer(addr, refused),
            Err(StatusError::Http { status: 403, .. })
        ));
        let garbage = b"HTTP/1.1 200 OK\r\n\r\n<html>";
        assert!(matches!(
            parse_answer(addr, garbage),
            Err(StatusError::BadAnswer { .. })
        ));
    }
}
