//! Timing, ordering and refusal rules of the failover manager, one behaviour per test.

use std::time::{Duration, Instant};

use super::harness::{NORMAL, Sim, user};
use crate::cluster::NodeId;
use crate::failover::NodeState::*;
use crate::failover::Reason::{
    CriticalServiceDown, DatabaseFailure, Initialization, PeerDown, PeerReboot, TakeOverUsersFailed,
};
use crate::failover::{
    AdminCommand, AutomaticFallback, Boot, Config, ConfigError, FailoverNode, Input, NodeState,
    Output, PeerMessage, Reason, Refusal, Status,
};

const USERS: usize = 60;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn sign_in(sim: &mut Sim, node: usize, users: std::ops::Range<usize>) {
    for i in users {
        for n in 0..2 {
            sim.feed(n, Input::SignedIn(user(node, i)));
        }
    }
}

#[test]
fn failover_moves_batches_of_25_a_second_apart_signed_in_users_first() {
    let mut sim = Sim::new(Config::default(), USERS);
    sign_in(&mut sim, 0, 50..60);
    let t0 = sim.now;
    sim.admin(0, AdminCommand::Failover).unwrap();
    sim.advance(secs(10));
    let batches: Vec<_> = sim.batches.iter().filter(|b| b.0 == 1).collect();
    let sizes: Vec<usize> = batches.iter().map(|b| b.2.len()).collect();
    let times: Vec<Duration> = batches.iter().map(|b| b.1 - t0).collect();
    assert_eq!(sizes, [25, 25, 10]);
    assert_eq!(times, [secs(0), secs(1), secs(2)]);
    let first: Vec<_> = batches[0].2[..10].to_vec();
    assert_eq!(first, (50..60).map(|i| user(0, i)).collect::<Vec<_>>());
}

#[test]
fn fallback_moves_signed_out_users_first() {
    let mut sim = Sim::new(Config::default(), USERS);
    sim.admin(0, AdminCommand::Failover).unwrap();
    sim.advance(secs(10));
    sign_in(&mut sim, 0, 0..40);
    sim.batches.clear();
    sim.admin(0, AdminCommand::Fallback).unwrap();
    sim.advance(secs(10));
    let moved: Vec<_> = sim.batches.iter().flat_map(|b| b.2.clone()).collect();
    let expected: Vec<_> = (40..60).chain(0..40).map(|i| user(0, i)).collect();
    assert_eq!(moved, expected);
    assert_eq!(sim.pair(), [Some(NORMAL), Some(NORMAL)]);
}

#[test]
fn failover_ends_sessions_with_reconnect_delays_spread_over_the_window() {
    let mut sim = Sim::new(Config::default(), USERS);
    sim.admin(0, AdminCommand::Failover).unwrap();
    let (node, hints) = &sim.ended[0];
    assert_eq!(*node, 0);
    assert_eq!(hints.len(), USERS);
    // Lower limit is the critical-service delay; 60 users at 25 logins/s add 2.4 s.
    assert_eq!(hints[0].after, secs(90));
    assert!(
        hints
            .iter()
            .all(|h| h.after < secs(90) + Duration::from_millis(2400))
    );
    assert!(hints.windows(2).all(|w| w[0].after < w[1].after));
}

#[test]
fn a_flapping_service_never_triggers_failover() {
    let mut sim = Sim::new(Config::default(), USERS);
    for _ in 0..10 {
        sim.set_service(0, true);
        sim.advance(secs(85));
        sim.set_service(0, false);
        sim.advance(secs(5));
    }
    assert_eq!(sim.pair(), [Some(NORMAL), Some(NORMAL)]);
    sim.set_service(0, true);
    sim.advance(secs(89));
    assert_eq!(sim.pair()[0], Some(NORMAL));
    sim.advance(secs(2));
    assert_eq!(sim.pair()[0], Some((FailingOver, CriticalServiceDown)));
}

#[test]
fn heartbeats_go_out_every_interval() {
    let mut sim = Sim::new(Config::default(), USERS);
    let before = sim.statuses_sent;
    sim.advance(secs(600));
    assert_eq!(
        [
            sim.statuses_sent[0] - before[0],
            sim.statuses_sent[1] - before[1]
        ],
        [10, 10]
    );
}

