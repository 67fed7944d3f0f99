//! The redb store against the presence-core conformance suite, across reopen and across a SIGKILL.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use examples::store::RedbStore;
use presence_core::BareJid;
use presence_core::message::Message;
use presence_core::roster::RosterEntry;
use presence_core::store::{
    Account, AccountStore, OfflineStore, RosterStore, Store, StoreWrite, StoredMessage,
};

/// Set in the child process of the crash test to the database it writes.
const CRASH_DB_VAR: &str = "PRESENCED_CRASH_TEST_DB";

fn j(s: &str) -> BareJid {
    BareJid::new(s).expect("valid test address")
}

#[test]
fn passes_the_conformance_suite() {
    // Each store lives in its own directory; the directories go when the test ends.
    let dirs = std::cell::RefCell::new(Vec::new());
    presence_core::store::conformance::run(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RedbStore::open(dir.path().join("store.redb")).expect("open");
        dirs.borrow_mut().push(dir);
        store
    });
}

#[test]
fn passes_the_durability_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.redb");
    presence_core::store::conformance::run_durable(|| RedbStore::open(&path).expect("open"));
}

#[test]
fn re_pushing_a_sequence_number_replaces_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path().join("store.redb")).expect("open");
    let alice = j("alice@example.com");
    store
        .apply(&[
            StoreWrite::OfflinePush {
                user: alice.clone(),
                message: held(1),
            },
            StoreWrite::OfflinePush {
                user: alice.clone(),
                message: held(1),
            },
        ])
        .expect("apply");
    assert_eq!(
        store.offline_total().expect("total"),
        1,
        "re-pushing a sequence number replaces, not adds"
    );
}

#[test]
fn an_unopenable_path_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = RedbStore::open(dir.path().join("missing/store.redb")).expect_err("no dir");
    assert!(err.to_string().contains("missing/store.redb"), "{err}");
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

/// The child half of the crash test: commits, says so, and waits to be killed. A no-op in a normal test run.
#[test]
fn crash_child_commits_then_waits() {
    let Some(path) = std::env::var_os(CRASH_DB_VAR) else {
        return;
    };
    let store = RedbStore::open(path).expect("open");
    let alice = j("alice@example.com");
    store
        .put_account(&Account {
            jid: alice.clone(),
            credentials: vec![],
            digest: vec![],
        })
        .expect("account");
    store
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
            StoreWrite::OfflinePush {
                user: alice,
                message: held(2),
            },
        ])
        .expect("apply");
    println!("committed");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

#[test]
fn committed_data_survives_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.redb");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "crash_child_commits_then_waits", "--nocapture"])
        .env(CRASH_DB_VAR, &path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("piped");
    let committed = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.trim() == "committed");
    // `kill` is SIGKILL on Unix: no destructor, no flush, no clean close.
    child.kill().expect("kill child");
    child.wait().expect("reap child");
    assert!(committed, "child reported its commit");

    let store = RedbStore::open(&path).expect("reopen after crash");
    let alice = j("alice@example.com");
    assert!(store.account(&alice).expect("account").is_some());
    assert_eq!(
        store.roster(&alice).expect("roster"),
        vec![(j("bob@example.com"), RosterEntry::Requested)]
    );
    assert_eq!(
        store.offline(&alice).expect("offline"),
        vec![held(1), held(2)]
    );
    assert_eq!(store.offline_total().expect("total"), 2);
}
