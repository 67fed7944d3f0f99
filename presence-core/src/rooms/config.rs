//! A room's configuration (XEP-0045 §10.2, the `muc#roomconfig` form) and the service's limits (DESIGN §5).

use crate::rooms::limits::RoomLimits;

/// Who may see an occupant's real address (XEP-0045 `muc#roomconfig_whois`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WhoIs {
    /// Everyone in the room: a non-anonymous room.
    Anyone,
    /// Moderators only: a semi-anonymous room.
    Moderators,
}

/// How a room is set up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomConfig {
    /// The natural-language name.
    pub name: String,
    /// A short description.
    pub description: String,
    /// Survives its last occupant and a restart (an ad hoc room vanishes with its last occupant).
    pub persistent: bool,
    /// Listed in the service's items (disco#items); a hidden room is reachable only by its address.
    pub public: bool,
    /// Only members (and admins, owners) may enter.
    pub members_only: bool,
    /// Only participants and moderators may speak; newcomers without affiliation are visitors.
    pub moderated: bool,
    /// The password entering takes, if any.
    pub password: Option<String>,
    /// How many may be in the room at once.
    pub max_occupants: usize,
    /// Who sees real addresses.
    pub whois: WhoIs,
    /// How many messages the room keeps for newcomers (0: none).
    pub history_length: usize,
    /// Whether occupants may send each other private messages through the room.
    pub allow_private_messages: bool,
    /// Whether participants (not only moderators) may change the subject.
    pub change_subject: bool,
    /// Whether the room archives its messages (`muc#roomconfig_enablearchiving`); only a persistent room does,
    /// whatever this says (an ad hoc room keeps nothing, DESIGN §5).
    pub archiving: bool,
    /// Whether occupants (not only admins and owners) may invite others into a members-only room (which makes
    /// the invitee a member).
    pub allow_invites: bool,
}

impl RoomConfig {
    /// A new room's configuration under the service's limits: an open, public, ad hoc room (DESIGN §5).
    pub fn new(limits: &RoomLimits) -> Self {
        RoomConfig {
            name: String::new(),
            description: String::new(),
            persistent: false,
            public: true,
            members_only: false,
            moderated: false,
            password: None,
            max_occupants: limits.default_max_occupants,
            whois: WhoIs::Moderators,
            history_length: limits.default_history,
            allow_private_messages: true,
            change_subject: false,
            // On by default: once the owner makes the room persistent it archives unless told not to.
            archiving: true,
            allow_invites: false,
        }
    }

    /// Whether occupants' real addresses are shown to everyone.
    pub fn non_anonymous(&self) -> bool {
        self.whois == WhoIs::Anyone
    }

    /// This configuration with the fields `change` sets, if the result is within `limits`.
    pub fn with(
        &self,
        change: &ConfigChange,
        limits: &RoomLimits,
    ) -> Result<RoomConfig, ConfigError> {
        let mut next = self.clone();
        let set = |field: &mut bool, v: Option<bool>| {
            if let Some(v) = v {
                *field = v;
            }
        };
        if let Some(name) = &change.name {
            next.name.clone_from(name);
        }
        if let Some(d) = &change.description {
            next.description.clone_from(d);
        }
        set(&mut next.persistent, change.persistent);
        set(&mut next.public, change.public);
        set(&mut next.members_only, change.members_only);
        set(&mut next.moderated, change.moderated);
        set(
            &mut next.allow_private_messages,
            change.allow_private_messages,
        );
        set(&mut next.change_subject, change.change_subject);
        set(&mut next.archiving, change.archiving);
        set(&mut next.allow_invites, change.allow_invites);
        if let Some(w) = change.whois {
            next.whois = w;
        }
        if let Some(n) = change.max_occupants {
            if n == 0 || n > limits.max_occupants {
                return Err(ConfigError::MaxOccupants {
                    asked: n,
                    limit: limits.max_occupants,
                });
            }
            next.max_occupants = n;
        }
        if let Some(n) = change.history_length {
            if n > limits.max_history {
                return Err(ConfigError::HistoryLength {
                    asked: n,
                    limit: limits.max_history,
                });
            }
            next.history_length = n;
        }
        // The form names the password and whether it is needed apart; a protected room needs one. A form that
        // leaves the secret out (clients do not echo it back) keeps the one set before.
        let given = change.password.clone().filter(|s| !s.is_empty());
        let protected = change
            .password_protected
            .unwrap_or(self.password.is_some() || given.is_some());
        next.password = match (protected, given.or_else(|| self.password.clone())) {
            (false, _) => None,
            (true, Some(s)) => Some(s),
            (true, None) => return Err(ConfigError::NoPassword),
        };
        Ok(next)
    }
}