#[test]
fn silence_is_peer_down_after_the_timeout_the_higher_node_one_interval_later() {
    let mut sim = Sim::new(Config::default(), USERS);
    sim.crash(1);
    sim.advance(secs(119));
    assert_eq!(sim.pair()[0], Some(NORMAL));
    sim.advance(secs(2));
    assert_eq!(sim.pair()[0].unwrap().0, TakingOver);

    let mut sim = Sim::new(Config::default(), USERS);
    sim.crash(0);
    sim.advance(secs(179));
    assert_eq!(sim.pair()[1], Some(NORMAL));
    sim.advance(secs(2));
    assert_eq!(sim.pair()[1].unwrap().0, TakingOver);
}

fn failed_over_by_service(config: Config, database: bool) -> Sim {
    let mut sim = Sim::new(config, USERS);
    if database {
        sim.set_db(0, true);
    } else {
        sim.set_service(0, true);
    }
    sim.advance(secs(100));
    if database {
        sim.set_db(0, false);
    } else {
        sim.set_service(0, false);
    }
    sim
}

fn auto_fallback() -> Config {
    Config {
        automatic_fallback: AutomaticFallback::Enabled,
        heartbeat_timeout: secs(180),
        initialization_timeout: secs(360),
        ..Config::default()
    }
}

#[test]
fn automatic_fallback_is_off_by_default() {
    let mut sim = failed_over_by_service(Config::default(), false);
    sim.advance(secs(3 * 3600));
    assert_eq!(
        sim.pair(),
        [
            Some((FailedOver, CriticalServiceDown)),
            Some((RunningInBackupMode, CriticalServiceDown))
        ]
    );
}

#[test]
fn automatic_fallback_waits_thirty_stable_minutes() {
    let mut sim = failed_over_by_service(auto_fallback(), false);
    sim.advance(secs(29 * 60));
    assert_eq!(sim.pair()[1].unwrap().0, RunningInBackupMode);
    // The restored link is noticed at the next heartbeat, up to one interval after the heal.
    sim.advance(secs(3 * 60));
    assert_eq!(sim.pair(), [Some(NORMAL), Some(NORMAL)]);
    sim.assert_users_hosted_on([0, 1]);
}

#[test]
fn a_missed_heartbeat_restarts_the_stable_period() {
    let mut sim = failed_over_by_service(auto_fallback(), false);
    sim.advance(secs(20 * 60));
    sim.link_up = false;
    sim.advance(secs(70));
    sim.link_up = true;
    sim.advance(secs(15 * 60));
    assert_eq!(
        sim.pair()[1].unwrap().0,
        RunningInBackupMode,
        "reset by the miss"
    );
    sim.advance(secs(20 * 60));
    assert_eq!(sim.pair(), [Some(NORMAL), Some(NORMAL)]);
}

#[test]
fn no_automatic_fallback_after_a_database_failure() {
    let mut sim = failed_over_by_service(auto_fallback(), true);
    sim.advance(secs(3 * 3600));
    assert_eq!(
        sim.pair(),
        [
            Some((FailedOver, DatabaseFailure)),
            Some((RunningInBackupMode, DatabaseFailure))
        ]
    );
}

