//! The two ladders of XEP-0045 §5: a user's long-lived affiliation with a room and an occupant's role in it.

/// A user's standing with a room, kept while they are away (XEP-0045 §5.2), highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Affiliation {
    /// Configures and destroys the room; a persistent room always has one.
    Owner,
    /// Manages members, bans and moderators.
    Admin,
    /// May enter a members-only room.
    Member,
    /// No standing.
    None,
    /// Banned: may not enter.
    Outcast,
}

impl Affiliation {
    /// Every affiliation, highest first.
    pub const ALL: [Affiliation; 5] = [
        Affiliation::Owner,
        Affiliation::Admin,
        Affiliation::Member,
        Affiliation::None,
        Affiliation::Outcast,
    ];

    /// The name XEP-0045 gives it (also how stores write it).
    pub fn name(self) -> &'static str {
        match self {
            Affiliation::Owner => "owner",
            Affiliation::Admin => "admin",
            Affiliation::Member => "member",
            Affiliation::None => "none",
            Affiliation::Outcast => "outcast",
        }
    }

    /// The affiliation [`Affiliation::name`] names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Its place on the ladder: owner 4 … outcast 0, for "at least" comparisons.
    pub fn rank(self) -> u8 {
        match self {
            Affiliation::Owner => 4,
            Affiliation::Admin => 3,
            Affiliation::Member => 2,
            Affiliation::None => 1,
            Affiliation::Outcast => 0,
        }
    }
}

/// An occupant's part in the room while present (XEP-0045 §5.1), highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Kicks, grants and revokes voice.
    Moderator,
    /// Speaks.
    Participant,
    /// Listens only (in a moderated room).
    Visitor,
    /// Not in the room (the role a kicked or leaving occupant is shown with).
    None,
}

impl Role {
    /// Every role, highest first.
    pub const ALL: [Role; 4] = [
        Role::Moderator,
        Role::Participant,
        Role::Visitor,
        Role::None,
    ];

    /// The name XEP-0045 gives it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Moderator => "moderator",
            Role::Participant => "participant",
            Role::Visitor => "visitor",
            Role::None => "none",
        }
    }

    /// The role [`Role::name`] names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }
}
