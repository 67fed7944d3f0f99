//! The store conformance suite: every [`Store`] implementation runs it from its own tests.
//!
//! ```
//! presence_core::store::conformance::run(presence_core::store::MemoryStore::new);
//! ```
//!
//! Durable stores also run [`run_durable`], which writes through one handle, drops it, and reads through a new one
//! opened on the same data.

use super::{
    Account, DigestHash, DigestSecret, DocumentKey, ScramCredentials, ScramHash, Store, StoreWrite,
    StoredMessage, UserRecord,
};
use crate::jid::{BareJid, Jid};
use crate::message::{Message, MessageKind};
use crate::policy::{DefaultRule, PolicyEntry, UserPolicy};
use crate::roster::{ItemDetails, Link, RosterEntry, Subscription};
use crate::time::Timestamp;

fn key(s: &str) -> DocumentKey {
    DocumentKey::new(s).expect("a valid key")
}

fn j(s: &str) -> BareJid {
    BareJid::new(s).expect("valid test address")
}

fn account(user: &str) -> Account {
    Account {
        jid: j(user),
        credentials: vec![
            ScramCredentials {
                hash: ScramHash::Sha1,
                salt: vec![1, 2, 3],
                iterations: 4096,
                stored_key: vec![9; 20],
                server_key: vec![8; 20],
            },
            ScramCredentials {
                hash: ScramHash::Sha256,
                salt: vec![0, 255, 7],
                iterations: 8192,
                stored_key: vec![7; 32],
                server_key: vec![6; 32],
            },
        ],
        digest: vec![
            DigestSecret {
                hash: DigestHash::Md5,
                realm: "example.com".into(),
                ha1: "00112233445566778899aabbccddeeff".into(),
            },
            DigestSecret {
                hash: DigestHash::Sha256,
                realm: "example.com".into(),
                ha1: "ab".repeat(32),
            },
        ],
    }
}

fn listed(name: Option<&str>, groups: &[&str], outbound: Link, inbound: Link) -> RosterEntry {
    RosterEntry::Listed {
        details: ItemDetails {
            name: name.map(str::to_owned),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        },
        subscription: Subscription { outbound, inbound },
    }
}

fn stored(seq: u64, body: &str) -> StoredMessage {
    StoredMessage {
        seq,
        from: Jid::new("bob@example.com/phone").expect("valid"),
        to: Jid::new("alice@example.com").expect("valid"),
        message: Message {
            id: Some(format!("m{seq}")),
            kind: MessageKind::Chat,
            body: Some(body.to_owned()),
            subject: Some("s".into()),
            thread: Some("t".into()),
            stamp: Timestamp(1_700_000_000_000 + seq),
            extensions: vec!["<x xmlns='urn:example'>&amp;</x>".into()],
            marks: crate::message::Marks {
                no_copy: true,
                signal: true,
                ..Default::default()
            },
            archive_id: std::num::NonZeroU64::new(1 << 40 | seq),
        },
    }
}

fn policy() -> UserPolicy {
    UserPolicy {
        allow: vec![PolicyEntry::Domain("partner.com".into())],
        block: vec![PolicyEntry::Jid(j("eve@evil.com"))],
        default: DefaultRule::BlockAll,
        ask_federated: true,
        share_availability: false,
        dnd_on_phone: true,
        dnd_in_meeting: false,
    }
}

/// Runs every check, each on a fresh store from `make`. Panics with a message naming the failed check.
pub fn run<S: Store>(make: impl Fn() -> S) {
    accounts(&make());
    remove_account_cascades(&make());
    roster_entries(&make());
    policies(&make());
    offline_queue(&make());
    apply_and_load(&make());
    documents(&make());
    archives(&make());
    rooms(&make());
    room_archives(&make());
}

