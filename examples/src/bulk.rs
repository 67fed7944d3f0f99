//! `presenced user import|export`: contact lists in bulk, in the source product's CSV format (DESIGN §3), and
//! accounts in bulk.
//!
//! A contact row is `UserID,UserDomain,ContactID,ContactDomain,Nickname,GroupName` (no header; a first line
//! naming those columns is skipped). Every row is accepted or rejected with one [`Rejection`]. An accepted row
//! lists the contact on the user's roster with the nickname (when given) in the group, merging with an item
//! already there. A contact on this server with an account is also authorized both ways, as automatic
//! authorization would have done: the user receives the contact's presence and the contact's roster shows the
//! user as a watcher (`from`). A contact elsewhere is listed without a subscription; the user's client asks
//! for one as usual. A user or contact ID holding `@` (`bjones@usa`) is an escaped localpart (`bjones\40usa`,
//! XEP-0106), as the source product escapes it.
//!
//! An account row is `UserID,UserDomain,Password`; it creates the account (refusing one that exists).
//!
//! Both work on the store directly, so they run while the server is stopped: the running engine holds rosters
//! in memory and would not see rows written behind it.

use std::fmt;

use presence_core::BareJid;
use presence_core::roster::{ItemDetails, Link, RosterEntry, Subscription};
use presence_core::store::{AccountStore, RosterStore, StoreError};

use crate::users::{UserError, add_user};

/// Maximum lengths of the six contact columns (the source product's).
const MAX_LEN: [usize; 6] = [132, 128, 132, 128, 255, 255];

/// The group an item without any is exported in.
pub const DEFAULT_GROUP: &str = "General";

/// Why one row was not imported (the source product's reasons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A field is missing, empty, too long, or does not make an address.
    InvalidFormat(String),
    /// The contact domain breaks the domain rules.
    InvalidContactDomain,
    /// The contact is the user.
    CannotAddSelf,
    /// The user's contact list (or the contact's watcher list) is full.
    OverLimit,
    /// The user has no account on this server.
    UserNotOnThisNode,
    /// The account row names an existing account.
    AccountExists,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::InvalidFormat(why) => write!(f, "invalid format: {why}"),
            Rejection::InvalidContactDomain => f.write_str("invalid contact domain"),
            Rejection::CannotAddSelf => f.write_str("cannot add self as a contact"),
            Rejection::OverLimit => f.write_str("user's contact list is over limit"),
            Rejection::UserNotOnThisNode => f.write_str("user is not assigned to this node"),
            Rejection::AccountExists => f.write_str("the account exists"),
        }
    }
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows imported.
    pub imported: usize,
    /// Rows not imported: the 1-based line and why.
    pub rejected: Vec<(usize, Rejection)>,
}

/// The caps an import respects (`[limits] max_contacts`/`max_watchers`; `None` is unlimited).
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportLimits {
    /// Items on one user's list.
    pub max_contacts: Option<usize>,
    /// Watchers of one user.
    pub max_watchers: Option<usize>,
}

/// The fields of one CSV line (RFC 4180 quoting: `"a,b"` and `""` inside quotes).
pub fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let field = fields.last_mut().expect("never empty");
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => field.push(c),
        }
    }
    fields
}

/// `field` quoted for CSV when it needs it.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// The address of `id` at `domain`, with `@` in the ID escaped (XEP-0106).
fn address(id: &str, domain: &str) -> Option<BareJid> {
    BareJid::new(&format!("{}@{domain}", id.replace('@', "\\40"))).ok()
}

/// The source product's contact-domain rules: at most 128 characters; labels of letters, digits and hyphens,
/// not starting or ending with a hyphen, at most 63 characters; an alphabetic top-level label of two or more.
pub fn valid_contact_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    domain.len() <= 128
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()))
}

fn is_header(fields: &[String]) -> bool {
    fields.first().is_some_and(|f| {
        f.trim().eq_ignore_ascii_case("userid") || f.trim().eq_ignore_ascii_case("user id")
    })
}

