//! Presence composition (DESIGN §2): every source of one user's presence — each XMPP session and SIP endpoint,
//! phone lines, the calendar and a manual status — folded into one composed presence on every change.
//!
//! The order of precedence, first match wins:
//!
//! | # | condition | composed state | overrides every session's `<show/>` |
//! |---|---|---|---|
//! | 1 | no available session or endpoint | Unavailable | – |
//! | 2 | a manual status is set | that status | yes |
//! | 3 | calendar out of office, or an endpoint's `vacation` activity | Out of office | yes |
//! | 4 | an endpoint shows do-not-disturb | Do not disturb | no (that endpoint's own) |
//! | 5 | a line or an endpoint is on the phone | On the phone (DND if the user asked) | yes |
//! | 6 | calendar busy, or an endpoint's `meeting` activity | In a meeting (DND if the user asked) | yes |
//! | 7 | an endpoint's `busy` activity | Busy | no |
//! | 8 | an endpoint is available (no show, or chat) without an `away` activity | Available | no |
//! | 9 | otherwise: every endpoint away or extended away | Idle | no |
//!
//! Phone lines and the calendar only colour a user who is signed in somewhere: with no available endpoint the user
//! is unavailable whatever the phone says, so a desk phone alone never makes a user look reachable for IM.

pub mod calendar;
mod state;

pub use state::{Basic, Colour, PresenceState, Show};

/// An RPID activity (RFC 4480) an endpoint may report alongside its availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activity {
    /// On a call.
    OnThePhone,
    /// In a meeting.
    Meeting,
    /// Busy.
    Busy,
    /// Away.
    Away,
    /// On vacation (out of office).
    Vacation,
}

/// A small set of activities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Activities(u8);

impl Activities {
    /// No activity.
    pub const NONE: Activities = Activities(0);

    fn bit(a: Activity) -> u8 {
        1 << (a as u8)
    }

    /// The set with `a` added.
    pub fn with(self, a: Activity) -> Self {
        Activities(self.0 | Self::bit(a))
    }

    /// Whether `a` is in the set.
    pub fn contains(self, a: Activity) -> bool {
        self.0 & Self::bit(a) != 0
    }
}

impl FromIterator<Activity> for Activities {
    fn from_iter<I: IntoIterator<Item = Activity>>(iter: I) -> Self {
        iter.into_iter().fold(Activities::NONE, Activities::with)
    }
}

/// What one session or endpoint says about its user's presence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct EndpointPresence {
    /// The availability shown.
    pub show: Show,
    /// Free-form status text.
    pub status: Option<String>,
    /// XMPP priority (-128..=127); negative means "never route bare-JID messages here".
    pub priority: i8,
    /// RPID activities reported with it (SIP endpoints).
    pub activities: Activities,
    /// Protocol extensions of the presence, opaque to the engine (for XMPP, serialized child elements such as
    /// entity capabilities or an avatar hash), passed on to whoever sees this endpoint's presence.
    pub extensions: PresenceExtensions,
    /// What the presence says of the avatar (XEP-0153), read out of the extensions so that the engine can put
    /// the account's own avatar in its place (XEP-0398); `None` when it says nothing.
    pub avatar: Option<crate::feature::avatar::PhotoUpdate>,
}

/// A presence's extension payloads, shared: one presence goes out to many watchers.
pub type PresenceExtensions = std::sync::Arc<[String]>;

/// The state of one phone line the user appears on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LineState {
    /// On hook.
    #[default]
    Idle,
    /// Off hook or in a call.
    OnThePhone,
}

/// The user's calendar at this moment (004 Table 20-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CalendarState {
    /// Nothing booked.
    #[default]
    Free,
    /// A tentative booking (reads as free).
    Tentative,
    /// In a meeting.
    Busy,
    /// An out-of-office booking.
    OutOfOffice,
}

/// A status the user set by hand; it overrides everything the system works out until cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManualState {
    /// Available.
    Available,
    /// Away.
    Away,
    /// Busy.
    Busy,
    /// Do not disturb.
    Dnd,
    /// Out of office.
    OutOfOffice,
}

/// A manual status with its optional text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ManualStatus {
    /// The chosen state.
    pub state: ManualState,
    /// The text shown with it.
    pub text: Option<String>,
}

/// The sources of a user's presence that are not sessions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Overlays {
    /// Each line appearance the user is on, by line identifier.
    pub lines: Vec<(String, LineState)>,
    /// The calendar.
    pub calendar: CalendarState,
    /// The one manual status, if set.
    pub manual: Option<ManualStatus>,
}

impl Overlays {
    /// Whether any line the user appears on is busy.
    pub fn on_the_phone(&self) -> bool {
        self.lines.iter().any(|(_, s)| *s == LineState::OnThePhone)
    }

    /// Records the state of one line; idle lines are forgotten.
    pub fn set_line(&mut self, line: &str, state: LineState) {
        self.lines.retain(|(l, _)| l != line);
        if state == LineState::OnThePhone {
            self.lines.push((line.to_owned(), state));
        }
    }

