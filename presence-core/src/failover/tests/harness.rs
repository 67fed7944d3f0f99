//! A fake clock, a cuttable link and a shared store joining two failover managers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::assignment::UserId;
use crate::cluster::NodeId;
use crate::failover::{
    AdminCommand, Boot, Config, CriticalService, FailoverNode, Input, NodeState, Output,
    PeerMessage, Reason, ReconnectHint, Refusal, StateChange, is_allowed,
};

/// The two nodes of the pair, addressed by slot 0 ("node 1") and slot 1 ("node 2").
pub(crate) struct Sim {
    pub now: Instant,
    pub config: Config,
    pub ids: [NodeId; 2],
    /// Who each node believes its peer is (differs from `ids` only in misconfiguration tests).
    pub peers: [NodeId; 2],
    pub nodes: [Option<FailoverNode>; 2],
    pub epochs: [u64; 2],
    pub persisted: [Option<(NodeState, Reason)>; 2],
    pub link_up: bool,
    pub store: BTreeMap<UserId, NodeId>,
    pub assigned: [Vec<UserId>; 2],
    pub service_down: [bool; 2],
    pub db_down: [bool; 2],
    pub moves_fail: [bool; 2],
    pub transitions: Vec<(usize, StateChange)>,
    /// Every batch a node asked for: (node, when, users).
    pub batches: Vec<(usize, Instant, Vec<UserId>)>,
    /// Every set of ended sessions: (node, hints).
    pub ended: Vec<(usize, Vec<ReconnectHint>)>,
    /// Statuses each node sent.
    pub statuses_sent: [usize; 2],
}

pub(crate) fn user(node: usize, i: usize) -> UserId {
    UserId::new(format!("n{node}u{i:03}@example.com")).unwrap()
}

impl Sim {
    /// Two nodes, each assigned `users` users, booted together and settled to Normal/Normal.
    pub(crate) fn new(config: Config, users: usize) -> Self {
        let mut sim = Self::unbooted(config, users);
        sim.boot(0);
        sim.boot(1);
        assert_eq!(sim.pair(), [Some(NORMAL), Some(NORMAL)]);
        sim
    }

    /// Two configured nodes, neither running yet.
    pub(crate) fn unbooted(config: Config, users: usize) -> Self {
        let ids = [NodeId(1), NodeId(2)];
        let assigned = [
            (0..users).map(|i| user(0, i)).collect::<Vec<_>>(),
            (0..users).map(|i| user(1, i)).collect::<Vec<_>>(),
        ];
        let store = assigned[0]
            .iter()
            .map(|u| (u.clone(), ids[0]))
            .chain(assigned[1].iter().map(|u| (u.clone(), ids[1])))
            .collect();
        Self {
            now: Instant::now(),
            config,
            ids,
            peers: [ids[1], ids[0]],
            nodes: [None, None],
            epochs: [0, 0],
            persisted: [None, None],
            link_up: true,
            store,
            assigned,
            service_down: [false; 2],
            db_down: [false; 2],
            moves_fail: [false; 2],
            transitions: Vec::new(),
            batches: Vec::new(),
            ended: Vec::new(),
            statuses_sent: [0; 2],
        }
    }

    pub(crate) fn alive(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    /// Each running node's (state, reason).
    pub(crate) fn pair(&self) -> [Option<(NodeState, Reason)>; 2] {
        [0, 1].map(|i| self.nodes[i].as_ref().map(|n| (n.state(), n.reason())))
    }

    /// Starts (or restarts) node `i` from what its shell would read from disk and the store.
    pub(crate) fn boot(&mut self, i: usize) {
        assert!(!self.alive(i), "boot of a running node");
        self.epochs[i] += 1;
        let me = self.ids[i];
        let boot = Boot {
            node: me,
            peer: self.peers[i],
            epoch: self.epochs[i],
            own_users: self.assigned[i].clone(),
            peer_users: self.assigned[1 - i].clone(),
            hosted: self
                .store
                .iter()
                .filter(|(_, n)| **n == me)
                .map(|(u, _)| u.clone())
                .collect(),
            last: self.persisted[i],
        };
        self.nodes[i] = Some(FailoverNode::new(self.config.clone(), boot, self.now).unwrap());
        if self.service_down[i] {
            self.feed(i, Input::ServiceDown(CriticalService::PresenceEngine));
        }
        if self.db_down[i] {
            self.feed(i, Input::ServiceDown(CriticalService::Database));
        }
        self.pump();
    }

    /// Kills node `i` without warning; its sessions die with it.
    pub(crate) fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// Shuts node `i` down cleanly, so it says goodbye first.
    pub(crate) fn shutdown(&mut self, i: usize) {
        if self.alive(i) {
            self.feed(i, Input::Shutdown);
            self.pump();
            self.nodes[i] = None;
        }
    }

    pub(crate) fn set_service(&mut self, i: usize, down: bool) {
        self.service_down[i] = down;
        let input = if down {
            Input::ServiceDown(CriticalService::PresenceEngine)
        } else {
            Input::ServiceUp(CriticalService::PresenceEngine)
        };
        self.feed(i, input);
        self.pump();
    }

    pub(crate) fn set_db(&mut self, i: usize, down: bool) {
        self.db_down[i] = down;
        let input = if down {
            Input::ServiceDown(CriticalService::Database)
        } else {
            Input::ServiceUp(CriticalService::Database)
        };
        self.feed(i, input);
        self.pump();
    }

    pub(crate) fn admin(&mut self, i: usize, command: AdminCommand) -> Result<(), Refusal> {
        let now = self.now;
        let Some(node) = self.nodes[i].as_mut() else {
            return Ok(());
        };
        let result = node.admin(now, command);
        self.pump();
        result
    }

    /// Runs the clock forward by `d`, firing every timer on time.
    pub(crate) fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        self.advance_until(target, |_| false);
    }

