//! The failover manager of one node of a redundancy pair, as a sans-IO state machine.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use super::boot::Boot;
use super::command::AdminCommand;
use super::config::{AutomaticFallback, Config, ConfigError};
use super::error::Refusal;
use super::input::Input;
use super::message::{PeerMessage, Status};
use super::moves::{BatchId, MoveBatch, MoveKind, MovePlan};
use super::output::{Output, StateChange};
use super::reason::Reason;
use super::reconnect::reconnect_hints;
use super::service::ServiceMonitor;
use super::state::NodeState::{self, *};
use super::transition::is_allowed;
use crate::assignment::UserId;
use crate::cluster::NodeId;

/// What this node knows about reaching its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contact {
    /// Heartbeats arrive; silence past the timeout means the peer is lost.
    Hearing,
    /// The peer went silent or said goodbye; its loss has been acted on.
    Lost,
    /// The peer claimed our users, so it is alive even if we cannot hear it; only the store's
    /// signs that it still serves (claims, [`Input::PeerStateInStore`]) postpone acting on its
    /// silence.
    StoodDown,
}

#[derive(Debug, Clone)]
struct PeerView {
    status: Option<Status>,
    last_heard: Instant,
    contact: Contact,
}

/// One node's failover manager: feed it inputs and time, drain its outputs.
#[derive(Debug, Clone)]
pub struct FailoverNode {
    config: Config,
    me: NodeId,
    peer_id: NodeId,
    epoch: u64,
    state: NodeState,
    reason: Reason,
    last_before_boot: Option<(NodeState, Reason)>,
    own: BTreeSet<UserId>,
    theirs: BTreeSet<UserId>,
    signed_in: BTreeSet<UserId>,
    hosted: BTreeSet<UserId>,
    peer: PeerView,
    services: ServiceMonitor,
    plan: Option<MovePlan>,
    /// Batches of an abandoned move still with the shell; if they commit, the store says we
    /// host those users, so we must too.
    unsettled: Vec<(BatchId, Vec<UserId>)>,
    awaiting_services: bool,
    next_heartbeat: Instant,
    init_deadline: Instant,
    stable_since: Instant,
    next_batch: u64,
    out: VecDeque<Output>,
}

impl FailoverNode {
    /// Starts a node in Initializing; it announces itself at once.
    pub fn new(config: Config, boot: Boot, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut node = Self {
            next_heartbeat: now + config.heartbeat_interval,
            init_deadline: now + config.initialization_timeout,
            me: boot.node,
            peer_id: boot.peer,
            epoch: boot.epoch,
            state: Initializing,
            reason: Reason::Initialization,
            last_before_boot: boot.last,
            own: boot.own_users.into_iter().collect(),
            theirs: boot.peer_users.into_iter().collect(),
            signed_in: BTreeSet::new(),
            hosted: boot.hosted.into_iter().collect(),
            peer: PeerView {
                status: None,
                last_heard: now,
                contact: Contact::Lost,
            },
            services: ServiceMonitor::default(),
            plan: None,
            unsettled: Vec::new(),
            awaiting_services: false,
            stable_since: now,
            next_batch: 0,
            out: VecDeque::new(),
            config,
        };
        node.announce();
        Ok(node)
    }

    /// The current state.
    pub fn state(&self) -> NodeState {
        self.state
    }

    /// The reason for the current state.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// Users this node currently serves.
    pub fn hosted(&self) -> &BTreeSet<UserId> {
        &self.hosted
    }

    /// The peer's last announced state, if any was heard since (re)start.
    pub fn peer_state(&self) -> Option<NodeState> {
        self.peer.status.as_ref().map(|s| s.state)
    }

    /// Whether a batch of users is being moved onto this node.
    pub fn is_moving_users(&self) -> bool {
        self.plan.is_some() || self.awaiting_services
    }

