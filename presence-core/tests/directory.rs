//! A directory sync's roster edits (`Input::EditContacts`): a renamed contact keeps its subscription under the
//! new name, a removed contact's item goes, both pushed to the user's sessions and written to the store, and an
//! offline user's roster is loaded and edited alike.
mod common;

use common::*;
use presence_core::Input;
use presence_core::directory::ContactEdit;
use presence_core::feature::Push;
use presence_core::roster::{Link, RosterChange};
use presence_core::stanza::Stanza;
use presence_core::store::RosterStore;

fn pushes(stanzas: &[Stanza]) -> Vec<RosterChange> {
    stanzas
        .iter()
        .filter_map(|s| match s {
            Stanza::Push(Push::Roster(p)) => Some(p.change.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_rename_and_a_removal_are_pushed_and_stored() {
    let (mut h, _a, b) = Harness::alice_watched_by_bob();
    h.input(Input::EditContacts {
        user: j("bob@x"),
        edits: vec![ContactEdit::Rename {
            contact: j("alice@x"),
            name: Some("Alice Liddell".into()),
        }],
    });
    let changes = pushes(&h.take(b));
    let [RosterChange::Updated(item)] = &changes[..] else {
        panic!("one push expected, got {changes:?}")
    };
    assert_eq!(item.details.name.as_deref(), Some("Alice Liddell"));
    assert_eq!(
        item.subscription.outbound,
        Link::On,
        "the subscription stays"
    );
    let stored = h.store.roster(&j("bob@x")).expect("roster");
    assert!(format!("{stored:?}").contains("Alice Liddell"));

    // Renaming to the same name again changes nothing.
    h.input(Input::EditContacts {
        user: j("bob@x"),
        edits: vec![ContactEdit::Rename {
            contact: j("alice@x"),
            name: Some("Alice Liddell".into()),
        }],
    });
    assert!(pushes(&h.take(b)).is_empty());

    h.input(Input::EditContacts {
        user: j("bob@x"),
        edits: vec![
            ContactEdit::Remove {
                contact: j("alice@x"),
            },
            ContactEdit::Remove {
                contact: j("nobody@x"),
            },
        ],
    });
    let changes = pushes(&h.take(b));
    assert!(
        matches!(&changes[..], [RosterChange::Removed(jid)] if *jid == j("alice@x")),
        "{changes:?}"
    );
    assert!(h.store.roster(&j("bob@x")).expect("roster").is_empty());
    assert!(
        h.routed.is_empty(),
        "nothing is sent to a removed contact: {:?}",
        h.routed
    );
}

#[test]
fn an_offline_users_roster_is_loaded_and_edited() {
    let (mut h, _a, b) = Harness::alice_watched_by_bob();
    h.logout(b);
    h.clear();
    h.input(Input::EditContacts {
        user: j("bob@x"),
        edits: vec![ContactEdit::Remove {
            contact: j("alice@x"),
        }],
    });
    assert!(h.store.roster(&j("bob@x")).expect("roster").is_empty());
}
