//! Running the server: the XMPP and SIP services over one engine runtime, on the configured store.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use presence_core::Engine;
use presence_core::rate::Rate;
use presence_core::runtime::{self, RuntimeConfig};
use presence_core::store::StoreError;
use tracing::{info, warn};

use crate::admin;
use crate::config::{Config, StoreKind};
use crate::http::{self, HttpState};
use crate::store::{FaultyStore, OpenStore, PgStore, RedbStore};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory could not be created.
    #[error("cannot create data directory {dir}: {source}")]
    DataDir {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Serve(#[from] server_xmpp::ServeError),
    #[error(transparent)]
    SipServe(#[from] server_sip::SipServeError),
    /// The certificate for SIP over TLS or HTTPS could not be loaded.
    #[error("TLS: {0}")]
    SipTls(#[from] server_xmpp::TlsError),
    #[error(transparent)]
    SipClientCa(#[from] server_sip::tls::SipTlsError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error(transparent)]
    Upload(#[from] crate::upload::UploadError),
    #[error(transparent)]
    RoomKey(#[from] crate::muc::KeyError),
    #[error(transparent)]
    Compliance(#[from] crate::compliance::OpenError),
    #[error(transparent)]
    S2sSecret(#[from] crate::s2s::SecretError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The HTTP listener could not be opened.
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Http {
        /// The configured `[http] bind`.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The admin socket could not be opened.
    #[error("cannot open the admin socket in {dir}: {source}")]
    Admin {
        /// The data directory.
        dir: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Creates the data directory if it does not exist.
fn create_data_dir(config: &Config) -> Result<(), Error> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::DataDir {
        dir: config.data_dir.clone(),
        source,
    })
}

/// How many threads tokio may start for blocking work: store lookups and SASL steps at login, directory and
/// upload calls. Its default is 512, and a 10,000-client login storm started 32, each keeping its stack and its
/// allocator pages while the clients idle (0.5 KiB per idle client, benches/IDLE.md round 5). The work is short
/// store reads and hashing, so twice the cores, and at least 8 (more than the PostgreSQL pool's connections, which
/// bound the store's concurrency anyway), keep every core busy.
fn blocking_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cores).max(8)
}

/// Opens the configured store: the embedded one in the data directory (creating the directory), or the
/// PostgreSQL database of `[store] url`, with its schema brought up to date.
pub fn open_store(config: &Config) -> Result<OpenStore, Error> {
    // (The server wraps this in `FaultyStore::from_env` for the end-to-end fault tests.)
    match config.store.kind {
        StoreKind::Embedded => {
            create_data_dir(config)?;
            Ok(OpenStore::Embedded(RedbStore::open_with_cache(
                config.store_path(),
                config.store.cache_mib << 20,
            )?))
        }
        StoreKind::Postgres => {
            // Config validation guarantees the URL; an empty one fails to connect with a clear message.
            let url = config.store.url.as_deref().unwrap_or_default();
            Ok(OpenStore::Postgres(PgStore::connect(
                url,
                config.store.pool,
            )?))
        }
    }
}

/// How long connections get to say goodbye after the engine has stopped.
const DRAIN: Duration = Duration::from_secs(3);

/// Runs the XMPP and SIP services over one engine runtime until SIGTERM or SIGINT, then shuts down gracefully:
/// stop accepting, terminate SIP subscriptions with a NOTIFY, commit what is pending, close XMPP streams with
/// `<system-shutdown/>`, exit 0.
pub fn serve(config: &Config) -> Result<ExitCode, Error> {
    // The store's lock comes first: it is what guarantees one server per data directory (with PostgreSQL, the
    // admin socket's bind does that instead).
    let store = Arc::new(FaultyStore::from_env(open_store(config)?));
    // The TLS material and the admin socket live there whatever the store.
    create_data_dir(config)?;
    let held = presence_core::store::OfflineStore::offline_total(store.as_ref())?;
    // DESIGN §5: the room service starts only with its rooms; a store that cannot give them keeps it off (the rest
    // of the server runs) until a restart finds the store again.
    let mut engine_config = config.engine_config();
    let rooms = if config.muc.enabled {
        // With each room's archive head and its history from its archive.
        match presence_core::store::load_rooms(store.as_ref()) {
            Ok(rooms) => {
                engine_config.rooms =
                    Some(config.muc.rooms_config(&config.domain, &config.data_dir)?);
                tracing::debug!(rooms = rooms.len(), domain = %config.muc.domain_for(&config.domain), "room service ready");
                rooms
            }
            Err(e) => {
                tracing::error!(error = %e, "the persistent rooms cannot be read: the room service does not start");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let cert = match (&config.xmpp.tls_cert, &config.xmpp.tls_key) {
        (Some(cert), Some(key)) => server_xmpp::CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => server_xmpp::CertSource::SelfSigned {
            dir: config.data_dir.join("tls"),
            domain: config.domain.clone(),
        },
    };
    let limits = &config.limits;
    let mut settings = server_xmpp::XmppSettings::new(
        &config.domain,
        config.xmpp.c2s_bind,
        config.data_dir.join("tls"),
    );
    settings.cert = cert.clone();
    let s2s_settings = config
        .s2s
        .settings(&config.domain, &config.data_dir, cert.clone())?;
    settings.direct_tls_bind = config.xmpp.c2s_tls_bind;
    settings.ping_interval = config.xmpp.ping_every();
    settings.ping_timeout = config.xmpp.ping_timeout;
    settings.idle_timeout = config.xmpp.idle_timeout;
    settings.sm_resume_timeout = config.xmpp.sm_resume_timeout;
    settings.sm_max_unacked = config.xmpp.sm_max_unacked;
    settings.csi_max_queued = config.xmpp.csi_max_queued;
    settings.outbound_queue = limits.max_outbound_queue;
    settings.outbound_bytes = limits.max_outbound_bytes;
    settings.rate = Rate {
        per_second: limits.c2s_rate,
        burst: limits.c2s_burst,
    };
    if let Some(rooms) = &engine_config.rooms {
        settings.features = settings.features.with_muc(&rooms.domain);
    }
    settings.features = settings.features.with_external_services(
        config
            .xmpp
            .external_services
            .iter()
            .map(crate::extdisco::ExternalServiceConfig::service)
            .collect(),
    );
    if config.xmpp.registration {
        settings.features = settings.features.with_registration(
            server_xmpp::translate::features::register::Registration::new(
                Arc::new(crate::registration::NewAccounts),
                config.xmpp.registration_interval,
            ),
        );
    }
    let uploads = if config.upload.enabled {
        let uploads = Arc::new(crate::upload::Uploads::open(
            &config.data_dir,
            config.upload.settings(config.http.bind, &config.domain),
        )?);
        settings.features = settings.features.with_upload(uploads.clone());
        Some(uploads)
    } else {
        None
    };
    let ldap = config.ldap.clone().map(Arc::new);
    if let Some(ldap) = &ldap {
        settings.features =
            settings
                .features
                .with_directory(Arc::new(crate::directory::Ldap::new(
                    ldap.clone(),
                    config.domain.clone(),
                    store.clone(),
                )));
    }
    let mut sip_settings = server_sip::SipSettings::new(&config.domain, config.sip.bind);
    sip_settings.trusted_peers = config.sip.trusted_peers.clone();
    sip_settings.caps = config.sip_caps();
    if let Some(bind) = config.sip.tls_bind {
        // The XMPP listeners' certificate (configured, or generated into the data directory), built by the
        // XMPP shell's own code; only the client certificate request is SIP's.
        let tls = match &config.sip.client_ca_file {
            Some(ca) => server_xmpp::tls::server_config_with_client_auth(
                &cert,
                server_sip::tls::client_verifier(ca)?,
            ),
            None => server_xmpp::tls::server_config(&cert),
        }?;
        sip_settings.tls = Some(server_sip::SipTls {
            bind,
            config: tls,
            trusted_subjects: config.sip.trusted_peer_subjects.clone(),
        });
    }
    sip_settings.rate = Rate {
        per_second: limits.sip_rate,
        burst: limits.sip_burst,
    };
    let runtime_config = RuntimeConfig {
        engine_queue: limits.engine_queue,
        max_connections: limits.max_connections,
        max_connections_per_ip: limits.max_connections_per_ip,
        ..RuntimeConfig::default()
    };
    // The archive is opened (and its tables made) before anything is served: with compliance on, no message may
    // flow before there is somewhere to archive it.
    let compliance = match (&config.compliance.enabled, &config.compliance.url) {
        (true, Some(url)) => {
            let archive = crate::compliance::PgCompliance::connect(url, config.compliance.pool)?;
            tracing::info!(mode = ?config.compliance.mode, "compliance archiving on");
            Some(archive.hook(config.compliance.mode))
        }
        _ => None,
    };
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(blocking_threads())
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    tokio_rt.block_on(async {
        // One engine for both protocols (DESIGN §1), or one per shard, each serving the users that hash to it.
        // In a cluster it serves the users placed on this node, and stanzas for the others go over the
        // cluster's link.
        let shards = config.runtime.shard_count();
        let runtime_config = RuntimeConfig {
            shards,
            ..runtime_config
        };
        let mut node = match &config.cluster {
            Some(cluster) => Some(
                crate::cluster::Node::join(
                    cluster,
                    config.store.url.as_deref().unwrap_or_default(),
                    config.xmpp.c2s_bind.to_string(),
                    config.sip.bind.to_string(),
                )
                .await?,
            ),
            None => None,
        };
        let cluster = node.as_ref().map(|node| {
            let placement: Arc<dyn runtime::Cluster> = node.placement();
            (node.hosted(), placement)
        });
        let hooks = runtime::Hooks {
            cluster: cluster.as_ref().map(|(_, placement)| placement.clone()),
            compliance,
        };
        let mut hosted = cluster.map(|(hosted, _)| hosted);
        let engine = runtime::spawn_sharded(
            |shard| {
                let mut engine_config = engine_config.clone();
                // The node's cap on held messages is shared evenly by its shards, as are the messages held
                // now (users hash evenly); a shard counts only what it holds and releases itself.
                engine_config.limits.offline_per_node =
                    engine_config.limits.offline_per_node.div_ceil(shards);
                let share = held / shards as u64 + u64::from((shard as u64) < held % shards as u64);
                let engine = Engine::new(engine_config)
                    .with_offline_total(share)
                    .with_rooms(rooms.clone());
                match hosted.take() {
                    Some(users) => engine.serving_only(users),
                    None => engine,
                }
            },
            store.clone(),
            runtime_config,
            hooks,
        )
        .map_err(Error::Runtime)?;
        let hub = engine.handle();
        if let Some(node) = &mut node {
            node.start(hub.clone()).await?;
        }
        // Calendar presence enters the engine as a trusted peer's calendar state does; reads never block it.
        let calendar_task = config
            .calendar
            .as_ref()
            .map(|c| crate::calendar::start(c, hub.clone(), store.clone()));
        let components = if config.xmpp.components.is_empty() {
            None
        } else {
            let settings = server_xmpp::component::ComponentSettings {
                domain: config.domain.clone(),
                bind: config.xmpp.component_bind,
                components: config
                    .xmpp
                    .components
                    .iter()
                    .map(|c| server_xmpp::component::Component {
                        domain: c.domain.to_ascii_lowercase(),
                        secret: c.secret.clone(),
                    })
                    .collect(),
                limits: settings.limits,
                handshake_timeout: settings.handshake_timeout,
                outbound_queue: settings.outbound_queue,
            };
            Some(server_xmpp::component::ComponentServer::bind(settings, hub.clone()).await?)
        };
        let xmpp = server_xmpp::XmppServer::bind(settings, store.clone(), hub.clone()).await?;
        let s2s = server_xmpp::s2s::S2sServer::bind(s2s_settings, hub.clone()).await?;
        let sip = server_sip::SipServer::bind(sip_settings, store.clone(), hub.clone()).await?;
        let http_listener = tokio::net::TcpListener::bind(config.http.bind)
            .await
            .map_err(|source| Error::Http {
                addr: config.http.bind,
                source,
            })?;
        let admin_listener = admin::bind(&config.data_dir).map_err(|source| Error::Admin {
            dir: config.data_dir.clone(),
            source,
        })?;
        let addr = xmpp.local_addr().map_err(Error::Runtime)?;
        let direct_tls = xmpp.direct_tls_addr().map_err(Error::Runtime)?;
        info!(
            domain = %config.domain,
            xmpp = %addr,
            xmpp_tls = %direct_tls.map_or_else(|| "off".to_owned(), |a| a.to_string()),
            sip = %sip.local_addr(),
            sip_tls = %sip.tls_addr().map_or_else(|| "off".to_owned(), |a| a.to_string()),
            http = %config.http.bind,
            shards,
            "presenced serving"
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let metrics = hub.metrics().clone();
        let mut router = http::router(HttpState {
            metrics: Arc::new(move || metrics.encode()),
        });
        if let Some(uploads) = &uploads {
            router = router.merge(crate::upload::routes(uploads.clone()));
            // Often enough that a file outlives its expiry by at most a tenth of it (or an hour).
            let every = (config.upload.expire_after / 10)
                .clamp(Duration::from_secs(1), Duration::from_secs(3600));
            if !config.upload.expire_after.is_zero() {
                tokio::spawn(crate::upload::sweep_forever(uploads.clone(), every));
            }
        }
        // XMPP over WebSocket (RFC 7395) and XEP-0156 discovery, on this same listener.
        let security = if config.http.secure() {
            server_xmpp::web::Security::Encrypted
        } else {
            warn!(
                bind = %config.http.bind,
                "[http] is plain HTTP on a non-loopback address: WebSocket clients cannot authenticate \
                 (set [http] tls = true, or bind loopback behind a TLS-terminating proxy)"
            );
            server_xmpp::web::Security::Plain
        };
        let websocket_url = config.http.websocket_url(&config.domain);
        info!(url = %websocket_url, "XMPP over WebSocket");
        router = router.merge(server_xmpp::web::routes(
            xmpp.websocket(security).with_bosh(config.http.bosh()),
            &websocket_url,
        ));
        let http_tls = if config.http.tls {
            Some(server_xmpp::tls::server_config(&cert)?)
        } else {
            None
        };
        // Operations: the status page and /status.json; systemd hears that the listeners are up.
        router = router.merge(crate::status::start(config, hub.metrics().clone()));
        let http_task = tokio::spawn(http::serve(
            http_listener,
            http_tls,
            router,
            stopped(stop_rx.clone()),
        ));
        let admin_task = tokio::spawn(admin::serve(
            admin_listener,
            store.clone(),
            config.domain.clone(),
            hub.clone(),
            ldap.clone(),
        ));
        // Accounts from the directory: at start, then every sync_interval.
        let directory_task = ldap.clone().map(|ldap| {
            tokio::spawn(crate::directory::sync::periodic(
                ldap,
                config.domain.clone(),
                store.clone(),
                hub.clone(),
            ))
        });
        // A listener that ends before the stop is a critical service down for the failover manager.
        let health = node.as_ref().map(|n| n.health());
        let xmpp_run = xmpp.run(stopped(stop_rx.clone()));
        let (rx, h) = (stop_rx.clone(), health.clone());
        let xmpp_task = tokio::spawn(async move {
            xmpp_run.await;
            if !*rx.borrow()
                && let Some(h) = h
            {
                warn!("the XMPP listener ended");
                h.xmpp_down
                    .store(true, std::sync::atomic::Ordering::Release);
            }
        });
        tokio::spawn(s2s.run(stopped(stop_rx.clone())));
        if let Some(components) = components {
            info!(addr = ?components.local_addr().ok(), "XMPP components accepted");
            tokio::spawn(components.run(stopped(stop_rx.clone())));
        }
        let sip_run = sip.run(stopped(stop_rx.clone()));
        let rx = stop_rx.clone();
        let sip_task = tokio::spawn(async move {
            let result = sip_run.await;
            if !*rx.borrow()
                && let Some(h) = health
            {
                warn!("the SIP service ended");
                h.sip_down.store(true, std::sync::atomic::Ordering::Release);
            }
            result
        });
        crate::systemd::notify(sd_notify::NotifyState::Ready);
        let signal = shutdown_signal().await;
        info!(signal, "shutting down");
        crate::systemd::notify(sd_notify::NotifyState::Stopping);
        let _ = stop_tx.send(true);
        // The listeners stop accepting and the SIP service sends its final NOTIFYs before the engine goes.
        let _ = xmpp_task.await;
        match sip_task.await {
            Ok(Err(e)) => warn!(error = %e, "the SIP service ended with an error"),
            Err(e) => warn!(error = %e, "the SIP service task failed"),
            Ok(Ok(())) => {}
        }
        if let Some(task) = calendar_task {
            task.abort();
        }
        // No sync may start against an engine that is stopping.
        if let Some(task) = &directory_task {
            task.abort();
        }
        // The engine commits what is pending and ends every session; connections write their goodbyes.
        engine.shutdown().await;
        // Only now does the failover peer hear goodbye and take this node's users over: had it loaded one of
        // them while this engine still served them, it would miss what this engine held for them after that.
        // Messages for them meanwhile are refused here and sent again by their senders (`cluster::link`).
        if let Some(node) = &node {
            node.stop().await;
        }
        let deadline = tokio::time::Instant::now() + DRAIN;
        while hub.admission().held() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        admin_task.abort();
        let _ = std::fs::remove_file(admin::socket_path(&config.data_dir));
        // A scraper holding a keep-alive connection must not hold the exit up.
        if tokio::time::timeout(Duration::from_secs(1), http_task)
            .await
            .is_err()
        {
            warn!("the HTTP listener did not finish in time");
        }
        info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Waits for SIGTERM or SIGINT (Ctrl-C) and names it.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process is stopped the hard way; serve until then.
        std::future::pending::<()>().await;
        unreachable!("pending never resolves")
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
