//! `presenced`'s TOML configuration file, with every default of DESIGN §3-§4, and its mapping to the engine's
//! [`EngineConfig`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use presence_core::{BareJid, Cap, EngineConfig, Limits};
use serde::Deserialize;

/// The database file name inside `data_dir`.
pub const STORE_FILE: &str = "presenced.redb";

/// Why a configuration could not be loaded; every message is one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the schema (unknown key, wrong type).
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the problem.
        line: usize,
        /// What was wrong, on one line.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("{path}: {key} = {value:?} {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The offending key.
        key: &'static str,
        /// Its value.
        value: String,
        /// Why it was refused.
        problem: String,
    },
    /// An environment variable that overrides a key holds something the key cannot.
    #[error("{var} = {value:?} {problem}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// Why it was refused.
        problem: String,
    },
}

/// Overrides `runtime.shards` for a node outside a cluster (so a test suite can run the server at any shard
/// count without rewriting its configuration files).
pub const SHARDS_ENV: &str = "PRESENCED_SHARDS";

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The domain users live on (`alice@<domain>`).
    pub domain: String,
    /// Where the database lives; relative paths are taken from the working directory.
    pub data_dir: PathBuf,
    /// The XMPP listener.
    pub xmpp: XmppConfig,
    /// The SIP listener.
    pub sip: SipConfig,
    /// Policy switches.
    pub policy: PolicyConfig,
    /// Numeric limits.
    pub limits: LimitsConfig,
    /// The operational log.
    pub log: LogConfig,
    /// The HTTP listener (metrics, XMPP over WebSocket and its XEP-0156 discovery; later BOSH and the status
    /// page).
    pub http: HttpConfig,
    /// Where accounts, rosters and held messages live.
    pub store: StoreConfig,
    /// This node's place in a cluster; absent for a single server.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// HTTP File Upload (XEP-0363).
    pub upload: crate::upload::UploadConfig,
    /// Group chat (XEP-0045).
    pub muc: crate::muc::MucConfig,
    /// Compliance archiving to PostgreSQL.
    pub compliance: crate::compliance::ComplianceConfig,
    /// Federation with other XMPP domains.
    pub s2s: crate::s2s::S2sConfig,
    /// Calendar presence from a CalDAV server; absent, none.
    pub calendar: Option<crate::calendar::CalendarConfig>,
    /// Users, passwords and contact search from an LDAP directory; absent: accounts are local only.
    pub ldap: Option<crate::directory::LdapConfig>,
    /// How the engine runs.
    pub runtime: RuntimeSection,
}

/// `[runtime]`: how the engine runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSection {
    /// Engine shards: users are hashed over this many engines, each on its own thread; 0 or unset: one per
    /// core. A node of a cluster runs one (unset reads as 1 there).
    pub shards: Option<usize>,
}

impl RuntimeSection {
    /// The shard count to run: `shards`, with 0 or unset read as the number of cores.
    pub fn shard_count(&self) -> usize {
        match self.shards {
            None | Some(0) => std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .min(presence_core::runtime::MAX_SHARDS),
            Some(n) => n,
        }
    }
}

/// `[store]`: which store backs the server and the `user` commands.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Which store.
    pub kind: StoreKind,
    /// The PostgreSQL connection URL (`postgresql://user[:password]@host:port/dbname`); required for `postgres`.
    pub url: Option<String>,
    /// How many PostgreSQL connections this process keeps open at most.
    pub pool: usize,
    /// How many MiB of the embedded database file are kept in memory (`embedded` only).
    pub cache_mib: usize,
}

/// `[store] kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The redb file `presenced.redb` in `data_dir`: one node, nothing to run beside it.
    Embedded,
    /// A PostgreSQL database, which several nodes can share.
    Postgres,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Embedded,
            url: None,
            pool: 4,
            cache_mib: crate::store::DEFAULT_CACHE_BYTES >> 20,
        }
    }
}

/// `[log]`: what the server's operational log keeps and how it is written (always to standard error).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` EnvFilter directive: a level (`"info"`) or per-target levels (`"warn,server_sip=debug"`).
    /// The `RUST_LOG` environment variable, when set, replaces it.
    pub level: String,
    /// How each event is written.
    pub format: LogFormat,
}

/// `[log] format`: one event per line, for people or for log collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[http]`: the one HTTP listener of the process.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address the HTTP listener binds; loopback by default because `/metrics` is for the operator, not the world.
    /// Plain HTTP on a loopback address counts as secure for XMPP over WebSocket (a TLS-terminating proxy in
    /// front, as Prosody's `consider_websocket_secure`); on any other address without `tls`, WebSocket clients
    /// cannot authenticate.
    pub bind: SocketAddr,
    /// Serve HTTPS (and `wss:`) on `bind` with the XMPP listeners' certificate (`[xmpp] tls_cert`/`tls_key`, or
    /// the generated one).
    pub tls: bool,
    /// The base URL web clients reach this listener at (`https://chat.example.com`, or with a path prefix a
    /// proxy forwards), advertised in XEP-0156's host-meta as the WebSocket endpoint `wss://` (from `https://`)
    /// or `ws://` (from `http://`) + the rest + `/xmpp-websocket`. Default: `ws://` (`wss://` with `tls`) and
    /// `bind`, the domain standing in for an unspecified address.
    pub public_url: Option<String>,
    /// The password of the status page (`/`, `/status.json`) for requests that do not come straight from
    /// loopback: HTTP Basic authentication as user `admin`, accepted only on a `secure` listener. Without it the
    /// page is served to loopback only.
    pub admin_password: Option<String>,
    /// The longest a BOSH request (XEP-0124 `wait`) is held at `/http-bind`; a client asking for more gets this.
    /// A proxy in front needs a read timeout above it.
    #[serde(deserialize_with = "duration")]
    pub bosh_max_wait: Duration,
    /// How long a BOSH session may go without a request before it ends (XEP-0124 `inactivity`), so a browser
    /// that vanished leaves no session behind.
    #[serde(deserialize_with = "duration")]
    pub bosh_inactivity: Duration,
}

impl HttpConfig {
    /// Whether XMPP may authenticate over this listener without TLS of its own: it has TLS, or it is on
    /// loopback (only a local proxy, which terminates TLS, can reach it).
    pub fn secure(&self) -> bool {
        self.tls || self.bind.ip().is_loopback()
    }

    /// The WebSocket URL web clients are told about (XEP-0156): from `public_url`, else from `bind`.
    pub fn websocket_url(&self, domain: &str) -> String {
        const PATH: &str = "/xmpp-websocket";
        match &self.public_url {
            Some(url) => {
                let url = url.trim_end_matches('/');
                match url.split_once("://") {
                    Some(("https", rest)) => format!("wss://{rest}{PATH}"),
                    Some((_, rest)) => format!("ws://{rest}{PATH}"),
                    None => format!("{url}{PATH}"),
                }
            }
            None => {
                let scheme = if self.tls { "wss" } else { "ws" };
                if self.bind.ip().is_unspecified() {
                    format!("{scheme}://{domain}:{}{PATH}", self.bind.port())
                } else {
                    format!("{scheme}://{}{PATH}", self.bind)
                }
            }
        }
    }

    /// The BOSH session settings.
    pub fn bosh(&self) -> server_xmpp::web::bosh::Settings {
        server_xmpp::web::bosh::Settings {
            max_wait: self.bosh_max_wait,
            inactivity: self.bosh_inactivity,
            ..Default::default()
        }
    }

