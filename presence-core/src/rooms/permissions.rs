//! Who may do what in a room, as tables (XEP-0045 §5.1.1, §5.2.1, §8, §9, §10). Each rule is a row; the
//! functions below only look rows up, so the rules are read (and reviewed against the XEP) here and nowhere else.

use super::affiliation::{Affiliation, Role};

/// What an actor needs to hold for a rule to apply to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// At least this role.
    Role(Role),
    /// At least this affiliation.
    Affiliation(Affiliation),
}

impl Need {
    /// Whether an actor with `affiliation` and `role` holds it.
    pub fn met_by(self, affiliation: Affiliation, role: Role) -> bool {
        match self {
            // Roles run highest first, so "at least" is "not after".
            Need::Role(need) => role != Role::None && role <= need,
            Need::Affiliation(need) => affiliation.rank() >= need.rank(),
        }
    }
}

/// The role an occupant gets on entering: (affiliation, in an unmoderated room, in a moderated room). `None`:
/// may not enter (XEP-0045 §5.1.1 table 4's defaults).
const ENTRY_ROLE: &[(Affiliation, Role, Role)] = &[
    (Affiliation::Owner, Role::Moderator, Role::Moderator),
    (Affiliation::Admin, Role::Moderator, Role::Moderator),
    (Affiliation::Member, Role::Participant, Role::Participant),
    (Affiliation::None, Role::Participant, Role::Visitor),
    (Affiliation::Outcast, Role::None, Role::None),
];

/// The role a user with `affiliation` enters with; `Role::None` for one who may not enter.
pub fn entry_role(affiliation: Affiliation, moderated: bool) -> Role {
    ENTRY_ROLE.iter().find(|(a, ..)| *a == affiliation).map_or(
        Role::None,
        |&(_, open, moderated_role)| {
            if moderated { moderated_role } else { open }
        },
    )
}

/// What each role may do by itself (XEP-0045 §5.1.1 table 1): (role, send groupchat messages, send private
/// messages, change the subject when the room lets occupants do so).
const ROLE_PRIVILEGES: &[(Role, bool, bool, bool)] = &[
    (Role::Moderator, true, true, true),
    (Role::Participant, true, true, true),
    (Role::Visitor, false, true, false),
    (Role::None, false, false, false),
];

fn privileges(role: Role) -> (bool, bool, bool) {
    ROLE_PRIVILEGES
        .iter()
        .find(|(r, ..)| *r == role)
        .map_or((false, false, false), |&(_, a, b, c)| (a, b, c))
}

/// Whether an occupant with `role` may send a message to everyone.
pub fn may_speak(role: Role) -> bool {
    privileges(role).0
}

/// Whether an occupant with `role` may send a private message to another occupant.
pub fn may_send_private(role: Role) -> bool {
    privileges(role).1
}

/// Whether an occupant with `role` may set the subject; `occupants_may` is the room's
/// `changesubject` setting (moderators always may).
pub fn may_change_subject(role: Role, occupants_may: bool) -> bool {
    role == Role::Moderator || (occupants_may && privileges(role).2)
}

/// One role change an actor may make: from one of `from` to `to`, by an actor meeting `actor`, on an occupant
/// whose affiliation is one of `targets`.
struct RoleRule {
    from: &'static [Role],
    to: Role,
    actor: Need,
    targets: &'static [Affiliation],
}

