//! The user's own presence settings (DESIGN §2): the switches of the policy that change what watchers see rather
//! than who may see it.

use crate::policy::PresenceSettings;

/// What a session asks of its presence settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// The current settings.
    Get,
    /// Changes the switches given; the others stay as they are.
    Set(Change),
}

/// The switches a set names (`None`: leave as it is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Change {
    /// Show "do not disturb" instead of "on the phone" during a call.
    pub dnd_on_phone: Option<bool>,
    /// Show "do not disturb" instead of "in a meeting" during a meeting.
    pub dnd_in_meeting: Option<bool>,
    /// Let watchers see the user's presence at all (off: everyone sees "unavailable").
    pub share_availability: Option<bool>,
}

/// The settings, as a get answers them.
pub type Answer = PresenceSettings;