/// Runs the durability check: data written through one handle is read back through a fresh one.
/// `open` must open the same underlying data every time it is called.
pub fn run_durable<S: Store>(open: impl Fn() -> S) {
    {
        let s = open();
        s.put_account(&account("alice@example.com"))
            .expect("put account");
        s.apply(&[
            StoreWrite::RosterPut {
                user: j("alice@example.com"),
                contact: j("bob@example.com"),
                entry: listed(Some("Bob"), &["Friends"], Link::On, Link::On),
            },
            StoreWrite::OfflinePush {
                user: j("alice@example.com"),
                message: stored(1, "kept across restart"),
            },
            StoreWrite::PolicyPut {
                user: j("alice@example.com"),
                policy: policy(),
            },
            StoreWrite::DocumentPut {
                user: j("alice@example.com"),
                key: key("vcard"),
                document: "<vCard xmlns='vcard-temp'/>".into(),
            },
            StoreWrite::RoomPut(room("kept@conference.example.com")),
            StoreWrite::RoomArchivePut {
                room: j("kept@conference.example.com"),
                entry: room_archived("kept@conference.example.com", 1, "alice"),
            },
        ])
        .expect("apply");
    }
    let s = open();
    let rec = s
        .load_user(&j("alice@example.com"))
        .expect("load")
        .expect("account survives reopen");
    assert_eq!(rec.roster.len(), 1, "durable: roster entry survives reopen");
    assert_eq!(
        rec.offline,
        vec![stored(1, "kept across restart")],
        "durable: offline message survives reopen"
    );
    assert_eq!(rec.policy, policy(), "durable: policy survives reopen");
    assert_eq!(
        rec.documents,
        vec![(key("vcard"), "<vCard xmlns='vcard-temp'/>".to_owned())],
        "durable: document survives reopen"
    );
    assert_eq!(
        s.offline_total().expect("total"),
        1,
        "durable: offline total after reopen"
    );
    assert_eq!(
        s.rooms().expect("rooms"),
        vec![room("kept@conference.example.com")],
        "durable: a persistent room survives reopen"
    );
    assert_eq!(
        s.room_archive_head(&j("kept@conference.example.com"))
            .expect("head"),
        1,
        "durable: a room's archive survives reopen"
    );
}

fn accounts(s: &impl Store) {
    assert_eq!(
        s.list_accounts().expect("list"),
        Vec::<BareJid>::new(),
        "accounts: new store is empty"
    );
    s.put_account(&account("bob@example.com")).expect("put");
    s.put_account(&account("alice@example.com")).expect("put");
    assert_eq!(
        s.account(&j("alice@example.com")).expect("get"),
        Some(account("alice@example.com")),
        "accounts: round trip"
    );
    assert_eq!(
        s.account(&j("carol@example.com")).expect("get"),
        None,
        "accounts: unknown user"
    );
    assert_eq!(
        s.list_accounts().expect("list"),
        vec![j("alice@example.com"), j("bob@example.com")],
        "accounts: sorted list"
    );
    let mut replaced = account("alice@example.com");
    replaced.credentials.truncate(1);
    s.put_account(&replaced).expect("replace");
    assert_eq!(
        s.account(&j("alice@example.com")).expect("get"),
        Some(replaced),
        "accounts: replace"
    );
    assert!(
        s.remove_account(&j("bob@example.com")).expect("remove"),
        "accounts: remove existing"
    );
    assert!(
        !s.remove_account(&j("bob@example.com")).expect("remove"),
        "accounts: remove twice"
    );
    assert_eq!(
        s.list_accounts().expect("list"),
        vec![j("alice@example.com")],
        "accounts: after remove"
    );
}

fn remove_account_cascades(s: &impl Store) {
    let alice = j("alice@example.com");
    s.put_account(&account("alice@example.com")).expect("put");
    s.put_roster_entry(&alice, &j("bob@example.com"), &RosterEntry::Requested)
        .expect("roster");
    s.put_policy(&alice, &policy()).expect("policy");
    s.push_offline(&alice, &stored(1, "x")).expect("offline");
    s.put_document(&alice, &key("vcard"), "<v/>")
        .expect("document");
    s.remove_account(&alice).expect("remove");
    assert!(
        s.documents(&alice).expect("documents").is_empty(),
        "cascade: documents removed with account"
    );
    assert!(
        s.roster(&alice).expect("roster").is_empty(),
        "cascade: roster removed with account"
    );
    assert_eq!(
        s.policy(&alice).expect("policy"),
        None,
        "cascade: policy removed with account"
    );
    assert!(
        s.offline(&alice).expect("offline").is_empty(),
        "cascade: offline removed with account"
    );
    assert_eq!(
        s.offline_total().expect("total"),
        0,
        "cascade: total after remove"
    );
}