/// XEP-0045 §8.2 (kick), §8.3-8.4 (voice), §9.6-9.7 (moderator). Admins and owners are never targets: they are
/// moderators by affiliation, and "a moderator MUST NOT be able to kick or revoke voice from" them.
const ROLE_RULES: &[RoleRule] = &[
    RoleRule {
        from: &[Role::Participant, Role::Visitor],
        to: Role::None,
        actor: Need::Role(Role::Moderator),
        targets: &[Affiliation::Member, Affiliation::None],
    },
    RoleRule {
        from: &[Role::Moderator],
        to: Role::None,
        actor: Need::Affiliation(Affiliation::Admin),
        targets: &[Affiliation::Member, Affiliation::None],
    },
    RoleRule {
        from: &[Role::Visitor],
        to: Role::Participant,
        actor: Need::Role(Role::Moderator),
        targets: &[Affiliation::Member, Affiliation::None],
    },
    RoleRule {
        from: &[Role::Participant],
        to: Role::Visitor,
        actor: Need::Role(Role::Moderator),
        targets: &[Affiliation::Member, Affiliation::None],
    },
    RoleRule {
        from: &[Role::Participant, Role::Visitor],
        to: Role::Moderator,
        actor: Need::Affiliation(Affiliation::Admin),
        targets: &[Affiliation::Member, Affiliation::None],
    },
    RoleRule {
        from: &[Role::Moderator],
        to: Role::Participant,
        actor: Need::Affiliation(Affiliation::Admin),
        targets: &[Affiliation::Member, Affiliation::None],
    },
    RoleRule {
        from: &[Role::Moderator],
        to: Role::Visitor,
        actor: Need::Affiliation(Affiliation::Admin),
        targets: &[Affiliation::Member, Affiliation::None],
    },
];

/// Whether an actor (`actor`: affiliation and role) may change the role of an occupant (`target`: affiliation
/// and current role) to `to`. Setting the role an occupant has already is allowed to any moderator.
pub fn may_set_role(actor: (Affiliation, Role), target: (Affiliation, Role), to: Role) -> bool {
    if target.1 == to {
        return Need::Role(Role::Moderator).met_by(actor.0, actor.1);
    }
    ROLE_RULES.iter().any(|r| {
        r.to == to
            && r.from.contains(&target.1)
            && r.targets.contains(&target.0)
            && r.actor.met_by(actor.0, actor.1)
    })
}

/// One affiliation change: to `to`, by an actor of at least `actor`, for a user whose affiliation is one of
/// `targets`.
struct AffiliationRule {
    to: Affiliation,
    actor: Affiliation,
    targets: &'static [Affiliation],
}

const ANYONE: &[Affiliation] = &Affiliation::ALL;
/// What an admin may touch: never another admin or an owner (XEP-0045 §9.1, §9.3, §9.4).
const BELOW_ADMIN: &[Affiliation] = &[Affiliation::Member, Affiliation::None, Affiliation::Outcast];

/// XEP-0045 §9 (admin) and §10 (owner) use cases: only owners make or unmake owners and admins.
const AFFILIATION_RULES: &[AffiliationRule] = &[
    AffiliationRule {
        to: Affiliation::Owner,
        actor: Affiliation::Owner,
        targets: ANYONE,
    },
    AffiliationRule {
        to: Affiliation::Admin,
        actor: Affiliation::Owner,
        targets: ANYONE,
    },
    AffiliationRule {
        to: Affiliation::Member,
        actor: Affiliation::Owner,
        targets: ANYONE,
    },
    AffiliationRule {
        to: Affiliation::Member,
        actor: Affiliation::Admin,
        targets: BELOW_ADMIN,
    },
    AffiliationRule {
        to: Affiliation::None,
        actor: Affiliation::Owner,
        targets: ANYONE,
    },
    AffiliationRule {
        to: Affiliation::None,
        actor: Affiliation::Admin,
        targets: BELOW_ADMIN,
    },
    AffiliationRule {
        to: Affiliation::Outcast,
        actor: Affiliation::Owner,
        targets: ANYONE,
    },
    AffiliationRule {
        to: Affiliation::Outcast,
        actor: Affiliation::Admin,
        targets: BELOW_ADMIN,
    },
];

/// Whether a user with affiliation `actor` may change a user's affiliation from `target` to `to`.
pub fn may_set_affiliation(actor: Affiliation, target: Affiliation, to: Affiliation) -> bool {
    AFFILIATION_RULES
        .iter()
        .any(|r| r.to == to && r.targets.contains(&target) && actor.rank() >= r.actor.rank())
}

