//! The table of user homes and the placement rules of each mode.

use std::collections::BTreeMap;

use super::change::AssignmentChange;
use super::error::AssignmentError;
use super::mode::AssignmentMode;
use super::user::UserId;
use crate::cluster::{NodeId, Slot, Topology};

/// Every assigned user's home node, plus the mode used to place new users.
#[derive(Debug, Clone, Default)]
pub struct Assignments {
    mode: AssignmentMode,
    home: BTreeMap<UserId, NodeId>,
    load: BTreeMap<NodeId, usize>,
}

impl Assignments {
    /// An empty table placing users by `mode`.
    pub fn new(mode: AssignmentMode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// The current mode.
    pub fn mode(&self) -> AssignmentMode {
        self.mode
    }

    /// Changes the mode; existing users stay put until [`Self::rebalance`].
    pub fn set_mode(&mut self, mode: AssignmentMode) {
        self.mode = mode;
    }

    /// The user's home node; `None` means the user gets no presence service.
    pub fn home_of(&self, user: &UserId) -> Option<NodeId> {
        self.home.get(user).copied()
    }

    /// How many users call `node` home.
    pub fn load_of(&self, node: NodeId) -> usize {
        self.load.get(&node).copied().unwrap_or(0)
    }

    /// Users homed on `node`, in address order.
    pub fn users_on(&self, node: NodeId) -> impl Iterator<Item = &UserId> + '_ {
        self.home
            .iter()
            .filter(move |(_, n)| **n == node)
            .map(|(u, _)| u)
    }

    /// Number of assigned users.
    pub fn len(&self) -> usize {
        self.home.len()
    }

    /// Whether no user is assigned.
    pub fn is_empty(&self) -> bool {
        self.home.is_empty()
    }

    /// Places a new user by the mode; in mode none the user stays unassigned (`Ok(None)`).
    pub fn assign_new(
        &mut self,
        user: UserId,
        topology: &Topology,
    ) -> Result<Option<AssignmentChange>, AssignmentError> {
        if let Some(home) = self.home_of(&user) {
            return Err(AssignmentError::AlreadyAssigned { user, home });
        }
        let candidates = self.candidates(topology);
        if self.mode == AssignmentMode::None {
            return Ok(None);
        }
        // Least-loaded with ties broken by slot order: from an even start this is exactly the
        // documented round-robin, and it stays even after users leave.
        let Some(node) = candidates.iter().copied().min_by_key(|n| self.load_of(*n)) else {
            return Err(AssignmentError::NoCandidateNode(user));
        };
        Ok(self.set_home(user, Some(node)))
    }

    /// Assigns `user` to `node` by hand, whatever the mode; `Ok(None)` if nothing changed.
    pub fn assign(
        &mut self,
        user: UserId,
        node: NodeId,
        topology: &Topology,
    ) -> Result<Option<AssignmentChange>, AssignmentError> {
        if topology.group_of(node).is_none() {
            return Err(AssignmentError::UnknownNode { user, node });
        }
        Ok(self.set_home(user, Some(node)))
    }

    /// Removes the user's home; the user gets no presence until assigned again.
    pub fn unassign(&mut self, user: &UserId) -> Option<AssignmentChange> {
        self.set_home(user.clone(), None)
    }