    /// The next effect for the shell to carry out.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Self::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = Some(self.next_heartbeat);
        let mut take = |c: Option<Instant>| {
            if let Some(c) = c {
                t = Some(t.map_or(c, |t| t.min(c)));
            }
        };
        take(
            self.services
                .deadline(self.config.critical_service_down_delay),
        );
        if self.state == Initializing {
            take(Some(self.init_deadline));
        } else if self.peer.contact != Contact::Lost {
            take(Some(self.peer_deadline()));
        }
        if let Some(plan) = &self.plan
            && plan.in_flight.is_none()
        {
            take(plan.next_at);
        }
        take(self.auto_fallback_deadline());
        t
    }

    /// Fires whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_heartbeat {
            self.announce();
            self.next_heartbeat = now + self.config.heartbeat_interval;
        }
        if self
            .services
            .confirm_due(now, self.config.critical_service_down_delay)
        {
            self.on_fault(now);
        }
        if self.state == Initializing {
            if now >= self.init_deadline {
                self.resolve_alone(now);
            }
        } else if self.peer.contact != Contact::Lost && now >= self.peer_deadline() {
            self.peer.contact = Contact::Lost;
            self.stable_since = now;
            self.on_peer_lost(now, Reason::PeerDown);
        }
        if self.auto_fallback_deadline().is_some_and(|d| now >= d) {
            self.enter(now, FallingBack, Reason::AutomaticFallback);
        }
        self.drive(now);
    }

    /// Processes one event from the shell.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::FromPeer(PeerMessage::Status(s)) => self.on_status(now, s),
            Input::FromPeer(PeerMessage::Goodbye { from }) if from == self.peer_id => {
                self.peer.status = None;
                self.peer.contact = Contact::Lost;
                self.stable_since = now;
                self.on_peer_lost(now, Reason::PeerReboot);
            }
            Input::FromPeer(PeerMessage::Recover { from }) if from == self.peer_id => {
                if self.state.is_failed() {
                    self.restart(now);
                }
            }
            Input::FromPeer(_) => {}
            Input::ServiceDown(s) => self.services.down(s, now),
            Input::ServiceUp(s) => {
                self.services.up(s);
                if self.state == FailedOverCriticalServicesNotRunning && self.services.healthy() {
                    self.enter(now, FailedOver, self.reason);
                    if self.peer.contact == Contact::Lost {
                        // The backup vanished while we could not serve; now we can.
                        self.take_over(now, Reason::PeerDown);
                    }
                }
            }
            Input::CriticalServicesStarted => {
                if std::mem::take(&mut self.awaiting_services) {
                    self.plan_moves(now, MoveKind::TakeBack);
                }
            }
            Input::CriticalServicesFailedToStart => {
                if std::mem::take(&mut self.awaiting_services) {
                    self.enter(
                        now,
                        RunningInFailedMode,
                        Reason::StartOfCriticalServicesFailed,
                    );
                }
            }
            Input::MoveSucceeded(id) => self.on_move_done(now, id, true),
            Input::MoveFailed(id) => self.on_move_done(now, id, false),
            Input::UsersClaimedByPeer(users) => self.on_claimed(now, users),
            Input::PeerStateInStore(state) => {
                if self.peer.contact == Contact::StoodDown && state.serves_users() {
                    self.peer.last_heard = now;
                }
            }
            Input::SignedIn(u) => {
                self.signed_in.insert(u);
            }
            Input::SignedOut(u) => {
                self.signed_in.remove(&u);
            }
            Input::Shutdown => self
                .out
                .push_back(Output::ToPeer(PeerMessage::Goodbye { from: self.me })),
            Input::Homes { own, peer, hosted } => {
                self.own = own.into_iter().collect();
                self.theirs = peer.into_iter().collect();
                self.hosted = hosted.into_iter().collect();
            }
        }
        self.drive(now);
    }

    /// Runs an administrator's command, or says why it is not allowed now.
    pub fn admin(&mut self, now: Instant, command: AdminCommand) -> Result<(), Refusal> {
        let peer = self.reachable_peer_state();
        match command {
            AdminCommand::Failover => {
                if self.state != Normal {
                    return Err(Refusal::FailoverNeedsNormal(self.state));
                }
                if peer != Some(Normal) {
                    return Err(Refusal::PeerCannotTakeOver(peer));
                }
                self.out.push_back(Output::StopCriticalServices);
                self.fail_over(now, Reason::OnAdminRequest);
            }
            AdminCommand::Fallback => {
                if !matches!(self.state, Idle | FailedOver) {
                    return Err(Refusal::FallbackNeedsIdleOrFailedOver(self.state));
                }
                if peer != Some(RunningInBackupMode) {
                    return Err(Refusal::PeerNotInBackupMode(peer));
                }
                self.take_back(now, Reason::OnAdminRequest);
            }
            AdminCommand::Recover => {
                // A failed node whose peer is gone (the peer crashed, then this node's takeover failed) would
                // otherwise stay failed for good: its peer's last word, from before the crash, is not failed.
                // Recovery restarts it, and alone it takes the users over once the initialization timeout passes.
                let peer = self.reachable_peer_state();
                if !self.state.is_failed() || peer.is_some_and(|p| !p.is_failed()) {
                    return Err(Refusal::RecoveryNeedsBothFailed {
                        node: self.state,
                        peer,
                    });
                }
                self.out
                    .push_back(Output::ToPeer(PeerMessage::Recover { from: self.me }));
                self.restart(now);
            }
        }
        self.drive(now);
        Ok(())
    }

    fn reachable_peer_state(&self) -> Option<NodeState> {
        (self.peer.contact == Contact::Hearing)
            .then(|| self.peer_state())
            .flatten()
    }

    fn peer_deadline(&self) -> Instant {
        // The higher-numbered node waits one interval longer, so across a partition the lower
        // one claims the users first and the other learns of it before acting itself.
        let grace = if self.me > self.peer_id {
            self.config.heartbeat_interval
        } else {
            std::time::Duration::ZERO
        };
        self.peer.last_heard + self.config.heartbeat_timeout + grace
    }

    fn auto_fallback_deadline(&self) -> Option<Instant> {
        let eligible = self.config.automatic_fallback == AutomaticFallback::Enabled
            && self.state == RunningInBackupMode
            && matches!(
                self.reason,
                Reason::CriticalServiceDown | Reason::PeerReboot | Reason::PeerDown
            )
            && self.reachable_peer_state() == Some(FailedOver);
        eligible.then(|| self.stable_since + self.config.fallback_stable_period)
    }

    fn status(&self) -> Status {
        Status {
            from: self.me,
            to: self.peer_id,
            epoch: self.epoch,
            state: self.state,
            reason: self.reason,
            holds_peer_users: self.holds_peer_users(),
            hosts_all_own_users: self.own.is_subset(&self.hosted),
        }
    }

    fn holds_peer_users(&self) -> bool {
        self.hosted.iter().any(|u| self.theirs.contains(u))
    }

    fn announce(&mut self) {
        let status = self.status();
        self.out
            .push_back(Output::ToPeer(PeerMessage::Status(status)));
    }

    fn enter(&mut self, now: Instant, to: NodeState, reason: Reason) {
        let from = self.state;
        if (from, self.reason) == (to, reason) {
            return;
        }
        debug_assert!(
            is_allowed(from, to),
            "undocumented transition {from} -> {to}"
        );
        self.state = to;
        self.reason = reason;
        self.stable_since = now;
        self.out
            .push_back(Output::StateChanged(StateChange { from, to, reason }));
        self.announce();
    }

    fn on_status(&mut self, now: Instant, s: Status) {
        if s.from != self.peer_id || s.to != self.me {
            if self.state == Initializing {
                self.enter(now, Unknown, Reason::Unknown);
            }
            return;
        }
        let previous = self.peer.status.take();
        let missed = self.peer.contact == Contact::Hearing
            && now.duration_since(self.peer.last_heard) > self.config.heartbeat_interval * 3 / 2;
        if missed || previous.as_ref().map(|p| (p.state, p.reason)) != Some((s.state, s.reason)) {
            self.stable_since = now;
        }
        let restarted = previous.as_ref().is_some_and(|p| p.epoch != s.epoch);
        self.peer.last_heard = now;
        self.peer.contact = Contact::Hearing;
        self.peer.status = Some(s.clone());
        if restarted || previous.is_none() {
            // Answer at once so a (re)starting peer need not wait a whole interval.
            self.announce();
        }
        if restarted {
            self.on_peer_restart(now);
        }
        self.react(now, &s);
    }

    fn on_peer_restart(&mut self, now: Instant) {
        match self.state {
            // Its sessions died with it: a reboot, even a quick one.
            Normal => self.take_over(now, Reason::PeerReboot),
            RunningInFailedMode => self.enter(now, RunningInFailedMode, Reason::Unknown),
            _ => {}
        }
    }

    fn react(&mut self, now: Instant, s: &Status) {
        match (self.state, s.state) {
            (Initializing, _) => self.resolve_with_peer(now, s),
            (Normal | FailedOver, FailingOver) => self.take_over(now, s.reason),
            // A failed peer that lost some of its users (it failed while moving them) leaves
            // them with nobody unless we take them.
            (Normal, RunningInFailedMode | Unknown) if !s.hosts_all_own_users => {
                self.take_over(now, Reason::PeerDown);
            }
            // The peer says its users are with us, and we are not serving them: it gave way to a
            // move of ours that only took our own users back (a takeover race lost to a takeback),
            // or we restarted without knowing we were its backup. Nobody else will host them.
            (Normal, FailedOver | FailedOverCriticalServicesNotRunning | Idle) => {
                self.take_over(now, s.reason);
            }
            (FailingOver, RunningInBackupMode) => {
                let to = match self.reason {
                    Reason::OnAdminRequest => Idle,
                    _ if self.services.healthy() => FailedOver,
                    _ => FailedOverCriticalServicesNotRunning,
                };
                self.enter(now, to, self.reason);
            }
            // Both gave their users away at once: nobody can take them, both have failed.
            (FailingOver, FailingOver) => self.enter(now, RunningInFailedMode, self.reason),
            // Our announcement crossed the peer's own failure: it cannot take our users.
            (FailingOver, FailedOverCriticalServicesNotRunning | Idle) => {
                let reason = self.services.fault().unwrap_or(self.reason);
                self.enter(now, RunningInFailedMode, reason);
            }
            (RunningInBackupMode, TakingBack) => self.enter(now, FallingBack, s.reason),
            (FailedOver, FallingBack) => self.take_back(now, s.reason),
            (FallingBack, Normal) => self.enter(now, Normal, Reason::Normal),
            (
                Idle
                | RunningInBackupMode
                | TakingOver
                | FailingOver
                | FailedOver
                | FailedOverCriticalServicesNotRunning
                | FallingBack
                | TakingBack,
                RunningInFailedMode,
            ) => {
                self.drop_plan();
                self.enter(now, RunningInFailedMode, s.reason);
            }
            _ => {}
        }
    }

    fn resolve_with_peer(&mut self, now: Instant, s: &Status) {
        match self.last_before_boot.map(|(state, _)| state) {
            Some(Idle) => return self.enter(now, Idle, Reason::Initialization),
            Some(RunningInBackupMode | TakingOver) => {
                return self.take_over(now, Reason::Initialization);
            }
            Some(TakingBack) => return self.take_back(now, Reason::Initialization),
            Some(FallingBack) => return self.enter(now, FallingBack, Reason::Initialization),
            _ => {}
        }
        let mine_held = self.holds_peer_users();
        if s.state == FailingOver {
            return self.take_over(now, s.reason);
        }
        let peer_wins = match s.state {
            RunningInBackupMode | TakingOver => true,
            Initializing => s.holds_peer_users && (!mine_held || self.peer_id < self.me),
            _ => false,
        };
        if peer_wins {
            self.enter_failed_over(now, Reason::Initialization);
        } else if s.state.is_failed() {
            self.enter(now, RunningInFailedMode, Reason::Unknown);
        } else if mine_held {
            self.take_over(now, Reason::Initialization);
        } else if !self.own.is_subset(&self.hosted) {
            self.take_back(now, Reason::Initialization);
        } else {
            self.enter(now, Normal, Reason::Normal);
            // An outage confirmed before a recovery restart would otherwise go unnoticed.
            self.on_fault(now);
        }
    }

    fn resolve_alone(&mut self, now: Instant) {
        if self.last_before_boot.map(|(s, _)| s) == Some(Idle) {
            return self.enter(now, Idle, Reason::Initialization);
        }
        match self.services.fault() {
            None => self.take_over(now, Reason::PeerDownDuringInitialization),
            Some(fault) => self.enter(now, RunningInFailedMode, fault),
        }
    }

    fn enter_failed_over(&mut self, now: Instant, reason: Reason) {
        let to = if self.services.healthy() {
            FailedOver
        } else {
            FailedOverCriticalServicesNotRunning
        };
        self.enter(now, to, reason);
    }

    fn on_fault(&mut self, now: Instant) {
        let Some(fault) = self.services.fault() else {
            return;
        };
        let peer = self.reachable_peer_state();
        match self.state {
            Normal if peer == Some(Normal) => self.fail_over(now, fault),
            RunningInBackupMode if peer == Some(FailedOver) => {
                let reason = if fault == Reason::DatabaseFailure {
                    Reason::AutoRecoverDatabaseFailure
                } else {
                    Reason::AutoRecoverCriticalServiceDown
                };
                self.fail_over(now, reason);
            }
            Normal | RunningInBackupMode | TakingOver | TakingBack | FallingBack => {
                self.drop_plan();
                self.enter(now, RunningInFailedMode, fault);
            }
            FailedOver => self.enter(now, FailedOverCriticalServicesNotRunning, fault),
            _ => {}
        }
    }

    fn on_peer_lost(&mut self, now: Instant, reason: Reason) {
        match self.state {
            Normal | FailedOver | TakingBack | FallingBack => self.take_over(now, reason),
            // Users the peer took back died with it.
            RunningInBackupMode if !self.missing(MoveKind::TakeOver).is_empty() => {
                self.take_over(now, reason);
            }
            FailingOver => self.enter(now, RunningInFailedMode, reason),
            _ => {}
        }
    }

    fn on_claimed(&mut self, now: Instant, users: Vec<UserId>) {
        if self.peer.contact != Contact::Hearing {
            // A claim is a sign of life written through the store: watch for the peer's
            // silence again, so users it claimed are not stranded if it then dies.
            self.peer.contact = Contact::StoodDown;
            self.peer.last_heard = now;
        }
        let released: Vec<UserId> = users
            .into_iter()
            .filter(|u| self.hosted.remove(u))
            .collect();
        if released.is_empty() {
            return;
        }
        // Losing our own users means the peer is taking over, whatever we last heard from it.
        let lost_own = released.iter().any(|u| self.own.contains(u));
        self.end_sessions(released);
        // The claim and the peer's announcements travel apart, so either may come first. In Normal or in
        // backup mode only a claim of our own users is a takeover across a partition; a claim of the peer's
        // own users is its fallback, whether its "Taking Back" and "Normal" came before the claim or not.
        if self.state == RunningInBackupMode && !lost_own {
            let reason = match &self.peer.status {
                Some(s) if s.state == TakingBack => s.reason,
                _ => Reason::OnAdminRequest,
            };
            self.drop_plan();
            self.enter(now, FallingBack, reason);
            if self.peer_state() == Some(Normal) {
                self.enter(now, Normal, Reason::Normal);
            }
            return;
        }
        let yields = match self.state {
            Normal | RunningInBackupMode => lost_own,
            // Two movers pulling the same users: the higher-numbered one gives way.
            TakingOver | TakingBack => self.me > self.peer_id,
            _ => false,
        };
        if yields {
            // The peer is alive and rehomed our users: stand down until we hear from it.
            self.drop_plan();
            self.peer.contact = Contact::StoodDown;
            self.peer.last_heard = now;
            self.enter_failed_over(now, Reason::PeerDown);
        }
    }

    fn fail_over(&mut self, now: Instant, reason: Reason) {
        self.enter(now, FailingOver, reason);
        let users = std::mem::take(&mut self.hosted).into_iter().collect();
        self.end_sessions(users);
    }

    fn drop_plan(&mut self) {
        self.awaiting_services = false;
        if let Some(in_flight) = self.plan.take().and_then(|p| p.in_flight) {
            self.unsettled.push(in_flight);
        }
    }

    fn take_over(&mut self, now: Instant, reason: Reason) {
        self.drop_plan();
        self.enter(now, TakingOver, reason);
        self.plan_moves(now, MoveKind::TakeOver);
    }

    fn take_back(&mut self, now: Instant, reason: Reason) {
        let from_idle = self.state == Idle;
        self.enter(now, TakingBack, reason);
        if from_idle {
            self.awaiting_services = true;
            self.out.push_back(Output::StartCriticalServices);
        } else {
            self.plan_moves(now, MoveKind::TakeBack);
        }
    }

    /// Users this node should host once a move of `kind` is complete but does not yet.
    fn missing(&self, kind: MoveKind) -> Vec<UserId> {
        let theirs = (kind == MoveKind::TakeOver).then_some(&self.theirs);
        self.own
            .iter()
            .chain(theirs.into_iter().flatten())
            .filter(|u| !self.hosted.contains(*u))
            .cloned()
            .collect()
    }

    fn plan_moves(&mut self, now: Instant, kind: MoveKind) {
        let missing = self.missing(kind);
        self.plan = Some(MovePlan::new(
            kind,
            missing,
            &self.signed_in,
            self.config.users_per_batch,
            now,
        ));
    }

    fn on_move_done(&mut self, now: Instant, id: BatchId, ok: bool) {
        if let Some(i) = self.unsettled.iter().position(|(b, _)| *b == id) {
            let (_, users) = self.unsettled.swap_remove(i);
            if ok {
                self.hosted.extend(users);
            }
            return;
        }
        let Some(plan) = &mut self.plan else { return };
        let Some((in_flight, users)) = plan.in_flight.take_if(|(b, _)| *b == id) else {
            return;
        };
        debug_assert_eq!(in_flight, id);
        if !ok {
            let reason = match plan.kind {
                MoveKind::TakeOver => Reason::TakeOverUsersFailed,
                MoveKind::TakeBack => Reason::TakeBackUsersFailed,
            };
            self.plan = None;
            return self.enter(now, RunningInFailedMode, reason);
        }
        plan.next_at = Some(now + self.config.batch_pause);
        self.hosted.extend(users);
    }

    /// Sends the next batch when due, and finishes the move once nothing is missing.
    fn drive(&mut self, now: Instant) {
        let Some(plan) = &mut self.plan else { return };
        if plan.in_flight.is_some() || plan.next_at.is_some_and(|t| t > now) {
            return;
        }
        if plan.queue.is_empty() {
            // Users claimed away during the move are fetched again before declaring victory.
            let kind = plan.kind;
            let missing = self.missing(kind);
            if missing.is_empty() {
                self.plan = None;
                return match kind {
                    MoveKind::TakeOver => self.enter(now, RunningInBackupMode, self.reason),
                    MoveKind::TakeBack => self.enter(now, Normal, Reason::Normal),
                };
            }
            self.plan_moves(now, kind);
        }
        let Some(plan) = &mut self.plan else { return };
        if let Some(users) = plan.queue.pop_front() {
            let id = BatchId(self.next_batch);
            self.next_batch += 1;
            plan.in_flight = Some((id, users.clone()));
            plan.next_at = None;
            self.out.push_back(Output::MoveUsers(MoveBatch {
                id,
                users,
                to: self.me,
            }));
        }
    }

    fn end_sessions(&mut self, users: Vec<UserId>) {
        if !users.is_empty() {
            let hints = reconnect_hints(&self.config, users);
            self.out.push_back(Output::EndSessions(hints));
        }
    }

    fn restart(&mut self, now: Instant) {
        let last = (self.state, self.reason);
        self.last_before_boot = Some(last);
        self.epoch += 1;
        self.drop_plan();
        self.peer.status = None;
        self.peer.contact = Contact::Lost;
        self.init_deadline = now + self.config.initialization_timeout;
        self.enter(now, Initializing, Reason::Initialization);
    }
}
