//! `presenced`: the bundled presence and IM server.
//!
//! `presenced [serve]` runs the XMPP and SIP services over one engine on the configured store (`[store]`: the
//! embedded one in the data directory by default, or PostgreSQL). `presenced user add|del|list` manages accounts
//! in the same database: through the running server's admin socket when it runs (it holds the embedded database
//! locked), else by opening the database itself. `presenced status` asks the running server how it is (through
//! its HTTP listener); `presenced check-config` validates a configuration without starting.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use examples::admin::{self, AdminCommand, AdminError, AdminReply};
use examples::cluster::admin as cluster_admin;
use examples::config::{Config, ConfigError};
use examples::logging::LoggingError;
use examples::users::{UserError, parse_user};

/// The allocator of the whole server (see the workspace Cargo.toml for the measurement behind it).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v3 `mimalloc.h`; the bindings name no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the OS at once rather than after mimalloc's default delay of 1 s: 13.1-13.5 instead
/// of 13.8-16.6 KiB per idle TLS client and 130 instead of 183-208 MB after a 10,000-client login burst, for no
/// CPU measurable in the SIP PUBLISH and login benchmarks (benches/IDLE.md, round 4). An operator's own
/// `MIMALLOC_PURGE_DELAY` wins (mimalloc reads its environment before `main`).
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's option values (a plain store in its option table); any value is valid.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

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
    /// Inspect and steer the cluster this node's config belongs to.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Accounts from the `[ldap]` directory.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Ask the running server how it is (exit status 1 when it is down or unreachable).
    Status {
        /// Print the server's JSON status document instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Check the configuration (`--config FILE`) without starting: exit status 1 and one line per problem.
    CheckConfig,
}

