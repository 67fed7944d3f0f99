//! A user's contact list (RFC 6121 §2): items with names, groups and a subscription state, plus the contacts who
//! asked for the user's presence without being on the list.

mod subscription;

pub use subscription::{Link, Subscription, SubscriptionAction, SubscriptionAttr};

use hashbrown::HashMap;

use crate::jid::BareJid;

/// The largest number of bytes of a roster item's name or of one group name.
pub const MAX_NAME_BYTES: usize = 1023;

/// What the user chose to call a contact and where to file it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ItemDetails {
    /// The handle the user gave the contact.
    pub name: Option<String>,
    /// The groups the item is filed in (unique).
    pub groups: Vec<String>,
}

/// What the roster holds about one contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RosterEntry {
    /// An item on the user's list.
    Listed {
        /// Name and groups.
        details: ItemDetails,
        /// Subscription state.
        subscription: Subscription,
    },
    /// A contact not on the list who asked for the user's presence and awaits an answer (RFC 6121 §3.1.3: the
    /// request is kept, but no item is created until the user approves or adds the contact).
    Requested,
}

impl RosterEntry {
    /// The subscription state the entry stands for.
    pub fn subscription(&self) -> Subscription {
        match self {
            RosterEntry::Listed { subscription, .. } => *subscription,
            RosterEntry::Requested => Subscription {
                outbound: Link::Off,
                inbound: Link::Pending,
            },
        }
    }
}

/// A roster item as clients see it (a roster result or push).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RosterItem {
    /// The contact.
    pub jid: BareJid,
    /// Name and groups.
    pub details: ItemDetails,
    /// Subscription state.
    pub subscription: Subscription,
}

/// A change to one listed item, as pushed to interested sessions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RosterChange {
    /// The item was added or changed.
    Updated(RosterItem),
    /// The item was removed (`subscription='remove'`).
    Removed(BareJid),
}

/// One user's roster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    entries: HashMap<BareJid, RosterEntry>,
    listed: usize,
    watchers: usize,
    version: u64,
}

/// The effect of changing an entry: what, if anything, to push and persist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryUpdate {
    /// The listed item change to push to interested sessions, if the list changed.
    pub push: Option<RosterChange>,
    /// The entry to persist (`None`: delete it).
    pub stored: Option<RosterEntry>,
}

impl Roster {
    /// Builds a roster from stored entries.
    pub fn from_entries(entries: impl IntoIterator<Item = (BareJid, RosterEntry)>) -> Self {
        let mut r = Roster::default();
        for (jid, e) in entries {
            r.count(&e, 1);
            r.entries.insert(jid, e);
        }
        r
    }

    /// The same roster, its version restored from where it was kept (see `feature::roster::version_key`).
    pub fn at_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    fn count(&mut self, e: &RosterEntry, sign: isize) {
        if matches!(e, RosterEntry::Listed { .. }) {
            self.listed = self.listed.wrapping_add_signed(sign);
        }
        if e.subscription().inbound == Link::On {
            self.watchers = self.watchers.wrapping_add_signed(sign);
        }
    }

    /// The entry for `contact`, if any.
    pub fn entry(&self, contact: &BareJid) -> Option<&RosterEntry> {
        self.entries.get(contact)
    }

    /// The subscription state with `contact` (none when absent).
    pub fn subscription(&self, contact: &BareJid) -> Subscription {
        self.entries
            .get(contact)
            .map_or(Subscription::NONE, RosterEntry::subscription)
    }

    /// The listed item for `contact`.
    pub fn item(&self, contact: &BareJid) -> Option<RosterItem> {
        match self.entries.get(contact)? {
            RosterEntry::Listed {
                details,
                subscription,
            } => Some(RosterItem {
                jid: contact.clone(),
                details: details.clone(),
                subscription: *subscription,
            }),
            RosterEntry::Requested => None,
        }
    }

