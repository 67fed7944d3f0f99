//! Accounts that come from a corporate directory (LDAP): what a synchronisation changes, decided without I/O.
//!
//! The shell reads the directory's users ([`DirectoryUser`]) and the accounts it holds, each with the
//! [`DirectoryRecord`] it kept from the last sync (none for an account made by hand, which the directory never
//! touches), and [`plan`] says what to do: create the accounts of new directory users, update the record of
//! changed ones (a new display name renames every roster item pointing at them), and remove the accounts of
//! users who left the directory (or its filters). What a removal or a rename does to other users' rosters is
//! [`ContactEdit`]s the engine applies (`Input::EditContacts`), so online users see the change at once.

use crate::jid::BareJid;

/// One user as the directory lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DirectoryUser {
    /// The account it maps to (`uid@domain`).
    pub jid: BareJid,
    /// What the directory keeps about the user.
    pub record: DirectoryRecord,
}

/// What a sync keeps about a directory user, next to the account: where the entry is and what it said.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DirectoryRecord {
    /// The entry's distinguished name (what a password is checked against).
    pub dn: String,
    /// The display name (roster name of the user in other users' lists).
    pub name: Option<String>,
    /// The mail address.
    pub mail: Option<String>,
    /// The phone number.
    pub phone: Option<String>,
    /// When the entry last changed, as the directory says (LDAP `modifyTimestamp`); a change may be a new
    /// password, so the account's cached credentials are dropped (see [`Change::drops_credentials`]).
    pub changed: Option<String>,
}

/// An account the server holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeldAccount {
    /// Its address.
    pub jid: BareJid,
    /// Its directory record; `None`: a local account the directory does not manage.
    pub record: Option<DirectoryRecord>,
}

/// One change of a sync.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// A directory user without an account: it is created (without credentials: the first login, checked by
    /// the directory, caches them).
    Create(DirectoryUser),
    /// A directory user whose record changed (or a local account of the same address, which the directory takes
    /// over).
    Update {
        /// The user as the directory lists it now.
        user: DirectoryUser,
        /// The record kept before (`None`: the account was local until now).
        before: Option<DirectoryRecord>,
    },
    /// A managed account whose user left the directory or its filters: it is removed with its sessions, and
    /// roster items pointing at it are removed.
    Remove(BareJid),
}

impl Change {
    /// Whether the change gives the user a new display name, so roster items pointing at them are renamed.
    pub fn renames(&self) -> Option<(&BareJid, Option<&str>)> {
        match self {
            Change::Update { user, before } => {
                let old = before.as_ref().and_then(|b| b.name.as_deref());
                (old != user.record.name.as_deref())
                    .then_some((&user.jid, user.record.name.as_deref()))
            }
            _ => None,
        }
    }
}

impl Change {
    /// Whether the account's cached credentials (verifiers and digest secrets made at the last login the
    /// directory checked) must go: the entry changed since, perhaps its password, or a local account is taken
    /// over, whose password is not the directory's.
    pub fn drops_credentials(&self) -> bool {
        match self {
            Change::Update { user, before } => before
                .as_ref()
                .is_none_or(|b| b.changed != user.record.changed),
            _ => false,
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |r: &DirectoryRecord| r.name.clone().unwrap_or_default();
        match self {
            Change::Create(u) => write!(f, "create {} ({:?})", u.jid, name(&u.record)),
            Change::Update { user, before: None } => {
                write!(f, "adopt {} ({:?})", user.jid, name(&user.record))
            }
            Change::Update {
                user,
                before: Some(b),
            } => {
                write!(f, "update {}", user.jid)?;
                let fields = [
                    ("name", &b.name, &user.record.name),
                    ("mail", &b.mail, &user.record.mail),
                    ("phone", &b.phone, &user.record.phone),
                ];
                for (what, old, new) in fields {
                    if old != new {
                        write!(
                            f,
                            " {what} {:?} -> {:?}",
                            old.as_deref().unwrap_or(""),
                            new.as_deref().unwrap_or("")
                        )?;
                    }
                }
                if b.dn != user.record.dn {
                    write!(f, " dn {:?} -> {:?}", b.dn, user.record.dn)?;
                }
                Ok(())
            }
            Change::Remove(jid) => write!(f, "remove {jid}"),
        }
    }
}

/// The changes that make `held` match `directory`, ordered by address within creates, updates and removals.
/// Local accounts (no record) are never removed; one the directory also lists is taken over. A user listed
/// twice (two entries with one uid) counts once, by its first entry.
pub fn plan(directory: &[DirectoryUser], held: &[HeldAccount]) -> Vec<Change> {
    use std::collections::BTreeMap;
    let mut wanted: BTreeMap<&BareJid, &DirectoryUser> = BTreeMap::new();
    for u in directory {
        wanted.entry(&u.jid).or_insert(u);
    }
    let have: BTreeMap<&BareJid, &HeldAccount> = held.iter().map(|a| (&a.jid, a)).collect();
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    let mut removes = Vec::new();
    for (jid, user) in &wanted {
        match have.get(jid) {
            None => creates.push(Change::Create((*user).clone())),
            Some(a) if a.record.as_ref() != Some(&user.record) => updates.push(Change::Update {
                user: (*user).clone(),
                before: a.record.clone(),
            }),
            Some(_) => {}
        }
    }
    for (jid, a) in &have {
        if a.record.is_some() && !wanted.contains_key(jid) {
            removes.push(Change::Remove((*jid).clone()));
        }
    }
    creates.into_iter().chain(updates).chain(removes).collect()
}

/// Why a sync's changes are not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PlanRefusal {
    /// The directory listed nobody while accounts came from it: far more likely a wrong `base_dn`, filter or
    /// service account than a company without staff, and removing everyone cannot be undone.
    #[error(
        "the directory lists no users, which would remove all {managed} directory accounts: check the base DN, \
         the filters and the service account"
    )]
    EmptyDirectory {
        /// How many accounts the directory manages.
        managed: usize,
    },
}