    /// Spreads users evenly again over the mode's nodes for which `eligible` holds.
    ///
    /// Users on an ineligible node of the topology stay where they are (nodes in a failover
    /// state neither give nor take users; see [`crate::failover::NodeState::allows_rebalance`]). Only surplus users move, so sessions are ended no
    /// more often than needed.
    pub fn rebalance(
        &mut self,
        topology: &Topology,
        eligible: impl Fn(NodeId) -> bool,
    ) -> Result<Vec<AssignmentChange>, AssignmentError> {
        if self.mode == AssignmentMode::None {
            return Err(AssignmentError::ManualMode);
        }
        let targets: Vec<NodeId> = self
            .candidates(topology)
            .into_iter()
            .filter(|n| eligible(*n))
            .collect();
        let pinned = |n: NodeId| topology.group_of(n).is_some() && !eligible(n);
        let mut movable: BTreeMap<NodeId, Vec<UserId>> = BTreeMap::new();
        for (user, node) in &self.home {
            if !pinned(*node) {
                movable.entry(*node).or_default().push(user.clone());
            }
        }
        let total: usize = movable.values().map(Vec::len).sum();
        if targets.is_empty() {
            return if total == 0 {
                Ok(Vec::new())
            } else {
                let first = movable.values().flatten().next().cloned();
                Err(AssignmentError::NoCandidateNode(first.expect("total > 0")))
            };
        }
        let quota = |i: usize| total / targets.len() + usize::from(i < total % targets.len());
        let mut pool = Vec::new();
        for (node, users) in &mut movable {
            let keep = targets
                .iter()
                .position(|t| t == node)
                .map_or(0, |i| quota(i).min(users.len()));
            pool.extend(users.drain(keep..));
        }
        let mut changes = Vec::new();
        let mut pool = pool.into_iter();
        for (i, node) in targets.iter().enumerate() {
            let have = movable.get(node).map_or(0, Vec::len);
            for user in pool.by_ref().take(quota(i).saturating_sub(have)) {
                changes.extend(self.set_home(user, Some(*node)));
            }
        }
        Ok(changes)
    }

    fn candidates(&self, topology: &Topology) -> Vec<NodeId> {
        match self.mode {
            AssignmentMode::Balanced => topology.nodes_in_slot_order(),
            AssignmentMode::ActiveStandby => topology
                .groups()
                .iter()
                .filter_map(|g| g.members.at(Slot::A))
                .collect(),
            AssignmentMode::None => Vec::new(),
        }
    }

