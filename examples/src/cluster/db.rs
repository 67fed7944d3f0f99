//! The cluster's shared state in PostgreSQL: nodes, their failover state, and where every user is served.
//!
//! The tables come from the store's versioned migrations (`examples/migrations/0002_cluster.sql`). This
//! module holds its own asynchronous connection, reopened after PostgreSQL comes back, because the failover
//! manager runs on the I/O runtime and must not wait behind the engine's store calls.

use presence_core::assignment::{AssignmentMode, UserId};
use tokio::sync::Mutex;
use tracing::warn;

use super::model::{self, NodeRow, PlacementRow};

/// Why a cluster query failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// PostgreSQL could not be reached or refused the query.
    #[error("cluster database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The topology refused this node (a third node in a group, a fourth group).
    #[error("cluster database: {0}")]
    Topology(String),
}

/// A connection to the cluster's database, reopened on demand.
pub struct Db {
    url: String,
    client: Mutex<Option<tokio_postgres::Client>>,
}

impl Db {
    /// Connects now, so a wrong URL is reported at start.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let db = Db {
            url: url.to_owned(),
            client: Mutex::new(None),
        };
        drop(db.client().await?);
        Ok(db)
    }

    async fn client(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, Option<tokio_postgres::Client>>, DbError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            let (client, connection) =
                tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    warn!(error = %e, "cluster database connection ended");
                }
            });
            *guard = Some(client);
        }
        Ok(guard)
    }

    /// Runs `f` on the connection.
    async fn with<T>(
        &self,
        f: impl AsyncFnOnce(&mut tokio_postgres::Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, DbError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().expect("connected above");
        let result = f(client).await;
        if result.is_err() && client.is_closed() {
            *guard = None;
        }
        Ok(result?)
    }

    /// Whether PostgreSQL answers (a critical service of the node).
    pub async fn ping(&self) -> bool {
        self.with(async |c| c.simple_query("SELECT 1").await.map(|_| ()))
            .await
            .is_ok()
    }

    /// Records this node (creating it on first start) and starts a new epoch; returns its row as it was
    /// before this start (state and reason of the last run) with the new epoch.
    pub async fn register(
        &self,
        name: &str,
        group: &str,
        xmpp: Option<&str>,
        sip: Option<&str>,
    ) -> Result<NodeRow, DbError> {
        let (row, last) = self
            .with(async |c| {
                let tx = c.transaction().await?;
                let last = tx
                    .query_opt(
                        "SELECT state, reason FROM cluster_nodes WHERE name = $1",
                        &[&name],
                    )
                    .await?
                    .map(|r| (r.get::<_, Option<String>>(0), r.get::<_, Option<String>>(1)));
                let row = tx
                    .query_one(
                        "INSERT INTO cluster_nodes (name, grp, advertise_xmpp, advertise_sip, epoch)
                         VALUES ($1, $2, $3, $4, 1)
                         ON CONFLICT (name) DO UPDATE SET grp = $2, advertise_xmpp = $3,
                             advertise_sip = $4, epoch = cluster_nodes.epoch + 1, updated_at = now()
                         RETURNING id, name, grp, advertise_xmpp, advertise_sip, epoch, state, reason",
                        &[&name, &group, &xmpp, &sip],
                    )
                    .await?;
                tx.commit().await?;
                Ok((node_row(&row), last))
            })
            .await?;
        let nodes = self.nodes().await?;
        let t = model::topology(&nodes);
        if t.group_of(row.node_id()).is_none() {
            return Err(DbError::Topology(format!(
                "node {name} cannot join group {group}: a group holds at most two nodes and a cluster at most three groups"
            )));
        }
        let (state, reason) = last.unwrap_or_default();
        Ok(NodeRow {
            state,
            reason,
            ..row
        })
    }

    /// Every node.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>, DbError> {
        self.with(async |c| {
            let rows = c
                .query(
                    "SELECT id, name, grp, advertise_xmpp, advertise_sip, epoch, state, reason
                     FROM cluster_nodes ORDER BY id",
                    &[],
                )
                .await?;
            Ok(rows.iter().map(node_row).collect())
        })
        .await
    }

    /// Where every assigned user lives.
    pub async fn placement(&self) -> Result<Vec<PlacementRow>, DbError> {
        self.with(async |c| {
            let rows = c
                .query("SELECT jid, home, host FROM cluster_placement", &[])
                .await?;
            Ok(rows
                .iter()
                .map(|r| PlacementRow {
                    jid: r.get(0),
                    home: r.get(1),
                    host: r.get(2),
                })
                .collect())
        })
        .await
    }

    /// Gives every account without a home one by the assignment mode, served at that home. Returns them, with
    /// their node's name. One transaction under an advisory lock, so nodes starting together do not assign
    /// twice.
    pub async fn assign_unplaced(
        &self,
        mode: AssignmentMode,
    ) -> Result<Vec<(String, String)>, DbError> {
        let nodes = self.nodes().await?;
        self.with(async |c| {
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock(7311)", &[])
                .await?;
            let rows = tx
                .query("SELECT jid, home, host FROM cluster_placement", &[])
                .await?;
            let placed: Vec<PlacementRow> = rows
                .iter()
                .map(|r| PlacementRow {
                    jid: r.get(0),
                    home: r.get(1),
                    host: r.get(2),
                })
                .collect();
            let unplaced = tx
                .query(
                    "SELECT a.jid FROM accounts a LEFT JOIN cluster_placement p ON p.jid = a.jid
                     WHERE p.jid IS NULL ORDER BY a.jid",
                    &[],
                )
                .await?;
            let t = model::topology(&nodes);
            let mut a = model::assignments(mode, &nodes, &placed);
            let mut placed = Vec::new();
            for r in unplaced {
                let jid: String = r.get(0);
                let Ok(user) = UserId::new(jid.clone()) else {
                    continue;
                };
                let Ok(Some(change)) = a.assign_new(user, &t) else {
                    continue;
                };
                let Some(home) = change
                    .to
                    .and_then(|id| nodes.iter().find(|n| n.node_id() == id))
                else {
                    continue;
                };
                tx.execute(
                    "INSERT INTO cluster_placement (jid, home, host) VALUES ($1, $2, $2)",
                    &[&jid, &home.name],
                )
                .await?;
                placed.push((jid, home.name.clone()));
            }
            tx.commit().await?;
            Ok(placed)
        })
        .await
    }

    /// Places `users` on `node` (a failover batch): one statement, so the batch moves entirely or not at all.
    pub async fn host(&self, users: &[String], node: &str) -> Result<(), DbError> {
        self.with(async |c| {
            c.execute(
                "UPDATE cluster_placement SET host = $2 WHERE jid = ANY($1)",
                &[&users, &node],
            )
            .await
            .map(|_| ())
        })
        .await
    }

    /// Gives `users` a new home, served there (rebalancing).
    pub async fn rehome(&self, users: &[String], node: &str) -> Result<(), DbError> {
        self.with(async |c| {
            c.execute(
                "UPDATE cluster_placement SET home = $2, host = $2 WHERE jid = ANY($1)",
                &[&users, &node],
            )
            .await
            .map(|_| ())
        })
        .await
    }

    /// Persists this node's failover state, for `cluster status` and for its next start.
    pub async fn record_state(&self, name: &str, state: &str, reason: &str) -> Result<(), DbError> {
        self.with(async |c| {
            c.execute(
                "UPDATE cluster_nodes SET state = $2, reason = $3, updated_at = now() WHERE name = $1",
                &[&name, &state, &reason],
            )
            .await
            .map(|_| ())
        })
        .await
    }
}

fn node_row(r: &tokio_postgres::Row) -> NodeRow {
    NodeRow {
        id: r.get(0),
        name: r.get(1),
        group: r.get(2),
        advertise_xmpp: r.get(3),
        advertise_sip: r.get(4),
        epoch: r.get(5),
        state: r.get(6),
        reason: r.get(7),
    }
}
