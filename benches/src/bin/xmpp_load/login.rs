//! One client's login: SASL SCRAM-SHA-1 over the encrypted stream, the restarted stream, then bind, roster get and
//! initial presence pipelined in one write; `<see-other-host/>` redirects of a cluster are followed. And the
//! login of many clients at once, with a bound on logins in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::Semaphore;
use xmpp_codec::{Element, Stanza, StreamEvent, StreamParser};

use crate::Error;
use crate::connect::{HEADER, Target, Tls, connect_tls, next_event, next_nonza};
use crate::scram;

pub(crate) const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Bounds one whole login, so a stuck server cannot hang the run.
pub(crate) const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct Client {
    pub(crate) rd: ReadHalf<Tls>,
    pub(crate) wr: WriteHalf<Tls>,
    pub(crate) parser: StreamParser,
    /// The node it is logged in to.
    pub(crate) addr: SocketAddr,
    /// `<see-other-host/>` redirects it followed to get there.
    pub(crate) redirects: u32,
    /// Messages with a body that arrived during the login, before the bind and roster results were in (offline
    /// messages a server flushes early): the `resume`/`relogin` workloads count them.
    pub(crate) early: Vec<String>,
}

/// Where one login attempt ended: logged in, or sent to another node.
pub(crate) enum Landing {
    In(Box<Client>),
    Redirect(SocketAddr),
}

/// At most this many `<see-other-host/>` redirects per login (a cluster needs one).
pub(crate) const MAX_REDIRECTS: u32 = 3;