fn roster_entries(s: &impl Store) {
    let alice = j("alice@example.com");
    let bob = j("bob@example.com");
    let carol = j("carol@example.org");
    let bob_entry = listed(
        Some("Bób ☃ <&>"),
        &["Friends", "Work"],
        Link::Pending,
        Link::On,
    );
    s.put_roster_entry(&alice, &bob, &bob_entry).expect("put");
    s.put_roster_entry(&alice, &carol, &RosterEntry::Requested)
        .expect("put");
    s.put_roster_entry(&bob, &alice, &listed(None, &[], Link::On, Link::Off))
        .expect("put");
    let mut r = s.roster(&alice).expect("get");
    r.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        r,
        vec![
            (bob.clone(), bob_entry),
            (carol.clone(), RosterEntry::Requested)
        ],
        "roster: round trip"
    );
    let updated = listed(None, &[], Link::Off, Link::Off);
    s.put_roster_entry(&alice, &bob, &updated).expect("replace");
    s.remove_roster_entry(&alice, &carol).expect("remove");
    s.remove_roster_entry(&alice, &j("nobody@x"))
        .expect("remove absent");
    assert_eq!(
        s.roster(&alice).expect("get"),
        vec![(bob.clone(), updated)],
        "roster: replace and remove"
    );
    assert_eq!(
        s.roster(&bob).expect("get").len(),
        1,
        "roster: rosters are per user"
    );
    assert!(
        s.roster(&carol).expect("get").is_empty(),
        "roster: unknown user has none"
    );
}

fn policies(s: &impl Store) {
    let alice = j("alice@example.com");
    assert_eq!(s.policy(&alice).expect("get"), None, "policy: none stored");
    s.put_policy(&alice, &policy()).expect("put");
    assert_eq!(
        s.policy(&alice).expect("get"),
        Some(policy()),
        "policy: round trip"
    );
    s.put_policy(&alice, &UserPolicy::default())
        .expect("replace");
    assert_eq!(
        s.policy(&alice).expect("get"),
        Some(UserPolicy::default()),
        "policy: replace"
    );
}

fn offline_queue(s: &impl Store) {
    let alice = j("alice@example.com");
    let bob = j("bob@example.com");
    for seq in [1, 2, 3, 10] {
        s.push_offline(&alice, &stored(seq, &format!("body {seq}")))
            .expect("push");
    }
    s.push_offline(&bob, &stored(1, "for bob")).expect("push");
    let q = s.offline(&alice).expect("get");
    assert_eq!(
        q.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 10],
        "offline: queue order"
    );
    assert_eq!(
        q[3],
        stored(10, "body 10"),
        "offline: every field round trips"
    );
    assert_eq!(
        s.offline_total().expect("total"),
        5,
        "offline: total over users"
    );
    assert_eq!(
        s.clear_offline(&alice, 2).expect("clear"),
        2,
        "offline: clear counts"
    );
    assert_eq!(
        s.offline(&alice)
            .expect("get")
            .iter()
            .map(|m| m.seq)
            .collect::<Vec<_>>(),
        vec![3, 10],
        "offline: clear up to"
    );
    assert_eq!(
        s.clear_offline(&j("nobody@x"), 5).expect("clear"),
        0,
        "offline: clear unknown"
    );
    assert_eq!(
        s.offline(&bob).expect("get").len(),
        1,
        "offline: queues are per user"
    );
    assert_eq!(
        s.offline_total().expect("total"),
        3,
        "offline: total after clear"
    );
}