/// [`plan`], refusing a sync that would empty the server because the directory answered with nobody.
pub fn plan_checked(
    directory: &[DirectoryUser],
    held: &[HeldAccount],
) -> Result<Vec<Change>, PlanRefusal> {
    let managed = held.iter().filter(|a| a.record.is_some()).count();
    if directory.is_empty() && managed > 0 {
        return Err(PlanRefusal::EmptyDirectory { managed });
    }
    Ok(plan(directory, held))
}

/// An administrator's edit of one roster item, applied by the engine as if the user had made it (the item is
/// pushed to the user's interested sessions and written to the store).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ContactEdit {
    /// Give the item a new name (`None`: no name); nothing if the user has no such item.
    Rename {
        /// The contact.
        contact: BareJid,
        /// The new name.
        name: Option<String>,
    },
    /// Remove the item (the contact's account is gone: nothing is sent to it); nothing if there is none.
    Remove {
        /// The contact.
        contact: BareJid,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> BareJid {
        BareJid::new(s).expect("valid")
    }

    fn rec(name: &str) -> DirectoryRecord {
        DirectoryRecord {
            dn: format!("uid={name},ou=people"),
            name: Some(name.to_uppercase()),
            mail: None,
            phone: None,
            changed: None,
        }
    }

    fn dir(local: &str, r: DirectoryRecord) -> DirectoryUser {
        DirectoryUser {
            jid: j(&format!("{local}@x")),
            record: r,
        }
    }

    #[test]
    fn creates_updates_and_removes_only_managed_accounts() {
        let mut renamed = rec("bob");
        renamed.name = Some("Robert".into());
        renamed.changed = Some("20260101000000Z".into());
        let directory = vec![dir("alice", rec("alice")), dir("bob", renamed.clone())];
        let held = vec![
            HeldAccount {
                jid: j("bob@x"),
                record: Some(rec("bob")),
            },
            HeldAccount {
                jid: j("carol@x"),
                record: Some(rec("carol")),
            },
            HeldAccount {
                jid: j("admin@x"),
                record: None,
            },
        ];
        let changes = plan(&directory, &held);
        assert_eq!(
            changes,
            vec![
                Change::Create(dir("alice", rec("alice"))),
                Change::Update {
                    user: dir("bob", renamed),
                    before: Some(rec("bob")),
                },
                Change::Remove(j("carol@x")),
            ]
        );
        assert_eq!(changes[1].renames(), Some((&j("bob@x"), Some("Robert"))));
        assert_eq!(changes[0].renames(), None);
        assert!(changes[1].drops_credentials(), "the entry changed");
        assert!(!changes[0].drops_credentials());
        assert_eq!(
            changes[1].to_string(),
            "update bob@x name \"BOB\" -> \"Robert\""
        );
    }

    #[test]
    fn an_unchanged_directory_changes_nothing_and_a_local_account_is_adopted() {
        let held = vec![
            HeldAccount {
                jid: j("alice@x"),
                record: Some(rec("alice")),
            },
            HeldAccount {
                jid: j("bob@x"),
                record: None,
            },
        ];
        let directory = vec![dir("alice", rec("alice")), dir("bob", rec("bob"))];
        let changes = plan(&directory, &held);
        assert_eq!(
            changes,
            vec![Change::Update {
                user: dir("bob", rec("bob")),
                before: None
            }]
        );
        assert_eq!(changes[0].to_string(), "adopt bob@x (\"BOB\")");
        assert!(
            changes[0].drops_credentials(),
            "a local password is not the directory's"
        );
        // Taken over: from now on it is managed, and the next sync sees nothing to do.
        let held = vec![
            HeldAccount {
                jid: j("alice@x"),
                record: Some(rec("alice")),
            },
            HeldAccount {
                jid: j("bob@x"),
                record: Some(rec("bob")),
            },
        ];
        assert!(plan(&directory, &held).is_empty());
    }

    #[test]
    fn an_empty_directory_removes_every_managed_account_and_no_local_one() {
        let held = vec![
            HeldAccount {
                jid: j("alice@x"),
                record: Some(rec("alice")),
            },
            HeldAccount {
                jid: j("root@x"),
                record: None,
            },
        ];
        assert_eq!(plan(&[], &held), vec![Change::Remove(j("alice@x"))]);
        // ... which a sync refuses to do: an empty answer is a misconfiguration far more often than not.
        assert_eq!(
            plan_checked(&[], &held),
            Err(PlanRefusal::EmptyDirectory { managed: 1 })
        );
        let one = vec![dir("bob", rec("bob"))];
        assert_eq!(plan_checked(&one, &held), Ok(plan(&one, &held)));
        let local_only = vec![HeldAccount {
            jid: j("root@x"),
            record: None,
        }];
        assert_eq!(plan_checked(&[], &local_only), Ok(vec![]));
    }
}
