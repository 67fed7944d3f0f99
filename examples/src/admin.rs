//! The admin socket: how `presenced user add|del|list` reaches a running server, which holds the database open
//! (the embedded store takes an exclusive lock, so a second process cannot open it).
//!
//! The server listens on the Unix domain socket `<data_dir>/presenced.sock` ([`bind`], [`serve`]). The socket file
//! has mode 0600: whoever may connect is whoever owns the server's files, so filesystem permissions are the
//! authentication and there is no password on the socket. The CLI tries the socket first ([`request`]) and opens
//! the store itself only when no server answers ([`AdminError::NotRunning`]); both paths run [`execute`], so they
//! succeed and fail alike, with the same messages.
//!
//! # Protocol
//!
//! One request per connection, then one reply, then the server closes. Every line is UTF-8 ending in `\n`.
//!
//! | request                           | reply on success                          |
//! |-----------------------------------|-------------------------------------------|
//! | `user add <jid>` + `<password>`   | `ok added <jid>`                          |
//! | `user del <jid>`                  | `ok deleted <jid>`                        |
//! | `user passwd <jid>` + `<password>`| `ok passwd <jid>`                         |
//! | `user list`                       | `ok users <n>` then `n` lines, one `<jid>` each |
//! | `directory sync [dry-run]`        | `ok changes <n>` then `n` lines, one change each |
//!
//! The password is the whole second line (spaces included). A password can hold no line break: PRECIS
//! OpaqueString, which every password must pass, forbids control characters. Any failure is the single line
//! `error <message>`, where the message is what the CLI would print had it opened the store itself. The server
//! checks each address against its own domain.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use presence_core::BareJid;
use presence_core::store::{AccountStore, Store};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::credentials::prepare_password;
use crate::users::{UserError, add_user, parse_user, remove_user, set_password};

/// The socket's file name inside the data directory.
pub const SOCKET_FILE: &str = "presenced.sock";

/// The longest request line the server reads; a JID is at most 3071 bytes and a password far less.
const MAX_LINE: u64 = 4096;

/// How long the server waits for a whole request, so a client that connects and stalls does not hold a task.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the CLI waits for the server; generous because the server may be busy, but never forever.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A request to the running server.
#[derive(Clone, PartialEq, Eq)]
pub enum AdminCommand {
    /// Create an account.
    UserAdd {
        /// The address.
        jid: BareJid,
        /// The password; never logged or shown by `Debug`.
        password: String,
    },
    /// Delete an account with everything stored for it.
    UserDel {
        /// The address.
        jid: BareJid,
    },
    /// List every account.
    UserList,
    /// Replace an account's password.
    UserPasswd {
        /// The address.
        jid: BareJid,
        /// The new password; never logged or shown by `Debug`.
        password: String,
    },
    /// Sync accounts from the `[ldap]` directory now (or only list what would change).
    DirectorySync {
        /// Change nothing.
        dry_run: bool,
    },
}

impl std::fmt::Debug for AdminCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminCommand::UserAdd { jid, .. } => f
                .debug_struct("UserAdd")
                .field("jid", jid)
                .field("password", &"<redacted>")
                .finish(),
            AdminCommand::UserDel { jid } => f.debug_struct("UserDel").field("jid", jid).finish(),
            AdminCommand::UserList => f.write_str("UserList"),
            AdminCommand::DirectorySync { dry_run } => f
                .debug_struct("DirectorySync")
                .field("dry_run", dry_run)
                .finish(),
            AdminCommand::UserPasswd { jid, .. } => f
                .debug_struct("UserPasswd")
                .field("jid", jid)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// What a successful request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminReply {
    /// The account was created.
    Added(BareJid),
    /// The account was deleted.
    Deleted(BareJid),
    /// Every account, sorted.
    Users(Vec<BareJid>),
    /// The account's password was replaced.
    PasswordSet(BareJid),
    /// A directory sync ran: its changes, one line each.
    Synced(Vec<String>),
}