fn apply_and_load(s: &impl Store) {
    let alice = j("alice@example.com");
    let bob = j("bob@example.com");
    assert_eq!(
        s.load_user(&alice).expect("load"),
        None,
        "load: no account means no user"
    );
    s.put_account(&account("alice@example.com")).expect("put");
    assert_eq!(
        s.load_user(&alice).expect("load"),
        Some(UserRecord::default()),
        "load: fresh account"
    );
    s.apply(&[
        StoreWrite::RosterPut {
            user: alice.clone(),
            contact: bob.clone(),
            entry: RosterEntry::Requested,
        },
        StoreWrite::RosterPut {
            user: alice.clone(),
            contact: bob.clone(),
            entry: listed(Some("B"), &[], Link::On, Link::On),
        },
        StoreWrite::OfflinePush {
            user: alice.clone(),
            message: stored(1, "one"),
        },
        StoreWrite::OfflinePush {
            user: alice.clone(),
            message: stored(2, "two"),
        },
        StoreWrite::OfflineClear {
            user: alice.clone(),
            up_to: 1,
        },
        StoreWrite::PolicyPut {
            user: alice.clone(),
            policy: policy(),
        },
        StoreWrite::RosterPut {
            user: alice.clone(),
            contact: j("carol@example.com"),
            entry: RosterEntry::Requested,
        },
        StoreWrite::RosterRemove {
            user: alice.clone(),
            contact: j("carol@example.com"),
        },
    ])
    .expect("apply");
    let rec = s.load_user(&alice).expect("load").expect("exists");
    assert_eq!(
        rec.roster,
        vec![(bob, listed(Some("B"), &[], Link::On, Link::On))],
        "apply: writes in order"
    );
    assert_eq!(
        rec.offline,
        vec![stored(2, "two")],
        "apply: offline push and clear in order"
    );
    assert_eq!(rec.policy, policy(), "apply: policy");

    // Many loads at once answer exactly what one load each would, in the order asked.
    s.put_account(&account("dave@example.com")).expect("put");
    s.apply(&[
        StoreWrite::OfflinePush {
            user: j("dave@example.com"),
            message: stored(5, "for dave"),
        },
        StoreWrite::DocumentPut {
            user: j("dave@example.com"),
            key: key("private/storage:bookmarks"),
            document: "<storage xmlns='storage:bookmarks'/>".into(),
        },
    ])
    .expect("apply");
    let asked = [
        j("dave@example.com"),
        j("nobody@example.com"),
        alice.clone(),
    ];
    let one_by_one: Vec<_> = asked
        .iter()
        .map(|u| s.load_user(u).expect("load"))
        .collect();
    let together: Vec<_> = s
        .load_users(&asked)
        .into_iter()
        .map(|r| r.expect("load"))
        .collect();
    assert_eq!(
        together, one_by_one,
        "load_users: the same as load_user, in order"
    );
    assert!(s.load_users(&[]).is_empty(), "load_users: nothing asked");
}

fn documents(s: &impl Store) {
    let alice = j("alice@example.com");
    let bob = j("bob@example.com");
    s.put_account(&account("alice@example.com")).expect("put");
    s.put_account(&account("bob@example.com")).expect("put");
    assert!(
        s.documents(&alice).expect("documents").is_empty(),
        "documents: none at first"
    );
    s.apply(&[
        StoreWrite::DocumentPut {
            user: alice.clone(),
            key: key("vcard"),
            document: "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>".into(),
        },
        StoreWrite::DocumentPut {
            user: alice.clone(),
            key: key("private/a:b"),
            document: "<x xmlns='a:b'>\u{1F600} & more</x>".into(),
        },
        StoreWrite::DocumentPut {
            user: bob.clone(),
            key: key("vcard"),
            document: "<vCard xmlns='vcard-temp'/>".into(),
        },
        StoreWrite::DocumentPut {
            user: alice.clone(),
            key: key("vcard"),
            document: "<vCard xmlns='vcard-temp'><FN>Alice B.</FN></vCard>".into(),
        },
        StoreWrite::DocumentPut {
            user: alice.clone(),
            key: key("pep/gone/1"),
            document: "<item/>".into(),
        },
        StoreWrite::DocumentRemove {
            user: alice.clone(),
            key: key("pep/gone/1"),
        },
        StoreWrite::DocumentRemove {
            user: alice.clone(),
            key: key("never/there"),
        },
    ])
    .expect("apply");
    let expected = vec![
        (
            key("private/a:b"),
            "<x xmlns='a:b'>\u{1F600} & more</x>".to_owned(),
        ),
        (
            key("vcard"),
            "<vCard xmlns='vcard-temp'><FN>Alice B.</FN></vCard>".to_owned(),
        ),
    ];
    assert_eq!(
        s.documents(&alice).expect("documents"),
        expected,
        "documents: the last put wins, removes apply, ordered by key"
    );
    assert_eq!(
        s.load_user(&alice)
            .expect("load")
            .expect("exists")
            .documents,
        expected,
        "documents: loaded with the user"
    );
    assert_eq!(
        s.documents(&bob).expect("documents").len(),
        1,
        "documents: one user's documents are not another's"
    );
    s.remove_document(&bob, &key("vcard")).expect("remove");
    assert!(
        s.documents(&bob).expect("documents").is_empty(),
        "documents: removed"
    );
}