/// A submitted configuration: the fields the form set, each `None` when left out.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct ConfigChange {
    /// `muc#roomconfig_roomname`.
    pub name: Option<String>,
    /// `muc#roomconfig_roomdesc`.
    pub description: Option<String>,
    /// `muc#roomconfig_persistentroom`.
    pub persistent: Option<bool>,
    /// `muc#roomconfig_publicroom`.
    pub public: Option<bool>,
    /// `muc#roomconfig_membersonly`.
    pub members_only: Option<bool>,
    /// `muc#roomconfig_moderatedroom`.
    pub moderated: Option<bool>,
    /// `muc#roomconfig_passwordprotectedroom`.
    pub password_protected: Option<bool>,
    /// `muc#roomconfig_roomsecret`.
    pub password: Option<String>,
    /// `muc#roomconfig_maxusers`.
    pub max_occupants: Option<usize>,
    /// `muc#roomconfig_whois`.
    pub whois: Option<WhoIs>,
    /// `muc#roomconfig_historylength` (or `muc#maxhistoryfetch`).
    pub history_length: Option<usize>,
    /// `muc#roomconfig_allowpm`.
    pub allow_private_messages: Option<bool>,
    /// `muc#roomconfig_changesubject`.
    pub change_subject: Option<bool>,
    /// `muc#roomconfig_enablearchiving`.
    pub archiving: Option<bool>,
    /// `muc#roomconfig_allowinvites`.
    pub allow_invites: Option<bool>,
}

/// Why a submitted configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The occupant limit asked for is 0 or above the service's.
    #[error("max occupants {asked} is not between 1 and the service's limit of {limit}")]
    MaxOccupants {
        /// What the form asked.
        asked: usize,
        /// The service's limit.
        limit: usize,
    },
    /// The history length asked for is above the service's.
    #[error("history length {asked} is above the service's limit of {limit}")]
    HistoryLength {
        /// What the form asked.
        asked: usize,
        /// The service's limit.
        limit: usize,
    },
    /// The room is to be password-protected but no password was given.
    #[error("a password-protected room needs a non-empty password")]
    NoPassword,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_bound_what_a_form_may_ask() {
        let limits = RoomLimits::default();
        let c = RoomConfig::new(&limits);
        assert_eq!(c.max_occupants, 50);
        assert_eq!(c.history_length, 15);
        let too_many = ConfigChange {
            max_occupants: Some(1001),
            ..ConfigChange::default()
        };
        assert!(matches!(
            c.with(&too_many, &limits),
            Err(ConfigError::MaxOccupants { .. })
        ));
        let history = ConfigChange {
            history_length: Some(101),
            ..ConfigChange::default()
        };
        assert!(matches!(
            c.with(&history, &limits),
            Err(ConfigError::HistoryLength { .. })
        ));
        let ok = ConfigChange {
            max_occupants: Some(1000),
            history_length: Some(100),
            ..ConfigChange::default()
        };
        assert_eq!(
            c.with(&ok, &limits).expect("within limits").max_occupants,
            1000
        );
    }

    #[test]
    fn a_password_needs_protection_and_protection_a_password() {
        let limits = RoomLimits::default();
        let c = RoomConfig::new(&limits);
        let bare = ConfigChange {
            password_protected: Some(true),
            ..ConfigChange::default()
        };
        assert_eq!(c.with(&bare, &limits), Err(ConfigError::NoPassword));
        let both = ConfigChange {
            password_protected: Some(true),
            password: Some("s3cret".into()),
            ..ConfigChange::default()
        };
        let protected = c.with(&both, &limits).expect("valid");
        assert_eq!(protected.password.as_deref(), Some("s3cret"));
        // Resubmitting the form without the secret keeps it; switching protection off drops it.
        let again = ConfigChange {
            password_protected: Some(true),
            ..ConfigChange::default()
        };
        assert_eq!(
            protected
                .with(&again, &limits)
                .expect("kept")
                .password
                .as_deref(),
            Some("s3cret")
        );
        let off = ConfigChange {
            password_protected: Some(false),
            ..ConfigChange::default()
        };
        assert_eq!(protected.with(&off, &limits).expect("valid").password, None);
        // An unrelated change keeps the password.
        let name = ConfigChange {
            name: Some("n".into()),
            ..ConfigChange::default()
        };
        assert_eq!(
            protected
                .with(&name, &limits)
                .expect("kept")
                .password
                .as_deref(),
            Some("s3cret")
        );
    }
}