/// Why a request through the socket failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No server answers on the socket: the file is absent or nothing listens on it.
    #[error("no server answers on {}", socket.display())]
    NotRunning {
        /// The socket path.
        socket: PathBuf,
    },
    /// Connecting, sending or reading failed (permission denied, timeout, server gone mid-request).
    #[error("cannot talk to the server on {}: {source}", socket.display())]
    Io {
        /// The socket path.
        socket: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The server refused the request; its message is what the direct path would have said.
    #[error("{0}")]
    Refused(String),
    /// The server's reply does not follow the protocol.
    #[error("the server on {} sent an unexpected reply {line:?}", socket.display())]
    Protocol {
        /// The socket path.
        socket: PathBuf,
        /// The line that was not understood.
        line: String,
    },
    /// The request was refused before it was sent (a password the server would refuse anyway).
    #[error(transparent)]
    User(#[from] UserError),
}

/// The socket path for `data_dir`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// Runs `cmd` on `store`: what the server does for a request, and what the CLI does when no server runs.
pub fn execute(store: &impl AccountStore, cmd: &AdminCommand) -> Result<AdminReply, UserError> {
    match cmd {
        AdminCommand::UserAdd { jid, password } => {
            add_user(store, jid.clone(), password)?;
            Ok(AdminReply::Added(jid.clone()))
        }
        AdminCommand::UserDel { jid } => {
            remove_user(store, jid.clone())?;
            Ok(AdminReply::Deleted(jid.clone()))
        }
        AdminCommand::UserList => Ok(AdminReply::Users(store.list_accounts()?)),
        AdminCommand::UserPasswd { jid, password } => {
            set_password(store, jid.clone(), password)?;
            Ok(AdminReply::PasswordSet(jid.clone()))
        }
        // It reads the directory, which is asynchronous: see `sync_directory`.
        AdminCommand::DirectorySync { .. } => Err(UserError::Unsupported(
            "a directory sync runs on the server's runtime",
        )),
    }
}

/// Runs a directory sync for the admin socket or the CLI: through the engine when `hub` is given.
pub async fn sync_directory<S>(
    store: Arc<S>,
    domain: &str,
    ldap: Option<&crate::directory::LdapConfig>,
    hub: Option<presence_core::runtime::Handle>,
    dry_run: bool,
) -> Result<AdminReply, String>
where
    S: Store + Send + Sync + 'static,
{
    use crate::directory::sync::{Target, run};
    let Some(ldap) = ldap else {
        return Err("the configuration has no [ldap] section".to_owned());
    };
    let target = match (dry_run, hub) {
        (true, _) => Target::DryRun,
        (false, Some(hub)) => Target::Engine(hub),
        (false, None) => Target::Store,
    };
    run(ldap, domain, store, target)
        .await
        .map(AdminReply::Synced)
        .map_err(|e| {
            tracing::warn!(error = %e, "directory sync failed");
            e.to_string()
        })
}

// ---------------------------------------------------------------------------------------------------------------
// Server side.

/// Creates the socket `<data_dir>/presenced.sock` with mode 0600 and listens on it. A socket file nothing answers
/// on (left by a server that died) is replaced; one a server answers on is an `AddrInUse` error, and any other
/// file there is an `AlreadyExists` error (it is not ours to delete). Call it inside a tokio runtime, after the
/// store is open, so the store's lock already guarantees one server per data directory.
pub fn bind(data_dir: &Path) -> std::io::Result<tokio::net::UnixListener> {
    let path = socket_path(data_dir);
    let context = |e: std::io::Error| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {}: {e}", path.display()),
        )
    };
    remove_stale(&path).map_err(context)?;
    let listener = bind_private(data_dir, &path).map_err(context)?;
    listener.set_nonblocking(true).map_err(context)?;
    let listener = tokio::net::UnixListener::from_std(listener).map_err(context)?;
    // Logged here, not from the listener: it still reports the private path it was bound at before the rename.
    tracing::info!(socket = %path.display(), "admin socket ready");
    Ok(listener)
}

/// Removes `path` if it is a socket nobody answers on.
fn remove_stale(path: &Path) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    if !meta.file_type().is_socket() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            "the path exists and is not a socket",
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(Error::new(
            ErrorKind::AddrInUse,
            "another server answers on it",
        )),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            tracing::info!(socket = %path.display(), "removing a stale admin socket");
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
        Err(e) => Err(e),
    }
}