#[test]
fn admin_commands_outside_their_states_are_refused_with_the_reason() {
    let mut sim = Sim::new(Config::default(), USERS);
    assert_eq!(
        sim.admin(0, AdminCommand::Fallback),
        Err(Refusal::FallbackNeedsIdleOrFailedOver(Normal))
    );
    assert_eq!(
        sim.admin(0, AdminCommand::Recover),
        Err(Refusal::RecoveryNeedsBothFailed {
            node: Normal,
            peer: Some(Normal)
        })
    );
    sim.admin(0, AdminCommand::Failover).unwrap();
    assert_eq!(
        sim.admin(1, AdminCommand::Failover),
        Err(Refusal::FailoverNeedsNormal(TakingOver))
    );
    sim.advance(secs(10));
    assert_eq!(
        sim.admin(0, AdminCommand::Failover),
        Err(Refusal::FailoverNeedsNormal(Idle))
    );
    assert_eq!(
        sim.admin(1, AdminCommand::Fallback),
        Err(Refusal::FallbackNeedsIdleOrFailedOver(RunningInBackupMode))
    );

    let mut sim = Sim::new(Config::default(), USERS);
    sim.crash(1);
    sim.advance(secs(30));
    sim.link_up = false;
    sim.boot(1);
    sim.advance(secs(150));
    assert_eq!(
        sim.admin(0, AdminCommand::Failover),
        Err(Refusal::FailoverNeedsNormal(RunningInBackupMode))
    );

    let mut sim = failed_over_by_service(Config::default(), false);
    sim.set_service(0, true);
    sim.advance(secs(100));
    assert_eq!(
        sim.admin(0, AdminCommand::Fallback),
        Err(Refusal::FallbackNeedsIdleOrFailedOver(
            FailedOverCriticalServicesNotRunning
        ))
    );
    let text = Refusal::PeerCannotTakeOver(None).to_string();
    assert!(text.contains("unreachable"), "{text}");
}

fn lone_node(epoch: u64) -> FailoverNode {
    let boot = Boot {
        node: NodeId(1),
        peer: NodeId(2),
        epoch,
        own_users: vec![user(0, 0)],
        peer_users: vec![user(1, 0)],
        hosted: vec![user(0, 0)],
        last: None,
    };
    FailoverNode::new(Config::default(), boot, Instant::now()).unwrap()
}

fn peer_status(state: NodeState, reason: Reason) -> Input {
    Input::FromPeer(PeerMessage::Status(Status {
        from: NodeId(2),
        to: NodeId(1),
        epoch: 1,
        state,
        reason,
        holds_peer_users: false,
        hosts_all_own_users: true,
    }))
}

#[test]
fn manual_failover_needs_a_reachable_normal_peer() {
    let mut node = lone_node(1);
    let t0 = Instant::now();
    assert_eq!(
        node.admin(t0, AdminCommand::Failover),
        Err(Refusal::FailoverNeedsNormal(Initializing))
    );
    node.handle(t0, peer_status(Normal, Reason::Normal));
    assert_eq!(node.state(), Normal);
    node.handle(t0, peer_status(RunningInFailedMode, CriticalServiceDown));
    assert_eq!(
        node.state(),
        Normal,
        "a failed peer hosting its users is left alone"
    );
    assert_eq!(
        node.admin(t0, AdminCommand::Failover),
        Err(Refusal::PeerCannotTakeOver(Some(RunningInFailedMode)))
    );
}

#[test]
fn manual_recovery_restores_normal_when_both_failed() {
    let mut sim = Sim::new(Config::default(), USERS);
    sim.moves_fail[1] = true;
    sim.admin(0, AdminCommand::Failover).unwrap();
    assert_eq!(
        sim.pair()[0],
        Some((RunningInFailedMode, TakeOverUsersFailed))
    );
    sim.moves_fail[1] = false;
    sim.admin(1, AdminCommand::Recover).unwrap();
    sim.advance(secs(10));
    assert_eq!(sim.pair(), [Some(NORMAL), Some(NORMAL)]);
    sim.assert_users_hosted_on([0, 1]);
}

#[test]
fn invalid_configuration_is_refused_at_start() {
    let config = Config {
        heartbeat_timeout: secs(90),
        ..Config::default()
    };
    let boot = Boot {
        node: NodeId(1),
        peer: NodeId(2),
        epoch: 1,
        own_users: Vec::new(),
        peer_users: Vec::new(),
        hosted: Vec::new(),
        last: None,
    };
    let err = FailoverNode::new(config, boot, Instant::now()).unwrap_err();
    assert!(matches!(err, ConfigError::HeartbeatTimeoutTooShort { .. }));
}