fn archived(id: u64, with: &str, at: u64) -> crate::archive::ArchivedMessage {
    crate::archive::ArchivedMessage {
        id,
        with: j(with),
        from: Jid::new("alice@example.com/pc").expect("valid"),
        to: Jid::Bare(j(with)),
        message: Message {
            id: Some(format!("a{id}")),
            kind: MessageKind::Chat,
            body: Some(format!("archived {id}")),
            stamp: Timestamp(1_700_000_000_000 + at),
            extensions: vec!["<x xmlns='urn:example'/>".into()],
            marks: crate::message::Marks {
                store: true,
                ..Default::default()
            },
            ..Message::default()
        },
    }
}

fn archives(s: &impl Store) {
    use crate::archive::{Page, Query, select};
    let alice = j("alice@example.com");
    s.put_account(&account("alice@example.com")).expect("put");
    assert_eq!(s.archive_head(&alice).expect("head"), 0, "archive: empty");
    let all: Vec<_> = (1..=12)
        .map(|id| {
            let with = if id % 3 == 0 {
                "carol@example.com"
            } else {
                "bob@example.com"
            };
            archived(id, with, id * 10)
        })
        .collect();
    let writes: Vec<StoreWrite> = all
        .iter()
        .map(|e| StoreWrite::ArchivePut {
            user: alice.clone(),
            entry: e.clone(),
        })
        .collect();
    s.apply(&writes).expect("apply");
    assert_eq!(s.archive_head(&alice).expect("head"), 12, "archive: head");
    assert_eq!(
        s.load_user(&alice)
            .expect("load")
            .expect("exists")
            .archive_head,
        12,
        "archive: head loaded with the user"
    );
    let queries = [
        Query {
            max: 5,
            ..Query::default()
        },
        Query {
            max: 5,
            from_end: true,
            ..Query::default()
        },
        Query {
            max: 100,
            ..Query::default()
        },
        Query {
            max: 0,
            ..Query::default()
        },
        Query {
            after: Some(10),
            max: 5,
            ..Query::default()
        },
        Query {
            before: Some(4),
            from_end: true,
            max: 2,
            ..Query::default()
        },
        Query {
            with: Some(j("carol@example.com")),
            max: 3,
            ..Query::default()
        },
        Query {
            with: Some(j("bob@example.com")),
            from_end: true,
            max: 3,
            ..Query::default()
        },
        Query {
            start: Some(Timestamp(1_700_000_000_000 + 35)),
            end: Some(Timestamp(1_700_000_000_000 + 90)),
            max: 100,
            ..Query::default()
        },
        Query {
            ids: Some(vec![2, 11, 40]),
            max: 10,
            ..Query::default()
        },
        Query {
            with: Some(j("nobody@example.com")),
            max: 10,
            ..Query::default()
        },
    ];
    for q in &queries {
        assert_eq!(
            s.archive_query(&alice, q).expect("query"),
            select(all.iter(), q),
            "archive: query {q:?} answers as select does"
        );
    }
    s.apply(&[StoreWrite::ArchiveTrim {
        user: alice.clone(),
        below: 5,
    }])
    .expect("trim");
    let left = s
        .archive_query(
            &alice,
            &Query {
                max: 100,
                ..Query::default()
            },
        )
        .expect("query");
    assert_eq!(
        left,
        Page {
            messages: all[4..].to_vec(),
            complete: true
        },
        "archive: trimmed below 5"
    );
    assert_eq!(
        s.archive_query(
            &j("bob@example.com"),
            &Query {
                max: 10,
                ..Query::default()
            }
        )
        .expect("query")
        .messages,
        vec![],
        "archive: one user's archive is not another's"
    );
}

