//! The PostgreSQL store against the presence-core conformance suite, on a real PostgreSQL server each test starts
//! itself: reopen, two nodes on one database, a server restart, and the `presenced user` commands.

mod common;

use common::postgres::PgServer;
use common::{PASSWORD, presenced, setup, stdout};
use examples::store::PgStore;
use presence_core::BareJid;
use presence_core::message::Message;
use presence_core::roster::RosterEntry;
use presence_core::store::{
    Account, AccountStore, OfflineStore, RosterStore, Store, StoreError, StoreWrite, StoredMessage,
};

fn j(s: &str) -> BareJid {
    BareJid::new(s).expect("valid test address")
}

fn held(seq: u64) -> StoredMessage {
    StoredMessage {
        seq,
        from: j("bob@example.com").into(),
        to: j("alice@example.com").into(),
        message: Message {
            body: Some(format!("held {seq}")),
            ..Message::default()
        },
    }
}

fn account(user: &str) -> Account {
    Account {
        jid: j(user),
        credentials: vec![],
        digest: vec![],
    }
}

#[test]
fn passes_the_conformance_suite() {
    let pg = PgServer::start();
    presence_core::store::conformance::run(|| {
        PgStore::connect(&pg.database(), 2).expect("connect to a fresh database")
    });
}

#[test]
fn passes_the_durability_suite() {
    let pg = PgServer::start();
    let url = pg.database();
    presence_core::store::conformance::run_durable(|| PgStore::connect(&url, 2).expect("connect"));
}

#[test]
fn re_pushing_a_sequence_number_replaces_it() {
    let pg = PgServer::start();
    let store = PgStore::connect(&pg.database(), 2).expect("connect");
    let alice = j("alice@example.com");
    let mut changed = held(1);
    changed.message.body = Some("replaced".into());
    store
        .apply(&[
            StoreWrite::OfflinePush {
                user: alice.clone(),
                message: held(1),
            },
            StoreWrite::OfflinePush {
                user: alice.clone(),
                message: changed.clone(),
            },
        ])
        .expect("apply");
    assert_eq!(
        store.offline_total().expect("total"),
        1,
        "re-pushing a sequence number replaces, not adds"
    );
    assert_eq!(store.offline(&alice).expect("offline"), vec![changed]);
}

#[test]
fn a_failed_group_commits_nothing_and_migrations_run_once() {
    let pg = PgServer::start();
    let url = pg.database();
    // Two nodes starting at once: the advisory lock makes one wait for the other's migration.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| PgStore::connect(&url, 1));
        let b = s.spawn(|| PgStore::connect(&url, 1));
        (a.join().expect("thread"), b.join().expect("thread"))
    });
    let (a, _b) = (a.expect("first node"), b.expect("second node"));
    let versions: Vec<i32> = a
        .with_client(|c| {
            c.query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        })
        .expect("versions");
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);

    let alice = j("alice@example.com");
    let err = a
        .apply(&[
            StoreWrite::OfflinePush {
                user: alice.clone(),
                message: held(1),
            },
            StoreWrite::OfflinePush {
                user: alice.clone(),
                message: held(u64::MAX),
            },
        ])
        .expect_err("a sequence number beyond bigint");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(
        a.offline(&alice).expect("offline").is_empty(),
        "nothing of the group landed"
    );

    // A statement error inside `with_client` is a Backend error and leaves the pool usable.
    let err = a
        .with_client(|c| c.batch_execute("SELECT * FROM no_such_table"))
        .expect_err("bad SQL");
    assert!(err.to_string().contains("no_such_table"), "{err}");
    assert_eq!(a.offline_total().expect("still works"), 0);
}

#[test]
fn two_nodes_on_one_database_see_each_others_commits() {
    let pg = PgServer::start();
    let url = pg.database();
    let node1 = PgStore::connect(&url, 2).expect("node 1");
    let node2 = PgStore::connect(&url, 2).expect("node 2");
    let alice = j("alice@example.com");
    node1
        .put_account(&account("alice@example.com"))
        .expect("account");
    node1
        .apply(&[
            StoreWrite::RosterPut {
                user: alice.clone(),
                contact: j("bob@example.com"),
                entry: RosterEntry::Requested,
            },
            StoreWrite::OfflinePush {
                user: alice.clone(),
                message: held(1),
            },
        ])
        .expect("node 1 commits");
    let rec = node2
        .load_user(&alice)
        .expect("load")
        .expect("node 2 sees the account");
    assert_eq!(
        rec.roster,
        vec![(j("bob@example.com"), RosterEntry::Requested)]
    );
    assert_eq!(rec.offline, vec![held(1)]);
    // Node 2 delivers and clears; node 1 sees the queue empty.
    node2
        .apply(&[StoreWrite::OfflineClear {
            user: alice.clone(),
            up_to: 1,
        }])
        .expect("node 2 commits");
    assert!(node1.offline(&alice).expect("offline").is_empty());
    assert_eq!(node1.offline_total().expect("total"), 0);
    assert!(node2.remove_account(&alice).expect("remove"));
    assert_eq!(node1.load_user(&alice).expect("load"), None);
    assert!(node1.roster(&alice).expect("roster").is_empty());
}

