//! One test per row of the node state/reason table (DESIGN §6, and the source rows it cites).
//!
//! Each scenario drives two managers from Normal/Normal through the simulated link to the
//! row's pair; `None` stands for a node that is down or unreachable.

use std::time::Duration;

use super::harness::{NORMAL, Sim};
use crate::failover::NodeState::*;
use crate::failover::Reason::*;
use crate::failover::{AdminCommand, AutomaticFallback, Config, NodeState, Reason};

const USERS: usize = 60;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn healthy_pair() -> Sim {
    Sim::new(Config::default(), USERS)
}

fn with_auto_fallback() -> Sim {
    Sim::new(
        Config {
            automatic_fallback: AutomaticFallback::Enabled,
            ..Config::default()
        },
        USERS,
    )
}

/// Steps timers until the pair matches `expect` (so mid-move rows can be observed).
fn run_until(sim: &mut Sim, limit: Duration, expect: [Option<(NodeState, Reason)>; 2]) {
    let target = sim.now + limit;
    sim.advance_until(target, |s| s.pair() == expect);
}

fn manual_failover_started() -> Sim {
    let mut sim = healthy_pair();
    sim.admin(0, AdminCommand::Failover).unwrap();
    sim
}

fn manual_failover_done() -> Sim {
    let mut sim = manual_failover_started();
    sim.advance(secs(10));
    sim.assert_users_hosted_on([1, 1]);
    sim
}

fn manual_fallback_started() -> Sim {
    let mut sim = manual_failover_done();
    sim.admin(0, AdminCommand::Fallback).unwrap();
    sim
}

fn service_failover() -> Sim {
    let mut sim = healthy_pair();
    sim.set_service(0, true);
    sim.advance(secs(100));
    sim
}

fn database_failover() -> Sim {
    let mut sim = healthy_pair();
    sim.set_db(0, true);
    sim.advance(secs(100));
    sim
}

fn failed_over_after_services_up() -> Sim {
    let mut sim = service_failover();
    sim.set_service(0, false);
    sim
}

fn failed_over_after_reboot() -> Sim {
    let mut sim = healthy_pair();
    sim.shutdown(0);
    sim.advance(secs(10));
    sim.boot(0);
    sim
}

fn automatic_fallback_started() -> Sim {
    let mut sim = with_auto_fallback();
    sim.set_service(0, true);
    sim.advance(secs(100));
    sim.set_service(0, false);
    let expect = [
        Some((TakingBack, AutomaticFallback)),
        Some((FallingBack, AutomaticFallback)),
    ];
    run_until(&mut sim, secs(31 * 60), expect);
    sim
}

fn peer_down() -> Sim {
    let mut sim = healthy_pair();
    sim.crash(0);
    sim.advance(secs(200));
    sim
}

fn peer_reboot() -> Sim {
    let mut sim = healthy_pair();
    sim.shutdown(0);
    sim.advance(secs(10));
    sim
}

fn peer_down_during_initialization() -> Sim {
    let mut sim = Sim::unbooted(Config::default(), USERS);
    sim.boot(1);
    sim.advance(secs(300));
    sim.boot(0);
    sim
}

fn start_of_services_failed() -> Sim {
    let mut sim = manual_failover_done();
    sim.set_service(0, true);
    sim.admin(0, AdminCommand::Fallback).unwrap();
    sim
}

fn backup_lost_a_service() -> Sim {
    let mut sim = manual_failover_done();
    sim.set_service(1, true);
    sim.advance(secs(100));
    sim
}

fn take_over_users_failed() -> Sim {
    let mut sim = healthy_pair();
    sim.moves_fail[1] = true;
    sim.admin(0, AdminCommand::Failover).unwrap();
    sim
}

fn take_back_users_failed() -> Sim {
    let mut sim = manual_failover_done();
    sim.moves_fail[0] = true;
    sim.admin(0, AdminCommand::Fallback).unwrap();
    sim
}

fn manager_restarts_while_peer_failed() -> Sim {
    let mut sim = take_over_users_failed();
    sim.crash(0);
    sim.boot(0);
    sim
}

fn auto_recover(database: bool) -> Sim {
    let mut sim = failed_over_after_services_up();
    if database {
        sim.set_db(1, true);
    } else {
        sim.set_service(1, true);
    }
    sim.advance(secs(100));
    sim
}

fn misconfigured_pair() -> Sim {
    let mut sim = Sim::unbooted(Config::default(), USERS);
    sim.peers[0] = crate::cluster::NodeId(3);
    sim.boot(0);
    sim.boot(1);
    sim
}

fn restart(sim: &mut Sim, i: usize) {
    sim.crash(i);
    sim.boot(i);
}

macro_rules! rows {
    ($($name:ident: $scenario:expr => [$a:expr, $b:expr];)*) => {$(
        #[test]
        fn $name() {
            let sim = $scenario;
            assert_eq!(sim.pair(), [$a, $b], "transitions: {:#?}", sim.transitions);
            sim.assert_no_user_hosted_twice();
        }
    )*};
}

