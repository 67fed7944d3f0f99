//! `presenced`: the bundled presence and IM server.
//!
//! `presenced [serve]` runs the XMPP and SIP services over one engine on the embedded store in the
//! data directory. `presenced user add|del|list` manages accounts in the same database.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use examples::config::{Config, ConfigError};
use examples::store::RedbStore;
use examples::users::{UserError, add_user, parse_user, remove_user};
use presence_core::store::{AccountStore, StoreError};

/// The bundled presence and IM server.
#[derive(Debug, Parser)]
#[command(name = "presenced", version)]
struct Cli {
    /// The TOML configuration file (built-in defaults when absent).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account.
    Add {
        /// The address, `local@domain` on the configured domain.
        jid: String,
        /// The password (visible to other local users in the process list; prefer --password-stdin).
        #[arg(
            long,
            required_unless_present = "password_stdin",
            conflicts_with = "password_stdin"
        )]
        password: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an account with its roster, policy and held messages.
    Del {
        /// The address.
        jid: String,
    },
    /// List every account.
    List,
}

/// Everything that can stop a command, each shown as one line.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot create data directory {dir}: {source}")]
    DataDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error("cannot read the password from standard input: {0}")]
    Stdin(std::io::Error),
    #[error("no password on standard input")]
    NoPassword,
    #[error(transparent)]
    Serve(#[from] server_xmpp::ServeError),
    #[error(transparent)]
    SipServe(#[from] server_sip::SipServeError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs the XMPP and SIP services over one engine until the process is stopped.
fn serve(config: &Config) -> Result<ExitCode, Error> {
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

fn load_config(path: Option<&PathBuf>) -> Result<Config, Error> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

fn open_store(config: &Config) -> Result<RedbStore, Error> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::DataDir {
        dir: config.data_dir.clone(),
        source,
    })?;
    Ok(RedbStore::open(config.store_path())?)
}

/// The first line of standard input without its line ending.
fn password_from_stdin() -> Result<String, Error> {
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(Error::Stdin)?;
    if n == 0 {
        return Err(Error::NoPassword);
    }
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    Ok(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned())
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    let config = load_config(cli.config.as_ref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&config),
        Command::User(UserCommand::Add {
            jid,
            password,
            password_stdin,
        }) => {
            let jid = parse_user(&jid, &config.domain)?;
            let password = match password {
                Some(p) if !password_stdin => p,
                _ => password_from_stdin()?,
            };
            add_user(&open_store(&config)?, jid.clone(), &password)?;
            println!("added {jid}");
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Del { jid }) => {
            let jid = parse_user(&jid, &config.domain)?;
            remove_user(&open_store(&config)?, jid.clone())?;
            println!("deleted {jid}");
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::List) => {
            for jid in open_store(&config)?.list_accounts()? {
                println!("{jid}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("presenced: {e}");
            ExitCode::FAILURE
        }
    }
}
