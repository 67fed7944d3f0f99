//! The composed presence states of DESIGN §2 and their fixed mappings: colour, basic presence for SIP and
//! federated peers (004 Table 20-3), and the XMPP `<show/>` a watcher's client displays.

/// The XMPP `<show/>` of an available presence; `Available` stands for "no `<show/>`".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Show {
    /// Free for chat.
    Chat,
    /// Online, no `<show/>`.
    #[default]
    Available,
    /// Away (idle).
    Away,
    /// Extended away.
    Xa,
    /// Do not disturb.
    Dnd,
}

/// One user's presence as composed from all sources, what SIP watchers and federated peers see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceState {
    /// Green: reachable.
    Available,
    /// Yellow: idle on all clients.
    Idle,
    /// Red: busy (a busy activity, a busy calendar slot mapped without the meeting flag).
    Busy,
    /// Yellow: on a call.
    OnThePhone,
    /// Yellow: in a meeting.
    InAMeeting,
    /// Red: do not disturb.
    Dnd,
    /// Red: out of office.
    OutOfOffice,
    /// Grey: offline.
    Unavailable,
}

/// The colour clients show for a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// Available.
    Green,
    /// Idle, on the phone, in a meeting.
    Yellow,
    /// Busy, do not disturb, out of office.
    Red,
    /// Offline.
    Grey,
}

/// The basic presence of SIP and federated peers (004 Table 20-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basic {
    /// Available.
    Available,
    /// Away.
    Away,
    /// Busy.
    Busy,
    /// Offline.
    Offline,
}

impl PresenceState {
    /// The colour of 004 Table 20-3.
    pub fn colour(self) -> Colour {
        match self {
            PresenceState::OutOfOffice | PresenceState::Dnd | PresenceState::Busy => Colour::Red,
            PresenceState::OnThePhone | PresenceState::InAMeeting | PresenceState::Idle => {
                Colour::Yellow
            }
            PresenceState::Available => Colour::Green,
            PresenceState::Unavailable => Colour::Grey,
        }
    }

    /// The basic presence of 004 Table 20-3.
    pub fn basic(self) -> Basic {
        match self {
            PresenceState::OutOfOffice | PresenceState::Idle => Basic::Away,
            PresenceState::Dnd
            | PresenceState::Busy
            | PresenceState::OnThePhone
            | PresenceState::InAMeeting => Basic::Busy,
            PresenceState::Available => Basic::Available,
            PresenceState::Unavailable => Basic::Offline,
        }
    }

    /// The XMPP `<show/>` for watchers; `None` for unavailable. Yellow states read as away and red ones as
    /// do-not-disturb, except out of office, which is extended away.
    pub fn show(self) -> Option<Show> {
        match self {
            PresenceState::Available => Some(Show::Available),
            PresenceState::Idle | PresenceState::OnThePhone | PresenceState::InAMeeting => {
                Some(Show::Away)
            }
            PresenceState::Busy | PresenceState::Dnd => Some(Show::Dnd),
            PresenceState::OutOfOffice => Some(Show::Xa),
            PresenceState::Unavailable => None,
        }
    }

    /// The status text shown when no source gave one.
    pub fn default_text(self) -> Option<&'static str> {
        match self {
            PresenceState::OnThePhone => Some("On the phone"),
            PresenceState::InAMeeting => Some("In a meeting"),
            PresenceState::OutOfOffice => Some("Out of office"),
            PresenceState::Busy => Some("Busy"),
            _ => None,
        }
    }
}

impl Show {
    /// How an XMPP `<show/>` reads as a composed state (DESIGN §2: none/chat → Available, away/xa → Away, dnd → DND).
    pub fn state(self) -> PresenceState {
        match self {
            Show::Chat | Show::Available => PresenceState::Available,
            Show::Away | Show::Xa => PresenceState::Idle,
            Show::Dnd => PresenceState::Dnd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 004 Table 20-3, row by row.
    #[test]
    fn table_20_3() {
        let rows = [
            (PresenceState::OutOfOffice, Colour::Red, Basic::Away),
            (PresenceState::Dnd, Colour::Red, Basic::Busy),
            (PresenceState::Busy, Colour::Red, Basic::Busy),
            (PresenceState::OnThePhone, Colour::Yellow, Basic::Busy),
            (PresenceState::InAMeeting, Colour::Yellow, Basic::Busy),
            (PresenceState::Idle, Colour::Yellow, Basic::Away),
            (PresenceState::Available, Colour::Green, Basic::Available),
            (PresenceState::Unavailable, Colour::Grey, Basic::Offline),
        ];
        for (state, colour, basic) in rows {
            assert_eq!(
                (state.colour(), state.basic()),
                (colour, basic),
                "{state:?}"
            );
        }
    }

    /// DESIGN §2 XMPP mapping, row by row.
    #[test]
    fn xmpp_show_mapping() {
        assert_eq!(Show::Available.state(), PresenceState::Available);
        assert_eq!(Show::Chat.state(), PresenceState::Available);
        assert_eq!(Show::Away.state(), PresenceState::Idle);
        assert_eq!(Show::Xa.state(), PresenceState::Idle);
        assert_eq!(Show::Dnd.state(), PresenceState::Dnd);
    }
}
