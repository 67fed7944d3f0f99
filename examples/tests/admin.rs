//! `presenced user …` while the server runs: the real binary against the admin socket of a server that holds the
//! database open in this process, so the binary cannot have opened the database itself.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use common::{PASSWORD, assert_one_line_error, setup, stderr, stdout, with_config};
use examples::admin::{self, AdminCommand, AdminError, AdminReply};
use examples::config::Config;
use examples::credentials::account_with_salts;
use examples::store::OpenStore;
use presence_core::BareJid;
use presence_core::store::AccountStore;

const CONFIG: &str = "domain = \"example.com\"\ndata_dir = \"db\"\n";

fn alice() -> BareJid {
    BareJid::new("alice@example.com").expect("valid")
}

/// The admin server of a running `presenced`: the store held open, the socket served on a runtime of its own.
struct Server {
    store: Arc<OpenStore>,
    _engine: presence_core::runtime::Runtime,
    _runtime: tokio::runtime::Runtime,
}

/// Opens the store in `dir`/db as the server does and serves the admin socket on it.
fn start_server(dir: &Path) -> Server {
    let config = Config::parse(Path::new("presenced.toml"), CONFIG).expect("config");
    let data_dir = dir.join(&config.data_dir);
    let store = Arc::new(
        examples::server::open_store(&Config {
            data_dir: data_dir.clone(),
            ..config.clone()
        })
        .expect("open store"),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(async { admin::bind(&data_dir) })
        .expect("bind admin socket");
    // The engine the socket tells about removed accounts, as in `presenced serve`.
    let engine = runtime
        .block_on(async {
            presence_core::runtime::spawn(
                presence_core::Engine::new(config.engine_config()),
                store.clone(),
                presence_core::runtime::RuntimeConfig::default(),
            )
        })
        .expect("engine");
    runtime.spawn(admin::serve(
        listener,
        store.clone(),
        config.domain.clone(),
        engine.handle(),
        None,
    ));
    Server {
        store,
        _engine: engine,
        _runtime: runtime,
    }
}

#[test]
fn user_commands_go_through_the_socket_of_a_running_server() {
    let dir = setup(CONFIG);
    let d = dir.path();
    let server = start_server(d);

    // The premise: the database is locked, so only the socket can make these commands succeed.
    let direct = examples::server::open_store(&Config {
        data_dir: d.join("db"),
        ..Config::default()
    });
    assert!(direct.is_err(), "a second open of the database must fail");

    let o = with_config(
        d,
        &["user", "add", "alice@example.com", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "added alice@example.com\n");
    let stored = server
        .store
        .account(&alice())
        .expect("lookup")
        .expect("the server's store has alice");
    // The password crossed the socket intact: the verifiers are those of PASSWORD with the stored salts.
    let expected = account_with_salts(
        alice(),
        PASSWORD,
        &stored.credentials[0].salt,
        &stored.credentials[1].salt,
    )
    .expect("account");
    assert_eq!(stored.credentials, expected.credentials);
    assert!(!stored.digest.is_empty(), "SIP digest secrets are made too");

    let o = with_config(d, &["user", "list"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "alice@example.com\n");

    let o = with_config(d, &["user", "del", "alice@example.com"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "deleted alice@example.com\n");
    assert!(server.store.account(&alice()).expect("lookup").is_none());

    let o = with_config(d, &["user", "list"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
}

#[test]
fn refusals_read_the_same_through_the_socket_as_directly() {
    // The same sequence on two data directories: one served by a running server, one with no server at all.
    let served = setup(CONFIG);
    let _server = start_server(served.path());
    let offline = setup(CONFIG);

    let steps: [(&[&str], &str, &str); 4] = [
        (
            &["user", "add", "alice@example.com", "--password", "x"],
            "",
            "",
        ),
        (
            &["user", "add", "alice@example.com", "--password", "y"],
            "",
            "user alice@example.com already exists",
        ),
        (
            &["user", "del", "bob@example.com"],
            "",
            "no such user bob@example.com",
        ),
        // A control character is refused by the password rules on both paths.
        (
            &["user", "add", "carol@example.com", "--password", "a\tb"],
            "",
            "the password is not allowed",
        ),
    ];
    for (args, stdin, error) in steps {
        let a = with_config(served.path(), args, stdin);
        let b = with_config(offline.path(), args, stdin);
        if error.is_empty() {
            assert!(a.status.success(), "{args:?}: {}", stderr(&a));
            assert!(b.status.success(), "{args:?}: {}", stderr(&b));
        } else {
            assert_one_line_error(&a, error);
            assert_one_line_error(&b, error);
        }
        assert_eq!(stderr(&a), stderr(&b), "{args:?}");
        assert_eq!(stdout(&a), stdout(&b), "{args:?}");
    }
}

#[test]
fn without_a_server_a_stale_socket_falls_back_to_the_store() {
    let dir = setup(CONFIG);
    let d = dir.path();
    std::fs::create_dir(d.join("db")).expect("data dir");
    // A server that died leaves its socket file; nothing answers on it.
    drop(std::os::unix::net::UnixListener::bind(d.join("db/presenced.sock")).expect("bind"));
    assert!(
        matches!(
            admin::request(&d.join("db/presenced.sock"), &AdminCommand::UserList),
            Err(AdminError::NotRunning { .. })
        ),
        "a refused connection means no server"
    );

    let o = with_config(
        d,
        &["user", "add", "alice@example.com", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = with_config(d, &["user", "list"], "");
    assert_eq!(stdout(&o), "alice@example.com\n");
}

#[test]
fn the_client_api_and_the_wire_protocol() {
    let dir = setup(CONFIG);
    let server = start_server(dir.path());
    let socket = dir.path().join("db/presenced.sock");

    let reply = admin::request(
        &socket,
        &AdminCommand::UserAdd {
            jid: alice(),
            password: PASSWORD.into(),
        },
    )
    .expect("add");
    assert_eq!(reply, AdminReply::Added(alice()));
    let bob = BareJid::new("bob@example.com").expect("valid");
    admin::request(
        &socket,
        &AdminCommand::UserAdd {
            jid: bob.clone(),
            password: PASSWORD.into(),
        },
    )
    .expect("add");
    assert_eq!(
        admin::request(&socket, &AdminCommand::UserList).expect("list"),
        AdminReply::Users(vec![alice(), bob.clone()])
    );

    // The raw protocol, as documented in the module.
    let raw = |request: &str| -> Vec<String> {
        let mut s = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
        s.write_all(request.as_bytes()).expect("send");
        BufReader::new(s)
            .lines()
            .collect::<Result<_, _>>()
            .expect("reply")
    };
    assert_eq!(
        raw("user list\n"),
        ["ok users 2", "alice@example.com", "bob@example.com"]
    );
    let reply = raw("user add carol@other.org\npw\n");
    assert_eq!(reply.len(), 1, "{reply:?}");
    assert!(
        reply[0].starts_with("error ") && reply[0].contains("expected local@example.com"),
        "the server checks its own domain: {reply:?}"
    );
    let reply = raw("user remove bob@example.com\n");
    assert!(reply[0].starts_with("error unknown request"), "{reply:?}");
    assert_eq!(
        raw("user del bob@example.com\n"),
        ["ok deleted bob@example.com"]
    );
    assert!(server.store.account(&bob).expect("lookup").is_none());

    // Refused before sending: a password the server would refuse anyway never reaches the line protocol.
    let e = admin::request(
        &socket,
        &AdminCommand::UserAdd {
            jid: bob,
            password: "two\nlines".into(),
        },
    )
    .expect_err("control characters are refused");
    assert!(e.to_string().contains("the password is not allowed"), "{e}");
}

#[tokio::test]
async fn bind_makes_a_private_socket_and_replaces_only_a_dead_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let path = d.join("presenced.sock");

    let live = admin::bind(d).expect("bind");
    let meta = std::fs::symlink_metadata(&path).expect("socket file");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers, ["presenced.sock"], "no temporary files remain");

    // A second server while the first answers: refused, and the first keeps its socket.
    let e = admin::bind(d).expect_err("in use");
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
    assert!(e.to_string().contains("presenced.sock"), "{e}");

    // The first one dies without cleaning up: its socket file stays, and the next bind replaces it.
    drop(live);
    assert!(path.exists());
    let _again = admin::bind(d).expect("a stale socket is replaced");
    assert!(
        tokio::net::UnixStream::connect(&path).await.is_ok(),
        "the new socket answers"
    );

    // Anything other than a socket is not ours to remove.
    let other = tempfile::tempdir().expect("temp dir");
    std::fs::write(other.path().join("presenced.sock"), "keep me").expect("file");
    let e = admin::bind(other.path()).expect_err("not a socket");
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
    assert_eq!(
        std::fs::read_to_string(other.path().join("presenced.sock")).expect("still there"),
        "keep me"
    );
}
