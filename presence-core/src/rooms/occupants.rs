//! The people in a room: one occupant per nickname, and each session in at most one occupant, by construction.
//! One user may be in as one occupant through several sessions (XEP-0045 §7.2: "multi-session nicks", as
//! Prosody and ejabberd do): the occupant has one seat per session, and lives while it has a seat.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use super::affiliation::Role;
use crate::compose::Show;
use crate::jid::{BareJid, FullJid};
use crate::session::SessionId;

/// What an occupant shows the room (their `<show/>` and status text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct OccupantPresence {
    /// Availability detail.
    pub show: Show,
    /// Status text.
    pub status: Option<String>,
}

/// One session an occupant is in the room through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    /// The session.
    pub session: SessionId,
    /// Its real full address.
    pub jid: FullJid,
}

/// One occupant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occupant {
    /// The nickname (the resource of the occupant's room address).
    pub nick: String,
    /// The sessions it is in through, first-joined first; never empty while seated. All share one bare address.
    pub seats: Vec<Seat>,
    /// The role now.
    pub role: Role,
    /// What they show.
    pub presence: OccupantPresence,
    /// The XEP-0421 id, stable per real bare address and room.
    pub occupant_id: String,
}

impl Occupant {
    /// The real address shown for the occupant: its first session's.
    pub fn jid(&self) -> &FullJid {
        &self.seats[0].jid
    }

    /// The user behind it.
    pub fn bare(&self) -> &BareJid {
        self.jid().bare()
    }

    /// Whether `session` is one of its seats.
    pub fn has(&self, session: SessionId) -> bool {
        self.seats.iter().any(|s| s.session == session)
    }
}

/// Why an occupant could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatError {
    /// Another occupant has the nickname.
    #[error("the nickname {0} is taken")]
    NickTaken(String),
    /// The session is in the room already.
    #[error("session {0:?} is in the room already")]
    AlreadyIn(SessionId),
    /// No occupant has the nickname.
    #[error("no occupant is called {0}")]
    NoSuchNick(String),
    /// The session is another user's than the occupant's.
    #[error("the occupant {0} is another user")]
    OtherUser(String),
}

/// What taking one session out left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unseated {
    /// The occupant keeps other sessions (shown as it is now).
    Stays(Occupant),
    /// That was its last session: the occupant is gone (shown as it was).
    Gone(Occupant),
}

/// The occupants, by nickname (ordered, so listings are stable) with an index by session.
#[derive(Debug, Clone, Default)]
pub struct Occupants {
    by_nick: BTreeMap<String, Occupant>,
    by_session: HashMap<SessionId, String>,
}

impl Occupants {
    /// How many there are.
    pub fn len(&self) -> usize {
        self.by_nick.len()
    }

    /// Whether the room is empty.
    pub fn is_empty(&self) -> bool {
        self.by_nick.is_empty()
    }

    /// The occupant with `nick`.
    pub fn get(&self, nick: &str) -> Option<&Occupant> {
        self.by_nick.get(nick)
    }

    /// The occupant with `nick`, to change in place (not its nickname or seats: see [`Occupants::rename`] and
    /// [`Occupants::add_seat`]).
    pub fn get_mut(&mut self, nick: &str) -> Option<&mut Occupant> {
        self.by_nick.get_mut(nick)
    }

    /// The occupant `session` is in as.
    pub fn by_session(&self, session: SessionId) -> Option<&Occupant> {
        self.by_session
            .get(&session)
            .and_then(|n| self.by_nick.get(n))
    }

    /// Every occupant, by nickname.
    pub fn iter(&self) -> impl Iterator<Item = &Occupant> {
        self.by_nick.values()
    }

    /// Seats an occupant, unless the nickname or one of its sessions is taken.
    pub fn insert(&mut self, occupant: Occupant) -> Result<(), SeatError> {
        if self.by_nick.contains_key(&occupant.nick) {
            return Err(SeatError::NickTaken(occupant.nick));
        }
        if let Some(s) = occupant
            .seats
            .iter()
            .find(|s| self.by_session.contains_key(&s.session))
        {
            return Err(SeatError::AlreadyIn(s.session));
        }
        for s in &occupant.seats {
            self.by_session.insert(s.session, occupant.nick.clone());
        }
        self.by_nick.insert(occupant.nick.clone(), occupant);
        Ok(())
    }

    /// Adds a session of the same user to the occupant `nick`.
    pub fn add_seat(&mut self, nick: &str, seat: Seat) -> Result<(), SeatError> {
        if self.by_session.contains_key(&seat.session) {
            return Err(SeatError::AlreadyIn(seat.session));
        }
        let Some(o) = self.by_nick.get_mut(nick) else {
            return Err(SeatError::NoSuchNick(nick.to_owned()));
        };
        if o.bare() != seat.jid.bare() {
            return Err(SeatError::OtherUser(nick.to_owned()));
        }
        self.by_session.insert(seat.session, nick.to_owned());
        o.seats.push(seat);
        Ok(())
    }

    /// Takes one session out; the occupant goes with its last one (returned with that last seat).
    pub fn remove_seat(&mut self, session: SessionId) -> Option<Unseated> {
        let nick = self.by_session.remove(&session)?;
        let o = self.by_nick.get_mut(&nick)?;
        if o.seats.len() <= 1 {
            return self.by_nick.remove(&nick).map(Unseated::Gone);
        }
        o.seats.retain(|s| s.session != session);
        Some(Unseated::Stays(o.clone()))
    }