    /// The first invalid key, its value and what is wrong with it.
    fn problem(&self) -> Option<(&'static str, String, String)> {
        let second = Duration::from_secs(1);
        for (key, value) in [
            ("http.bosh_max_wait", self.bosh_max_wait),
            ("http.bosh_inactivity", self.bosh_inactivity),
        ] {
            if value < second || value > Duration::from_secs(3600) {
                return Some((
                    key,
                    format!("{value:?}"),
                    "must be between 1s and 1h".into(),
                ));
            }
        }
        let url = self.public_url.as_ref()?;
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        match rest {
            Some(r) if !r.is_empty() && !r.starts_with('/') => None,
            _ => Some((
                "http.public_url",
                url.clone(),
                "is not an http:// or https:// URL with a host".into(),
            )),
        }
    }
}

/// `[xmpp]`: the client-to-server listeners.
///
/// Durations are strings with a unit: `"250ms"`, `"30s"`, `"10min"`, `"1h"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XmppConfig {
    /// Address the c2s listener binds (STARTTLS, required before authentication).
    pub c2s_bind: SocketAddr,
    /// Address of the direct-TLS c2s listener (XEP-0368: TLS from the first byte, ALPN `xmpp-client`);
    /// `"off"` (or `""`) for none. Same certificate, limits and connection caps as `c2s_bind`.
    #[serde(deserialize_with = "address_or_off")]
    pub c2s_tls_bind: Option<SocketAddr>,
    /// PEM certificate chain for both listeners.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for both listeners.
    pub tls_key: Option<PathBuf>,
    /// Inbound silence after which the server pings a session (XEP-0199); `"0s"` turns server pings off.
    #[serde(deserialize_with = "duration")]
    pub ping_interval: Duration,
    /// How long a pinged session may stay silent before it is closed as dead and its user goes offline.
    #[serde(deserialize_with = "duration")]
    pub ping_timeout: Duration,
    /// Inbound silence after which a session is closed in any case. A client that answers pings is never
    /// silent this long, so with pings on this only matters when it is shorter; it must not be shorter than
    /// `ping_interval + ping_timeout`, or the ping could not do its work.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// How long a session whose connection dropped without a clean close stays bound, waiting for its client
    /// to resume it (XEP-0198); then it is closed (contacts see it unavailable) and its unacknowledged
    /// messages are held offline. `"0s"` keeps no session waiting (resumption always fails).
    #[serde(deserialize_with = "duration")]
    pub sm_resume_timeout: Duration,
    /// Unacknowledged stanzas (plus, while the connection is gone, deliveries not yet written) one
    /// stream-managed session may have; past it the session is ended and its messages are held offline.
    pub sm_max_unacked: usize,
    /// Contacts' presence that may wait for an inactive client (XEP-0352), one per full address; one more
    /// sender sends everything waiting at once.
    pub csi_max_queued: usize,
    /// STUN and TURN servers announced by External Service Discovery (XEP-0215); none: not offered.
    pub external_services: Vec<crate::extdisco::ExternalServiceConfig>,
    /// In-band registration (XEP-0077): anyone who can reach the port may create an account, so it is off by
    /// default. While on, signed-in users may also change their password and remove their account in-band.
    pub registration: bool,
    /// The least time between two accounts made from one client address.
    #[serde(deserialize_with = "duration")]
    pub registration_interval: Duration,
    /// Where external components connect (XEP-0114). The protocol has no TLS, so the default is loopback; the
    /// listener only opens when `components` lists some.
    pub component_bind: SocketAddr,
    /// The components that may connect, each with its domain and shared secret.
    pub components: Vec<ComponentConfig>,
    /// Push notifications (XEP-0357) name the sender of the message that woke the device. Off by default: the
    /// app server and the platform push service behind it are third parties.
    pub push_include_sender: bool,
    /// Push notifications carry the text of that message. Off by default, for the same reason.
    pub push_include_body: bool,
}

/// `[[xmpp.components]]`: one external component (XEP-0114).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    /// The component's domain, e.g. `push.example.com`; stanzas to it and its addresses go to the component.
    pub domain: String,
    /// The secret it proves in its handshake.
    pub secret: String,
}

impl std::fmt::Debug for ComponentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentConfig")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl XmppConfig {
    /// The server-ping interval, `None` when pings are off.
    pub fn ping_every(&self) -> Option<Duration> {
        Some(self.ping_interval).filter(|d| !d.is_zero())
    }
}

/// An address, or `"off"`/`""` for a listener that is not opened.
pub(crate) fn address_or_off<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    match text.trim() {
        "" | "off" => Ok(None),
        t => t.parse().map(Some).map_err(|e| {
            serde::de::Error::custom(format!(
                "{t:?} is neither a socket address nor \"off\": {e}"
            ))
        }),
    }
}

/// A duration string (`"30s"`), as the cluster timers take them.
pub(crate) fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    crate::cluster::config::parse_duration(&text)
        .map_err(|problem| serde::de::Error::custom(format!("duration {text:?} {problem}")))
}

/// An optional duration string.
pub(crate) fn optional_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// `[sip]`: the SIP listeners.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// Address the SIP listener binds (UDP and TCP).
    pub bind: SocketAddr,
    /// Address of the SIP over TLS listener (`sips:`, RFC 3261 §26.2); `"off"` (or `""`) for none. It uses the
    /// XMPP listeners' certificate (`xmpp.tls_cert`/`tls_key`, or the generated one) and the same connection
    /// caps and rate as SIP over TCP.
    #[serde(deserialize_with = "address_or_off")]
    pub tls_bind: Option<SocketAddr>,
    /// Call-control peers (by IP address) whose PUBLISHes are accepted without digest authentication and carry
    /// a user's phone line and calendar state (DESIGN §7, a "PUBLISH trunk").
    pub trusted_peers: Vec<std::net::IpAddr>,
    /// Call-control peers known by their TLS client certificate instead: a connection to `tls_bind` whose
    /// certificate verifies against `client_ca_file` and names one of these (a DNS subject alternative name, or
    /// the common name of a certificate without any) is trusted like an address in `trusted_peers`.
    pub trusted_peer_subjects: Vec<String>,
    /// PEM file of the CAs that issue call-control peers' client certificates. When given, TLS clients are
    /// asked for a certificate; phones may present none, but a presented one that does not verify fails the
    /// handshake.
    pub client_ca_file: Option<PathBuf>,
}

/// `[policy]`: the engine's switches (DESIGN §3-§4).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Approve local subscription requests without asking.
    pub auto_authorize: bool,
    /// Hold messages for users who cannot take them.
    pub offline_storage: bool,
    /// Instant messaging on at all.
    pub im_enabled: bool,
    /// The text sent back with an undeliverable message.
    pub undeliverable_text: String,
}

