//! Where a group chat room lives in a cluster (issue 15): its **home node**, chosen by rendezvous
//! (highest-random-weight) hashing of the room's bare address over the names of the cluster's nodes.
//!
//! Why rendezvous hashing: every node computes the same answer from the configured node names alone, with no
//! table to keep and no coordination, it is stable across restarts, and adding or removing a node only moves
//! the rooms whose home it wins or was. While a room's home node is down its rooms are served where that
//! node's users are served (its failover peer) and go back on failback; that is the runtime's to track (it knows
//! who serves whom), and the engine is told which homes it serves (`Input::RoomPlacement`).

use sha2::{Digest, Sha256};

use crate::jid::BareJid;

/// The home node of `room` among `nodes` (their names), `None` when there are none. The order of `nodes` does
/// not matter; the room's address is compared in its normalised form.
pub fn room_home<'a, S: AsRef<str>>(room: &BareJid, nodes: &'a [S]) -> Option<&'a str> {
    nodes
        .iter()
        .map(AsRef::as_ref)
        .max_by_key(|node| (weight(node, room), *node))
}

/// The node's weight for the room: the first 8 bytes of SHA-256 over both names. A cryptographic hash so that
/// any set of names spreads rooms evenly; the cost (a few hashes per room request) is negligible.
fn weight(node: &str, room: &BareJid) -> u64 {
    let mut h = Sha256::new();
    h.update(node.as_bytes());
    h.update([0]);
    h.update(room.as_str().as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(i: usize) -> BareJid {
        BareJid::new(&format!("room{i}@conference.x")).expect("valid room")
    }

    #[test]
    fn the_home_is_stable_and_independent_of_the_order_of_nodes() {
        let nodes = ["a", "b", "c"];
        let reversed = ["c", "b", "a"];
        for i in 0..200 {
            let home = room_home(&room(i), &nodes);
            assert_eq!(home, room_home(&room(i), &nodes));
            assert_eq!(home, room_home(&room(i), &reversed));
        }
        // Fixed answers (the e2e suite computes the same in Python), so a change of the hash, which would move
        // every room of a running cluster, is seen; and the room's address is compared normalised.
        let fixed = |r: &str| room_home(&BareJid::new(r).expect("valid room"), &nodes);
        assert_eq!(fixed("lobby@conference.x"), Some("a"));
        assert_eq!(fixed("team@conference.x"), Some("c"));
        assert_eq!(fixed("room0@conference.x"), Some("b"));
        assert_eq!(fixed("LOBBY@conference.x"), Some("a"));
    }

    #[test]
    fn rooms_spread_over_the_nodes() {
        let nodes = ["a", "b", "c"];
        let mut counts = [0usize; 3];
        for i in 0..3000 {
            let home = room_home(&room(i), &nodes).expect("a node");
            counts[nodes.iter().position(|n| *n == home).expect("one of them")] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn removing_a_node_moves_only_its_rooms() {
        let all = ["a", "b", "c"];
        let without_c = ["a", "b"];
        for i in 0..500 {
            let before = room_home(&room(i), &all).expect("a node");
            let after = room_home(&room(i), &without_c).expect("a node");
            if before != "c" {
                assert_eq!(before, after, "room {i} moved although its home stayed");
            }
        }
        assert_eq!(room_home::<&str>(&room(0), &[]), None);
    }
}