/// Who may read the list of users with an affiliation (XEP-0045 §9.2, §9.5, §10.5, §10.8).
const AFFILIATION_LIST_READERS: &[(Affiliation, Need)] = &[
    (Affiliation::Outcast, Need::Affiliation(Affiliation::Admin)),
    (Affiliation::Member, Need::Affiliation(Affiliation::Admin)),
    (Affiliation::Admin, Need::Affiliation(Affiliation::Owner)),
    (Affiliation::Owner, Need::Affiliation(Affiliation::Owner)),
];

/// Who may read the list of occupants with a role (XEP-0045 §8.5 voice list, §9.8 moderator list).
const ROLE_LIST_READERS: &[(Role, Need)] = &[
    (Role::Participant, Need::Role(Role::Moderator)),
    (Role::Visitor, Need::Role(Role::Moderator)),
    (Role::Moderator, Need::Affiliation(Affiliation::Admin)),
];

/// Whether `actor` may read the list of users with `list`'s affiliation.
pub fn may_read_affiliations(actor: (Affiliation, Role), list: Affiliation) -> bool {
    AFFILIATION_LIST_READERS
        .iter()
        .any(|(a, need)| *a == list && need.met_by(actor.0, actor.1))
}

/// Whether `actor` may read the list of occupants with `list`'s role.
pub fn may_read_roles(actor: (Affiliation, Role), list: Role) -> bool {
    ROLE_LIST_READERS
        .iter()
        .any(|(r, need)| *r == list && need.met_by(actor.0, actor.1))
}

/// Who may invite others through the room (XEP-0045 §7.8.2): (members-only room, occupants may invite
/// (`muc#roomconfig_allowinvites`), what the inviter needs). In an open room any occupant may; in a members-only
/// room only admins and owners, unless the room lets occupants invite too.
const INVITERS: &[(bool, bool, Need)] = &[
    (false, false, Need::Role(Role::Visitor)),
    (false, true, Need::Role(Role::Visitor)),
    (true, true, Need::Role(Role::Visitor)),
    (true, false, Need::Affiliation(Affiliation::Admin)),
];

/// Whether `actor` may invite someone into a room that is `members_only` and lets occupants invite or not.
pub fn may_invite(actor: (Affiliation, Role), members_only: bool, allow_invites: bool) -> bool {
    INVITERS.iter().any(|&(m, allow, need)| {
        m == members_only && allow == allow_invites && need.met_by(actor.0, actor.1)
    })
}

/// Who may do what with voice requests (XEP-0045 §7.13, §8.6): (the ask, what the actor needs). Only a
/// visitor has something to ask for; moderators receive the requests (and answer them by the role rules).
const VOICE_REQUESTS: &[(VoiceStep, Need)] = &[
    (VoiceStep::Ask, Need::Role(Role::Visitor)),
    (VoiceStep::Receive, Need::Role(Role::Moderator)),
];

/// A step of a voice request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceStep {
    /// Asking for voice.
    Ask,
    /// Receiving the request, to approve it.
    Receive,
}