/// `[limits]`: numeric caps. 0 means unlimited for `max_contacts`, `max_watchers`, `max_connections_per_ip`,
/// `c2s_rate` and `sip_rate`; every other limit must be at least 1.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Concurrent sessions per user.
    pub max_sessions_per_user: usize,
    /// Roster items per user (0 = unlimited).
    pub max_contacts: usize,
    /// Watchers per user (0 = unlimited).
    pub max_watchers: usize,
    /// Offline messages held per user.
    pub offline_per_user: usize,
    /// Offline messages held on this node.
    pub offline_per_node: usize,
    /// Bytes of XML one stored document (a private XML element, a vCard) may have.
    pub max_document_bytes: usize,
    /// Documents one user may keep (private XML namespaces, the vCard, PEP nodes and items …).
    pub max_documents_per_user: usize,
    /// Messages one user's archive keeps (XEP-0313); the oldest go as new ones come. 0 turns archiving off.
    pub max_archive_per_user: u64,
    /// Items one PEP node keeps at most, whatever its `pubsub#max_items` (and what `max` means).
    pub pep_max_items: usize,
    /// Client connections of the whole process, XMPP and SIP over TCP together; one more is refused.
    pub max_connections: usize,
    /// Client connections from one IP address (0 = unlimited), so one host cannot take them all.
    pub max_connections_per_ip: usize,
    /// Stanzas queued for one connection before it is disconnected as a slow consumer.
    pub max_outbound_queue: usize,
    /// Bytes (estimated from the text stanzas carry) queued for one connection before it is disconnected as a
    /// slow consumer; the first stanza always fits, however large.
    pub max_outbound_bytes: usize,
    /// Work items waiting for the engine before the shells refuse new work.
    pub engine_queue: usize,
    /// Bytes per second read from one XMPP connection (0 = unlimited).
    pub c2s_rate: u64,
    /// Bytes one XMPP connection may read at once above `c2s_rate` (the token bucket's size).
    pub c2s_burst: u64,
    /// Bytes per second accepted from one SIP source address (0 = unlimited); `sip.trusted_peers` are exempt.
    pub sip_rate: u64,
    /// Bytes one SIP source address may send at once above `sip_rate` (the token bucket's size).
    pub sip_burst: u64,
    /// PUBLISHed event states (entity tags) one user may hold; one more initial PUBLISH gets `403`.
    pub sip_publications_per_user: usize,
    /// PUBLISHed event states one endpoint of a user (a UDP source address and port, or a TCP connection) may
    /// hold, so one runaway device cannot use its user's whole allowance.
    pub sip_publications_per_endpoint: usize,
    /// SUBSCRIBE dialogs one user may hold as subscriber; one more initial SUBSCRIBE gets `403`.
    pub sip_subscriptions_per_user: usize,
    /// SUBSCRIBE dialogs one endpoint of a user may hold.
    pub sip_subscriptions_per_endpoint: usize,
    /// Registered contacts one user may have; a REGISTER adding one more gets `403`.
    pub sip_bindings_per_user: usize,
    /// Registered contacts one endpoint of a user may have.
    pub sip_bindings_per_endpoint: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domain: "localhost".into(),
            data_dir: PathBuf::from("./data"),
            xmpp: XmppConfig::default(),
            sip: SipConfig::default(),
            policy: PolicyConfig::default(),
            limits: LimitsConfig::default(),
            log: LogConfig::default(),
            http: HttpConfig::default(),
            store: StoreConfig::default(),
            cluster: None,
            upload: crate::upload::UploadConfig::default(),
            muc: crate::muc::MucConfig::default(),
            compliance: crate::compliance::ComplianceConfig::default(),
            s2s: crate::s2s::S2sConfig::default(),
            calendar: None,
            ldap: None,
            runtime: RuntimeSection::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 5280)),
            tls: false,
            public_url: None,
            admin_password: None,
            bosh_max_wait: Duration::from_secs(60),
            bosh_inactivity: Duration::from_secs(60),
        }
    }
}