#[derive(Debug, Subcommand)]
enum DirectoryCommand {
    /// Create, update and remove accounts as the directory lists its users now, and print each change
    /// (through the running server, which ends removed users' sessions; else on the store directly).
    Sync {
        /// Print what would change and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Print the nodes, their groups and failover states, and the users each serves.
    Status,
    /// Hand a node's users to its peer and leave it serving nobody until a fallback (the node must be Normal).
    Failover {
        /// The node to fail over (default: this config's node).
        #[arg(long)]
        node: Option<String>,
    },
    /// Bring a failed-over node's users back home (the node must be Idle or Failed Over).
    Fallback {
        /// The node whose users come home (default: this config's node).
        #[arg(long)]
        node: Option<String>,
    },
    /// Restart the failover managers of a node in Running in Failed Mode (and of its peer, if it hears it).
    Recover {
        /// The node to recover (default: this config's node).
        #[arg(long)]
        node: Option<String>,
    },
    /// Move users to where the assignment mode puts them, in the failover batches.
    Rebalance,
}

/// A password given on the command line or on standard input.
#[derive(Debug, clap::Args)]
struct PasswordArg {
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
}

impl PasswordArg {
    fn read(self) -> Result<String, Error> {
        match self.password {
            Some(p) if !self.password_stdin => Ok(p),
            _ => password_from_stdin(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account.
    Add {
        /// The address, `local@domain` on the configured domain.
        jid: String,
        #[command(flatten)]
        password: PasswordArg,
    },
    /// Delete an account with its roster, policy and held messages.
    Del {
        /// The address.
        jid: String,
    },
    /// List every account.
    List,
    /// Replace an account's password.
    Passwd {
        /// The address.
        jid: String,
        #[command(flatten)]
        password: PasswordArg,
    },
    /// Import contact lists (`UserID,UserDomain,ContactID,ContactDomain,Nickname,GroupName` rows) or, with
    /// --accounts, accounts (`UserID,UserDomain,Password` rows), from a CSV file (`-` for standard input). The
    /// server must be stopped. Exit status 0 when every row was imported, 2 when some were rejected.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// The file holds accounts, not contacts.
        #[arg(long)]
        accounts: bool,
    },
    /// Print every contact list as import rows (the server must be stopped).
    Export,
}

/// Everything that can stop a command, each shown as one line.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Cluster(#[from] examples::cluster::ClusterError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the config has no [cluster] section")]
    NoCluster,
    #[error("{0}")]
    Refused(String),
    #[error("cannot read the password from standard input: {0}")]
    Stdin(std::io::Error),
    #[error("no password on standard input")]
    NoPassword,
    #[error(transparent)]
    Server(#[from] examples::server::Error),
    #[error(transparent)]
    Logging(#[from] LoggingError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Status(#[from] examples::status::client::StatusError),
    #[error("{} has {} problem(s): {}", path.display(), problems.len(), problems.join("; "))]
    BadConfig {
        path: PathBuf,
        problems: Vec<String>,
    },
    #[error("check-config needs --config FILE")]
    NoConfigFile,
    #[error("a server is running on {}: stop it first (import and export use the store directly)", .0.display())]
    Running(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] presence_core::store::StoreError),
}

fn load_config(path: Option<&PathBuf>) -> Result<Config, Error> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
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

/// Runs a user command through the running server's admin socket, or on the store directly when no server
/// answers there (the store is then free to open).
fn user_command(config: &Config, cmd: &AdminCommand) -> Result<AdminReply, Error> {
    match admin::request(&admin::socket_path(&config.data_dir), cmd) {
        Err(AdminError::NotRunning { .. }) => {
            let store = examples::server::open_store(config)?;
            Ok(admin::execute(&store, cmd)?)
        }
        other => Ok(other?),
    }
}

/// Runs a directory sync through the running server's admin socket, or on the store directly when no server
/// answers there.
fn directory_sync(config: &Config, dry_run: bool) -> Result<Vec<String>, Error> {
    let cmd = AdminCommand::DirectorySync { dry_run };
    match admin::request(&admin::socket_path(&config.data_dir), &cmd) {
        Err(AdminError::NotRunning { .. }) => {
            let store = std::sync::Arc::new(examples::server::open_store(config)?);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(Error::Runtime)?;
            let reply = rt.block_on(admin::sync_directory(
                store,
                &config.domain,
                config.ldap.as_ref(),
                None,
                dry_run,
            ));
            match reply.map_err(Error::Refused)? {
                AdminReply::Synced(lines) => Ok(lines),
                _ => Err(Error::Refused("unexpected reply".into())),
            }
        }
        Ok(AdminReply::Synced(lines)) => Ok(lines),
        Ok(_) => Err(Error::Refused("unexpected reply".into())),
        Err(e) => Err(e.into()),
    }
}

/// Runs a `cluster` command: `status` from the database, the others as requests to a node.
fn cluster_command(config: &Config, cmd: ClusterCommand) -> Result<ExitCode, Error> {
    let Some(cluster) = &config.cluster else {
        return Err(Error::NoCluster);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let out = rt.block_on(async {
        match cmd {
            ClusterCommand::Status => {
                cluster_admin::status(config.store.url.as_deref().unwrap_or_default()).await
            }
            ClusterCommand::Failover { node } => {
                let node = node.unwrap_or_else(|| cluster.node.clone());
                cluster_admin::request(cluster, &node, "failover").await
            }
            ClusterCommand::Fallback { node } => {
                let node = node.unwrap_or_else(|| cluster.node.clone());
                cluster_admin::request(cluster, &node, "fallback").await
            }
            ClusterCommand::Recover { node } => {
                let node = node.unwrap_or_else(|| cluster.node.clone());
                cluster_admin::request(cluster, &node, "recover").await
            }
            ClusterCommand::Rebalance => {
                cluster_admin::request(cluster, &cluster.node, "rebalance").await
            }
        }
    })?;
    if let Some(refusal) = out.strip_prefix("error ") {
        return Err(Error::Refused(refusal.to_owned()));
    }
    print!("{out}");
    if !out.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// `presenced status`: the running server's status, or an error (exit 1) when it is down.
fn status_command(config: &Config, json: bool) -> Result<ExitCode, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let snapshot = rt.block_on(examples::status::client::fetch(config))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&snapshot).unwrap_or_default()
        );
    } else {
        print!(
            "{}",
            examples::status::client::describe(&snapshot, examples::status::client::target(config))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `presenced check-config --config FILE`.
fn check_config(path: Option<&PathBuf>) -> Result<ExitCode, Error> {
    let path = path.ok_or(Error::NoConfigFile)?;
    let config = Config::load(path)?;
    let problems = examples::check::problems(&config);
    if !problems.is_empty() {
        return Err(Error::BadConfig {
            path: path.clone(),
            problems,
        });
    }
    println!("{}: ok", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Opens the store for a bulk command, refusing while a server answers on the admin socket.
fn store_for_bulk(config: &Config) -> Result<examples::store::OpenStore, Error> {
    let socket = admin::socket_path(&config.data_dir);
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Err(Error::Running(socket));
    }
    Ok(examples::server::open_store(config)?)
}

/// `presenced user import|export`.
fn bulk_command(config: &Config, cmd: UserCommand) -> Result<ExitCode, Error> {
    use examples::bulk;
    match cmd {
        UserCommand::Import { file, accounts } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).map_err(Error::Stdin)?
            } else {
                std::fs::read_to_string(&file).map_err(|source| Error::ReadFile {
                    path: file.clone(),
                    source,
                })?
            };
            let store = store_for_bulk(config)?;
            let limit = |n: usize| (n > 0).then_some(n);
            let report = if accounts {
                bulk::import_accounts(&store, &config.domain, &text)?
            } else {
                let limits = bulk::ImportLimits {
                    max_contacts: limit(config.limits.max_contacts),
                    max_watchers: limit(config.limits.max_watchers),
                };
                bulk::import_contacts(&store, &config.domain, limits, &text)?
            };
            for (line, why) in &report.rejected {
                println!("line {line}: rejected: {why}");
            }
            println!(
                "imported {} {}, rejected {}",
                report.imported,
                if accounts { "accounts" } else { "contacts" },
                report.rejected.len()
            );
            Ok(if report.rejected.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        _ => {
            let store = store_for_bulk(config)?;
            print!("{}", bulk::export_contacts(&store)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    if let Some(Command::CheckConfig) = cli.command {
        return check_config(cli.config.as_ref());
    }
    let config = load_config(cli.config.as_ref())?;
    let cmd = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            // Only the server logs: the user commands' output is their stdout and one error line.
            examples::logging::init(&config.log)?;
            return Ok(examples::server::serve(&config)?);
        }
        Command::User(UserCommand::Add { jid, password }) => AdminCommand::UserAdd {
            jid: parse_user(&jid, &config.domain)?,
            password: password.read()?,
        },
        Command::Cluster(cmd) => return cluster_command(&config, cmd),
        Command::Directory(DirectoryCommand::Sync { dry_run }) => {
            for line in directory_sync(&config, dry_run)? {
                println!("{line}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Status { json } => return status_command(&config, json),
        Command::CheckConfig => return check_config(cli.config.as_ref()),
        Command::User(cmd @ (UserCommand::Import { .. } | UserCommand::Export)) => {
            return bulk_command(&config, cmd);
        }
        Command::User(UserCommand::Passwd { jid, password }) => AdminCommand::UserPasswd {
            jid: parse_user(&jid, &config.domain)?,
            password: password.read()?,
        },
        Command::User(UserCommand::Del { jid }) => AdminCommand::UserDel {
            jid: parse_user(&jid, &config.domain)?,
        },
        Command::User(UserCommand::List) => AdminCommand::UserList,
    };
    match user_command(&config, &cmd)? {
        AdminReply::Added(jid) => println!("added {jid}"),
        AdminReply::Deleted(jid) => println!("deleted {jid}"),
        AdminReply::PasswordSet(jid) => println!("password changed for {jid}"),
        AdminReply::Synced(lines) => {
            for line in lines {
                println!("{line}");
            }
        }
        AdminReply::Users(jids) => {
            for jid in jids {
                println!("{jid}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    purge_freed_memory_at_once();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            // One line whatever the error's own text holds, so scripts and tests can read it as one.
            eprintln!("presenced: {}", admin::one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}
