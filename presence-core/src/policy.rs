//! Per-user privacy policy (DESIGN §3): allow and block lists, the default, "ask me" for federated contacts, and
//! availability sharing — and the decisions the engine takes from them.

use crate::jid::BareJid;

/// One entry of an allow or block list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PolicyEntry {
    /// One address.
    Jid(BareJid),
    /// Every address of a domain.
    Domain(String),
}

impl PolicyEntry {
    fn matches(&self, peer: &BareJid) -> Option<Specificity> {
        match self {
            PolicyEntry::Jid(j) if j == peer => Some(Specificity::Address),
            PolicyEntry::Domain(d) if d == peer.domain() => Some(Specificity::Domain),
            _ => None,
        }
    }
}

/// How closely a list entry names a peer; an address entry beats a domain entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Specificity {
    Domain,
    Address,
}

/// What happens to contacts on neither list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultRule {
    /// Treat them as allowed (the default).
    #[default]
    AllowAll,
    /// Treat them as blocked.
    BlockAll,
}

/// How the lists classify one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// On the allow list (more specifically than on the block list, if on both).
    Allowed,
    /// On the block list.
    Blocked,
    /// On neither list.
    Unlisted,
}

/// What to do with an incoming subscription request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Approve it without asking the user.
    Approve,
    /// Hand it to the user's clients to decide.
    Ask,
    /// Neither approve nor answer: the requester keeps seeing the user as unavailable (polite blocking).
    Ignore,
}

/// One user's privacy settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPolicy {
    /// Peers explicitly allowed.
    pub allow: Vec<PolicyEntry>,
    /// Peers explicitly blocked.
    pub block: Vec<PolicyEntry>,
    /// What applies to unlisted peers.
    pub default: DefaultRule,
    /// Hand subscription requests from unlisted federated contacts to the user instead of applying the default.
    pub ask_federated: bool,
    /// Whether anybody else may see this user's presence (DESIGN §2 "availability sharing"; on by default).
    pub share_availability: bool,
    /// Show "do not disturb" rather than "on the phone" during a call.
    pub dnd_on_phone: bool,
    /// Show "do not disturb" rather than "in a meeting" during a meeting.
    pub dnd_in_meeting: bool,
}

/// The part of a policy the user sets from a client as their own presence settings: how calls and meetings show,
/// and whether anyone sees their presence at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PresenceSettings {
    /// Show "do not disturb" rather than "on the phone" during a call.
    pub dnd_on_phone: bool,
    /// Show "do not disturb" rather than "in a meeting" during a meeting.
    pub dnd_in_meeting: bool,
    /// Whether anybody else may see this user's presence.
    pub share_availability: bool,
}

impl Default for UserPolicy {
    fn default() -> Self {
        UserPolicy {
            allow: Vec::new(),
            block: Vec::new(),
            default: DefaultRule::AllowAll,
            ask_federated: false,
            share_availability: true,
            dnd_on_phone: false,
            dnd_in_meeting: false,
        }
    }
}

impl UserPolicy {
    /// The user's presence settings (the switches of this policy a client may read and change).
    pub fn presence_settings(&self) -> PresenceSettings {
        PresenceSettings {
            dnd_on_phone: self.dnd_on_phone,
            dnd_in_meeting: self.dnd_in_meeting,
            share_availability: self.share_availability,
        }
    }

    /// Classifies `peer` by the lists: the most specific matching entry wins, and block wins a tie.
    pub fn listing(&self, peer: &BareJid) -> Listing {
        let best = |list: &[PolicyEntry]| list.iter().filter_map(|e| e.matches(peer)).max();
        match (best(&self.allow), best(&self.block)) {
            (None, None) => Listing::Unlisted,
            (Some(_), None) => Listing::Allowed,
            (None, Some(_)) => Listing::Blocked,
            (Some(a), Some(b)) if a > b => Listing::Allowed,
            (Some(_), Some(_)) => Listing::Blocked,
        }
    }

    /// Whether the lists and the default block `peer` as a whole.
    pub fn blocks(&self, peer: &BareJid) -> bool {
        match self.listing(peer) {
            Listing::Allowed => false,
            Listing::Blocked => true,
            Listing::Unlisted => self.default == DefaultRule::BlockAll,
        }
    }

    /// Whether `watcher`, already subscribed, is shown this user's real presence. Blocked watchers and everyone,
    /// when sharing is off, see the user as unavailable (polite blocking: never an error).
    pub fn shows_presence_to(&self, watcher: &BareJid) -> bool {
        self.share_availability && self.listing(watcher) != Listing::Blocked
    }

    /// Whether a message from `sender` may reach this user. Roster contacts pass unless explicitly blocked;
    /// strangers also need the default or the allow list on their side.
    pub fn accepts_message_from(&self, sender: &BareJid, is_contact: bool) -> bool {
        match self.listing(sender) {
            Listing::Blocked => false,
            Listing::Allowed => true,
            Listing::Unlisted => is_contact || self.default == DefaultRule::AllowAll,
        }
    }