#[test]
fn the_store_recovers_after_a_postgres_restart() {
    let mut pg = PgServer::start();
    let store = PgStore::connect(&pg.database(), 2).expect("connect");
    let alice = j("alice@example.com");
    store
        .put_account(&account("alice@example.com"))
        .expect("account");

    pg.stop();
    let err = store.account(&alice).expect_err("the server is down");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    let err = store
        .push_offline(&alice, &held(1))
        .expect_err("still down");
    assert!(
        matches!(&err, StoreError::Backend(m) if m.contains(&pg.port().to_string())),
        "the error names the database: {err:?}"
    );

    pg.start_again();
    assert_eq!(
        store
            .account(&alice)
            .expect("works again after the restart"),
        Some(account("alice@example.com"))
    );
    store
        .push_offline(&alice, &held(1))
        .expect("writes work too");
    assert_eq!(store.offline_total().expect("total"), 1);
}

#[test]
fn the_store_works_from_async_code_on_a_multi_threaded_runtime() {
    // The SIP service looks accounts up on a tokio worker; the client's own runtime must not panic there.
    let pg = PgServer::start();
    let store = std::sync::Arc::new(PgStore::connect(&pg.database(), 2).expect("connect"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let s = store.clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            s.put_account(&account("alice@example.com")).expect("put");
            s.account(&j("alice@example.com")).expect("get")
        })
        .await
        .expect("task")
    })
    .expect("account");
}

#[test]
fn user_commands_run_against_the_configured_database() {
    let pg = PgServer::start();
    let url = pg.database();
    let dir = setup(&format!(
        "domain = \"example.com\"\ndata_dir = \"db\"\n[store]\nkind = \"postgres\"\nurl = \"{url}\"\npool = 2\n"
    ));
    let d = dir.path();
    let cfg = ["--config", "presenced.toml"];
    let run = |args: &[&str], stdin: &str| presenced(d, &[&cfg[..], args].concat(), stdin);

    let o = run(
        &["user", "add", "alice@example.com", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "added alice@example.com\n");
    let o = run(
        &["user", "add", "bob@example.com", "--password", "pw-bob-1"],
        "",
    );
    assert!(o.status.success(), "{o:?}");

    // The accounts are in PostgreSQL (text addresses for the operator), not in a redb file.
    assert!(!d.join("db/presenced.redb").exists(), "no embedded store");
    let store = PgStore::connect(&url, 1).expect("connect");
    assert_eq!(
        store.list_accounts().expect("list"),
        vec![j("alice@example.com"), j("bob@example.com")]
    );
    let leaked: bool = store
        .with_client(|c| {
            c.query_one(
                "SELECT bool_or(position(convert_to($1, 'UTF8') in record) > 0) FROM accounts",
                &[&PASSWORD],
            )?
            .try_get(0)
        })
        .expect("scan");
    assert!(!leaked, "the password must not be stored");

    let o = run(&["user", "list"], "");
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "alice@example.com\nbob@example.com\n");

    let o = run(&["user", "del", "alice@example.com"], "");
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "deleted alice@example.com\n");
    let o = run(&["user", "list"], "");
    assert_eq!(stdout(&o), "bob@example.com\n");
    let o = run(&["user", "del", "alice@example.com"], "");
    common::assert_one_line_error(&o, "no such user");
}

#[test]
fn an_unreachable_database_is_a_one_line_error() {
    let port = common::postgres::free_port();
    let dir = setup(&format!(
        "domain = \"example.com\"\n[store]\nkind = \"postgres\"\nurl = \"postgresql://u:hunter2@127.0.0.1:{port}/none\"\n"
    ));
    let o = common::with_config(dir.path(), &["user", "list"], "");
    common::assert_one_line_error(
        &o,
        &format!("cannot connect to PostgreSQL u@127.0.0.1:{port}/none"),
    );
    assert!(
        !common::stderr(&o).contains("hunter2"),
        "no password in messages"
    );
}