    /// Runs the clock towards `target`, stopping early once `stop` holds after some event.
    pub(crate) fn advance_until(&mut self, target: Instant, stop: impl Fn(&Self) -> bool) -> bool {
        for _ in 0..1_000_000 {
            let next = self
                .nodes
                .iter()
                .flatten()
                .filter_map(FailoverNode::poll_timeout)
                .min();
            match next {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.fire_timers();
                    if stop(self) {
                        return true;
                    }
                }
                _ => {
                    self.now = target;
                    return stop(self);
                }
            }
        }
        panic!("timers never settle");
    }

    /// Moves the clock by `d` at once: every node wakes late, as after a suspend.
    pub(crate) fn jump(&mut self, d: Duration) {
        self.now += d;
        self.fire_timers();
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        for node in self.nodes.iter_mut().flatten() {
            if node.poll_timeout().is_some_and(|t| t <= now) {
                node.handle_timeout(now);
            }
        }
        // The shared store's state rows: each running node reads the other's there.
        for i in 0..2 {
            if let Some(state) = self.nodes[1 - i].as_ref().map(FailoverNode::state) {
                self.feed(i, Input::PeerStateInStore(state));
            }
        }
        self.pump();
    }

    pub(crate) fn feed(&mut self, i: usize, input: Input) {
        let now = self.now;
        if let Some(node) = self.nodes[i].as_mut() {
            node.handle(now, input);
        }
    }

    /// Carries out every pending output until both nodes are quiet.
    pub(crate) fn pump(&mut self) {
        loop {
            let mut quiet = true;
            for i in 0..2 {
                while let Some(out) = self.nodes[i].as_mut().and_then(FailoverNode::poll_output) {
                    quiet = false;
                    self.apply(i, out);
                }
            }
            if quiet {
                return;
            }
        }
    }

    fn apply(&mut self, i: usize, out: Output) {
        let other = 1 - i;
        match out {
            Output::ToPeer(message) => {
                if matches!(message, PeerMessage::Status(_)) {
                    self.statuses_sent[i] += 1;
                }
                if self.link_up {
                    self.feed(other, Input::FromPeer(message));
                }
            }
            Output::StateChanged(change) => {
                assert!(
                    is_allowed(change.from, change.to),
                    "node {i}: undocumented transition {change:?}"
                );
                self.persisted[i] = Some((change.to, change.reason));
                self.transitions.push((i, change));
            }
            Output::StopCriticalServices => {}
            Output::StartCriticalServices => {
                let input = if self.service_down[i] {
                    Input::CriticalServicesFailedToStart
                } else {
                    Input::CriticalServicesStarted
                };
                self.feed(i, input);
            }
            Output::MoveUsers(batch) => {
                assert_eq!(batch.to, self.ids[i]);
                assert!(batch.users.len() <= self.config.users_per_batch);
                self.batches.push((i, self.now, batch.users.clone()));
                if self.db_down[i] || self.moves_fail[i] {
                    self.feed(i, Input::MoveFailed(batch.id));
                } else {
                    for u in &batch.users {
                        self.store.insert(u.clone(), batch.to);
                    }
                    self.feed(i, Input::MoveSucceeded(batch.id));
                    self.feed(other, Input::UsersClaimedByPeer(batch.users));
                }
            }
            Output::EndSessions(hints) => self.ended.push((i, hints)),
        }
    }

    pub(crate) fn all_users(&self) -> impl Iterator<Item = &UserId> {
        self.assigned.iter().flatten()
    }

    /// The slots of the running nodes that host `u`.
    pub(crate) fn hosts_of(&self, u: &UserId) -> Vec<usize> {
        (0..2)
            .filter(|&i| {
                self.nodes[i]
                    .as_ref()
                    .is_some_and(|n| n.hosted().contains(u))
            })
            .collect()
    }

    /// Panics if a user is hosted by both nodes. Per user, because totals cannot tell a
    /// duplicate from an orphan: one user on both nodes and another on neither add up the same.
    pub(crate) fn assert_no_user_hosted_twice(&self) {
        for u in self.all_users() {
            assert!(
                self.hosts_of(u).len() <= 1,
                "{u} hosted by both nodes; transitions: {:#?}",
                self.transitions
            );
        }
    }

    /// Panics unless every user assigned to slot `k` is hosted by node `on[k]` and no other.
    pub(crate) fn assert_users_hosted_on(&self, on: [usize; 2]) {
        for (k, users) in self.assigned.iter().enumerate() {
            for u in users {
                assert_eq!(
                    self.hosts_of(u),
                    [on[k]],
                    "{u} (assigned to slot {k}); transitions: {:#?}",
                    self.transitions
                );
            }
        }
    }

    /// Running, no injected fault, and in a state that may serve users.
    pub(crate) fn healthy(&self, i: usize) -> bool {
        self.nodes[i].as_ref().is_some_and(|n| {
            !self.service_down[i]
                && !self.db_down[i]
                && !matches!(
                    n.state(),
                    NodeState::Idle | NodeState::RunningInFailedMode | NodeState::Unknown
                )
        })
    }
}

pub(crate) const NORMAL: (NodeState, Reason) = (NodeState::Normal, Reason::Normal);