    /// What to do with a subscription request from `requester` (DESIGN §3). `federated` is true when the requester
    /// belongs to a domain not hosted here; `auto_authorize` is the node-wide switch.
    pub fn decide_subscription(
        &self,
        requester: &BareJid,
        federated: bool,
        auto_authorize: bool,
    ) -> Decision {
        if federated {
            // Federated requests are never approved by the automatic-authorization switch: the lists decide, and
            // only "ask me" hands an unlisted request to the user.
            return match self.listing(requester) {
                Listing::Allowed => Decision::Approve,
                Listing::Blocked => Decision::Ignore,
                Listing::Unlisted if self.ask_federated => Decision::Ask,
                Listing::Unlisted => match self.default {
                    DefaultRule::AllowAll => Decision::Approve,
                    DefaultRule::BlockAll => Decision::Ignore,
                },
            };
        }
        if !auto_authorize || self.blocks(requester) {
            // A blocked local requester is not refused outright: the user is asked (DESIGN §3).
            return Decision::Ask;
        }
        Decision::Approve
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    #[test]
    fn address_entry_beats_domain_entry_and_block_wins_ties() {
        let p = UserPolicy {
            allow: vec![
                PolicyEntry::Jid(j("friend@evil.com")),
                PolicyEntry::Domain("both.com".into()),
            ],
            block: vec![
                PolicyEntry::Domain("evil.com".into()),
                PolicyEntry::Domain("both.com".into()),
            ],
            ..UserPolicy::default()
        };
        assert_eq!(p.listing(&j("friend@evil.com")), Listing::Allowed);
        assert_eq!(p.listing(&j("other@evil.com")), Listing::Blocked);
        assert_eq!(p.listing(&j("x@both.com")), Listing::Blocked);
        assert_eq!(p.listing(&j("x@fine.com")), Listing::Unlisted);
    }

    #[test]
    fn local_requests_auto_approved_unless_blocked_then_asked() {
        let p = UserPolicy {
            block: vec![PolicyEntry::Jid(j("bob@x"))],
            ..UserPolicy::default()
        };
        assert_eq!(
            p.decide_subscription(&j("carol@x"), false, true),
            Decision::Approve
        );
        assert_eq!(
            p.decide_subscription(&j("bob@x"), false, true),
            Decision::Ask
        );
        assert_eq!(
            p.decide_subscription(&j("carol@x"), false, false),
            Decision::Ask
        );
    }

    #[test]
    fn block_all_default_asks_for_local_unlisted() {
        let p = UserPolicy {
            default: DefaultRule::BlockAll,
            allow: vec![PolicyEntry::Domain("x".into())],
            ..UserPolicy::default()
        };
        assert_eq!(
            p.decide_subscription(&j("carol@x"), false, true),
            Decision::Approve
        );
        assert_eq!(
            p.decide_subscription(&j("carol@y"), false, true),
            Decision::Ask
        );
    }

    #[test]
    fn federated_requests_follow_lists_default_and_ask_me() {
        let mut p = UserPolicy {
            allow: vec![PolicyEntry::Domain("partner.com".into())],
            block: vec![PolicyEntry::Jid(j("spam@partner.com"))],
            ..UserPolicy::default()
        };
        assert_eq!(
            p.decide_subscription(&j("a@partner.com"), true, true),
            Decision::Approve
        );
        assert_eq!(
            p.decide_subscription(&j("spam@partner.com"), true, true),
            Decision::Ignore
        );
        assert_eq!(
            p.decide_subscription(&j("a@other.com"), true, true),
            Decision::Approve
        );
        p.default = DefaultRule::BlockAll;
        assert_eq!(
            p.decide_subscription(&j("a@other.com"), true, true),
            Decision::Ignore
        );
        p.ask_federated = true;
        assert_eq!(
            p.decide_subscription(&j("a@other.com"), true, true),
            Decision::Ask
        );
        assert_eq!(
            p.decide_subscription(&j("spam@partner.com"), true, true),
            Decision::Ignore
        );
    }

    #[test]
    fn polite_blocking_and_sharing() {
        let mut p = UserPolicy {
            block: vec![PolicyEntry::Jid(j("bob@x"))],
            ..UserPolicy::default()
        };
        assert!(!p.shows_presence_to(&j("bob@x")));
        assert!(p.shows_presence_to(&j("carol@x")));
        p.share_availability = false;
        assert!(!p.shows_presence_to(&j("carol@x")));
    }

    #[test]
    fn messages_from_blocked_or_strangers_under_block_all() {
        let mut p = UserPolicy {
            block: vec![PolicyEntry::Jid(j("bob@x"))],
            ..UserPolicy::default()
        };
        assert!(!p.accepts_message_from(&j("bob@x"), true));
        assert!(p.accepts_message_from(&j("eve@x"), false));
        p.default = DefaultRule::BlockAll;
        assert!(!p.accepts_message_from(&j("eve@x"), false));
        assert!(p.accepts_message_from(&j("eve@x"), true));
    }
}
