//! Random interleavings of faults, heals, admin commands and clock jumps.
//!
//! The harness itself asserts that every state change is in the transition table; here we
//! check after every step that no user is hosted by both nodes, and after each settling period
//! that no user is hosted by neither while a node is healthy. At the end every fault is healed
//! and an operator recovers what needs one; then every user must be hosted, with no exemption
//! for the nodes' states: a history that leaves the pair serving nobody (both idle, both
//! failed) fails there, where the checks along the way, which must allow a pair that
//! legitimately serves nobody until an operator acts, would let it pass.

use std::time::Duration;

use proptest::prelude::*;

use super::harness::{Sim, user};
use crate::failover::{AdminCommand, AutomaticFallback, Config, Input, NodeState};

const USERS: usize = 15;

#[derive(Debug, Clone)]
enum Op {
    Cut,
    Heal,
    Crash(usize),
    Shutdown(usize),
    Boot(usize),
    Service(usize, bool),
    Database(usize, bool),
    MovesFail(usize, bool),
    Admin(usize, AdminCommand),
    SignIn(usize, usize, bool),
    Advance(u64),
    Jump(u64),
    Settle,
}

fn node() -> impl Strategy<Value = usize> {
    0..2usize
}

fn op() -> impl Strategy<Value = Op> {
    let command = prop_oneof![
        Just(AdminCommand::Failover),
        Just(AdminCommand::Fallback),
        Just(AdminCommand::Recover),
    ];
    prop_oneof![
        2 => Just(Op::Cut),
        3 => Just(Op::Heal),
        2 => node().prop_map(Op::Crash),
        1 => node().prop_map(Op::Shutdown),
        3 => node().prop_map(Op::Boot),
        3 => (node(), any::<bool>()).prop_map(|(n, d)| Op::Service(n, d)),
        2 => (node(), any::<bool>()).prop_map(|(n, d)| Op::Database(n, d)),
        1 => (node(), any::<bool>()).prop_map(|(n, f)| Op::MovesFail(n, f)),
        4 => (node(), command).prop_map(|(n, c)| Op::Admin(n, c)),
        2 => (node(), 0..USERS, any::<bool>()).prop_map(|(n, u, s)| Op::SignIn(n, u, s)),
        5 => (0..400u64).prop_map(Op::Advance),
        2 => (0..4000u64).prop_map(Op::Jump),
        3 => Just(Op::Settle),
    ]
}

fn apply(sim: &mut Sim, op: &Op) {
    match *op {
        Op::Cut => sim.link_up = false,
        Op::Heal => sim.link_up = true,
        Op::Crash(i) => sim.crash(i),
        Op::Shutdown(i) => sim.shutdown(i),
        Op::Boot(i) => {
            if !sim.alive(i) {
                sim.boot(i);
            }
        }
        Op::Service(i, down) => sim.set_service(i, down),
        Op::Database(i, down) => sim.set_db(i, down),
        Op::MovesFail(i, fail) => sim.moves_fail[i] = fail,
        Op::Admin(i, command) => {
            let before = sim.pair()[i].map(|(state, _)| state);
            // Refusals are fine; an accepted command must have been eligible.
            if sim.admin(i, command).is_ok()
                && let Some(state) = before
            {
                let eligible = match command {
                    AdminCommand::Failover => state == NodeState::Normal,
                    AdminCommand::Fallback => {
                        matches!(state, NodeState::Idle | NodeState::FailedOver)
                    }
                    AdminCommand::Recover => state.is_failed(),
                };
                assert!(eligible, "{command:?} accepted in {state}");
            }
        }
        Op::SignIn(i, u, signed_in) => {
            let u = user(i, u);
            let input = if signed_in {
                Input::SignedIn(u)
            } else {
                Input::SignedOut(u)
            };
            for n in 0..2 {
                sim.feed(n, input.clone());
            }
            sim.pump();
        }
        Op::Advance(s) => sim.advance(Duration::from_secs(s)),
        Op::Jump(s) => sim.jump(Duration::from_secs(s)),
        Op::Settle => sim.advance(Duration::from_secs(900)),
    }
}

fn assert_never_hosted_twice(sim: &Sim, history: &[Op]) {
    for u in sim.all_users() {
        let hosts = (0..2)
            .filter(|&i| {
                sim.nodes[i]
                    .as_ref()
                    .is_some_and(|n| n.hosted().contains(u))
            })
            .count();
        assert!(hosts <= 1, "{u} hosted by both nodes after {history:?}");
    }
}

/// Along the way: once settled, a healthy node means nobody is orphaned. A pair with no healthy
/// node may serve nobody (both failed, or idle after a manual failover with the backup down)
/// until an operator acts, so it is checked at the end instead (see `assert_pair_restored`).
fn assert_nobody_orphaned(sim: &Sim, history: &[Op]) {
    let settled = (0..2).all(|i| sim.nodes[i].as_ref().is_none_or(|n| !n.is_moving_users()));
    if !settled || !(0..2).any(|i| sim.healthy(i)) {
        return;
    }
    assert_everyone_hosted(sim, history);
}

