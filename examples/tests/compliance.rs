//! The PostgreSQL compliance archive on a real PostgreSQL server each test starts itself: the rows and their
//! columns, sharing a database with the store, and riding out a server restart.

mod common;

use common::postgres::PgServer;
use examples::compliance::PgCompliance;
use examples::store::PgStore;
use presence_core::compliance::Record;
use presence_core::message::MessageKind;
use presence_core::runtime::Compliance;
use presence_core::time::Timestamp;
use presence_core::{BareJid, Jid};

fn jid(s: &str) -> Jid {
    Jid::new(s).expect("valid test address")
}

fn chat(body: &str) -> Record {
    Record {
        sender: jid("alice@example.com/pc"),
        recipients: vec![jid("bob@example.com")],
        room: None,
        stamp: Timestamp::from_millis(1_700_000_000_123),
        id: Some("m1".into()),
        kind: MessageKind::Chat,
        body: body.into(),
    }
}

/// (sent_at in ms, sender, recipients, room, message_id, kind, body) of every row, in order.
type Row = (
    i64,
    String,
    Vec<String>,
    Option<String>,
    Option<String>,
    String,
    String,
);

fn rows(url: &str) -> Vec<Row> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    c.query(
        "SELECT (extract(epoch FROM sent_at) * 1000)::bigint, sender, recipients, room, message_id, kind, body
         FROM compliance_messages ORDER BY seq",
        &[],
    )
    .expect("query")
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
        )
    })
    .collect()
}

#[test]
fn each_record_is_one_row_with_its_columns() {
    let pg = PgServer::start();
    let url = pg.database();
    let archive = PgCompliance::connect(&url, 2).expect("connect and migrate");
    let room = Record {
        sender: jid("carol@example.com/desk"),
        recipients: vec![jid("alice@example.com/pc"), jid("bob@example.com/my phone")],
        room: Some(BareJid::new("team@conference.example.com").unwrap()),
        stamp: Timestamp::from_millis(1_700_000_001_000),
        id: None,
        kind: MessageKind::Groupchat,
        body: "multi\nline, with 'quotes' and ünïcode".into(),
    };
    archive.write(&[chat("hello"), room]).expect("write");
    archive.write(&[chat("again")]).expect("write");
    assert_eq!(
        rows(&url),
        vec![
            (
                1_700_000_000_123,
                "alice@example.com/pc".into(),
                vec!["bob@example.com".into()],
                None,
                Some("m1".into()),
                "chat".into(),
                "hello".into()
            ),
            (
                1_700_000_001_000,
                "carol@example.com/desk".into(),
                vec![
                    "alice@example.com/pc".into(),
                    "bob@example.com/my phone".into()
                ],
                Some("team@conference.example.com".into()),
                None,
                "groupchat".into(),
                "multi\nline, with 'quotes' and ünïcode".into()
            ),
            (
                1_700_000_000_123,
                "alice@example.com/pc".into(),
                vec!["bob@example.com".into()],
                None,
                Some("m1".into()),
                "chat".into(),
                "again".into()
            ),
        ]
    );
}

#[test]
fn the_archive_shares_a_database_with_the_store_and_migrates_once() {
    let pg = PgServer::start();
    let url = pg.database();
    let _store = PgStore::connect(&url, 2).expect("store");
    let first = PgCompliance::connect(&url, 1).expect("archive");
    // A second node starting on the same database finds nothing left to do.
    let second = PgCompliance::connect(&url, 1).expect("archive again");
    first.write(&[chat("one")]).expect("write");
    second.write(&[chat("two")]).expect("write");
    assert_eq!(rows(&url).len(), 2);
    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let versions: Vec<i32> = c
        .query("SELECT version FROM compliance_schema_migrations", &[])
        .expect("query")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1]);
    let store_versions: i64 = c
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .expect("query")
        .get(0);
    assert!(
        store_versions >= 4,
        "the store's migrations are its own: {store_versions}"
    );
}

#[test]
fn a_write_fails_while_postgres_is_down_and_works_once_it_is_back() {
    let mut pg = PgServer::start();
    let url = pg.database();
    let archive = PgCompliance::connect(&url, 2).expect("connect");
    archive.write(&[chat("before")]).expect("write");
    pg.stop();
    let e = archive
        .write(&[chat("during")])
        .expect_err("no server, no write");
    assert!(e.to_string().contains("PostgreSQL"), "{e}");
    pg.start_again();
    archive
        .write(&[chat("after")])
        .expect("write after restart");
    let bodies: Vec<String> = rows(&url).into_iter().map(|r| r.6).collect();
    assert_eq!(bodies, vec!["before".to_owned(), "after".to_owned()]);
}
