//! The documented state transitions: the single source of truth for the machine and its docs.

use super::state::NodeState::{self, *};

/// Every allowed `(from, to)` state change, with what causes it.
pub const TRANSITIONS: &[(NodeState, NodeState, &str)] = &[
    (Initializing, Normal, "peer seen, both healthy"),
    (Initializing, Idle, "restarted after a manual failover"),
    (
        Initializing,
        TakingOver,
        "peer silent or failing over, or was backup",
    ),
    (Initializing, TakingBack, "restarted while taking back"),
    (Initializing, FallingBack, "restarted while falling back"),
    (Initializing, FailedOver, "peer hosts our users"),
    (
        Initializing,
        FailedOverCriticalServicesNotRunning,
        "peer hosts our users, service down",
    ),
    (
        Initializing,
        RunningInFailedMode,
        "peer failed, or unhealthy alone",
    ),
    (Initializing, Unknown, "pair misconfigured"),
    (
        Normal,
        FailingOver,
        "admin failover, service or database down",
    ),
    (
        Normal,
        TakingOver,
        "peer down, rebooted, failing over, failed without users, or failed over to us unserved",
    ),
    (Normal, FailedOver, "users claimed across a partition"),
    (
        Normal,
        FailedOverCriticalServicesNotRunning,
        "users claimed while a service is down",
    ),
    (
        Normal,
        RunningInFailedMode,
        "service down, peer cannot take over",
    ),
    (TakingOver, RunningInBackupMode, "all users moved"),
    (TakingOver, FailedOver, "lost a takeover race"),
    (
        TakingOver,
        FailedOverCriticalServicesNotRunning,
        "lost a takeover race, service down",
    ),
    (TakingOver, RunningInFailedMode, "move or service failed"),
    (FailingOver, Idle, "admin failover done"),
    (
        FailingOver,
        FailedOver,
        "automatic failover done, services up",
    ),
    (
        FailingOver,
        FailedOverCriticalServicesNotRunning,
        "automatic failover done",
    ),
    (FailingOver, RunningInFailedMode, "peer failed or vanished"),
    (RunningInBackupMode, FallingBack, "fallback"),
    (
        RunningInBackupMode,
        TakingOver,
        "peer down while missing users",
    ),
    (
        RunningInBackupMode,
        FailingOver,
        "auto recover: backup lost a service",
    ),
    (
        RunningInBackupMode,
        FailedOver,
        "users claimed across a partition",
    ),
    (
        RunningInBackupMode,
        FailedOverCriticalServicesNotRunning,
        "users claimed, service down",
    ),
    (
        RunningInBackupMode,
        RunningInFailedMode,
        "service down, peer cannot take over",
    ),
    (Idle, TakingBack, "admin fallback"),
    (Idle, RunningInFailedMode, "peer failed"),
    (FailedOver, TakingBack, "fallback"),
    (FailedOver, TakingOver, "backup down, or auto recover"),
    (
        FailedOver,
        FailedOverCriticalServicesNotRunning,
        "service down",
    ),
    (FailedOver, RunningInFailedMode, "peer failed"),
    (
        FailedOverCriticalServicesNotRunning,
        FailedOver,
        "services up",
    ),
    (
        FailedOverCriticalServicesNotRunning,
        RunningInFailedMode,
        "peer failed",
    ),
    (TakingBack, Normal, "all users back"),
    (TakingBack, TakingOver, "peer down"),
    (TakingBack, RunningInFailedMode, "start or move failed"),
    (TakingBack, FailedOver, "lost a takeback race"),
    (
        TakingBack,
        FailedOverCriticalServicesNotRunning,
        "lost a takeback race, service down",
    ),
    (FallingBack, Normal, "peer took its users back"),
    (FallingBack, TakingOver, "peer down"),
    (
        FallingBack,
        RunningInFailedMode,
        "peer failed or service down",
    ),
    (RunningInFailedMode, RunningInFailedMode, "peer restarted"),
    (RunningInFailedMode, Initializing, "admin recovery"),
    (Unknown, Initializing, "admin recovery"),
];

/// Whether the table allows moving from `from` to `to`.
pub fn is_allowed(from: NodeState, to: NodeState) -> bool {
    TRANSITIONS.iter().any(|(f, t, _)| *f == from && *t == to)
}

/// The table as a Mermaid state diagram, one line per transition.
pub fn render_mermaid() -> String {
    let mut out = String::from("stateDiagram-v2\n");
    out.push_str("    [*] --> Initializing\n");
    for (from, to, why) in TRANSITIONS {
        out.push_str(&format!(
            "    {} --> {}: {}\n",
            from.diagram_id(),
            to.diagram_id(),
            why
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_docs_show_exactly_the_transition_table() {
        let docs: String = include_str!("mod.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//!"))
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let start = docs.find("```mermaid\n").expect("a mermaid block") + "```mermaid\n".len();
        let len = docs[start..].find("```").expect("closed block");
        assert_eq!(
            &docs[start..start + len],
            render_mermaid(),
            "regenerate the diagram in failover/mod.rs from TRANSITIONS"
        );
    }

    #[test]
    fn every_state_is_reachable_and_has_an_exit() {
        for s in NodeState::ALL {
            assert!(
                s == Initializing || TRANSITIONS.iter().any(|(_, t, _)| *t == s),
                "{s} unreachable"
            );
            assert!(
                TRANSITIONS.iter().any(|(f, _, _)| *f == s),
                "{s} has no exit"
            );
        }
    }
}
