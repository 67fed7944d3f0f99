//! The people in a room: one occupant per nickname and one per session, by construction.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use super::affiliation::Role;
use crate::compose::Show;
use crate::jid::FullJid;
use crate::session::SessionId;

/// What an occupant shows the room (their `<show/>` and status text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct OccupantPresence {
    /// Availability detail.
    pub show: Show,
    /// Status text.
    pub status: Option<String>,
}

/// One occupant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occupant {
    /// The nickname (the resource of the occupant's room address).
    pub nick: String,
    /// The session that joined.
    pub session: SessionId,
    /// That session's real address.
    pub jid: FullJid,
    /// The role now.
    pub role: Role,
    /// What they show.
    pub presence: OccupantPresence,
    /// The XEP-0421 id, stable per real bare address and room.
    pub occupant_id: String,
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

    /// The occupant with `nick`, to change in place (not its nickname or session: see [`Occupants::rename`]).
    pub fn get_mut(&mut self, nick: &str) -> Option<&mut Occupant> {
        self.by_nick.get_mut(nick)
    }

    /// The occupant `session` joined as.
    pub fn by_session(&self, session: SessionId) -> Option<&Occupant> {
        self.by_session
            .get(&session)
            .and_then(|n| self.by_nick.get(n))
    }

    /// Every occupant, by nickname.
    pub fn iter(&self) -> impl Iterator<Item = &Occupant> {
        self.by_nick.values()
    }

    /// Seats an occupant, unless the nickname or the session is taken.
    pub fn insert(&mut self, occupant: Occupant) -> Result<(), SeatError> {
        if self.by_nick.contains_key(&occupant.nick) {
            return Err(SeatError::NickTaken(occupant.nick));
        }
        if self.by_session.contains_key(&occupant.session) {
            return Err(SeatError::AlreadyIn(occupant.session));
        }
        self.by_session
            .insert(occupant.session, occupant.nick.clone());
        self.by_nick.insert(occupant.nick.clone(), occupant);
        Ok(())
    }

    /// Takes the occupant with `nick` out.
    pub fn remove(&mut self, nick: &str) -> Option<Occupant> {
        let o = self.by_nick.remove(nick)?;
        self.by_session.remove(&o.session);
        Some(o)
    }

    /// Gives the occupant with `from` the nickname `to`, unless another has it.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), SeatError> {
        if self.by_nick.contains_key(to) {
            return Err(SeatError::NickTaken(to.to_owned()));
        }
        if let Some(mut o) = self.by_nick.remove(from) {
            o.nick = to.to_owned();
            self.by_session.insert(o.session, o.nick.clone());
            self.by_nick.insert(o.nick.clone(), o);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn occupant(nick: &str, session: u64) -> Occupant {
        Occupant {
            nick: nick.to_owned(),
            session: SessionId(session),
            jid: FullJid::new(&format!("u{session}@x/r")).expect("valid"),
            role: Role::Participant,
            presence: OccupantPresence::default(),
            occupant_id: String::new(),
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Join(u8, u64),
        Leave(u8),
        Rename(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..6, 0u64..6).prop_map(|(n, s)| Op::Join(n, s)),
            (0u8..6).prop_map(Op::Leave),
            (0u8..6, 0u8..6).prop_map(|(a, b)| Op::Rename(a, b)),
        ]
    }

    proptest! {
        /// An occupant list never holds two occupants with one nickname, nor one session twice, and its two
        /// indexes always agree.
        #[test]
        fn one_occupant_per_nickname_and_per_session(ops in proptest::collection::vec(op(), 0..60)) {
            let mut o = Occupants::default();
            for op in ops {
                match op {
                    Op::Join(n, s) => { let _ = o.insert(occupant(&format!("n{n}"), s)); }
                    Op::Leave(n) => { o.remove(&format!("n{n}")); }
                    Op::Rename(a, b) => { let _ = o.rename(&format!("n{a}"), &format!("n{b}")); }
                }
                let nicks: Vec<&str> = o.iter().map(|x| x.nick.as_str()).collect();
                let mut unique = nicks.clone();
                unique.dedup();
                prop_assert_eq!(nicks.len(), unique.len());
                prop_assert_eq!(o.by_session.len(), o.by_nick.len());
                for x in o.iter() {
                    prop_assert_eq!(o.by_session(x.session).map(|y| y.nick.as_str()), Some(x.nick.as_str()));
                }
            }
        }
    }

    #[test]
    fn a_taken_nickname_is_refused() {
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
        o.insert(occupant("b", 2)).expect("seated");
        assert_eq!(o.rename("a", "b"), Err(SeatError::NickTaken("b".into())));
        o.rename("a", "c").expect("renamed");
        assert_eq!(
            o.by_session(SessionId(1)).map(|x| x.nick.as_str()),
            Some("c")
        );
    }
}