/// The address of a `<see-other-host/>` (`host:port`, `[v6]:port`): `localhost` is 127.0.0.1 (the certificate
/// is checked against `localhost` anyway); only loopback addresses are accepted.
pub(crate) fn resolve_redirect(host_port: &str) -> Result<SocketAddr, Error> {
    let (host, port) = host_port
        .rsplit_once(':')
        .ok_or_else(|| format!("see-other-host {host_port:?} has no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("see-other-host {host_port:?}: bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = if host.eq_ignore_ascii_case("localhost") {
        std::net::Ipv4Addr::LOCALHOST.into()
    } else {
        host.parse()
            .map_err(|_| format!("see-other-host {host_port:?}: not an IP address or localhost"))?
    };
    if !ip.is_loopback() {
        return Err(format!("see-other-host {host_port:?} is not a loopback address").into());
    }
    Ok(SocketAddr::new(ip, port))
}

pub(crate) fn random_nonce() -> Result<String, Error> {
    let mut r = [0u8; 18];
    getrandom::fill(&mut r).map_err(|e| format!("getrandom: {e}"))?;
    Ok(B64.encode(r))
}

/// SCRAM-SHA-1 over an encrypted stream whose features were just read.
pub(crate) async fn scram_sha1(
    t: &Target,
    user: usize,
    s: &mut Tls,
    parser: &mut StreamParser,
    buf: &mut [u8],
    features: &Element,
) -> Result<(), Error> {
    let offered = features
        .child(NS_SASL, "mechanisms")
        .is_some_and(|m| m.elements().any(|e| e.text() == "SCRAM-SHA-1"));
    if !offered {
        return Err("server does not offer SCRAM-SHA-1".into());
    }
    let cnonce = random_nonce()?;
    let first_bare = format!("n=u{user},r={cnonce}");
    s.write_all(
        format!(
            "<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-1'>{}</auth>",
            B64.encode(format!("n,,{first_bare}"))
        )
        .as_bytes(),
    )
    .await?;
    let el = next_nonza(s, parser, buf).await?;
    if el.name != "challenge" {
        return Err(format!("SASL: expected challenge, got {el:?}").into());
    }
    let server_first = String::from_utf8(B64.decode(el.text().trim())?)?;
    let sf = scram::parse_server_first(&server_first, &cnonce)?;
    let keys = t.cache.keys(user, &sf).await?;
    let (msg, server_sig) = scram::client_final(&keys, &first_bare, &server_first, &sf.nonce);
    s.write_all(format!("<response xmlns='{NS_SASL}'>{}</response>", B64.encode(msg)).as_bytes())
        .await?;
    let mut el = next_nonza(s, parser, buf).await?;
    if el.name == "challenge" {
        // Additional data in a challenge, then an empty response (RFC 6120 §6.3.10 allows either form).
        let v = String::from_utf8(B64.decode(el.text().trim())?)?;
        if !scram::verify_server_final(&v, &server_sig) {
            return Err("bad server signature".into());
        }
        s.write_all(format!("<response xmlns='{NS_SASL}'/>").as_bytes())
            .await?;
        el = next_nonza(s, parser, buf).await?;
        if el.name != "success" {
            return Err(format!("SASL failed: {el:?}").into());
        }
        return Ok(());
    }
    if el.name != "success" {
        return Err(format!("SASL failed: {el:?}").into());
    }
    let v = String::from_utf8(B64.decode(el.text().trim())?)?;
    if !scram::verify_server_final(&v, &server_sig) {
        return Err("bad server signature".into());
    }
    Ok(())
}

/// STARTTLS, SASL SCRAM-SHA-1, bind, roster get, initial presence at the `--addr` node, following
/// `<see-other-host/>` to the node that serves the user.
pub(crate) async fn login(t: &Target, user: usize) -> Result<Client, Error> {
    login_from(t, t.addr, user).await
}

/// [`login`] starting at `addr`.
pub(crate) async fn login_from(t: &Target, addr: SocketAddr, user: usize) -> Result<Client, Error> {
    let mut at = addr;
    for hop in 0..=MAX_REDIRECTS {
        match login_once(t, at, user).await? {
            Landing::In(mut c) => {
                c.redirects = hop;
                return Ok(*c);
            }
            Landing::Redirect(to) => at = to,
        }
    }
    Err(format!("more than {MAX_REDIRECTS} see-other-host redirects").into())
}

/// A connection through TLS and SASL up to the first element of the restarted stream: its features, or a stream
/// error right after SASL (a cluster node's `<see-other-host/>`). Returns the stream, its parser and read buffer.
pub(crate) async fn authenticated(
    t: &Target,
    addr: SocketAddr,
    user: usize,
) -> Result<(Tls, StreamParser, Vec<u8>, StreamEvent), Error> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut parser = StreamParser::new();
    let (mut s, features) = connect_tls(t, addr, &mut parser, &mut buf).await?;
    scram_sha1(t, user, &mut s, &mut parser, &mut buf, &features).await?;
    parser.reset_keep_buffered();
    s.write_all(HEADER).await?;
    match next_event(&mut s, &mut parser, &mut buf).await? {
        StreamEvent::Open(_) => {}
        other => return Err(format!("expected stream header, got {other:?}").into()),
    }
    let first = next_event(&mut s, &mut parser, &mut buf).await?;
    Ok((s, parser, buf, first))
}

/// One login at `addr`. A cluster node that does not serve the user ends the restarted stream after SASL
/// success with `<see-other-host/>` (RFC 6120 §4.9.3.19): that is a [`Landing::Redirect`].
pub(crate) async fn login_once(
    t: &Target,
    addr: SocketAddr,
    user: usize,
) -> Result<Landing, Error> {
    let (mut s, mut parser, mut buf, first) = authenticated(t, addr, user).await?;
    match first {
        StreamEvent::Element(el) if el.name == "features" => {}
        StreamEvent::Element(el) if el.name == "error" => {
            return match el.elements().find(|e| e.name == "see-other-host") {
                Some(to) => {
                    let _ = s.write_all(b"</stream:stream>").await;
                    Ok(Landing::Redirect(resolve_redirect(to.text().trim())?))
                }
                None => Err(format!("stream error after SASL: {el:?}").into()),
            };
        }
        other => return Err(format!("expected features, got {other:?}").into()),
    }
    // Bind, roster get and initial presence pipelined in one write.
    s.write_all(
        b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>load</resource></bind></iq>\
<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/>",
    )
    .await?;
    let (mut bound, mut roster) = (false, false);
    let mut early = Vec::new();
    while !(bound && roster) {
        let ev = next_event(&mut s, &mut parser, &mut buf).await?;
        if let StreamEvent::Stanza(Stanza::Message(el)) = &ev
            && let Some(b) = el.child("jabber:client", "body")
        {
            early.push(b.text());
        }
        if let StreamEvent::Stanza(Stanza::Iq(el)) = ev {
            let ok = el.attr("type") == Some("result");
            match el.attr("id") {
                Some("b") if ok => bound = true,
                Some("r") if ok => roster = true,
                Some(id @ ("b" | "r")) => return Err(format!("iq {id} failed: {el:?}").into()),
                _ => {}
            }
        }
    }
    let (rd, wr) = tokio::io::split(s);
    Ok(Landing::In(Box::new(Client {
        rd,
        wr,
        parser,
        addr,
        redirects: 0,
        early,
    })))
}

/// Logs u0..u{n-1} in with at most `concurrency` logins in flight; `None` for the ones that failed.
pub(crate) async fn login_all(
    t: &Target,
    n: usize,
    concurrency: usize,
) -> (Vec<Option<Client>>, usize, Option<String>) {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(n);
    for user in 0..n {
        let (sem, t) = (sem.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            tokio::time::timeout(LOGIN_TIMEOUT, login(&t, user))
                .await
                .map_err(|_| Error::from("login timed out"))?
        }));
    }
    let mut clients = Vec::with_capacity(n);
    let (mut errors, mut first_error) = (0, None);
    for task in tasks {
        match task.await {
            Ok(Ok(c)) => clients.push(Some(c)),
            Ok(Err(e)) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
                clients.push(None);
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
                clients.push(None);
            }
        }
    }
    (clients, errors, first_error)
}