    /// Whether nothing is set (the overlay can be dropped).
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.calendar == CalendarState::Free && self.manual.is_none()
    }
}

/// The user's choices that change composition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ComposeSettings {
    /// Show do-not-disturb instead of on-the-phone.
    pub dnd_on_phone: bool,
    /// Show do-not-disturb instead of in-a-meeting.
    pub dnd_in_meeting: bool,
}

/// The result of composition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Composed {
    /// The composed state.
    pub state: PresenceState,
    /// The status text to show with it.
    pub status: Option<String>,
    /// Whether the state came from a user-wide source (manual, phone, calendar) and so replaces what each XMPP
    /// session shows, rather than describing one of them.
    pub overriding: bool,
}

impl Composed {
    /// The composition of a user with no available endpoint.
    pub const UNAVAILABLE: Composed = Composed {
        state: PresenceState::Unavailable,
        status: None,
        overriding: false,
    };

    fn system(state: PresenceState, text: Option<&str>) -> Self {
        Composed {
            state,
            status: text.or(state.default_text()).map(str::to_owned),
            overriding: true,
        }
    }

    fn endpoint(state: PresenceState, source: Option<&EndpointPresence>) -> Self {
        Composed {
            state,
            status: source
                .and_then(|e| e.status.clone())
                .or(state.default_text().map(str::to_owned)),
            overriding: false,
        }
    }

    /// What a session whose own presence is `own` shows its watchers, given this composition.
    pub fn apply_to(&self, own: &EndpointPresence) -> (Show, Option<String>) {
        match (self.overriding, self.state.show()) {
            (true, Some(show)) => (show, self.status.clone()),
            _ => (own.show, own.status.clone()),
        }
    }
}

