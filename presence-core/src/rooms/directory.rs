//! The public rooms of this service that another engine serves (issue 17): what disco#items of the service
//! lists besides the rooms served here, when rooms are spread over the shards of a node (or the nodes of a
//! cluster, which route rooms the same way).
//!
//! **Why a directory, kept by announcements, rather than asking every home at request time.** A request to
//! the service is answered by the asker's own engine. Gathering from every home per request would fan each
//! disco#items out to every other engine and need per-request state, a deadline and partial answers; a
//! listing changes far more rarely than it is read. So the engine serving a room announces each change of
//! its listing (a name when the room is public and unlocked, nothing when it is not listed or is gone:
//! created and configured, made public or private, renamed, destroyed, emptied, dropped on a move) to every
//! other home (`RoomTraffic::Listed`, one per other home: the fan-out is per change, bounded by the number of
//! shards or nodes), and every engine keeps what it hears here. What an engine knows at start comes from the
//! store: the persistent rooms it is given and does not serve are entered when it releases them to their
//! home (the room placement), and rooms it stops serving on a later move likewise.
//!
//! **Consistency.** Announcements from one engine to another arrive in the order they were made (FIFO per
//! pair of shards, per pair of nodes), so an entry is the home's last word on its room. An announcement that
//! is lost (the receiving shard's queue was full past its bound, or a cluster link dropped it or the node was
//! gone) leaves an entry stale until the room's next change; a node that starts after a peer created ad hoc
//! public rooms learns of them at their next change; the ad hoc rooms of a node killed outright stay listed by
//! nodes other than the one taking its rooms over (which forgets every entry of a room it now serves). The
//! entries are a listing only: entering a listed room always goes to its home (and creates it if it is gone).
//!
//! **Bounded.** At most [`Directory::cap`] entries (each home holds at most `max_rooms` rooms; the engine
//! sets the cap to that times the number of homes). At the bound a newly announced room is not entered, and
//! nothing is logged (this crate is sans-IO; the bound is reached only when the homes' `max_rooms` differ): it
//! is missing from this engine's listing until an entry is freed and it is announced again.

use hashbrown::HashMap;

use crate::jid::BareJid;

/// Public rooms served by other engines, with their names.
#[derive(Debug, Default)]
pub struct Directory {
    listed: HashMap<BareJid, String>,
    cap: usize,
}

impl Directory {
    /// An empty directory that holds at most `cap` rooms.
    pub fn new(cap: usize) -> Self {
        Directory {
            listed: HashMap::new(),
            cap,
        }
    }

    /// The most rooms it holds.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Changes the bound; entries beyond it are kept until they go (they were within the old bound).
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
    }

    /// A home's word on `room`: listed under `name`, or (`None`) not listed.
    pub fn note(&mut self, room: BareJid, name: Option<String>) {
        match name {
            None => {
                self.listed.remove(&room);
            }
            Some(name) => {
                if self.listed.len() >= self.cap && !self.listed.contains_key(&room) {
                    return;
                }
                self.listed.insert(room, name);
            }
        }
    }

    /// Forgets every room `keep` refuses (served here now: the service lists it itself).
    pub fn retain(&mut self, keep: impl Fn(&BareJid) -> bool) {
        self.listed.retain(|room, _| keep(room));
    }

    /// The rooms listed, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&BareJid, &String)> {
        self.listed.iter()
    }

    /// How many rooms it lists.
    pub fn len(&self) -> usize {
        self.listed.len()
    }

    /// Whether it lists none.
    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(s: &str) -> BareJid {
        BareJid::new(&format!("{s}@conference.x")).expect("valid")
    }

    #[test]
    fn the_last_word_on_a_room_wins_and_unlisting_removes_it() {
        let mut d = Directory::new(10);
        d.note(room("a"), Some("A".into()));
        d.note(room("a"), Some("Renamed".into()));
        d.note(room("b"), Some("B".into()));
        d.note(room("b"), None);
        let listed: Vec<_> = d.iter().map(|(r, n)| (r.clone(), n.clone())).collect();
        assert_eq!(listed, vec![(room("a"), "Renamed".to_owned())]);
    }

    #[test]
    fn at_the_bound_new_rooms_are_not_entered_but_known_ones_change() {
        let mut d = Directory::new(2);
        d.note(room("a"), Some("A".into()));
        d.note(room("b"), Some("B".into()));
        d.note(room("c"), Some("C".into()));
        assert_eq!(d.len(), 2);
        assert!(!d.iter().any(|(r, _)| *r == room("c")));
        d.note(room("a"), Some("A2".into()));
        assert!(d.iter().any(|(r, n)| *r == room("a") && n == "A2"));
        d.note(room("a"), None);
        d.note(room("c"), Some("C".into()));
        assert!(d.iter().any(|(r, _)| *r == room("c")));
    }
}