impl Default for XmppConfig {
    fn default() -> Self {
        XmppConfig {
            c2s_bind: SocketAddr::from(([0, 0, 0, 0], 5222)),
            c2s_tls_bind: Some(SocketAddr::from(([0, 0, 0, 0], 5223))),
            tls_cert: None,
            tls_key: None,
            ping_interval: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            sm_resume_timeout: Duration::from_secs(300),
            sm_max_unacked: 500,
            csi_max_queued: 1000,
            external_services: Vec::new(),
            registration: false,
            registration_interval: Duration::from_secs(60),
            component_bind: SocketAddr::from(([127, 0, 0, 1], 5347)),
            components: Vec::new(),
            push_include_sender: false,
            push_include_body: false,
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 5060)),
            tls_bind: Some(SocketAddr::from(([0, 0, 0, 0], 5061))),
            trusted_peers: Vec::new(),
            trusted_peer_subjects: Vec::new(),
            client_ca_file: None,
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        // The engine's own defaults, so the file and the library cannot drift apart.
        let e = EngineConfig::default();
        PolicyConfig {
            auto_authorize: e.auto_authorize,
            offline_storage: e.offline_storage,
            im_enabled: e.im_enabled,
            undeliverable_text: e.undeliverable_text,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = Limits::default();
        // The SIP shell's own defaults, so the file and the library cannot drift apart.
        let sip = server_sip::caps::StateCaps::default();
        let n = |c: Cap| match c {
            Cap::AtMost(n) => n,
            Cap::Unlimited => 0,
        };
        LimitsConfig {
            max_sessions_per_user: l.max_sessions_per_user,
            max_contacts: n(l.max_contacts),
            max_watchers: n(l.max_watchers),
            offline_per_user: l.offline_per_user,
            offline_per_node: l.offline_per_node,
            max_document_bytes: l.max_document_bytes,
            max_documents_per_user: l.max_documents_per_user,
            max_archive_per_user: l.max_archive_per_user,
            pep_max_items: l.pep_max_items,
            max_connections: 65_536,
            max_connections_per_ip: 1024,
            max_outbound_queue: 1000,
            max_outbound_bytes: 1024 * 1024,
            engine_queue: 65_536,
            c2s_rate: 64 * 1024,
            c2s_burst: 256 * 1024,
            sip_rate: 256 * 1024,
            sip_burst: 1024 * 1024,
            sip_publications_per_user: sip.publications.per_user,
            sip_publications_per_endpoint: sip.publications.per_endpoint,
            sip_subscriptions_per_user: sip.subscriptions.per_user,
            sip_subscriptions_per_endpoint: sip.subscriptions.per_endpoint,
            sip_bindings_per_user: sip.bindings.per_user,
            sip_bindings_per_endpoint: sip.bindings.per_endpoint,
        }
    }
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(path, &text)?;
        if let Ok(value) = std::env::var(SHARDS_ENV)
            && config.cluster.is_none()
        {
            let shards = value.trim().parse::<usize>().ok();
            match shards {
                Some(n) if n <= presence_core::runtime::MAX_SHARDS => {
                    config.runtime.shards = Some(n)
                }
                _ => {
                    return Err(ConfigError::Env {
                        var: SHARDS_ENV,
                        value,
                        problem: format!(
                            "is not a shard count (0 for one per core, or 1 to {})",
                            presence_core::runtime::MAX_SHARDS
                        ),
                    });
                }
            }
        }
        Ok(config)
    }

    /// Parses and validates `text`, naming `path` in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            // toml's own message may span lines; the file and line already say where.
            message: e.message().split_whitespace().collect::<Vec<_>>().join(" "),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&mut self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key, value: &str, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            value: value.to_owned(),
            problem,
        };
        // A domain is exactly a bare JID with no localpart; parsing it that way also lower-cases it.
        match BareJid::new(&self.domain) {
            Ok(j) if j.local().is_none() => self.domain = j.domain().to_owned(),
            Ok(_) => {
                return Err(invalid(
                    "domain",
                    &self.domain,
                    "is an address, not a domain".into(),
                ));
            }
            Err(e) => {
                return Err(invalid(
                    "domain",
                    &self.domain,
                    format!("is not valid: {e}"),
                ));
            }
        }
        if self.xmpp.tls_cert.is_some() != self.xmpp.tls_key.is_some() {
            let given = self
                .xmpp
                .tls_cert
                .as_ref()
                .or(self.xmpp.tls_key.as_ref())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let key = if self.xmpp.tls_cert.is_some() {
                "xmpp.tls_cert"
            } else {
                "xmpp.tls_key"
            };
            return Err(invalid(
                key,
                &given,
                "is given without its partner (tls_cert and tls_key go together)".into(),
            ));
        }
        let x = &self.xmpp;
        // Port 0 (any free port) is the one address two listeners may share.
        if x.c2s_tls_bind == Some(x.c2s_bind) && x.c2s_bind.port() != 0 {
            return Err(invalid(
                "xmpp.c2s_tls_bind",
                &x.c2s_bind.to_string(),
                "is the same address as xmpp.c2s_bind (the two listeners need their own ports)"
                    .into(),
            ));
        }
        let sip = &self.sip;
        if sip
            .tls_bind
            .is_some_and(|t| t.port() == sip.bind.port() && t.ip() == sip.bind.ip())
            && sip.bind.port() != 0
        {
            return Err(invalid(
                "sip.tls_bind",
                &sip.bind.to_string(),
                "is the same address as sip.bind (TCP and TLS need their own ports)".into(),
            ));
        }
        if !sip.trusted_peer_subjects.is_empty() {
            if sip.client_ca_file.is_none() {
                return Err(invalid(
                    "sip.trusted_peer_subjects",
                    &sip.trusted_peer_subjects.join(", "),
                    "needs sip.client_ca_file (a client certificate is only believed once a CA verified it)"
                        .into(),
                ));
            }
            if sip.tls_bind.is_none() {
                return Err(invalid(
                    "sip.trusted_peer_subjects",
                    &sip.trusted_peer_subjects.join(", "),
                    "needs sip.tls_bind (client certificates come over TLS)".into(),
                ));
            }
        }
        if let Some(n) = self.runtime.shards
            && n > presence_core::runtime::MAX_SHARDS
        {
            return Err(invalid(
                "runtime.shards",
                &n.to_string(),
                format!(
                    "is more shards than a node runs (at most {})",
                    presence_core::runtime::MAX_SHARDS
                ),
            ));
        }
        if self.cluster.is_some() {
            match self.runtime.shards {
                None => self.runtime.shards = Some(1),
                Some(1) => {}
                Some(n) => {
                    return Err(invalid(
                        "runtime.shards",
                        &n.to_string(),
                        "must be 1 on a node of a cluster (shards within cluster nodes are not supported yet)"
                            .into(),
                    ));
                }
            }
        }
        if x.idle_timeout.is_zero() {
            return Err(invalid(
                "xmpp.idle_timeout",
                "0s",
                "would close every session at once (must be more than 0)".into(),
            ));
        }
        if x.sm_max_unacked == 0 {
            return Err(invalid(
                "xmpp.sm_max_unacked",
                "0",
                "would end every stream-managed session at its first stanza (must be at least 1)"
                    .into(),
            ));
        }
        if x.csi_max_queued == 0 {
            return Err(invalid(
                "xmpp.csi_max_queued",
                "0",
                "could hold no presence for an inactive client (must be at least 1)".into(),
            ));
        }
        if x.sm_resume_timeout > Duration::from_secs(24 * 3600) {
            return Err(invalid(
                "xmpp.sm_resume_timeout",
                &format!("{}s", x.sm_resume_timeout.as_secs()),
                "is longer than a day: a vanished client would keep its session, and its user online, that long".into(),
            ));
        }
        if let Some(every) = x.ping_every() {
            let shown = |d: Duration| format!("{}ms", d.as_millis());
            if x.ping_timeout.is_zero() {
                return Err(invalid(
                    "xmpp.ping_timeout",
                    "0s",
                    "would close every pinged session before it could answer (must be more than 0, or set ping_interval = \"0s\" to turn pings off)".into(),
                ));
            }
            if every + x.ping_timeout > x.idle_timeout {
                return Err(invalid(
                    "xmpp.idle_timeout",
                    &shown(x.idle_timeout),
                    format!(
                        "is shorter than ping_interval + ping_timeout ({}): a silent session would be closed as idle before its ping is due or answered",
                        shown(every + x.ping_timeout)
                    ),
                ));
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log.level) {
            return Err(invalid(
                "log.level",
                &self.log.level,
                format!("is not a log filter directive: {e}"),
            ));
        }
        if let Some((key, value, problem)) =
            self.xmpp.external_services.iter().find_map(|s| s.problem())
        {
            return Err(invalid(key, &value, problem));
        }
        for (i, c) in self.xmpp.components.iter().enumerate() {
            let domain = c.domain.to_ascii_lowercase();
            if BareJid::new(&domain).map_or(true, |j| j.local().is_some()) {
                return Err(invalid(
                    "xmpp.components.domain",
                    &c.domain,
                    "is not a domain name".into(),
                ));
            }
            if domain == self.domain.to_ascii_lowercase()
                || self.xmpp.components[..i]
                    .iter()
                    .any(|o| o.domain.eq_ignore_ascii_case(&domain))
            {
                return Err(invalid(
                    "xmpp.components.domain",
                    &c.domain,
                    "is the served domain or another component's".into(),
                ));
            }
            if c.secret.is_empty() {
                return Err(invalid(
                    "xmpp.components.secret",
                    "",
                    "must not be empty: anyone could take the domain".into(),
                ));
            }
        }
        if let Some((key, value, problem)) = self.upload.problem() {
            return Err(invalid(key, &value, problem));
        }
        if let Some((key, value, problem)) = self.http.problem() {
            return Err(invalid(key, &value, problem));
        }
        if self.muc.enabled
            && let Some((key, value, problem)) = self.muc.problem(&self.domain)
        {
            return Err(invalid(key, &value, problem));
        }
        if let Some((key, value, problem)) = self.compliance.problem() {
            return Err(invalid(key, &value, problem));
        }
        if let Some((key, value, problem)) = self.calendar.as_ref().and_then(|c| c.problem()) {
            return Err(invalid(key, &value, problem));
        }
        if let Some((key, value, problem)) = self.ldap.as_ref().and_then(|l| l.problem()) {
            return Err(invalid(key, &value, problem));
        }
        if self.store.pool == 0 {
            return Err(invalid(
                "store.pool",
                "0",
                "would leave no connection to the database (must be at least 1)".into(),
            ));
        }
        if let Some(cluster) = &self.cluster {
            if self.store.kind != StoreKind::Postgres {
                return Err(invalid(
                    "cluster",
                    &cluster.node,
                    "needs [store] kind = \"postgres\": the nodes of a cluster share one database"
                        .into(),
                ));
            }
            if let Err(e) = cluster.validate() {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    key: e.key,
                    value: e.value,
                    problem: e.problem,
                });
            }
        }
        if self.store.kind == StoreKind::Postgres {
            let Some(url) = &self.store.url else {
                return Err(invalid(
                    "store.kind",
                    "postgres",
                    "needs store.url (postgresql://user@host:port/dbname)".into(),
                ));
            };
            if let Err(e) = url.parse::<postgres::Config>() {
                // The URL may hold a password: the message names the problem, not the value.
                return Err(invalid(
                    "store.url",
                    "…",
                    format!("is not a PostgreSQL connection URL: {e}"),
                ));
            }
        }
        let l = &self.limits;
        // Limits where 0 has no "unlimited" reading: each would stop the server from doing its work at all.
        let at_least_one = [
            (
                "limits.max_sessions_per_user",
                l.max_sessions_per_user,
                "would refuse every sign-in",
            ),
            (
                "limits.max_connections",
                l.max_connections,
                "would refuse every connection",
            ),
            (
                "limits.max_outbound_queue",
                l.max_outbound_queue,
                "would disconnect every client at its first stanza",
            ),
            (
                "limits.max_outbound_bytes",
                l.max_outbound_bytes,
                "would disconnect every client at its second stanza",
            ),
            (
                "limits.engine_queue",
                l.engine_queue,
                "would refuse all work",
            ),
            (
                "limits.max_document_bytes",
                l.max_document_bytes,
                "would refuse every private XML element and vCard",
            ),
            (
                "limits.pep_max_items",
                l.pep_max_items,
                "would keep no PEP item",
            ),
            (
                "limits.sip_publications_per_user",
                l.sip_publications_per_user,
                "would refuse every SIP PUBLISH",
            ),
            (
                "limits.sip_publications_per_endpoint",
                l.sip_publications_per_endpoint,
                "would refuse every SIP PUBLISH",
            ),
            (
                "limits.sip_subscriptions_per_user",
                l.sip_subscriptions_per_user,
                "would refuse every SIP SUBSCRIBE",
            ),
            (
                "limits.sip_subscriptions_per_endpoint",
                l.sip_subscriptions_per_endpoint,
                "would refuse every SIP SUBSCRIBE",
            ),
            (
                "limits.sip_bindings_per_user",
                l.sip_bindings_per_user,
                "would refuse every SIP REGISTER",
            ),
            (
                "limits.sip_bindings_per_endpoint",
                l.sip_bindings_per_endpoint,
                "would refuse every SIP REGISTER",
            ),
        ];
        for (key, value, problem) in at_least_one {
            if value == 0 {
                return Err(invalid(key, "0", format!("{problem} (must be at least 1)")));
            }
        }
        // An empty bucket under a finite rate never refills past zero, so nothing could ever be read.
        for (key, rate, burst) in [
            ("limits.c2s_burst", l.c2s_rate, l.c2s_burst),
            ("limits.sip_burst", l.sip_rate, l.sip_burst),
        ] {
            if rate != 0 && burst == 0 {
                return Err(invalid(
                    key,
                    "0",
                    "would block all reads while the rate is limited (must be at least 1, or set the rate to 0)"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// The caps on what one SIP user and one endpoint of theirs may hold.
    pub fn sip_caps(&self) -> server_sip::caps::StateCaps {
        use server_sip::caps::Cap;
        let l = &self.limits;
        server_sip::caps::StateCaps {
            publications: Cap {
                per_user: l.sip_publications_per_user,
                per_endpoint: l.sip_publications_per_endpoint,
            },
            subscriptions: Cap {
                per_user: l.sip_subscriptions_per_user,
                per_endpoint: l.sip_subscriptions_per_endpoint,
            },
            bindings: Cap {
                per_user: l.sip_bindings_per_user,
                per_endpoint: l.sip_bindings_per_endpoint,
            },
        }
    }

    /// Where the database file lives.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join(STORE_FILE)
    }

    /// The engine settings this file describes.
    pub fn engine_config(&self) -> EngineConfig {
        let cap = |n: usize| {
            if n == 0 {
                Cap::Unlimited
            } else {
                Cap::AtMost(n)
            }
        };
        EngineConfig {
            domains: vec![self.domain.clone()],
            auto_authorize: self.policy.auto_authorize,
            offline_storage: self.policy.offline_storage,
            im_enabled: self.policy.im_enabled,
            undeliverable_text: self.policy.undeliverable_text.clone(),
            limits: Limits {
                max_sessions_per_user: self.limits.max_sessions_per_user,
                max_contacts: cap(self.limits.max_contacts),
                max_watchers: cap(self.limits.max_watchers),
                offline_per_user: self.limits.offline_per_user,
                offline_per_node: self.limits.offline_per_node,
                max_document_bytes: self.limits.max_document_bytes,
                max_documents_per_user: self.limits.max_documents_per_user,
                max_archive_per_user: self.limits.max_archive_per_user,
                pep_max_items: self.limits.pep_max_items,
            },
            push_contents: presence_core::PushContents {
                sender: self.xmpp.push_include_sender,
                body: self.xmpp.push_include_body,
            },
            compliance: self.compliance.enabled,
            ..EngineConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("p.toml"), text)
    }

    #[test]
    fn compliance_is_off_by_default_and_needs_a_url_when_on() {
        use crate::compliance::ComplianceMode;
        let c = parse("").expect("empty");
        assert!(!c.compliance.enabled && !c.engine_config().compliance);
        let c = parse(
            "[compliance]\nenabled = true\nurl = \"postgresql://a@127.0.0.1:5/c\"\nmode = \"required\"\npool = 3\n",
        )
        .expect("valid");
        assert_eq!(c.compliance.mode, ComplianceMode::Required);
        assert_eq!(c.compliance.pool, 3);
        assert!(c.engine_config().compliance);
        assert!(parse("[compliance]\nenabled = true\n").is_err());
        assert!(parse("[compliance]\nmode = \"sometimes\"\n").is_err());
        assert!(parse("[compliance]\nenabled = true\nurl = \"postgresql://a@h:x/c\"\n").is_err());
        assert!(parse("[compliance]\npool = 0\n").is_err());
    }

    #[test]
    fn calendar_is_off_by_default_and_checked_when_given() {
        assert!(parse("").expect("empty").calendar.is_none());
        let c = parse(
            "[calendar]\nkind = \"caldav\"\nurl = \"https://mail.example.com/dav/{user}/calendar/\"\n\
             username = \"svc\"\npassword = \"pw-not-in-debug\"\npoll_interval = \"2s\"\n",
        )
        .expect("valid");
        let cal = c.calendar.expect("on");
        assert_eq!(cal.poll_interval, Duration::from_secs(2));
        assert_eq!((cal.timeout, cal.concurrency), (Duration::from_secs(10), 8));
        assert!(!format!("{cal:?}").contains("pw-not-in-debug"));
        let base = "kind = \"caldav\"\nusername = \"svc\"\npassword = \"p\"\n";
        for bad in [
            "url = \"https://mail.example.com/dav/calendar/\"\n",
            "url = \"ftp://mail.example.com/{user}/\"\n",
            "url = \"http://h/{user}/\"\npoll_interval = \"0s\"\n",
            "url = \"http://h/{user}/\"\nconcurrency = 0\n",
            "url = \"http://h/{user}/\"\nkind2 = 1\n",
        ] {
            assert!(parse(&format!("[calendar]\n{base}{bad}")).is_err(), "{bad}");
        }
        assert!(parse("[calendar]\nkind = \"exchange\"\nurl = \"http://h/{user}/\"\nusername = \"a\"\npassword = \"b\"\n").is_err());
    }

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let c = parse("").expect("empty is fine");
        assert_eq!(c, Config::default());
        assert_eq!(c.xmpp.c2s_bind.to_string(), "0.0.0.0:5222");
        assert_eq!(
            c.xmpp.c2s_tls_bind.map(|a| a.to_string()).as_deref(),
            Some("0.0.0.0:5223")
        );
        assert_eq!(c.xmpp.ping_every(), Some(Duration::from_secs(60)));
        assert_eq!(c.xmpp.ping_timeout, Duration::from_secs(30));
        assert_eq!(c.xmpp.idle_timeout, Duration::from_secs(600));
        assert_eq!(c.sip.bind.to_string(), "0.0.0.0:5060");
        assert_eq!(c.store_path(), Path::new("./data/presenced.redb"));
        assert_eq!(c.engine_config(), EngineConfig::default());
        assert_eq!(c.log.level, "info");
        assert_eq!(c.log.format, LogFormat::Text);
        assert_eq!(c.http.bind.to_string(), "127.0.0.1:5280");
        let l = &c.limits;
        assert_eq!(l.max_outbound_bytes, 1024 * 1024);
        assert_eq!(
            (
                l.max_connections,
                l.max_connections_per_ip,
                l.max_outbound_queue,
                l.engine_queue
            ),
            (65_536, 1024, 1000, 65_536)
        );
        assert_eq!(
            (l.c2s_rate, l.c2s_burst, l.sip_rate, l.sip_burst),
            (65_536, 262_144, 262_144, 1_048_576)
        );
    }

    #[test]
    fn sip_caps_are_read_checked_and_passed_on() {
        use server_sip::caps::{Cap, StateCaps};
        let c = parse("").expect("empty");
        assert_eq!(c.sip_caps(), StateCaps::default());
        assert_eq!(
            (
                c.limits.sip_publications_per_user,
                c.limits.sip_subscriptions_per_user,
                c.limits.sip_bindings_per_user
            ),
            (32, 512, 16)
        );
        let c = parse(
            "[limits]\nsip_publications_per_user = 5\nsip_publications_per_endpoint = 2\n\
             sip_subscriptions_per_user = 7\nsip_subscriptions_per_endpoint = 3\n\
             sip_bindings_per_user = 4\nsip_bindings_per_endpoint = 1\n",
        )
        .expect("valid");
        assert_eq!(
            c.sip_caps(),
            StateCaps {
                publications: Cap {
                    per_user: 5,
                    per_endpoint: 2
                },
                subscriptions: Cap {
                    per_user: 7,
                    per_endpoint: 3
                },
                bindings: Cap {
                    per_user: 4,
                    per_endpoint: 1
                },
            }
        );
        for key in [
            "sip_publications_per_user",
            "sip_publications_per_endpoint",
            "sip_subscriptions_per_user",
            "sip_subscriptions_per_endpoint",
            "sip_bindings_per_user",
            "sip_bindings_per_endpoint",
        ] {
            let e = parse(&format!("[limits]\n{key} = 0\n")).expect_err("0 refuses everything");
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn bosh_settings_default_to_a_minute_and_are_bounded() {
        let c = parse("").expect("valid");
        let b = c.http.bosh();
        assert_eq!(b.max_wait, Duration::from_secs(60));
        assert_eq!(b.inactivity, Duration::from_secs(60));
        let c =
            parse("[http]\nbosh_max_wait = \"30s\"\nbosh_inactivity = \"2min\"").expect("valid");
        assert_eq!(c.http.bosh().max_wait, Duration::from_secs(30));
        assert_eq!(c.http.bosh().inactivity, Duration::from_secs(120));
        for bad in ["bosh_max_wait = \"0s\"", "bosh_inactivity = \"2h\""] {
            let e = parse(&format!("[http]\n{bad}")).expect_err(bad);
            assert!(e.to_string().contains("http.bosh_"), "{e}");
        }
    }

    #[test]
    fn the_websocket_url_and_security_follow_the_http_section() {
        let c = parse("").expect("valid");
        assert!(c.http.secure() && !c.http.tls && c.http.public_url.is_none());
        assert_eq!(
            c.http.websocket_url("example.com"),
            "ws://127.0.0.1:5280/xmpp-websocket"
        );
        let c = parse("[http]\nbind = \"0.0.0.0:5281\"\ntls = true").expect("valid");
        assert!(c.http.secure());
        assert_eq!(
            c.http.websocket_url("example.com"),
            "wss://example.com:5281/xmpp-websocket"
        );
        let c = parse("[http]\nbind = \"10.0.0.1:5280\"").expect("valid");
        assert!(!c.http.secure(), "plain HTTP off loopback is not secure");
        for (url, ws) in [
            (
                "https://chat.example.com/",
                "wss://chat.example.com/xmpp-websocket",
            ),
            (
                "http://chat.example.com:8080/x",
                "ws://chat.example.com:8080/x/xmpp-websocket",
            ),
        ] {
            let c = parse(&format!("[http]\npublic_url = \"{url}\"")).expect("valid");
            assert_eq!(c.http.websocket_url("example.com"), ws);
        }
        for bad in [
            "chat.example.com",
            "https://",
            "wss://chat.example.com",
            "http:///x",
        ] {
            let e = parse(&format!("[http]\npublic_url = \"{bad}\"")).expect_err(bad);
            assert!(e.to_string().contains("http.public_url"), "{e}");
        }
    }

    #[test]
    fn log_http_and_connection_limits_are_read() {
        let c = parse(
            r#"
            [log]
            level = "warn,server_sip=debug"
            format = "json"
            [http]
            bind = "[::1]:8080"
            [limits]
            max_connections = 10
            max_connections_per_ip = 0
            max_outbound_queue = 1
            max_outbound_bytes = 4096
            engine_queue = 2
            c2s_rate = 0
            c2s_burst = 0
            sip_rate = 100
            sip_burst = 200
            "#,
        )
        .expect("valid");
        assert_eq!(c.log.level, "warn,server_sip=debug");
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.http.bind.to_string(), "[::1]:8080");
        let l = &c.limits;
        assert_eq!(l.max_outbound_bytes, 4096);
        assert_eq!(
            (
                l.max_connections,
                l.max_connections_per_ip,
                l.max_outbound_queue,
                l.engine_queue
            ),
            (10, 0, 1, 2)
        );
        assert_eq!(
            (l.c2s_rate, l.c2s_burst, l.sip_rate, l.sip_burst),
            (0, 0, 100, 200)
        );
        // Keys left out of a section keep their defaults.
        assert_eq!(
            l.max_sessions_per_user,
            LimitsConfig::default().max_sessions_per_user
        );
    }

    #[test]
    fn upload_external_services_and_registration_are_read_and_checked() {
        let c = parse("").expect("valid");
        assert!(!c.upload.enabled && !c.xmpp.registration);
        assert!(c.xmpp.external_services.is_empty());
        assert_eq!(
            (c.upload.max_file_size, c.upload.quota),
            (10 << 20, 100 << 20)
        );
        assert_eq!(
            c.upload.settings(c.http.bind, &c.domain).url,
            "http://127.0.0.1:5280"
        );
        let c = parse(
            r#"
            [xmpp]
            registration = true
            registration_interval = "10min"
            [[xmpp.external_services]]
            type = "turn"
            host = "turn.example.com"
            port = 3478
            secret = "s"
            ttl = "1h"
            [http]
            bind = "0.0.0.0:8080"
            [upload]
            enabled = true
            max_file_size = 1000
            quota = 5000
            put_valid_for = "1min"
            expire_after = "0s"
            "#,
        )
        .expect("valid");
        assert!(c.xmpp.registration);
        assert_eq!(c.xmpp.registration_interval, Duration::from_secs(600));
        assert_eq!(
            c.xmpp.external_services[0].ttl,
            Some(Duration::from_secs(3600))
        );
        let s = c.upload.settings(c.http.bind, "example.com");
        assert_eq!(s.url, "http://example.com:8080");
        assert_eq!(
            (s.max_file_size, s.quota, s.expire_after),
            (1000, 5000, Duration::ZERO)
        );
        for bad in [
            "[upload]\nurl = \"ftp://x\"",
            "[upload]\nmax_file_size = 0",
            "[[xmpp.external_services]]\ntype = \"ftp\"\nhost = \"h\"\nport = 1",
            "[[xmpp.external_services]]\ntype = \"turn\"\nhost = \"h\"\nport = 1\nusername = \"u\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_key_maps_to_the_engine() {
        let c = parse(
            r#"
            domain = "Example.COM"
            data_dir = "/var/lib/presenced"
            [xmpp]
            c2s_bind = "127.0.0.1:15222"
            tls_cert = "c.pem"
            tls_key = "k.pem"
            [sip]
            bind = "[::1]:5070"
            [policy]
            auto_authorize = false
            offline_storage = false
            im_enabled = false
            undeliverable_text = "nope"
            [limits]
            max_sessions_per_user = 3
            max_contacts = 0
            max_watchers = 5
            offline_per_user = 7
            offline_per_node = 9
            "#,
        )
        .expect("valid");
        let e = c.engine_config();
        assert_eq!(e.domains, ["example.com"]);
        assert!(!e.auto_authorize && !e.offline_storage && !e.im_enabled);
        assert_eq!(e.undeliverable_text, "nope");
        assert_eq!(
            e.limits,
            Limits {
                max_sessions_per_user: 3,
                max_contacts: Cap::Unlimited,
                max_watchers: Cap::AtMost(5),
                offline_per_user: 7,
                offline_per_node: 9,
                ..Limits::default()
            }
        );
        assert_eq!(c.sip.bind.to_string(), "[::1]:5070");
    }

    #[test]
    fn the_direct_tls_listener_and_server_pings_are_configured_or_off() {
        let c = parse(
            "[xmpp]\nc2s_tls_bind = \"127.0.0.1:15223\"\nping_interval = \"1s\"\nping_timeout = \"500ms\"\nidle_timeout = \"2s\"\n",
        )
        .expect("valid");
        assert_eq!(
            c.xmpp.c2s_tls_bind,
            Some(SocketAddr::from(([127, 0, 0, 1], 15223)))
        );
        assert_eq!(c.xmpp.ping_every(), Some(Duration::from_secs(1)));
        assert_eq!(c.xmpp.ping_timeout, Duration::from_millis(500));
        assert_eq!(c.xmpp.idle_timeout, Duration::from_secs(2));
        for off in ["off", ""] {
            let c = parse(&format!("[xmpp]\nc2s_tls_bind = {off:?}\n")).expect(off);
            assert_eq!(c.xmpp.c2s_tls_bind, None, "{off:?}");
        }
        // Pings off: no ping/idle ordering to keep, and no timeout needed.
        let c =
            parse("[xmpp]\nping_interval = \"0s\"\nping_timeout = \"0s\"\nidle_timeout = \"5s\"\n")
                .expect("pings off");
        assert_eq!(c.xmpp.ping_every(), None);
    }

    #[test]
    fn stream_management_and_csi_keys_have_defaults_and_are_checked() {
        let c = parse("").expect("defaults");
        assert_eq!(c.xmpp.sm_resume_timeout, Duration::from_secs(300));
        assert_eq!(c.xmpp.sm_max_unacked, 500);
        assert_eq!(c.xmpp.csi_max_queued, 1000);
        let c =
            parse("[xmpp]\nsm_resume_timeout = \"2s\"\nsm_max_unacked = 10\ncsi_max_queued = 3\n")
                .expect("valid");
        assert_eq!(c.xmpp.sm_resume_timeout, Duration::from_secs(2));
        assert_eq!(c.xmpp.sm_max_unacked, 10);
        assert_eq!(c.xmpp.csi_max_queued, 3);
        for (text, key) in [
            ("[xmpp]\nsm_max_unacked = 0", "xmpp.sm_max_unacked"),
            ("[xmpp]\ncsi_max_queued = 0", "xmpp.csi_max_queued"),
            (
                "[xmpp]\nsm_resume_timeout = \"48h\"",
                "xmpp.sm_resume_timeout",
            ),
        ] {
            let msg = parse(text).expect_err(text).to_string();
            assert!(msg.contains(key), "{msg} should name {key}");
        }
    }

    #[test]
    fn sip_over_tls_defaults_to_5061_and_can_be_moved_or_off() {
        let c = parse("").expect("defaults");
        assert_eq!(c.sip.tls_bind, Some(SocketAddr::from(([0, 0, 0, 0], 5061))));
        assert!(c.sip.trusted_peer_subjects.is_empty() && c.sip.client_ca_file.is_none());
        let c = parse(
            "[sip]\ntls_bind = \"127.0.0.1:15061\"\ntrusted_peer_subjects = [\"pbx.example.com\"]\nclient_ca_file = \"ca.pem\"\n",
        )
        .expect("valid");
        assert_eq!(
            c.sip.tls_bind,
            Some(SocketAddr::from(([127, 0, 0, 1], 15061)))
        );
        assert_eq!(c.sip.trusted_peer_subjects, ["pbx.example.com"]);
        assert_eq!(c.sip.client_ca_file, Some(PathBuf::from("ca.pem")));
        for off in ["off", ""] {
            let c = parse(&format!("[sip]\ntls_bind = {off:?}\n")).expect(off);
            assert_eq!(c.sip.tls_bind, None, "{off:?}");
        }
    }

    #[test]
    fn sip_tls_errors_name_the_problem() {
        let cases = [
            (
                "[sip]\nbind = \"127.0.0.1:5060\"\ntls_bind = \"127.0.0.1:5060\"",
                "sip.tls_bind",
                "same address",
            ),
            (
                "[sip]\ntrusted_peer_subjects = [\"pbx.example.com\"]",
                "sip.trusted_peer_subjects",
                "client_ca_file",
            ),
            (
                "[sip]\ntls_bind = \"off\"\nclient_ca_file = \"ca.pem\"\ntrusted_peer_subjects = [\"pbx\"]",
                "sip.trusted_peer_subjects",
                "tls_bind",
            ),
            ("[sip]\ntls_bind = \"nowhere\"", "p.toml:2:", "neither"),
        ];
        for (text, key, problem) in cases {
            let msg = parse(text).expect_err(text).to_string();
            assert!(msg.contains(key), "{msg} should name {key}");
            assert!(msg.contains(problem), "{msg} should say {problem}");
        }
    }

    #[test]
    fn direct_tls_and_ping_errors_name_the_problem() {
        let cases = [
            (
                "[xmpp]\nc2s_tls_bind = \"nowhere\"",
                "p.toml:2:",
                "neither a socket address nor",
            ),
            (
                "[xmpp]\nc2s_bind = \"127.0.0.1:5222\"\nc2s_tls_bind = \"127.0.0.1:5222\"",
                "xmpp.c2s_tls_bind",
                "same address",
            ),
            ("[xmpp]\nping_interval = \"60\"", "p.toml:2:", "unit"),
            ("[xmpp]\nping_timeout = \"1d\"", "p.toml:2:", "unknown unit"),
            (
                "[xmpp]\nping_timeout = \"0s\"",
                "xmpp.ping_timeout",
                "more than 0",
            ),
            (
                "[xmpp]\nidle_timeout = \"0s\"",
                "xmpp.idle_timeout",
                "more than 0",
            ),
            (
                "[xmpp]\nping_interval = \"10min\"",
                "xmpp.idle_timeout",
                "shorter than ping_interval + ping_timeout",
            ),
        ];
        for (text, starts, mentions) in cases {
            let msg = parse(text).expect_err(text).to_string();
            assert!(!msg.contains('\n'), "one line: {msg}");
            assert!(msg.starts_with("p.toml"), "{msg}");
            assert!(msg.contains(starts), "{msg} should contain {starts}");
            assert!(msg.contains(mentions), "{msg} should mention {mentions}");
        }
    }

    #[test]
    fn the_store_is_embedded_unless_postgres_is_configured() {
        let c = parse("").expect("valid");
        assert_eq!(c.store.kind, StoreKind::Embedded);
        assert_eq!((c.store.url.as_deref(), c.store.pool), (None, 4));
        let c = parse(
            r#"
            [store]
            kind = "postgres"
            url = "postgresql://presenced@127.0.0.1:5432/presenced"
            "#,
        )
        .expect("valid");
        assert_eq!(c.store.kind, StoreKind::Postgres);
        assert_eq!(
            c.store.url.as_deref(),
            Some("postgresql://presenced@127.0.0.1:5432/presenced")
        );
        assert_eq!(c.store.pool, 4, "pool keeps its default");
        let c = parse("[store]\nkind = \"postgres\"\nurl = \"postgresql://u@h/d\"\npool = 9\n")
            .expect("valid");
        assert_eq!(c.store.pool, 9);
        assert_eq!(
            c.store.cache_mib, 4,
            "the embedded store's cache defaults to 4 MiB"
        );
        let c = parse("[store]\ncache_mib = 64\n").expect("valid");
        assert_eq!((c.store.kind, c.store.cache_mib), (StoreKind::Embedded, 64));
        // Switching back to the embedded store does not need the URL removed.
        let c =
            parse("[store]\nkind = \"embedded\"\nurl = \"postgresql://u@h/d\"\n").expect("valid");
        assert_eq!(c.store.kind, StoreKind::Embedded);
    }

    #[test]
    fn store_errors_name_the_problem() {
        let cases = [
            ("[store]\nkind = \"mysql\"", "p.toml:2:", "mysql"),
            (
                "[store]\nkind = \"postgres\"",
                "store.kind",
                "needs store.url",
            ),
            (
                "[store]\nkind = \"postgres\"\nurl = \"postgresql://u:secret@h:notaport/d\"",
                "store.url",
                "not a PostgreSQL connection URL",
            ),
            ("[store]\npool = 0", "store.pool", "at least 1"),
            ("[store]\nhost = \"db\"", "p.toml:2:", "host"),
        ];
        for (text, starts, mentions) in cases {
            let msg = parse(text).expect_err(text).to_string();
            assert!(!msg.contains('\n'), "one line: {msg}");
            assert!(msg.contains(starts), "{msg} should contain {starts}");
            assert!(msg.contains(mentions), "{msg} should mention {mentions}");
            assert!(!msg.contains("secret"), "the password stays out: {msg}");
        }
    }

    #[test]
    fn errors_are_one_line_naming_file_line_and_problem() {
        let cases = [
            ("domain = \"x\"\nbogus = 1\n", "p.toml:2:", "bogus"),
            ("[xmpp]\nc2s_bind = \"nowhere\"\n", "p.toml:2:", "address"),
            ("domain = \"bad domain!\"", "p.toml: domain", "not valid"),
            ("domain = \"a@b.c\"", "p.toml: domain", "not a domain"),
            ("[xmpp]\ntls_key = \"k.pem\"", "xmpp.tls_key", "partner"),
            (
                "[limits]\nmax_sessions_per_user = 0",
                "max_sessions",
                "refuse",
            ),
            (
                "[log]\nlevel = \"info,server_sip=loud\"",
                "p.toml: log.level = \"info,server_sip=loud\"",
                "not a log filter directive",
            ),
            ("[log]\nformat = \"xml\"", "p.toml:2:", "xml"),
            ("[log]\ncolour = true", "p.toml:2:", "colour"),
            ("[http]\nbind = \"port 80\"", "p.toml:2:", "address"),
            (
                "[limits]\nmax_connections = 0",
                "limits.max_connections = \"0\"",
                "at least 1",
            ),
            (
                "[limits]\nmax_outbound_queue = 0",
                "limits.max_outbound_queue",
                "at least 1",
            ),
            (
                "[limits]\nengine_queue = 0",
                "limits.engine_queue",
                "at least 1",
            ),
            (
                "[limits]\nc2s_burst = 0",
                "limits.c2s_burst",
                "block all reads",
            ),
            (
                "[limits]\nsip_burst = 0",
                "limits.sip_burst",
                "block all reads",
            ),
            ("[limits]\nc2s_rate = -1", "p.toml:2:", "invalid value"),
        ];
        for (text, starts, mentions) in cases {
            let msg = parse(text).expect_err(text).to_string();
            assert!(!msg.contains('\n'), "one line: {msg}");
            assert!(msg.starts_with("p.toml"), "{msg}");
            assert!(msg.contains(starts), "{msg} should contain {starts}");
            assert!(msg.contains(mentions), "{msg} should mention {mentions}");
        }
    }

    #[test]
    fn runtime_shards_are_read_bounded_and_one_on_a_cluster_node() {
        let default = parse("").expect("defaults").runtime;
        assert_eq!(default.shards, None);
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        assert_eq!(default.shard_count(), cores.min(64), "one per core");
        let c = parse("[runtime]\nshards = 4").expect("four shards");
        assert_eq!((c.runtime.shards, c.runtime.shard_count()), (Some(4), 4));
        let per_core = parse("[runtime]\nshards = 0").expect("one per core");
        assert!(per_core.runtime.shard_count() >= 1);
        let msg = parse("[runtime]\nshards = 65")
            .expect_err("too many")
            .to_string();
        assert!(
            msg.contains("runtime.shards") && msg.contains("at most 64"),
            "{msg}"
        );
        let node = "[store]\nkind = \"postgres\"\nurl = \"postgresql://p@127.0.0.1:5432/p\"\n\
                    [cluster]\nnode = \"a\"\ngroup = \"g1\"\nnats = \"nats://127.0.0.1:4222\"\n";
        let msg = parse(&format!("{node}[runtime]\nshards = 2\n"))
            .expect_err("shards on a cluster node")
            .to_string();
        assert!(
            msg.contains("runtime.shards") && msg.contains("cluster"),
            "{msg}"
        );
        let node = parse(node).expect("a cluster node").runtime;
        assert_eq!((node.shards, node.shard_count()), (Some(1), 1));
    }

    #[test]
    fn a_cluster_needs_the_shared_store_and_valid_failover_timers() {
        let cluster = "[cluster]\nnode = \"a\"\ngroup = \"g1\"\nnats = \"nats://127.0.0.1:4222\"\n";
        let msg = parse(cluster).expect_err("embedded store").to_string();
        assert!(msg.contains("cluster") && msg.contains("postgres"), "{msg}");

        let store = "[store]\nkind = \"postgres\"\nurl = \"postgresql://p@127.0.0.1:5432/p\"\n";
        let c = parse(&format!("{store}{cluster}")).expect("a valid cluster node");
        let node = c.cluster.expect("cluster section");
        assert_eq!((node.node.as_str(), node.group.as_str()), ("a", "g1"));
        assert_eq!(
            node.failover_config().unwrap(),
            presence_core::failover::Config::default()
        );

        let fast = format!(
            "{store}{cluster}\n[cluster.failover]\nheartbeat_interval = \"1s\"\nheartbeat_timeout = \"1500ms\"\n"
        );
        let msg = parse(&fast)
            .expect_err("timeout under two intervals")
            .to_string();
        assert!(
            msg.contains("cluster.failover") && msg.contains("twice"),
            "{msg}"
        );
    }
}
