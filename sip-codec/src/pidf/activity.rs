//! RPID activities (RFC 4480 §3.2).

/// One `<rpid:activities>` child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// appointment
    Appointment,
    /// away
    Away,
    /// breakfast
    Breakfast,
    /// busy
    Busy,
    /// dinner
    Dinner,
    /// holiday
    Holiday,
    /// in-transit
    InTransit,
    /// looking-for-work
    LookingForWork,
    /// lunch
    Lunch,
    /// meal
    Meal,
    /// meeting
    Meeting,
    /// on-the-phone
    OnThePhone,
    /// performance
    Performance,
    /// permanent-absence
    PermanentAbsence,
    /// playing
    Playing,
    /// presentation
    Presentation,
    /// shopping
    Shopping,
    /// sleeping
    Sleeping,
    /// spectator
    Spectator,
    /// steering
    Steering,
    /// travel
    Travel,
    /// tv
    Tv,
    /// unknown
    Unknown,
    /// vacation
    Vacation,
    /// working
    Working,
    /// worship
    Worship,
    /// `<rpid:other>` with free text.
    Other(String),
}

const NAMES: [(&str, Activity); 26] = [
    ("appointment", Activity::Appointment),
    ("away", Activity::Away),
    ("breakfast", Activity::Breakfast),
    ("busy", Activity::Busy),
    ("dinner", Activity::Dinner),
    ("holiday", Activity::Holiday),
    ("in-transit", Activity::InTransit),
    ("looking-for-work", Activity::LookingForWork),
    ("lunch", Activity::Lunch),
    ("meal", Activity::Meal),
    ("meeting", Activity::Meeting),
    ("on-the-phone", Activity::OnThePhone),
    ("performance", Activity::Performance),
    ("permanent-absence", Activity::PermanentAbsence),
    ("playing", Activity::Playing),
    ("presentation", Activity::Presentation),
    ("shopping", Activity::Shopping),
    ("sleeping", Activity::Sleeping),
    ("spectator", Activity::Spectator),
    ("steering", Activity::Steering),
    ("travel", Activity::Travel),
    ("tv", Activity::Tv),
    ("unknown", Activity::Unknown),
    ("vacation", Activity::Vacation),
    ("working", Activity::Working),
    ("worship", Activity::Worship),
];

impl Activity {
    /// The activity for an RPID element name, `None` for `other` or unknown names.
    pub fn from_element(name: &str) -> Option<Activity> {
        NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| a.clone())
    }

    /// The RPID element name (`other` for [`Activity::Other`]).
    pub fn element(&self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, a)| a == self)
            .map(|(n, _)| *n)
            .unwrap_or("other")
    }
}
