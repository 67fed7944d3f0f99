//! The account features a session calls with a request (the IQ side of the engine), registered in one place.
//!
//! Each feature has a module of its own holding what a session can ask of it ([`Call`]), what it answers
//! ([`Answer`]) and what it pushes unasked ([`Push`]). The engine serves each in a module of its own under
//! `engine/`, and each shell translates each in a module of its own, so a new feature adds a module and one line
//! to each enum here rather than a variant to `Input`, to `Stanza` and to every match over them.

pub mod app_push;
pub mod avatar;
pub mod blocking;
pub mod carbons;
pub mod mam;
pub mod pep;
pub mod private;
pub mod roster;
pub mod settings;
pub mod vcard;

/// A request of a session to one feature; it reaches the engine as `Input::Request`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// The user's contact list (RFC 6121 §2).
    Roster(roster::Call),
    /// The user's block list (XEP-0191).
    Blocking(blocking::Call),
    /// The user's presence settings (this server's own namespace).
    Settings(settings::Call),
    /// Private XML storage (XEP-0049).
    Private(private::Call),
    /// vCards (XEP-0054).
    VCard(vcard::Call),
    /// Message carbons (XEP-0280).
    Carbons(carbons::Call),
    /// Archiving preferences (XEP-0313).
    Mam(mam::Call),
    /// Personal eventing (XEP-0163).
    Pep(pep::Call),
    /// Push notification registrations (XEP-0357).
    AppPush(app_push::Call),
}

impl Call {
    /// The user, other than the caller's own, the call needs loaded before it can be answered.
    pub fn needs(&self) -> Option<&crate::jid::BareJid> {
        match self {
            Call::VCard(vcard::Call::Get { of }) => of.as_ref(),
            Call::Pep(call) => call.needs(),
            _ => None,
        }
    }
}

/// The successful answer to a [`Call`], delivered as `Stanza::Answer`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Answer {
    /// Done, with nothing to return.
    Done,
    /// The roster.
    Roster(roster::Answer),
    /// The block list.
    Blocking(blocking::Answer),
    /// The presence settings.
    Settings(settings::Answer),
    /// A private XML element.
    Private(private::Answer),
    /// A vCard.
    VCard(vcard::Answer),
    /// Archiving preferences.
    Mam(mam::Answer),
    /// A personal eventing answer.
    Pep(pep::Answer),
}

/// A change a feature tells the sessions that asked for it, unrequested; delivered as `Stanza::Push`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Push {
    /// A roster item changed (RFC 6121 §2.1.6).
    Roster(roster::Push),
    /// The block list changed (XEP-0191 §3.3, §3.4).
    Blocking(blocking::Push),
    /// A copy of a message another session sent or received (XEP-0280).
    Carbon(carbons::Copy),
    /// A personal eventing notification (XEP-0163 §4.3).
    Pep(pep::Event),
}

impl Answer {
    /// About how many bytes the answer takes in memory, for the bounds of the queues it waits in.
    pub fn weight(&self) -> usize {
        match self {
            Answer::Done => 0,
            Answer::Roster(r) => r.items.iter().flatten().map(roster::item_weight).sum(),
            Answer::Blocking(b) => b.items.len() * 64,
            Answer::Settings(_) => 0,
            Answer::Private(p) => p.xml.as_ref().map_or(0, String::len),
            Answer::VCard(v) => v.xml.as_ref().map_or(0, String::len) + v.photo.weight(),
            Answer::Mam(p) => (p.always.len() + p.never.len()) * 64,
            Answer::Pep(p) => p.weight(),
        }
    }
}

impl Push {
    /// About how many bytes the push takes in memory, for the bounds of the queues it waits in.
    pub fn weight(&self) -> usize {
        match self {
            Push::Roster(p) => match &p.change {
                crate::roster::RosterChange::Updated(i) => roster::item_weight(i),
                crate::roster::RosterChange::Removed(j) => j.as_str().len(),
            },
            Push::Blocking(_) => 64,
            Push::Pep(e) => e.weight(),
            Push::Carbon(c) => {
                c.message.body.as_ref().map_or(0, String::len)
                    + c.message.extensions.iter().map(String::len).sum::<usize>()
            }
        }
    }
}