    fn set_home(&mut self, user: UserId, to: Option<NodeId>) -> Option<AssignmentChange> {
        let from = match to {
            Some(node) => self.home.insert(user.clone(), node),
            None => self.home.remove(&user),
        };
        if from == to {
            return None;
        }
        if let Some(old) = from {
            *self.load.entry(old).or_default() -= 1;
        }
        if let Some(new) = to {
            *self.load.entry(new).or_default() += 1;
        }
        Some(AssignmentChange { user, from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::GroupId;

    fn user(i: usize) -> UserId {
        UserId::new(format!("user{i:05}@example.com")).unwrap()
    }

    fn topology(groups: &[(u16, Option<u16>)]) -> Topology {
        let mut t = Topology::new();
        for (i, (a, b)) in groups.iter().enumerate() {
            let g = GroupId(u8::try_from(i + 1).unwrap());
            t.add_group(g, NodeId(*a)).unwrap();
            if let Some(b) = b {
                t.add_node(g, NodeId(*b)).unwrap();
            }
        }
        t
    }

    fn placements(a: &mut Assignments, t: &Topology, n: usize) -> Vec<u16> {
        (0..n)
            .map(|i| a.assign_new(user(i), t).unwrap().unwrap().to.unwrap().0)
            .collect()
    }

    #[test]
    fn balanced_is_round_robin_over_a_nodes_then_b_nodes() {
        let t = topology(&[(11, Some(12)), (21, Some(22)), (31, Some(32))]);
        let mut a = Assignments::new(AssignmentMode::Balanced);
        assert_eq!(placements(&mut a, &t, 8), [11, 21, 31, 12, 22, 32, 11, 21]);
    }

    #[test]
    fn active_standby_uses_only_a_nodes() {
        let t = topology(&[(11, Some(12)), (21, Some(22)), (31, Some(32))]);
        let mut a = Assignments::new(AssignmentMode::ActiveStandby);
        assert_eq!(placements(&mut a, &t, 5), [11, 21, 31, 11, 21]);
    }

    #[test]
    fn mode_none_leaves_new_users_unassigned_until_assigned_by_hand() {
        let t = topology(&[(11, Some(12))]);
        let mut a = Assignments::new(AssignmentMode::None);
        assert_eq!(a.assign_new(user(1), &t), Ok(None));
        assert_eq!(a.home_of(&user(1)), None);
        let change = a.assign(user(1), NodeId(12), &t).unwrap().unwrap();
        assert!(!change.ends_sessions());
        assert_eq!(a.home_of(&user(1)), Some(NodeId(12)));
        assert_eq!(
            a.assign(user(1), NodeId(99), &t),
            Err(AssignmentError::UnknownNode {
                user: user(1),
                node: NodeId(99)
            })
        );
        assert_eq!(a.rebalance(&t, |_| true), Err(AssignmentError::ManualMode));
    }

    #[test]
    fn reassigning_or_unassigning_ends_sessions() {
        let t = topology(&[(11, Some(12))]);
        let mut a = Assignments::new(AssignmentMode::Balanced);
        a.assign_new(user(1), &t).unwrap();
        assert_eq!(
            a.assign_new(user(1), &t),
            Err(AssignmentError::AlreadyAssigned {
                user: user(1),
                home: NodeId(11)
            })
        );
        let moved = a.assign(user(1), NodeId(12), &t).unwrap().unwrap();
        assert_eq!(
            moved,
            AssignmentChange {
                user: user(1),
                from: Some(NodeId(11)),
                to: Some(NodeId(12))
            }
        );
        assert!(moved.ends_sessions());
        assert_eq!(a.assign(user(1), NodeId(12), &t), Ok(None));
        let gone = a.unassign(&user(1)).unwrap();
        assert!(gone.ends_sessions());
        assert_eq!(gone.to, None);
        assert_eq!(a.home_of(&user(1)), None);
        assert_eq!(a.unassign(&user(1)), None);
    }

    #[test]
    fn rebalance_after_adding_a_group_gives_four_times_2500() {
        let mut t = topology(&[(11, Some(12))]);
        let mut a = Assignments::new(AssignmentMode::Balanced);
        placements(&mut a, &t, 10_000);
        assert_eq!((a.load_of(NodeId(11)), a.load_of(NodeId(12))), (5000, 5000));
        t.add_group(GroupId(2), NodeId(21)).unwrap();
        t.add_node(GroupId(2), NodeId(22)).unwrap();
        let changes = a.rebalance(&t, |_| true).unwrap();
        for n in [11, 12, 21, 22] {
            assert_eq!(a.load_of(NodeId(n)), 2500, "node {n}");
        }
        assert_eq!(changes.len(), 5000, "only the surplus moves");
        assert!(changes.iter().all(AssignmentChange::ends_sessions));
    }

    #[test]
    fn switching_to_active_standby_then_adding_a_group() {
        let mut t = topology(&[(11, Some(12))]);
        let mut a = Assignments::new(AssignmentMode::Balanced);
        placements(&mut a, &t, 5000);
        a.set_mode(AssignmentMode::ActiveStandby);
        a.rebalance(&t, |_| true).unwrap();
        assert_eq!((a.load_of(NodeId(11)), a.load_of(NodeId(12))), (5000, 0));
        t.add_group(GroupId(2), NodeId(21)).unwrap();
        t.add_node(GroupId(2), NodeId(22)).unwrap();
        a.rebalance(&t, |_| true).unwrap();
        assert_eq!((a.load_of(NodeId(11)), a.load_of(NodeId(21))), (2500, 2500));
        assert_eq!(a.load_of(NodeId(22)), 0);
    }

    #[test]
    fn rebalance_leaves_nodes_in_failover_states_alone() {
        let mut t = topology(&[(11, Some(12))]);
        let mut a = Assignments::new(AssignmentMode::Balanced);
        placements(&mut a, &t, 100);
        t.add_group(GroupId(2), NodeId(21)).unwrap();
        let changes = a.rebalance(&t, |n| n != NodeId(12)).unwrap();
        assert_eq!(a.load_of(NodeId(12)), 50);
        assert_eq!((a.load_of(NodeId(11)), a.load_of(NodeId(21))), (25, 25));
        assert!(changes.iter().all(|c| c.from == Some(NodeId(11))));
    }
}