/// Composes one user's presence from all sources (the table in the module docs).
pub fn compose<'a>(
    endpoints: impl IntoIterator<Item = &'a EndpointPresence>,
    overlays: &Overlays,
    settings: ComposeSettings,
) -> Composed {
    let endpoints: Vec<&EndpointPresence> = endpoints.into_iter().collect();
    if endpoints.is_empty() {
        return Composed::UNAVAILABLE;
    }
    if let Some(manual) = &overlays.manual {
        let state = match manual.state {
            ManualState::Available => PresenceState::Available,
            ManualState::Away => PresenceState::Idle,
            ManualState::Busy => PresenceState::Busy,
            ManualState::Dnd => PresenceState::Dnd,
            ManualState::OutOfOffice => PresenceState::OutOfOffice,
        };
        return Composed::system(state, manual.text.as_deref());
    }
    let has = |a: Activity| endpoints.iter().any(|e| e.activities.contains(a));
    // Among endpoints in the same state, the status text of the highest-priority one is shown.
    let best = |pred: &dyn Fn(&EndpointPresence) -> bool| {
        endpoints
            .iter()
            .copied()
            .filter(|e| pred(e))
            .max_by_key(|e| e.priority)
    };
    if overlays.calendar == CalendarState::OutOfOffice || has(Activity::Vacation) {
        return Composed::system(PresenceState::OutOfOffice, None);
    }
    if let Some(e) = best(&|e| e.show == Show::Dnd) {
        return Composed::endpoint(PresenceState::Dnd, Some(e));
    }
    if overlays.on_the_phone() || has(Activity::OnThePhone) {
        let state = if settings.dnd_on_phone {
            PresenceState::Dnd
        } else {
            PresenceState::OnThePhone
        };
        return Composed::system(state, Some("On the phone"));
    }
    if overlays.calendar == CalendarState::Busy || has(Activity::Meeting) {
        let state = if settings.dnd_in_meeting {
            PresenceState::Dnd
        } else {
            PresenceState::InAMeeting
        };
        return Composed::system(state, Some("In a meeting"));
    }
    if let Some(e) = best(&|e| e.activities.contains(Activity::Busy)) {
        return Composed::endpoint(PresenceState::Busy, Some(e));
    }
    let available = |e: &EndpointPresence| {
        matches!(e.show, Show::Available | Show::Chat) && !e.activities.contains(Activity::Away)
    };
    if let Some(e) = best(&available) {
        return Composed::endpoint(PresenceState::Available, Some(e));
    }
    Composed::endpoint(PresenceState::Idle, best(&|_| true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(show: Show) -> EndpointPresence {
        EndpointPresence {
            show,
            ..EndpointPresence::default()
        }
    }

    fn with(show: Show, a: Activity) -> EndpointPresence {
        EndpointPresence {
            show,
            activities: Activities::NONE.with(a),
            ..EndpointPresence::default()
        }
    }

    fn phone() -> Overlays {
        let mut o = Overlays::default();
        o.set_line("line1", LineState::OnThePhone);
        o
    }

    fn calendar(c: CalendarState) -> Overlays {
        Overlays {
            calendar: c,
            ..Overlays::default()
        }
    }

    fn state(eps: &[EndpointPresence], o: &Overlays) -> PresenceState {
        compose(eps, o, ComposeSettings::default()).state
    }

    #[test]
    fn row1_no_endpoint_is_unavailable_even_on_the_phone() {
        assert_eq!(state(&[], &phone()), PresenceState::Unavailable);
    }

    #[test]
    fn row2_manual_status_overrides_everything() {
        let mut o = phone();
        o.manual = Some(ManualStatus {
            state: ManualState::Available,
            text: Some("here".into()),
        });
        let c = compose(&[ep(Show::Dnd)], &o, ComposeSettings::default());
        assert_eq!(c.state, PresenceState::Available);
        assert_eq!(c.status.as_deref(), Some("here"));
        assert!(c.overriding);
        o.manual = Some(ManualStatus {
            state: ManualState::Dnd,
            text: None,
        });
        assert_eq!(state(&[ep(Show::Available)], &o), PresenceState::Dnd);
    }

    #[test]
    fn row3_out_of_office() {
        assert_eq!(
            state(
                &[ep(Show::Available)],
                &calendar(CalendarState::OutOfOffice)
            ),
            PresenceState::OutOfOffice
        );
        assert_eq!(
            state(
                &[with(Show::Available, Activity::Vacation)],
                &Overlays::default()
            ),
            PresenceState::OutOfOffice
        );
    }

    #[test]
    fn row4_endpoint_dnd() {
        let c = compose(
            &[ep(Show::Available), ep(Show::Dnd)],
            &phone(),
            ComposeSettings::default(),
        );
        assert_eq!(c.state, PresenceState::Dnd);
        assert!(!c.overriding);
    }

    #[test]
    fn row5_on_the_phone_or_dnd() {
        assert_eq!(
            state(&[ep(Show::Available)], &phone()),
            PresenceState::OnThePhone
        );
        assert_eq!(
            state(
                &[with(Show::Available, Activity::OnThePhone)],
                &Overlays::default()
            ),
            PresenceState::OnThePhone
        );
        let dnd = ComposeSettings {
            dnd_on_phone: true,
            ..ComposeSettings::default()
        };
        let c = compose(&[ep(Show::Available)], &phone(), dnd);
        assert_eq!(c.state, PresenceState::Dnd);
        assert_eq!(c.status.as_deref(), Some("On the phone"));
    }

    #[test]
    fn row6_in_a_meeting_or_dnd() {
        assert_eq!(
            state(&[ep(Show::Available)], &calendar(CalendarState::Busy)),
            PresenceState::InAMeeting
        );
        assert_eq!(
            state(
                &[with(Show::Available, Activity::Meeting)],
                &Overlays::default()
            ),
            PresenceState::InAMeeting
        );
        let dnd = ComposeSettings {
            dnd_in_meeting: true,
            ..ComposeSettings::default()
        };
        assert_eq!(
            compose(&[ep(Show::Away)], &calendar(CalendarState::Busy), dnd).state,
            PresenceState::Dnd
        );
    }

    #[test]
    fn row7_busy_activity() {
        assert_eq!(
            state(
                &[with(Show::Available, Activity::Busy)],
                &Overlays::default()
            ),
            PresenceState::Busy
        );
    }

    #[test]
    fn row8_any_available_endpoint_wins_over_idle_ones() {
        let mut here = ep(Show::Chat);
        here.status = Some("at desk".into());
        here.priority = 1;
        let c = compose(
            &[ep(Show::Away), here, ep(Show::Xa)],
            &Overlays::default(),
            ComposeSettings::default(),
        );
        assert_eq!(c.state, PresenceState::Available);
        assert_eq!(c.status.as_deref(), Some("at desk"));
        assert!(!c.overriding);
    }

    #[test]
    fn row9_idle_on_all_clients_is_away() {
        assert_eq!(
            state(&[ep(Show::Away), ep(Show::Xa)], &Overlays::default()),
            PresenceState::Idle
        );
        assert_eq!(
            state(
                &[with(Show::Available, Activity::Away)],
                &Overlays::default()
            ),
            PresenceState::Idle
        );
    }

    /// 004 Table 20-5: free and tentative read as available, busy as a meeting, out of office as away.
    #[test]
    fn calendar_table_20_5() {
        let rows = [
            (CalendarState::Free, Basic::Available),
            (CalendarState::Tentative, Basic::Available),
            (CalendarState::Busy, Basic::Busy),
            (CalendarState::OutOfOffice, Basic::Away),
        ];
        for (c, basic) in rows {
            assert_eq!(
                state(&[ep(Show::Available)], &calendar(c)).basic(),
                basic,
                "{c:?}"
            );
        }
    }

    #[test]
    fn overriding_state_replaces_each_sessions_show() {
        let c = compose(&[ep(Show::Available)], &phone(), ComposeSettings::default());
        let mut own = ep(Show::Chat);
        own.status = Some("mine".into());
        assert_eq!(c.apply_to(&own), (Show::Away, Some("On the phone".into())));
        let c = compose(
            &[ep(Show::Available)],
            &Overlays::default(),
            ComposeSettings::default(),
        );
        assert_eq!(c.apply_to(&own), (Show::Chat, Some("mine".into())));
    }

    #[test]
    fn idle_lines_are_forgotten() {
        let mut o = phone();
        o.set_line("line1", LineState::Idle);
        assert!(o.is_empty());
    }
}