    /// Takes the occupant with `nick` out, with every session.
    pub fn remove(&mut self, nick: &str) -> Option<Occupant> {
        let o = self.by_nick.remove(nick)?;
        for s in &o.seats {
            self.by_session.remove(&s.session);
        }
        Some(o)
    }

    /// Gives the occupant with `from` the nickname `to`, unless another has it.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), SeatError> {
        if self.by_nick.contains_key(to) {
            return Err(SeatError::NickTaken(to.to_owned()));
        }
        if let Some(mut o) = self.by_nick.remove(from) {
            o.nick = to.to_owned();
            for s in &o.seats {
                self.by_session.insert(s.session, o.nick.clone());
            }
            self.by_nick.insert(o.nick.clone(), o);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Session `s` belongs to user `u{s % 3}`, so some sessions share a user and may share an occupant.
    fn seat(session: u64) -> Seat {
        Seat {
            session: SessionId(session),
            jid: FullJid::new(&format!("u{}@x/r{session}", session % 3)).expect("valid"),
        }
    }

    fn occupant(nick: &str, session: u64) -> Occupant {
        Occupant {
            nick: nick.to_owned(),
            seats: vec![seat(session)],
            role: Role::Participant,
            presence: OccupantPresence::default(),
            occupant_id: String::new(),
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Join(u8, u64),
        AddSeat(u8, u64),
        LeaveSession(u64),
        Leave(u8),
        Rename(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..6, 0u64..9).prop_map(|(n, s)| Op::Join(n, s)),
            (0u8..6, 0u64..9).prop_map(|(n, s)| Op::AddSeat(n, s)),
            (0u64..9).prop_map(Op::LeaveSession),
            (0u8..6).prop_map(Op::Leave),
            (0u8..6, 0u8..6).prop_map(|(a, b)| Op::Rename(a, b)),
        ]
    }

    proptest! {
        /// An occupant list never holds two occupants with one nickname, a session is in at most one occupant
        /// (and once in it), an occupant's sessions are one user's, no occupant is left without a session, and
        /// the two indexes always agree.
        #[test]
        fn one_occupant_per_nickname_and_at_most_one_per_session(ops in proptest::collection::vec(op(), 0..80)) {
            let mut o = Occupants::default();
            for op in ops {
                match op {
                    Op::Join(n, s) => { let _ = o.insert(occupant(&format!("n{n}"), s)); }
                    Op::AddSeat(n, s) => { let _ = o.add_seat(&format!("n{n}"), seat(s)); }
                    Op::LeaveSession(s) => { o.remove_seat(SessionId(s)); }
                    Op::Leave(n) => { o.remove(&format!("n{n}")); }
                    Op::Rename(a, b) => { let _ = o.rename(&format!("n{a}"), &format!("n{b}")); }
                }
                let nicks: Vec<&str> = o.iter().map(|x| x.nick.as_str()).collect();
                let mut unique = nicks.clone();
                unique.dedup();
                prop_assert_eq!(nicks.len(), unique.len());
                let mut sessions: Vec<SessionId> =
                    o.iter().flat_map(|x| x.seats.iter().map(|s| s.session)).collect();
                let all = sessions.len();
                sessions.sort_unstable_by_key(|s| s.0);
                sessions.dedup();
                prop_assert_eq!(sessions.len(), all, "a session in two seats");
                prop_assert_eq!(o.by_session.len(), all);
                for x in o.iter() {
                    prop_assert!(!x.seats.is_empty());
                    for s in &x.seats {
                        prop_assert_eq!(s.jid.bare(), x.bare());
                        prop_assert_eq!(o.by_session(s.session).map(|y| y.nick.as_str()), Some(x.nick.as_str()));
                    }
                }
            }
        }
    }

    #[test]
    fn a_taken_nickname_is_refused_but_its_user_may_add_a_session() {
        let mut o = Occupants::default();
        o.insert(occupant("a", 1)).expect("seated");
        assert_eq!(
            o.insert(occupant("a", 2)),
            Err(SeatError::NickTaken("a".into()))
        );
        assert_eq!(
            o.insert(occupant("b", 1)),
            Err(SeatError::AlreadyIn(SessionId(1)))
        );
        // Session 4 is u1's like session 1; session 2 is u2's.
        o.add_seat("a", seat(4)).expect("same user");
        assert_eq!(
            o.add_seat("a", seat(2)),
            Err(SeatError::OtherUser("a".into()))
        );
        o.insert(occupant("b", 2)).expect("seated");
        assert_eq!(o.rename("a", "b"), Err(SeatError::NickTaken("b".into())));
        o.rename("a", "c").expect("renamed");
        assert_eq!(
            o.by_session(SessionId(4)).map(|x| x.nick.as_str()),
            Some("c")
        );
        assert!(
            matches!(o.remove_seat(SessionId(1)), Some(Unseated::Stays(x)) if x.seats.len() == 1)
        );
        assert!(matches!(o.remove_seat(SessionId(4)), Some(Unseated::Gone(x)) if x.nick == "c"));
        assert!(o.get("c").is_none());
    }
}