/// A room with every field of its record set away from the defaults.
fn room(jid: &str) -> crate::rooms::RoomRecord {
    use crate::rooms::{Affiliation, HistoryEntry, RoomConfig, RoomRecord, Subject, WhoIs};
    RoomRecord {
        jid: j(jid),
        config: RoomConfig {
            name: "Kept".into(),
            description: "a room that survives".into(),
            persistent: true,
            public: false,
            members_only: true,
            moderated: true,
            password: Some("pw".into()),
            max_occupants: 200,
            whois: WhoIs::Anyone,
            history_length: 30,
            allow_private_messages: false,
            change_subject: true,
            archiving: false,
            allow_invites: true,
        },
        affiliations: vec![
            (j("alice@example.com"), Affiliation::Owner),
            (j("bob@example.com"), Affiliation::Outcast),
            (j("carol@example.com"), Affiliation::Member),
        ],
        subject: Some(Subject {
            text: "Topic".into(),
            nick: "alice".into(),
            stamp: Timestamp(7),
        }),
        history: vec![HistoryEntry {
            nick: "alice".into(),
            sender: j("alice@example.com"),
            message: Message {
                id: Some("h1".into()),
                kind: MessageKind::Groupchat,
                body: Some("hello room".into()),
                stamp: Timestamp(5),
                extensions: vec!["<x xmlns='urn:example'/>".into()],
                ..Message::default()
            },
        }],
        archive_head: 0,
    }
}

fn rooms(s: &impl Store) {
    assert!(
        s.rooms().expect("rooms").is_empty(),
        "rooms: a new store has none"
    );
    let a = room("a@conference.example.com");
    let mut b = room("b@conference.example.com");
    b.subject = None;
    b.history.clear();
    b.config.password = None;
    s.apply(&[
        StoreWrite::RoomPut(b.clone()),
        StoreWrite::RoomPut(a.clone()),
    ])
    .expect("apply rooms");
    assert_eq!(
        s.rooms().expect("rooms"),
        vec![a.clone(), b.clone()],
        "rooms: stored, sorted by address"
    );
    let mut a2 = a.clone();
    a2.config.name = "Renamed".into();
    a2.affiliations.pop();
    s.apply(&[StoreWrite::RoomPut(a2.clone())])
        .expect("replace");
    assert_eq!(
        s.rooms().expect("rooms"),
        vec![a2, b.clone()],
        "rooms: a put replaces the room"
    );
    s.apply(&[
        StoreWrite::RoomRemove {
            room: j("a@conference.example.com"),
        },
        StoreWrite::RoomRemove {
            room: j("never@conference.example.com"),
        },
    ])
    .expect("remove");
    assert_eq!(
        s.rooms().expect("rooms"),
        vec![b],
        "rooms: removed, and removing a missing room is fine"
    );
}

/// Message `id` of `room`'s archive, sent by the occupant `nick` (real address `nick@example.com`).
fn room_archived(room: &str, id: u64, nick: &str) -> crate::archive::ArchivedMessage {
    let room = j(room);
    crate::archive::ArchivedMessage {
        id,
        with: j(&format!("{nick}@example.com")),
        from: Jid::Full(room.with_resource(nick).expect("valid nick")),
        to: Jid::Bare(room),
        message: Message {
            id: Some(format!("r{id}")),
            kind: MessageKind::Groupchat,
            body: Some(format!("room message {id}")),
            stamp: Timestamp(1_700_000_000_000 + id * 10),
            extensions: vec!["<x xmlns='urn:example'/>".into()],
            ..Message::default()
        },
    }
}