#[test]
fn a_node_announces_itself_at_start_and_asks_to_be_woken_each_interval() {
    let t0 = Instant::now();
    let boot = Boot {
        node: NodeId(1),
        peer: NodeId(2),
        epoch: 7,
        own_users: Vec::new(),
        peer_users: Vec::new(),
        hosted: Vec::new(),
        last: None,
    };
    let mut node = FailoverNode::new(Config::default(), boot, t0).unwrap();
    let Some(Output::ToPeer(PeerMessage::Status(status))) = node.poll_output() else {
        panic!("no announcement");
    };
    assert_eq!((status.state, status.epoch), (Initializing, 7));
    assert_eq!(node.poll_timeout(), Some(t0 + secs(60)));
    node.handle_timeout(t0 + secs(60));
    assert!(matches!(
        node.poll_output(),
        Some(Output::ToPeer(PeerMessage::Status(_)))
    ));
    assert_eq!(node.poll_timeout(), Some(t0 + secs(120)));
}

#[test]
fn automatic_fallback_after_a_reboot() {
    let mut sim = Sim::new(auto_fallback(), USERS);
    sim.shutdown(0);
    sim.advance(secs(300));
    sim.boot(0);
    assert_eq!(sim.pair()[0], Some((FailedOver, Initialization)));
    sim.advance(secs(29 * 60));
    assert_eq!(sim.pair()[1], Some((RunningInBackupMode, PeerReboot)));
    sim.advance(secs(2 * 60));
    assert_eq!(sim.pair(), [Some(NORMAL), Some(NORMAL)]);
}

#[test]
fn automatic_fallback_after_the_link_is_restored() {
    let mut sim = Sim::new(auto_fallback(), USERS);
    sim.link_up = false;
    sim.advance(secs(600));
    assert_eq!(sim.pair()[1], Some((FailedOver, PeerDown)));
    sim.link_up = true;
    sim.advance(secs(29 * 60));
    assert_eq!(sim.pair()[0], Some((RunningInBackupMode, PeerDown)));
    // The restored link is noticed at the next heartbeat, up to one interval after the heal.
    sim.advance(secs(3 * 60));
    assert_eq!(sim.pair(), [Some(NORMAL), Some(NORMAL)]);
    sim.assert_users_hosted_on([0, 1]);
}

/// Accounts created after both managers started reach them as `Input::Homes`; a takeover then moves them too.
#[test]
fn homes_learned_after_boot_are_taken_over() {
    let mut sim = Sim::new(Config::default(), 0);
    let late: Vec<_> = (0..30).map(|i| user(1, i)).collect();
    for u in &late {
        sim.store.insert(u.clone(), NodeId(2));
    }
    sim.assigned[1] = late.clone();
    for n in 0..2 {
        let own = sim.assigned[n].clone();
        let peer = sim.assigned[1 - n].clone();
        let me = sim.ids[n];
        let hosted = sim
            .store
            .iter()
            .filter(|(_, h)| **h == me)
            .map(|(u, _)| u.clone())
            .collect();
        sim.feed(n, Input::Homes { own, peer, hosted });
    }
    sim.crash(1);
    // Detection after the timeout, then two batches of 25 a second apart.
    sim.advance(secs(123));
    assert_eq!(sim.pair()[0], Some((RunningInBackupMode, PeerDown)));
    let moved: Vec<_> = sim.batches.iter().flat_map(|(_, _, u)| u.clone()).collect();
    assert_eq!(moved.len(), late.len(), "every late user moved: {moved:?}");
    sim.assert_users_hosted_on([0, 0]);
}

/// The peer crashed and this node's takeover failed: recovery is allowed (the peer is unreachable), and the
/// restarted manager takes the users over once the database works again.
#[test]
fn a_node_failed_alone_recovers_and_takes_over() {
    let mut sim = Sim::new(Config::default(), USERS);
    sim.crash(0);
    sim.moves_fail[1] = true;
    sim.advance(secs(200));
    assert_eq!(
        sim.pair()[1],
        Some((RunningInFailedMode, TakeOverUsersFailed))
    );
    sim.moves_fail[1] = false;
    sim.admin(1, AdminCommand::Recover).unwrap();
    sim.advance(secs(300));
    assert_eq!(sim.pair()[1].unwrap().0, RunningInBackupMode);
    sim.assert_users_hosted_on([1, 1]);
}