/// Binds the socket in a fresh directory of mode 0700, narrows it to 0600 and only then renames it to `path`.
/// Binding at `path` directly would leave it open to everyone the umask allows until the chmod, and a client that
/// connected in that window would keep its connection afterwards.
fn bind_private(data_dir: &Path, path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    let private = data_dir.join(format!(".presenced.sock.{}", std::process::id()));
    // A leftover of an earlier process that had the same pid and died here.
    if private.exists() {
        std::fs::remove_dir_all(&private)?;
    }
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let tmp = private.join("s");
    let bound = (|| {
        let listener = std::os::unix::net::UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)?;
        Ok(listener)
    })();
    // The directory only existed to hold the socket while it was open to nobody.
    let _ = std::fs::remove_dir_all(&private);
    bound
}

/// Answers requests on `listener` against `store` for users of `domain`, forever; drop or abort the task to
/// stop. Each connection gets its own task, and each store call runs on the blocking pool so a slow disk never
/// stalls the I/O workers.
pub async fn serve<S>(
    listener: tokio::net::UnixListener,
    store: Arc<S>,
    domain: String,
    hub: presence_core::runtime::Handle,
    ldap: Option<Arc<crate::directory::LdapConfig>>,
) where
    S: Store + Send + Sync + 'static,
{
    let domain: Arc<str> = domain.into();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle(
                    stream,
                    store.clone(),
                    domain.clone(),
                    hub.clone(),
                    ldap.clone(),
                ));
            }
            Err(e) => {
                // Out of file descriptors, typically: back off instead of spinning on the same error.
                tracing::warn!(error = %e, "admin socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection: one request, one reply.
async fn handle<S>(
    stream: tokio::net::UnixStream,
    store: Arc<S>,
    domain: Arc<str>,
    hub: presence_core::runtime::Handle,
    ldap: Option<Arc<crate::directory::LdapConfig>>,
) where
    S: Store + Send + Sync + 'static,
{
    let (read, mut write) = stream.into_split();
    let mut read = tokio::io::BufReader::new(read);
    let cmd = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut read, &domain)).await {
        Err(_) => Err(format!(
            "no complete request within {} s",
            REQUEST_TIMEOUT.as_secs()
        )),
        // A connection closed before saying anything: a liveness probe (`bind` of a second server), not an error.
        Ok(Ok(None)) => return,
        Ok(Ok(Some(cmd))) => Ok(cmd),
        Ok(Err(e)) => Err(e),
    };
    let reply = match cmd {
        Err(message) => {
            tracing::debug!(%message, "malformed admin request");
            Err(message)
        }
        Ok(AdminCommand::DirectorySync { dry_run }) => {
            sync_directory(store, &domain, ldap.as_deref(), Some(hub.clone()), dry_run).await
        }
        Ok(cmd) => run(store, cmd).await,
    };
    // A removed account's live sessions end, and the engine forgets what it held for it (a user served by another
    // node of a cluster keeps its sessions there until they end).
    if let Ok(AdminReply::Deleted(user)) = &reply {
        let _ = hub.submit(presence_core::Input::AccountRemoved { user: user.clone() });
    }
    if let Err(e) = write.write_all(encode_reply(&reply).as_bytes()).await {
        tracing::debug!(error = %e, "admin client left before its reply");
    }
    let _ = write.shutdown().await;
}

