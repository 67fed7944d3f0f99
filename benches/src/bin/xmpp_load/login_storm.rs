//! The login storm: every workload starts by logging all its clients in at once (at most `--concurrency` in
//! flight), and this phase is measured on its own; the `login` workload is this phase and nothing else.

use std::net::SocketAddr;

use crate::RunArgs;
use crate::login::{Client, login_all};
use crate::report::Json;
use crate::sampling::CpuMark;

/// Logs every client in and reports logins/s, errors, the CPU both sides spent and where clients landed (a
/// cluster's nodes send clients on with `<see-other-host/>`). `None` for the clients that failed.
pub(crate) async fn login_phase(
    a: &RunArgs,
    run_mark: &CpuMark,
    j: &mut Json,
) -> Vec<Option<Client>> {
    let pid = &a.server_pid[..];
    let (clients, errors, first_error) = login_all(&a.target, a.users, a.concurrency).await;
    let (login_wall, login_server_cpu, login_tool_cpu) = run_mark.since(pid);
    if let Some(e) = &first_error {
        eprintln!("{errors} login errors, first: {e}");
    }
    let ok = a.users - errors;
    j.num("logins_ok", ok as f64);
    j.num("login_errors", errors as f64);
    j.str("first_error", first_error.as_deref().unwrap_or(""));
    j.num("login_s", login_wall);
    j.num("logins_per_s", ok as f64 / login_wall);
    j.num("login_server_cpu_s", login_server_cpu);
    j.num("login_tool_cpu_s", login_tool_cpu);
    let mut per_node = std::collections::BTreeMap::<SocketAddr, usize>::new();
    for c in clients.iter().flatten() {
        *per_node.entry(c.addr).or_default() += 1;
    }
    let per_node = per_node
        .iter()
        .map(|(a, n)| format!("{a}={n}"))
        .collect::<Vec<_>>()
        .join(" ");
    let redirected = clients.iter().flatten().filter(|c| c.redirects > 0).count();
    j.str("per_node", &per_node);
    j.num("redirected", redirected as f64);
    if redirected > 0 {
        eprintln!(
            "[{}] {redirected} clients followed see-other-host; clients per node: {per_node}",
            a.label
        );
    }
    eprintln!(
        "[{}] {ok} logins in {login_wall:.2} s = {:.0}/s (server CPU {login_server_cpu:.2} s, tool CPU {login_tool_cpu:.2} s)",
        a.label,
        ok as f64 / login_wall
    );
    clients
}