/// Imports contact rows from `csv` for users of `domain`. A store failure stops the import (rows before it
/// stay imported).
pub fn import_contacts<S: AccountStore + RosterStore>(
    store: &S,
    domain: &str,
    limits: ImportLimits,
    csv: &str,
) -> Result<ImportReport, StoreError> {
    let mut report = ImportReport::default();
    for (i, line) in csv.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_csv(line);
        if i == 0 && is_header(&fields) {
            continue;
        }
        match import_row(store, domain, limits, &fields)? {
            Ok(()) => report.imported += 1,
            Err(why) => report.rejected.push((i + 1, why)),
        }
    }
    Ok(report)
}

fn import_row<S: AccountStore + RosterStore>(
    store: &S,
    domain: &str,
    limits: ImportLimits,
    fields: &[String],
) -> Result<Result<(), Rejection>, StoreError> {
    let format = |why: String| Ok(Err(Rejection::InvalidFormat(why)));
    if fields.len() != 6 {
        return format(format!("{} fields, expected 6", fields.len()));
    }
    const NAMES: [&str; 6] = [
        "UserID",
        "UserDomain",
        "ContactID",
        "ContactDomain",
        "Nickname",
        "GroupName",
    ];
    for (n, (field, max)) in fields.iter().zip(MAX_LEN).enumerate() {
        if field.chars().count() > max {
            return format(format!("{} is longer than {max} characters", NAMES[n]));
        }
        // Nickname is the one optional field.
        if n != 4 && field.trim().is_empty() {
            return format(format!("{} is empty", NAMES[n]));
        }
    }
    let (user_id, user_domain, contact_id, contact_domain, nickname, group) = (
        fields[0].trim(),
        fields[1].trim().to_ascii_lowercase(),
        fields[2].trim(),
        fields[3].trim().to_ascii_lowercase(),
        fields[4].trim(),
        fields[5].trim(),
    );
    if contact_domain != domain && !valid_contact_domain(&contact_domain) {
        return Ok(Err(Rejection::InvalidContactDomain));
    }
    let Some(user) = address(user_id, &user_domain) else {
        return format("UserID and UserDomain do not make an address".into());
    };
    let Some(contact) = address(contact_id, &contact_domain) else {
        return format("ContactID and ContactDomain do not make an address".into());
    };
    if user == contact {
        return Ok(Err(Rejection::CannotAddSelf));
    }
    if user.domain() != domain || store.account(&user)?.is_none() {
        return Ok(Err(Rejection::UserNotOnThisNode));
    }
    let roster = store.roster(&user)?;
    let existing = roster
        .iter()
        .find(|(jid, _)| *jid == contact)
        .map(|(_, e)| e.clone());
    let listed = roster
        .iter()
        .filter(|(_, e)| matches!(e, RosterEntry::Listed { .. }))
        .count();
    let already_listed = matches!(existing, Some(RosterEntry::Listed { .. }));
    if !already_listed && limits.max_contacts.is_some_and(|max| listed >= max) {
        return Ok(Err(Rejection::OverLimit));
    }
    let local = contact.domain() == domain && store.account(&contact)?.is_some();
    // The contact's side: the user becomes a watcher of a local contact.
    let contact_side = if local {
        let theirs = store.roster(&contact)?;
        let mine = theirs
            .iter()
            .find(|(jid, _)| *jid == user)
            .map(|(_, e)| e.clone());
        let watchers = theirs
            .iter()
            .filter(|(_, e)| e.subscription().inbound == Link::On)
            .count();
        let watching = mine
            .as_ref()
            .is_some_and(|e| e.subscription().inbound == Link::On);
        if !watching && limits.max_watchers.is_some_and(|max| watchers >= max) {
            return Ok(Err(Rejection::OverLimit));
        }
        Some(match mine {
            Some(RosterEntry::Listed {
                details,
                mut subscription,
            }) => {
                subscription.inbound = Link::On;
                RosterEntry::Listed {
                    details,
                    subscription,
                }
            }
            _ => RosterEntry::Listed {
                details: ItemDetails::default(),
                subscription: Subscription {
                    outbound: Link::Off,
                    inbound: Link::On,
                },
            },
        })
    } else {
        None
    };
    let (mut details, mut subscription) = match existing {
        Some(RosterEntry::Listed {
            details,
            subscription,
        }) => (details, subscription),
        // A pending request from the contact is answered by the import for a local contact.
        Some(RosterEntry::Requested) => (
            ItemDetails::default(),
            RosterEntry::Requested.subscription(),
        ),
        None => (ItemDetails::default(), Subscription::default()),
    };
    if !nickname.is_empty() {
        details.name = Some(nickname.to_owned());
    }
    if !details.groups.iter().any(|g| g == group) {
        details.groups.push(group.to_owned());
    }
    if local {
        subscription.outbound = Link::On;
    }
    store.put_roster_entry(
        &user,
        &contact,
        &RosterEntry::Listed {
            details,
            subscription,
        },
    )?;
    if let Some(entry) = contact_side {
        store.put_roster_entry(&contact, &user, &entry)?;
    }
    Ok(Ok(()))
}