fn room_archives(s: &impl Store) {
    use crate::archive::{Page, Query};
    use crate::rooms::archive::{RoomQuery, select};
    let r = "a@conference.example.com";
    let room_jid = j(r);
    assert_eq!(
        s.room_archive_head(&room_jid).expect("head"),
        0,
        "room archive: empty"
    );
    let all: Vec<_> = (1..=12)
        .map(|id| room_archived(r, id, if id % 3 == 0 { "carol" } else { "bob" }))
        .collect();
    let mut record = room(r);
    record.history.clear();
    let mut writes = vec![StoreWrite::RoomPut(record.clone())];
    writes.extend(all.iter().map(|e| StoreWrite::RoomArchivePut {
        room: room_jid.clone(),
        entry: e.clone(),
    }));
    writes.push(StoreWrite::RoomArchivePut {
        room: j("other@conference.example.com"),
        entry: room_archived("other@conference.example.com", 1, "dave"),
    });
    s.apply(&writes).expect("apply");
    assert_eq!(
        s.room_archive_head(&room_jid).expect("head"),
        12,
        "room archive: head"
    );
    let page = |nick: Option<&str>, query: Query| RoomQuery {
        nick: nick.map(str::to_owned),
        query,
    };
    let queries = [
        page(
            None,
            Query {
                max: 5,
                ..Query::default()
            },
        ),
        page(
            None,
            Query {
                max: 5,
                from_end: true,
                ..Query::default()
            },
        ),
        page(
            None,
            Query {
                after: Some(10),
                max: 5,
                ..Query::default()
            },
        ),
        page(
            None,
            Query {
                before: Some(4),
                from_end: true,
                max: 2,
                ..Query::default()
            },
        ),
        page(
            Some("carol"),
            Query {
                max: 3,
                ..Query::default()
            },
        ),
        page(
            Some("bob"),
            Query {
                from_end: true,
                max: 3,
                ..Query::default()
            },
        ),
        page(
            Some("nobody"),
            Query {
                max: 3,
                ..Query::default()
            },
        ),
        page(
            None,
            Query {
                start: Some(Timestamp(1_700_000_000_000 + 35)),
                end: Some(Timestamp(1_700_000_000_000 + 90)),
                max: 100,
                ..Query::default()
            },
        ),
        page(
            None,
            Query {
                ids: Some(vec![2, 11, 40]),
                max: 10,
                ..Query::default()
            },
        ),
    ];
    for q in &queries {
        assert_eq!(
            s.room_archive_query(&room_jid, q).expect("query"),
            select(all.iter(), q),
            "room archive: query {q:?} answers as select does"
        );
    }
    // The room comes back with its archive's head and its history from the archive's last messages.
    let loaded = crate::store::load_rooms(s).expect("load rooms");
    let a = loaded
        .iter()
        .find(|l| l.jid == room_jid)
        .expect("room loaded");
    assert_eq!(
        a.archive_head, 12,
        "room archive: head loaded with the room"
    );
    let history: Vec<u64> = a
        .history
        .iter()
        .filter_map(|h| h.message.archive_id.map(|i| i.get()))
        .collect();
    assert_eq!(
        history,
        (1..=12).collect::<Vec<u64>>(),
        "room archive: history loaded from the archive (30 kept, 12 there)"
    );
    s.apply(&[StoreWrite::RoomArchiveTrim {
        room: room_jid.clone(),
        below: 5,
    }])
    .expect("trim");
    assert_eq!(
        s.room_archive_query(
            &room_jid,
            &page(
                None,
                Query {
                    max: 100,
                    ..Query::default()
                }
            )
        )
        .expect("query"),
        Page {
            messages: all[4..].to_vec(),
            complete: true
        },
        "room archive: trimmed below 5"
    );
    s.apply(&[StoreWrite::RoomRemove {
        room: room_jid.clone(),
    }])
    .expect("remove");
    assert_eq!(
        s.room_archive_head(&room_jid).expect("head"),
        0,
        "room archive: removed with the room"
    );
    assert_eq!(
        s.room_archive_head(&j("other@conference.example.com"))
            .expect("head"),
        1,
        "room archive: one room's archive is not another's"
    );
}