/// The claim that ends a fallback travels apart from the peer's announcements (over NATS, a placement broadcast
/// and the heartbeat are separate subjects), so the peer's "Normal" can arrive first. The late claim of the
/// peer's own users is then the end of that fallback, not a takeover across a partition.
#[test]
fn a_fallback_claim_arriving_after_the_peers_normal_changes_nothing() {
    let boot = Boot {
        node: NodeId(1),
        peer: NodeId(2),
        epoch: 1,
        own_users: vec![user(0, 0)],
        peer_users: vec![user(1, 0)],
        hosted: vec![user(0, 0), user(1, 0)],
        last: None,
    };
    let t0 = Instant::now();
    let mut node = FailoverNode::new(Config::default(), boot, t0).unwrap();
    let status = |state, reason, hosts_all| {
        Input::FromPeer(PeerMessage::Status(Status {
            from: NodeId(2),
            to: NodeId(1),
            epoch: 1,
            state,
            reason,
            holds_peer_users: false,
            hosts_all_own_users: hosts_all,
        }))
    };
    node.handle(t0, status(FailedOver, PeerDown, false));
    assert_eq!(node.state(), RunningInBackupMode);
    node.handle(t0, status(TakingBack, Reason::OnAdminRequest, false));
    assert_eq!(node.state(), FallingBack);
    node.handle(t0, status(Normal, Reason::Normal, true));
    assert_eq!(node.state(), Normal);
    node.handle(t0, Input::UsersClaimedByPeer(vec![user(1, 0)]));
    assert_eq!(node.state(), Normal, "the fallback's own claim, late");
    assert!(!node.hosted().contains(&user(1, 0)));
    // A claim of this node's own users is still a takeover across a partition.
    node.handle(t0, Input::UsersClaimedByPeer(vec![user(0, 0)]));
    assert_eq!(node.state(), FailedOver);
}

/// The other order: the claim that ends a fallback reaches the backup before the peer's "Taking Back" (the admin
/// fallback on an Idle node is quick, and a placement broadcast can overtake the heartbeat subject). The backup
/// falls back; it does not mistake its peer's return for a takeover and stay Failed Over.
#[test]
fn a_fallback_claim_arriving_before_the_peers_taking_back_falls_back() {
    let boot = Boot {
        node: NodeId(2),
        peer: NodeId(1),
        epoch: 1,
        own_users: vec![user(1, 0)],
        peer_users: vec![user(0, 0)],
        hosted: vec![user(1, 0)],
        last: None,
    };
    let t0 = Instant::now();
    let mut node = FailoverNode::new(Config::default(), boot, t0).unwrap();
    let status = |state, reason| {
        Input::FromPeer(PeerMessage::Status(Status {
            from: NodeId(1),
            to: NodeId(2),
            epoch: 1,
            state,
            reason,
            holds_peer_users: false,
            hosts_all_own_users: false,
        }))
    };
    node.handle(t0, status(Normal, Reason::Normal));
    assert_eq!(node.state(), Normal);
    node.handle(t0, status(FailingOver, Reason::OnAdminRequest));
    assert_eq!(node.state(), TakingOver);
    node.handle(t0, status(Idle, Reason::OnAdminRequest));
    let t1 = t0 + secs(5);
    for now in [t0, t1] {
        node.handle_timeout(now);
        while let Some(out) = node.poll_output() {
            if let Output::MoveUsers(batch) = out {
                node.handle(now, Input::MoveSucceeded(batch.id));
            }
        }
    }
    assert_eq!(node.state(), RunningInBackupMode);
    let t0 = t1;
    node.handle(t0, Input::UsersClaimedByPeer(vec![user(0, 0)]));
    assert_eq!(
        node.state(),
        FallingBack,
        "the peer's claim of its own users is its fallback"
    );
    assert!(!node.hosted().contains(&user(0, 0)));
    node.handle(t0, status(TakingBack, Reason::OnAdminRequest));
    assert_eq!(node.state(), FallingBack);
    node.handle(t0, status(Normal, Reason::Normal));
    assert_eq!(node.state(), Normal);
}