/// Every listed contact of every account, one row per group (`General` for an item in none), in the import
/// format.
pub fn export_contacts<S: AccountStore + RosterStore>(store: &S) -> Result<String, StoreError> {
    let mut out = String::new();
    for user in store.list_accounts()? {
        let mut roster = store.roster(&user)?;
        roster.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        for (contact, entry) in roster {
            let RosterEntry::Listed { details, .. } = entry else {
                continue;
            };
            let groups = if details.groups.is_empty() {
                vec![DEFAULT_GROUP.to_owned()]
            } else {
                details.groups.clone()
            };
            for group in groups {
                let row = [
                    user.local().unwrap_or_default().replace("\\40", "@"),
                    user.domain().to_owned(),
                    contact.local().unwrap_or_default().replace("\\40", "@"),
                    contact.domain().to_owned(),
                    details.name.clone().unwrap_or_default(),
                    group,
                ];
                let row: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
                out.push_str(&row.join(","));
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// Creates the accounts of `UserID,UserDomain,Password` rows. A store failure stops the import.
pub fn import_accounts<S: AccountStore>(
    store: &S,
    domain: &str,
    csv: &str,
) -> Result<ImportReport, StoreError> {
    let mut report = ImportReport::default();
    for (i, line) in csv.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_csv(line);
        if i == 0 && is_header(&fields) {
            continue;
        }
        let rejected = |why| (i + 1, why);
        let [id, user_domain, password] = fields.as_slice() else {
            report
                .rejected
                .push(rejected(Rejection::InvalidFormat(format!(
                    "{} fields, expected 3",
                    fields.len()
                ))));
            continue;
        };
        let Some(user) = address(id.trim(), &user_domain.trim().to_ascii_lowercase()) else {
            report.rejected.push(rejected(Rejection::InvalidFormat(
                "UserID and UserDomain do not make an address".into(),
            )));
            continue;
        };
        if user.domain() != domain {
            report.rejected.push(rejected(Rejection::UserNotOnThisNode));
            continue;
        }
        match add_user(store, user, password) {
            Ok(()) => report.imported += 1,
            Err(UserError::Exists(_)) => report.rejected.push(rejected(Rejection::AccountExists)),
            Err(UserError::Store(e)) => return Err(e),
            Err(e) => report
                .rejected
                .push(rejected(Rejection::InvalidFormat(e.to_string()))),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use presence_core::store::MemoryStore;

    use super::*;
    use crate::users::parse_user;

    fn store_with(users: &[&str]) -> MemoryStore {
        let s = MemoryStore::new();
        for u in users {
            add_user(&s, parse_user(u, "example.com").expect("user"), "pw").expect("add");
        }
        s
    }

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).expect("jid")
    }

    #[test]
    fn csv_fields_follow_rfc_4180_quoting() {
        assert_eq!(
            split_csv("a,\"b,c\",\"d\"\"e\","),
            vec!["a", "b,c", "d\"e", ""]
        );
        assert_eq!(csv_field("x,y"), "\"x,y\"");
    }

    #[test]
    fn contact_domains_follow_the_source_rules() {
        for good in ["example.com", "a-b.example.org", "x1.io"] {
            assert!(valid_contact_domain(good), "{good}");
        }
        for bad in [
            "localhost",
            "-a.com",
            "a-.com",
            "a.c0m",
            "a.c",
            "a_b.com",
            "a..com",
        ] {
            assert!(!valid_contact_domain(bad), "{bad}");
        }
    }

    #[test]
    fn every_row_is_imported_or_rejected_with_its_reason() {
        let s = store_with(&[
            "usera@example.com",
            "userb@example.com",
            "userc@example.com",
        ]);
        let csv = "UserID,UserDomain,ContactID,ContactDomain,Nickname,GroupName\n\
                   userA,example.com,userB,example.com,buddyB,General\n\
                   userA,example.com,carol,other.org,,Partners\n\
                   userA,example.com,userA,example.com,me,General\n\
                   nobody,example.com,userB,example.com,,General\n\
                   userA,example.com,dave,bad_domain.com,,General\n\
                   userA,example.com,userB,example.com,buddyB\n\
                   userA,example.com,userB,example.com,,\n\
                   userC,example.com,eve,x.org,,General\n";
        let limits = ImportLimits {
            max_contacts: Some(1),
            max_watchers: None,
        };
        let r = import_contacts(&s, "example.com", limits, csv).expect("store works");
        assert_eq!(r.imported, 2, "{r:?}");
        let reasons: Vec<(usize, String)> = r
            .rejected
            .iter()
            .map(|(l, w)| (*l, w.to_string()))
            .collect();
        assert_eq!(reasons[0], (3, "user's contact list is over limit".into()));
        assert_eq!(reasons[1], (4, "cannot add self as a contact".into()));
        assert_eq!(reasons[2], (5, "user is not assigned to this node".into()));
        assert_eq!(reasons[3], (6, "invalid contact domain".into()));
        assert!(reasons[4].1.starts_with("invalid format"), "{reasons:?}");
        assert!(reasons[5].1.contains("GroupName is empty"), "{reasons:?}");
        assert_eq!(reasons.len(), 6);
        // Local contact: both ways.
        let a = s.roster(&jid("usera@example.com")).expect("roster");
        let (_, entry) = a
            .iter()
            .find(|(j, _)| j.as_str() == "userb@example.com")
            .expect("listed");
        let RosterEntry::Listed {
            details,
            subscription,
        } = entry
        else {
            panic!("not listed: {entry:?}")
        };
        assert_eq!(details.name.as_deref(), Some("buddyB"));
        assert_eq!(details.groups, vec!["General".to_owned()]);
        assert_eq!(subscription.outbound, Link::On);
        let b = s.roster(&jid("userb@example.com")).expect("roster");
        let (_, back) = b
            .iter()
            .find(|(j, _)| j.as_str() == "usera@example.com")
            .expect("watcher");
        assert_eq!(back.subscription().inbound, Link::On);
        // Remote contact: listed, no subscription.
        let c = s.roster(&jid("userc@example.com")).expect("roster");
        let (_, eve) = c
            .iter()
            .find(|(j, _)| j.as_str() == "eve@x.org")
            .expect("listed");
        assert_eq!(eve.subscription(), Subscription::default());
        // And back out in the same format.
        let out = export_contacts(&s).expect("export");
        assert!(
            out.contains("usera,example.com,userb,example.com,buddyB,General\n"),
            "{out}"
        );
        assert!(
            out.contains("userc,example.com,eve,x.org,,General\n"),
            "{out}"
        );
        assert!(
            out.contains("userb,example.com,usera,example.com,,General\n"),
            "{out}"
        );
    }

    #[test]
    fn an_at_in_a_user_id_is_escaped() {
        let s = MemoryStore::new();
        let r = import_accounts(
            &s,
            "example.com",
            "bjones@usa,example.com,pw\nx,other.org,pw\n",
        )
        .expect("store works");
        assert_eq!(r.imported, 1);
        assert_eq!(r.rejected, vec![(2, Rejection::UserNotOnThisNode)]);
        assert!(
            s.account(&jid("bjones\\40usa@example.com"))
                .expect("read")
                .is_some()
        );
        let again = import_accounts(&s, "example.com", "bjones@usa,example.com,pw\n").expect("ok");
        assert_eq!(again.rejected, vec![(1, Rejection::AccountExists)]);
    }
}
