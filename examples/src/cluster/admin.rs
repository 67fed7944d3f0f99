//! `presenced cluster status|fallback|rebalance`: the operator's view of the cluster and its two commands.
//!
//! `status` reads PostgreSQL; `fallback` and `rebalance` are requests to a running node over NATS (subject
//! `presenced.admin.<node>`), so they work from any machine that reaches the cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use super::ClusterError;
use super::config::ClusterConfig;
use super::db::Db;

/// How long a node has to answer a command (a rebalance moves users in paced batches).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(600);

/// The table `cluster status` prints: one line per node with its users.
pub async fn status(db_url: &str) -> Result<String, ClusterError> {
    let db = Db::connect(db_url).await?;
    let nodes = db.nodes().await?;
    let rows = db.placement().await?;
    let mut hosted: BTreeMap<&str, usize> = BTreeMap::new();
    let mut homed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut nowhere = 0;
    for r in &rows {
        *homed.entry(r.home.as_str()).or_default() += 1;
        match &r.host {
            Some(h) => *hosted.entry(h.as_str()).or_default() += 1,
            None => nowhere += 1,
        }
    }
    let mut out = String::from("node\tgroup\tstate\treason\tepoch\tusers served\tusers assigned\n");
    for n in &nodes {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            n.name,
            n.group,
            n.state.as_deref().unwrap_or("-"),
            n.reason.as_deref().unwrap_or("-"),
            n.epoch,
            hosted.get(n.name.as_str()).copied().unwrap_or(0),
            homed.get(n.name.as_str()).copied().unwrap_or(0),
        ));
    }
    if nowhere > 0 {
        out.push_str(&format!("(served by no node: {nowhere})\n"));
    }
    Ok(out)
}

/// Sends `request` (`fallback` or `rebalance`) to `node` and returns its answer line.
pub async fn request(
    config: &ClusterConfig,
    node: &str,
    request: &str,
) -> Result<String, ClusterError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(&config.nats)
        .await
        .map_err(|e| ClusterError::Nats {
            url: config.nats.clone(),
            message: e.to_string(),
        })?;
    let answer = tokio::time::timeout(
        ANSWER_TIMEOUT,
        client.request(super::admin_subject(node), Bytes::from(request.to_owned())),
    )
    .await
    .map_err(|_| ClusterError::Nats {
        url: config.nats.clone(),
        message: format!(
            "node {node} did not answer within {} s",
            ANSWER_TIMEOUT.as_secs()
        ),
    })?
    .map_err(|e| ClusterError::Nats {
        url: config.nats.clone(),
        message: format!("node {node} did not answer: {e}"),
    })?;
    Ok(String::from_utf8_lossy(&answer.payload).into_owned())
}