/// Executes `cmd` on the blocking pool and logs the outcome (never the password).
async fn run<S>(store: Arc<S>, cmd: AdminCommand) -> Result<AdminReply, String>
where
    S: Store + Send + Sync + 'static,
{
    let request = match &cmd {
        AdminCommand::UserAdd { jid, .. } => format!("user add {jid}"),
        AdminCommand::UserDel { jid } => format!("user del {jid}"),
        AdminCommand::UserList => "user list".to_owned(),
        AdminCommand::UserPasswd { jid, .. } => format!("user passwd {jid}"),
        AdminCommand::DirectorySync { .. } => "directory sync".to_owned(),
    };
    match tokio::task::spawn_blocking(move || execute(store.as_ref(), &cmd)).await {
        Ok(Ok(reply)) => {
            if !matches!(reply, AdminReply::Users(_)) {
                tracing::info!(%request, "admin request done");
            }
            Ok(reply)
        }
        Ok(Err(e)) => {
            if matches!(e, UserError::Store(_)) {
                tracing::warn!(%request, error = %e, "admin request failed");
            } else {
                tracing::info!(%request, error = %e, "admin request refused");
            }
            Err(e.to_string())
        }
        Err(e) => {
            tracing::error!(%request, error = %e, "admin request task failed");
            Err(format!("the server failed to run the request: {e}"))
        }
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes without its `\n`; `None` at end of input.
async fn read_line(read: &mut (impl AsyncBufRead + Unpin)) -> Result<Option<String>, String> {
    let mut buf = Vec::new();
    let n = read
        .take(MAX_LINE + 1)
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| format!("cannot read the request: {e}"))?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() as u64 > MAX_LINE {
        return Err(format!("request line longer than {MAX_LINE} bytes"));
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| "request line is not UTF-8".to_owned())
}

/// Reads and parses one request; `Ok(None)` when the client sent nothing at all.
async fn read_request(
    read: &mut (impl AsyncBufRead + Unpin),
    domain: &str,
) -> Result<Option<AdminCommand>, String> {
    let Some(line) = read_line(read).await? else {
        return Ok(None);
    };
    let words: Vec<&str> = line.split(' ').collect();
    let user = |input: &str| parse_user(input, domain).map_err(|e| e.to_string());
    let cmd = match words.as_slice() {
        ["user", "add", jid] => {
            let jid = user(jid)?;
            let password = read_line(read)
                .await?
                .ok_or_else(|| "user add without a password line".to_owned())?;
            AdminCommand::UserAdd { jid, password }
        }
        ["user", "del", jid] => AdminCommand::UserDel { jid: user(jid)? },
        ["user", "list"] => AdminCommand::UserList,
        ["directory", "sync"] => AdminCommand::DirectorySync { dry_run: false },
        ["directory", "sync", "dry-run"] => AdminCommand::DirectorySync { dry_run: true },
        ["user", "passwd", jid] => {
            let jid = user(jid)?;
            let password = read_line(read)
                .await?
                .ok_or_else(|| "user passwd without a password line".to_owned())?;
            AdminCommand::UserPasswd { jid, password }
        }
        _ => return Err(format!("unknown request {line:?}")),
    };
    Ok(Some(cmd))
}

/// `text` on one line: its lines trimmed and joined by a space. Error messages cross the line protocol and end as
/// the CLI's single error line, and some (PRECIS's) carry a line break of their own.
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The reply's lines; every message is flattened to one line so it cannot break the framing.
fn encode_reply(reply: &Result<AdminReply, String>) -> String {
    match reply {
        Ok(AdminReply::Added(jid)) => format!("ok added {jid}\n"),
        Ok(AdminReply::Deleted(jid)) => format!("ok deleted {jid}\n"),
        Ok(AdminReply::PasswordSet(jid)) => format!("ok passwd {jid}\n"),
        Ok(AdminReply::Users(jids)) => {
            let mut out = format!("ok users {}\n", jids.len());
            for jid in jids {
                out.push_str(jid.as_str());
                out.push('\n');
            }
            out
        }
        Ok(AdminReply::Synced(lines)) => {
            let mut out = format!("ok changes {}\n", lines.len());
            for line in lines {
                out.push_str(&one_line(line));
                out.push('\n');
            }
            out
        }
        Err(message) => format!("error {}\n", one_line(message)),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Client side.

/// Sends `cmd` to the server listening on `socket` and waits for its reply. Blocking: this is the CLI's side.
pub fn request(socket: &Path, cmd: &AdminCommand) -> Result<AdminReply, AdminError> {
    use std::io::ErrorKind;
    if let AdminCommand::UserAdd { password, .. } | AdminCommand::UserPasswd { password, .. } = cmd
    {
        // The server would refuse it with this same error; checking here also keeps line breaks, which
        // OpaqueString forbids, from ever reaching the line protocol.
        prepare_password(password).map_err(UserError::from)?;
    }
    let io = |source| AdminError::Io {
        socket: socket.to_owned(),
        source,
    };
    let mut stream = match std::os::unix::net::UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            return Err(AdminError::NotRunning {
                socket: socket.to_owned(),
            });
        }
        Err(e) => return Err(io(e)),
    };
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(REPLY_TIMEOUT)).map_err(io)?;
    let text = match cmd {
        AdminCommand::UserAdd { jid, password } => format!("user add {jid}\n{password}\n"),
        AdminCommand::UserDel { jid } => format!("user del {jid}\n"),
        AdminCommand::UserList => "user list\n".to_owned(),
        AdminCommand::UserPasswd { jid, password } => format!("user passwd {jid}\n{password}\n"),
        AdminCommand::DirectorySync { dry_run: false } => "directory sync\n".to_owned(),
        AdminCommand::DirectorySync { dry_run: true } => "directory sync dry-run\n".to_owned(),
    };
    stream.write_all(text.as_bytes()).map_err(io)?;
    let mut lines = BufReader::new(stream).lines();
    let mut next = || -> Result<String, AdminError> {
        match lines.next() {
            Some(line) => line.map_err(io),
            None => Err(AdminError::Protocol {
                socket: socket.to_owned(),
                line: String::new(),
            }),
        }
    };
    let first = next()?;
    let protocol = |line: &str| AdminError::Protocol {
        socket: socket.to_owned(),
        line: line.to_owned(),
    };
    let jid = |line: &str, s: &str| BareJid::new(s).map_err(|_| protocol(line));
    if let Some(message) = first.strip_prefix("error ") {
        return Err(AdminError::Refused(message.to_owned()));
    }
    let words: Vec<&str> = first.split(' ').collect();
    match words.as_slice() {
        ["ok", "added", j] => Ok(AdminReply::Added(jid(&first, j)?)),
        ["ok", "deleted", j] => Ok(AdminReply::Deleted(jid(&first, j)?)),
        ["ok", "passwd", j] => Ok(AdminReply::PasswordSet(jid(&first, j)?)),
        ["ok", "users", n] => {
            let n: usize = n.parse().map_err(|_| protocol(&first))?;
            let mut users = Vec::new();
            for _ in 0..n {
                let line = next()?;
                users.push(jid(&line, &line)?);
            }
            Ok(AdminReply::Users(users))
        }
        ["ok", "changes", n] => {
            let n: usize = n.parse().map_err(|_| protocol(&first))?;
            let mut lines = Vec::new();
            for _ in 0..n {
                lines.push(next()?);
            }
            Ok(AdminReply::Synced(lines))
        }
        _ => Err(protocol(&first)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_stays_out_of_debug() {
        let cmd = AdminCommand::UserAdd {
            jid: BareJid::new("alice@x.org").expect("valid"),
            password: "hunter2-secret".into(),
        };
        let shown = format!("{cmd:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("alice@x.org"), "{shown}");
    }

    #[test]
    fn error_replies_stay_one_line() {
        assert_eq!(
            encode_reply(&Err("two\nlines\r\n".into())),
            "error two lines\n"
        );
    }

    #[tokio::test]
    async fn requests_parse_against_the_domain() {
        async fn parse(text: &str) -> Result<Option<AdminCommand>, String> {
            read_request(&mut text.as_bytes(), "x.org").await
        }
        let alice = BareJid::new("alice@x.org").expect("valid");
        assert_eq!(
            parse("user add Alice@x.org\n pass word \n").await,
            Ok(Some(AdminCommand::UserAdd {
                jid: alice.clone(),
                password: " pass word ".into()
            }))
        );
        assert_eq!(
            parse("user del alice@x.org\n").await,
            Ok(Some(AdminCommand::UserDel { jid: alice }))
        );
        assert_eq!(parse("user list\n").await, Ok(Some(AdminCommand::UserList)));
        assert_eq!(parse("").await, Ok(None));
        let refused = [
            ("user add alice@x.org\n", "without a password"),
            ("user add bob@other.org\npw\n", "not a user of this server"),
            ("user list all\n", "unknown request"),
            ("drop tables\n", "unknown request"),
        ];
        for (text, needle) in refused {
            let e = parse(text).await.expect_err(text);
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        let long = format!("user del {}@x.org\n", "a".repeat(5000));
        let e = parse(&long).await.expect_err("too long");
        assert!(e.contains("longer than 4096"), "{e}");
    }
}
