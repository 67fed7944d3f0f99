//! Running the server: the XMPP and SIP services over one engine runtime, on the configured store.

use std::process::ExitCode;

use crate::config::Config;
use crate::store::RedbStore;
use presence_core::store::StoreError;

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
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Opens the embedded store in the data directory, creating the directory.
pub fn open_store(config: &Config) -> Result<RedbStore, Error> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::DataDir {
        dir: config.data_dir.clone(),
        source,
    })?;
    Ok(RedbStore::open(config.store_path())?)
}

/// Runs the XMPP and SIP services over one engine until the process is stopped.
pub fn serve(config: &Config) -> Result<ExitCode, Error> {
    let store = std::sync::Arc::new(open_store(config)?);
    let held = presence_core::store::OfflineStore::offline_total(store.as_ref())?;
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
    let mut settings = server_xmpp::XmppSettings::new(
        &config.domain,
        config.xmpp.c2s_bind,
        config.data_dir.join("tls"),
    );
    settings.cert = cert;
    settings.engine = config.engine_config();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let mut sip_settings = server_sip::SipSettings::new(&config.domain, config.sip.bind);
    sip_settings.trusted_peers = config.sip.trusted_peers.clone();
    runtime.block_on(async {
        // One engine for both protocols (DESIGN §1): both shells feed the same hub.
        let engine = presence_core::Engine::new(settings.engine.clone()).with_offline_total(held);
        let hub = server_xmpp::hub::spawn(engine, store.clone()).map_err(Error::Runtime)?;
        let xmpp =
            server_xmpp::XmppServer::bind_with_hub(settings, store.clone(), hub.clone()).await?;
        let sip = server_sip::SipServer::bind(sip_settings, store, hub).await?;
        let addr = xmpp.local_addr().map_err(Error::Runtime)?;
        eprintln!(
            "presenced: serving {} (XMPP on {addr}, SIP on UDP and TCP {})",
            config.domain,
            sip.local_addr()
        );
        tokio::join!(xmpp.run(), sip.run());
        Ok(ExitCode::SUCCESS)
    })
}