rows! {
    row_normal_normal: healthy_pair() => [Some(NORMAL), Some(NORMAL)];
    row_manual_failover_in_progress: manual_failover_started()
        => [Some((FailingOver, OnAdminRequest)), Some((TakingOver, OnAdminRequest))];
    row_manual_failover_done: manual_failover_done()
        => [Some((Idle, OnAdminRequest)), Some((RunningInBackupMode, OnAdminRequest))];
    row_manual_fallback_in_progress: manual_fallback_started()
        => [Some((TakingBack, OnAdminRequest)), Some((FallingBack, OnAdminRequest))];
    row_automatic_fallback_in_progress: automatic_fallback_started()
        => [Some((TakingBack, AutomaticFallback)), Some((FallingBack, AutomaticFallback))];
    row_failover_on_critical_service_down: service_failover()
        => [Some((FailedOverCriticalServicesNotRunning, CriticalServiceDown)),
            Some((RunningInBackupMode, CriticalServiceDown))];
    row_failover_on_database_failure: database_failover()
        => [Some((FailedOverCriticalServicesNotRunning, DatabaseFailure)),
            Some((RunningInBackupMode, DatabaseFailure))];
    row_ready_for_fallback_after_services_up: failed_over_after_services_up()
        => [Some((FailedOver, CriticalServiceDown)), Some((RunningInBackupMode, CriticalServiceDown))];
    row_ready_for_fallback_after_reboot: failed_over_after_reboot()
        => [Some((FailedOver, Initialization)), Some((RunningInBackupMode, PeerReboot))];
    row_peer_down: peer_down() => [None, Some((RunningInBackupMode, PeerDown))];
    row_peer_reboot: peer_reboot() => [None, Some((RunningInBackupMode, PeerReboot))];
    row_peer_down_during_initialization: peer_down_during_initialization()
        => [Some((FailedOver, Initialization)), Some((RunningInBackupMode, PeerDownDuringInitialization))];
    row_start_of_critical_services_failed: start_of_services_failed()
        => [Some((RunningInFailedMode, StartOfCriticalServicesFailed)),
            Some((RunningInFailedMode, StartOfCriticalServicesFailed))];
    row_backup_lost_a_critical_service: backup_lost_a_service()
        => [Some((RunningInFailedMode, CriticalServiceDown)), Some((RunningInFailedMode, CriticalServiceDown))];
    row_take_over_users_failed: take_over_users_failed()
        => [Some((RunningInFailedMode, TakeOverUsersFailed)), Some((RunningInFailedMode, TakeOverUsersFailed))];
    row_take_back_users_failed: take_back_users_failed()
        => [Some((RunningInFailedMode, TakeBackUsersFailed)), Some((RunningInFailedMode, TakeBackUsersFailed))];
    row_auto_recover_database_failure: auto_recover(true)
        => [Some((RunningInBackupMode, AutoRecoverDatabaseFailure)),
            Some((FailedOverCriticalServicesNotRunning, AutoRecoverDatabaseFailure))];
    row_auto_recover_critical_service_down: auto_recover(false)
        => [Some((RunningInBackupMode, AutoRecoverCriticalServiceDown)),
            Some((FailedOverCriticalServicesNotRunning, AutoRecoverCriticalServiceDown))];
    row_manager_restart_while_peer_failed: manager_restarts_while_peer_failed()
        => [Some((RunningInFailedMode, Reason::Unknown)), Some((RunningInFailedMode, Reason::Unknown))];
    row_misconfigured_pair: misconfigured_pair()
        => [Some((NodeState::Unknown, Reason::Unknown)), Some((NodeState::Unknown, Reason::Unknown))];
    row_restart_idle_node: { let mut s = manual_failover_done(); restart(&mut s, 0); s }
        => [Some((Idle, Initialization)), Some((RunningInBackupMode, OnAdminRequest))];
    row_restart_both_after_manual_failover:
        { let mut s = manual_failover_done(); s.crash(0); s.crash(1); s.boot(0); s.boot(1); s }
        => [Some((Idle, Initialization)), Some((RunningInBackupMode, Initialization))];
    row_restart_backup_node: { let mut s = manual_failover_done(); restart(&mut s, 1); s }
        => [Some((Idle, OnAdminRequest)), Some((RunningInBackupMode, Initialization))];
    row_restart_while_taking_over: { let mut s = manual_failover_started(); restart(&mut s, 1); s }
        => [Some((FailingOver, OnAdminRequest)), Some((TakingOver, Initialization))];
    row_restart_while_taking_back: { let mut s = manual_fallback_started(); restart(&mut s, 0); s }
        => [Some((TakingBack, Initialization)), Some((FallingBack, OnAdminRequest))];
}

#[test]
fn fallbacks_end_in_normal_with_every_user_home() {
    for mut sim in [manual_fallback_started(), automatic_fallback_started()] {
        sim.advance(secs(10));
        assert_eq!(sim.pair(), [Some(NORMAL), Some(NORMAL)]);
        sim.assert_users_hosted_on([0, 1]);
    }
    let mut sim = manual_fallback_started();
    restart(&mut sim, 0);
    sim.advance(secs(10));
    assert_eq!(sim.pair(), [Some(NORMAL), Some(NORMAL)]);
    sim.assert_users_hosted_on([0, 1]);
}

#[test]
fn partition_lets_the_lower_node_take_over_and_the_other_stand_down() {
    let mut sim = healthy_pair();
    sim.link_up = false;
    sim.advance(secs(200));
    assert_eq!(
        sim.pair(),
        [
            Some((RunningInBackupMode, PeerDown)),
            Some((FailedOver, PeerDown))
        ]
    );
    sim.assert_users_hosted_on([0, 0]);
    sim.advance(secs(3600));
    // No ping-pong across the cut.
    sim.assert_users_hosted_on([0, 0]);
    sim.link_up = true;
    sim.advance(secs(120));
    assert_eq!(
        sim.pair(),
        [
            Some((RunningInBackupMode, PeerDown)),
            Some((FailedOver, PeerDown))
        ]
    );
}
