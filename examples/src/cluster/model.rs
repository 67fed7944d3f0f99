//! The core's cluster model (topology, assignments, failover boot) built from the rows PostgreSQL holds.

use presence_core::assignment::{AssignmentMode, Assignments, UserId};
use presence_core::cluster::{GroupId, HighAvailability, NodeId, Topology};
use presence_core::failover::{NodeState, Reason};

/// One row of `cluster_nodes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub id: i16,
    pub name: String,
    pub group: String,
    pub advertise_xmpp: Option<String>,
    pub advertise_sip: Option<String>,
    pub epoch: i64,
    pub state: Option<String>,
    pub reason: Option<String>,
}

impl NodeRow {
    pub fn node_id(&self) -> NodeId {
        NodeId(u16::try_from(self.id).unwrap_or_default())
    }

    /// The persisted state, if it names one this build knows.
    pub fn last_state(&self) -> Option<(NodeState, Reason)> {
        Some((
            state_from_str(self.state.as_deref()?)?,
            reason_from_str(self.reason.as_deref()?)?,
        ))
    }
}

/// One row of `cluster_placement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementRow {
    pub jid: String,
    pub home: String,
    pub host: Option<String>,
}

/// Which users a node of a pair owns, its peer owns, and it serves now: what its failover manager needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Homes {
    /// Users whose home is this node.
    pub own: Vec<UserId>,
    /// Users whose home is the peer.
    pub peer: Vec<UserId>,
    /// Users this node serves.
    pub hosted: Vec<UserId>,
}

/// [`Homes`] of node `me`, paired with `peer`, from the placement rows (each list sorted, so two readings of
/// the same placement compare equal).
pub fn homes(rows: &[PlacementRow], me: &str, peer: &str) -> Homes {
    let pick = |f: &dyn Fn(&PlacementRow) -> bool| -> Vec<UserId> {
        let mut users: Vec<UserId> = rows
            .iter()
            .filter(|r| f(r))
            .filter_map(|r| UserId::new(r.jid.clone()).ok())
            .collect();
        users.sort();
        users
    };
    Homes {
        own: pick(&|r| r.home == me),
        peer: pick(&|r| r.home == peer),
        hosted: pick(&|r| r.host.as_deref() == Some(me)),
    }
}

/// Groups in the order their first node joined, each node in the slot of its joining order; pairs have
/// high availability on (a group of two is a redundancy pair by configuration).
pub fn topology(nodes: &[NodeRow]) -> Topology {
    let mut sorted: Vec<&NodeRow> = nodes.iter().collect();
    sorted.sort_by_key(|n| n.id);
    let mut groups: Vec<(&str, GroupId)> = Vec::new();
    let mut t = Topology::new();
    for n in sorted {
        match groups.iter().find(|(g, _)| *g == n.group) {
            Some((_, id)) => {
                // A third node in a group, or a fourth group, is refused by the topology; it is left out.
                let _ = t.add_node(*id, n.node_id());
            }
            None => {
                let id = GroupId(u8::try_from(groups.len() + 1).unwrap_or(u8::MAX));
                if t.add_group(id, n.node_id()).is_ok() {
                    groups.push((&n.group, id));
                }
            }
        }
    }
    for (_, id) in groups {
        let _ = t.set_high_availability(id, HighAvailability::Enabled, |_| NodeState::Normal);
    }
    t
}

/// The assignments recorded in `rows`, by node id.
pub fn assignments(mode: AssignmentMode, nodes: &[NodeRow], rows: &[PlacementRow]) -> Assignments {
    let t = topology(nodes);
    let mut a = Assignments::new(mode);
    for r in rows {
        let (Ok(user), Some(node)) = (
            UserId::new(r.jid.clone()),
            nodes.iter().find(|n| n.name == r.home),
        ) else {
            continue;
        };
        let _ = a.assign(user, node.node_id(), &t);
    }
    a
}

const STATES: [NodeState; 12] = [
    NodeState::Initializing,
    NodeState::Idle,
    NodeState::Normal,
    NodeState::RunningInBackupMode,
    NodeState::TakingOver,
    NodeState::FailingOver,
    NodeState::FailedOver,
    NodeState::FailedOverCriticalServicesNotRunning,
    NodeState::FallingBack,
    NodeState::TakingBack,
    NodeState::RunningInFailedMode,
    NodeState::Unknown,
];

const REASONS: [Reason; 15] = [
    Reason::Normal,
    Reason::OnAdminRequest,
    Reason::Initialization,
    Reason::CriticalServiceDown,
    Reason::DatabaseFailure,
    Reason::StartOfCriticalServicesFailed,
    Reason::PeerDown,
    Reason::PeerReboot,
    Reason::PeerDownDuringInitialization,
    Reason::TakeOverUsersFailed,
    Reason::TakeBackUsersFailed,
    Reason::AutomaticFallback,
    Reason::AutoRecoverDatabaseFailure,
    Reason::AutoRecoverCriticalServiceDown,
    Reason::Unknown,
];

/// A state by its display name ("Running in Backup Mode").
pub fn state_from_str(s: &str) -> Option<NodeState> {
    STATES.into_iter().find(|st| st.to_string() == s)
}

/// A reason by its display name ("Peer Down").
pub fn reason_from_str(s: &str) -> Option<Reason> {
    REASONS.into_iter().find(|r| r.to_string() == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i16, name: &str, group: &str) -> NodeRow {
        NodeRow {
            id,
            name: name.into(),
            group: group.into(),
            advertise_xmpp: None,
            advertise_sip: None,
            epoch: 1,
            state: None,
            reason: None,
        }
    }

    #[test]
    fn states_and_reasons_read_back_what_they_write() {
        for s in STATES {
            assert_eq!(state_from_str(&s.to_string()), Some(s));
        }
        for r in REASONS {
            assert_eq!(reason_from_str(&r.to_string()), Some(r));
        }
    }

    #[test]
    fn balanced_assignment_alternates_over_a_pair() {
        let nodes = [row(1, "a", "g1"), row(2, "b", "g1")];
        let t = topology(&nodes);
        assert_eq!(t.node_count(), 2);
        let mut a = assignments(AssignmentMode::Balanced, &nodes, &[]);
        let homes: Vec<NodeId> = (0..4)
            .map(|i| {
                let u = UserId::new(format!("u{i}@x")).unwrap();
                a.assign_new(u.clone(), &t).unwrap();
                a.home_of(&u).unwrap()
            })
            .collect();
        assert_eq!(homes, [NodeId(1), NodeId(2), NodeId(1), NodeId(2)]);
    }
}