/// Whether an occupant with `role` may take `step` (asking needs to be a visitor exactly: a participant has
/// voice already).
pub fn may_voice(step: VoiceStep, role: Role) -> bool {
    VOICE_REQUESTS.iter().any(|&(s, need)| {
        s == step
            && need.met_by(Affiliation::None, role)
            && (step != VoiceStep::Ask || role == Role::Visitor)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Affiliation as A;
    use Role as R;

    #[test]
    fn entry_roles_follow_the_xep_defaults() {
        assert_eq!(entry_role(A::Owner, true), R::Moderator);
        assert_eq!(entry_role(A::Admin, false), R::Moderator);
        assert_eq!(entry_role(A::Member, true), R::Participant);
        assert_eq!(entry_role(A::None, false), R::Participant);
        assert_eq!(entry_role(A::None, true), R::Visitor);
        assert_eq!(entry_role(A::Outcast, false), R::None);
    }

    #[test]
    fn a_moderator_kicks_participants_but_never_an_admin_or_owner() {
        let moderator = (A::None, R::Moderator);
        assert!(may_set_role(moderator, (A::None, R::Participant), R::None));
        assert!(may_set_role(moderator, (A::Member, R::Visitor), R::None));
        for protected in [A::Admin, A::Owner] {
            for actor in [
                moderator,
                (A::Admin, R::Moderator),
                (A::Owner, R::Moderator),
            ] {
                assert!(
                    !may_set_role(actor, (protected, R::Moderator), R::None),
                    "{actor:?} kicked {protected:?}"
                );
            }
        }
    }

    #[test]
    fn only_admins_make_or_unmake_moderators() {
        assert!(!may_set_role(
            (A::None, R::Moderator),
            (A::None, R::Participant),
            R::Moderator
        ));
        assert!(may_set_role(
            (A::Admin, R::Moderator),
            (A::None, R::Participant),
            R::Moderator
        ));
        assert!(!may_set_role(
            (A::None, R::Moderator),
            (A::None, R::Moderator),
            R::Participant
        ));
        assert!(may_set_role(
            (A::Owner, R::Moderator),
            (A::Member, R::Moderator),
            R::Visitor
        ));
    }

    #[test]
    fn participants_and_visitors_change_no_roles() {
        for actor in [(A::Member, R::Participant), (A::None, R::Visitor)] {
            for to in Role::ALL {
                assert!(
                    !may_set_role(actor, (A::None, R::Participant), to),
                    "{actor:?} to {to:?}"
                );
            }
        }
    }

    #[test]
    fn only_owners_change_owners_and_admins() {
        for to in Affiliation::ALL {
            for target in [A::Owner, A::Admin] {
                assert!(may_set_affiliation(A::Owner, target, to));
                assert!(
                    !may_set_affiliation(A::Admin, target, to),
                    "admin set {target:?} to {to:?}"
                );
            }
            let by_admin = may_set_affiliation(A::Admin, A::None, to);
            assert_eq!(
                by_admin,
                matches!(to, A::Member | A::None | A::Outcast),
                "{to:?}"
            );
        }
        for actor in [A::Member, A::None, A::Outcast] {
            for to in Affiliation::ALL {
                assert!(!may_set_affiliation(actor, A::None, to));
            }
        }
    }

    #[test]
    fn lists_are_read_by_who_manages_them() {
        assert!(may_read_affiliations((A::Admin, R::Moderator), A::Member));
        assert!(!may_read_affiliations((A::Admin, R::Moderator), A::Owner));
        assert!(may_read_affiliations((A::Owner, R::Moderator), A::Admin));
        assert!(!may_read_affiliations(
            (A::Member, R::Participant),
            A::Outcast
        ));
        assert!(may_read_roles((A::None, R::Moderator), R::Participant));
        assert!(!may_read_roles((A::None, R::Moderator), R::Moderator));
        assert!(!may_read_roles((A::None, R::Participant), R::Participant));
    }

    #[test]
    fn members_only_rooms_take_invitations_from_admins_or_when_occupants_may() {
        let occupant = (A::None, R::Participant);
        assert!(may_invite(occupant, false, false));
        assert!(!may_invite((A::None, R::None), false, false));
        assert!(!may_invite((A::Member, R::Participant), true, false));
        assert!(may_invite((A::Member, R::Participant), true, true));
        assert!(may_invite((A::Admin, R::None), true, false));
        assert!(may_invite((A::Owner, R::Moderator), true, false));
    }

    #[test]
    fn visitors_ask_for_voice_and_moderators_hear_it() {
        assert!(may_voice(VoiceStep::Ask, R::Visitor));
        assert!(!may_voice(VoiceStep::Ask, R::Participant));
        assert!(!may_voice(VoiceStep::Ask, R::None));
        assert!(may_voice(VoiceStep::Receive, R::Moderator));
        assert!(!may_voice(VoiceStep::Receive, R::Participant));
    }

    #[test]
    fn visitors_do_not_speak_or_set_the_subject() {
        assert!(!may_speak(R::Visitor));
        assert!(may_send_private(R::Visitor));
        assert!(!may_change_subject(R::Visitor, true));
        assert!(may_change_subject(R::Participant, true));
        assert!(!may_change_subject(R::Participant, false));
        assert!(may_change_subject(R::Moderator, false));
    }
}