fn assert_everyone_hosted(sim: &Sim, history: &[Op]) {
    for u in sim.all_users() {
        let hosted = (0..2).any(|i| {
            sim.nodes[i]
                .as_ref()
                .is_some_and(|n| n.hosted().contains(u))
        });
        assert!(
            hosted,
            "{u} hosted by neither node, states {:?}, after {history:?}\n{:#?}",
            sim.pair(),
            sim.transitions
        );
    }
}

/// What an operator does once the faults are gone: recover failed nodes and fall back an idle
/// one (a refused command is retried after the next settling period).
fn operate(sim: &mut Sim) {
    for _ in 0..4 {
        for i in 0..2 {
            let Some((state, _)) = sim.pair()[i] else {
                continue;
            };
            let command = if state.is_failed() {
                AdminCommand::Recover
            } else if state == NodeState::Idle {
                AdminCommand::Fallback
            } else {
                continue;
            };
            let _ = sim.admin(i, command);
        }
        sim.advance(Duration::from_secs(900));
    }
}

/// At the end, with every fault healed and the operator done, the pair serves everyone: every
/// user hosted exactly once, whatever state either node is in.
fn assert_pair_restored(sim: &Sim, history: &[Op]) {
    assert_never_hosted_twice(sim, history);
    assert_everyone_hosted(sim, history);
}

/// Runs `ops`, checking the invariants as it goes, then heals everything and checks again.
fn replay(ops: &[Op], auto_fallback: bool) {
    let config = Config {
        users_per_batch: 4,
        automatic_fallback: if auto_fallback {
            AutomaticFallback::Enabled
        } else {
            AutomaticFallback::Disabled
        },
        ..Config::default()
    };
    let mut sim = Sim::new(config, USERS);
    for (step, op) in ops.iter().enumerate() {
        apply(&mut sim, op);
        let history = &ops[..=step];
        assert_never_hosted_twice(&sim, history);
        if matches!(op, Op::Settle) {
            assert_nobody_orphaned(&sim, history);
        }
    }
    // Heal everything and let the pair settle: with both nodes healthy, everyone is hosted.
    sim.link_up = true;
    for i in 0..2 {
        sim.moves_fail[i] = false;
        if sim.service_down[i] {
            sim.set_service(i, false);
        }
        if sim.db_down[i] {
            sim.set_db(i, false);
        }
        if !sim.alive(i) {
            sim.boot(i);
        }
    }
    sim.advance(Duration::from_secs(900));
    operate(&mut sim);
    assert_pair_restored(&sim, ops);
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Deeper runs: PROPTEST_CASES=20000 cargo test --release -p presence-core properties
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn one_owner_per_user_under_random_faults(
        ops in proptest::collection::vec(op(), 1..90),
        auto_fallback in any::<bool>(),
    ) {
        replay(&ops, auto_fallback);
    }
}

/// Interleavings the property once found wrong, kept as plain tests.
mod regressions {
    use super::Op::*;
    use super::replay;
    use crate::failover::AdminCommand::*;

    #[test]
    fn both_services_fail_at_once() {
        replay(
            &[
                Service(0, true),
                Service(1, true),
                Advance(310),
                Service(0, false),
                Service(1, false),
                Settle,
            ],
            false,
        );
    }

    #[test]
    fn peer_fails_over_to_a_rebooting_node_across_a_cut() {
        replay(
            &[
                Cut,
                Service(1, true),
                Crash(0),
                Advance(120),
                Boot(0),
                Heal,
                Settle,
            ],
            false,
        );
    }

    #[test]
    fn auto_recovery_crosses_the_peers_database_failure() {
        replay(
            &[
                Jump(120),
                Database(1, true),
                Service(0, true),
                Settle,
                Service(0, false),
                Settle,
            ],
            false,
        );
    }

    #[test]
    fn take_back_fails_after_recovery() {
        replay(
            &[
                MovesFail(1, true),
                Admin(0, Failover),
                Admin(0, Recover),
                Database(0, true),
                Settle,
            ],
            false,
        );
    }

    #[test]
    fn recovered_node_shuts_down_while_its_peer_holds_both_halves() {
        replay(
            &[
                SignIn(0, 0, true),
                Service(1, true),
                Service(0, true),
                Advance(90),
                Admin(0, Recover),
                Shutdown(0),
            ],
            false,
        );
    }

    #[test]
    fn backup_fails_over_across_a_cut_after_a_takeover_race() {
        replay(&[Jump(120), Cut, Service(0, true), Settle], false);
    }

    #[test]
    fn fallback_cut_then_crash() {
        replay(
            &[
                Crash(1),
                Advance(124),
                Boot(1),
                Admin(1, Fallback),
                Cut,
                Advance(123),
                Jump(180),
                Crash(1),
                Settle,
            ],
            false,
        );
    }
}