    /// Every listed item, in no particular order.
    pub fn items(&self) -> impl Iterator<Item = RosterItem> + '_ {
        self.entries.keys().filter_map(|j| self.item(j))
    }

    /// Every entry, listed or not, for persistence.
    pub fn entries(&self) -> impl Iterator<Item = (&BareJid, &RosterEntry)> {
        self.entries.iter()
    }

    /// Contacts whose subscription request awaits the user's answer.
    pub fn pending_requests(&self) -> impl Iterator<Item = &BareJid> {
        self.entries
            .iter()
            .filter(|(_, e)| e.subscription().pending_in())
            .map(|(j, _)| j)
    }

    /// Contacts that receive the user's presence ("from"/"both").
    pub fn watchers(&self) -> impl Iterator<Item = &BareJid> {
        self.entries
            .iter()
            .filter(|(_, e)| e.subscription().shares_to_contact())
            .map(|(j, _)| j)
    }

    /// Contacts whose presence the user receives ("to"/"both").
    pub fn watched(&self) -> impl Iterator<Item = &BareJid> {
        self.entries
            .iter()
            .filter(|(_, e)| e.subscription().receives_from_contact())
            .map(|(j, _)| j)
    }

    /// How many items are on the list (the contact count limits apply to).
    pub fn listed_count(&self) -> usize {
        self.listed
    }

    /// How many contacts receive the user's presence (the watcher count limits apply to).
    pub fn watcher_count(&self) -> usize {
        self.watchers
    }

    /// A counter that grows with every change of the list (RFC 6121 §2.6 roster versioning).
    pub fn version(&self) -> u64 {
        self.version
    }

    fn replace(&mut self, contact: &BareJid, new: Option<RosterEntry>) -> EntryUpdate {
        let old = match new.clone() {
            Some(e) => {
                self.count(&e, 1);
                self.entries.insert(contact.clone(), e)
            }
            None => self.entries.remove(contact),
        };
        if let Some(o) = &old {
            self.count(o, -1);
        }
        let was_listed = matches!(old, Some(RosterEntry::Listed { .. }));
        let push = match (&new, was_listed) {
            (Some(RosterEntry::Listed { .. }), _)
                if visible(old.as_ref()) != visible(new.as_ref()) =>
            {
                self.item(contact).map(RosterChange::Updated)
            }
            (Some(RosterEntry::Listed { .. }), _) => None,
            (_, true) => Some(RosterChange::Removed(contact.clone())),
            (_, false) => None,
        };
        if push.is_some() {
            self.version += 1;
        }
        EntryUpdate { push, stored: new }
    }

    /// Sets the subscription state with `contact`. A contact only asking for presence stays off the list; any other
    /// non-empty state needs an item, which is created without name or groups when missing (RFC 6121 §3.1.5).
    /// A listed item keeps its place on the list even when its state falls to none.
    pub fn set_subscription(&mut self, contact: &BareJid, sub: Subscription) -> EntryUpdate {
        let new = match self.entries.get(contact) {
            Some(RosterEntry::Listed { details, .. }) => Some(RosterEntry::Listed {
                details: details.clone(),
                subscription: sub,
            }),
            _ if sub == Subscription::NONE => None,
            _ if sub == RosterEntry::Requested.subscription() => Some(RosterEntry::Requested),
            _ => Some(RosterEntry::Listed {
                details: ItemDetails::default(),
                subscription: sub,
            }),
        };
        self.replace(contact, new)
    }

    /// Adds or edits the listed item for `contact`, keeping its subscription state.
    pub fn upsert(&mut self, contact: &BareJid, details: ItemDetails) -> EntryUpdate {
        let subscription = self.subscription(contact);
        self.replace(
            contact,
            Some(RosterEntry::Listed {
                details,
                subscription,
            }),
        )
    }

    /// Removes everything known about `contact`.
    pub fn remove(&mut self, contact: &BareJid) -> EntryUpdate {
        self.replace(contact, None)
    }
}

/// What a client sees of an entry: a pending inbound request is not part of a roster item (RFC 6121 §2.1.2).
fn visible(e: Option<&RosterEntry>) -> Option<(&ItemDetails, SubscriptionAttr, bool, bool)> {
    match e? {
        RosterEntry::Listed {
            details,
            subscription,
        } => Some((
            details,
            subscription.attr(),
            subscription.ask(),
            subscription.approved(),
        )),
        RosterEntry::Requested => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    #[test]
    fn pending_request_stays_off_the_list_until_approved() {
        let mut r = Roster::default();
        let bob = j("bob@x");
        let u = r.set_subscription(&bob, RosterEntry::Requested.subscription());
        assert_eq!(u.push, None);
        assert_eq!(u.stored, Some(RosterEntry::Requested));
        assert_eq!(r.items().count(), 0);
        assert_eq!(r.pending_requests().collect::<Vec<_>>(), [&bob]);
        let approved = r
            .subscription(&bob)
            .after_outbound(SubscriptionAction::Subscribed)
            .unwrap();
        let u = r.set_subscription(&bob, approved);
        assert!(
            matches!(u.push, Some(RosterChange::Updated(ref i)) if i.subscription.attr() == SubscriptionAttr::From)
        );
        assert_eq!(r.listed_count(), 1);
        assert_eq!(r.watcher_count(), 1);
    }

    #[test]
    fn listed_item_survives_subscription_falling_to_none_and_counts_track() {
        let mut r = Roster::default();
        let bob = j("bob@x");
        r.upsert(
            &bob,
            ItemDetails {
                name: Some("Bob".into()),
                groups: vec!["Friends".into()],
            },
        );
        let v = r.version();
        r.set_subscription(
            &bob,
            Subscription {
                outbound: Link::On,
                inbound: Link::On,
            },
        );
        assert_eq!(r.watcher_count(), 1);
        assert!(r.version() > v);
        let u = r.set_subscription(&bob, Subscription::NONE);
        assert!(matches!(u.push, Some(RosterChange::Updated(_))));
        assert_eq!(r.item(&bob).unwrap().details.name.as_deref(), Some("Bob"));
        assert_eq!(r.watcher_count(), 0);
        let u = r.remove(&bob);
        assert_eq!(u.push, Some(RosterChange::Removed(bob.clone())));
        assert_eq!((r.listed_count(), r.watcher_count()), (0, 0));
    }

    #[test]
    fn unchanged_item_is_not_pushed() {
        let mut r = Roster::default();
        let bob = j("bob@x");
        assert!(r.upsert(&bob, ItemDetails::default()).push.is_some());
        assert!(r.upsert(&bob, ItemDetails::default()).push.is_none());
    }
}
