//! The PostgreSQL schema as numbered SQL files, applied in order at connect.
//!
//! Every file in `examples/migrations/` is one entry of [`MIGRATIONS`]; a new schema change is a new file and one
//! new line at the end of the list (never an edit of a file that has shipped). [`migrate`] runs the missing ones
//! in one transaction that first takes a transaction-scoped advisory lock, so two nodes starting at once apply
//! each migration exactly once: the second waits for the first to commit, then finds nothing left to do. Applied
//! versions are recorded in `schema_migrations`.

use postgres::Client;

/// Every migration, in the order it is applied: (version, SQL).
pub const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../../migrations/0001_store.sql")),
    (2, include_str!("../../../migrations/0002_cluster.sql")),
    (3, include_str!("../../../migrations/0003_documents.sql")),
    (4, include_str!("../../../migrations/0004_archive.sql")),
    (5, include_str!("../../../migrations/0005_rooms.sql")),
];

/// The advisory lock key every presenced node takes while migrating (ASCII "presence" as an i64).
const MIGRATION_LOCK: i64 = 0x7072_6573_656e_6365;

/// Brings the database's schema up to the last entry of [`MIGRATIONS`]; returns the versions it applied.
pub fn migrate(client: &mut Client) -> Result<Vec<i32>, postgres::Error> {
    let mut tx = client.transaction()?;
    // Held until commit or rollback: a second node blocks here instead of racing on CREATE TABLE.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    int PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let newest_known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if let Some(newer) = done.iter().copied().filter(|v| *v > newest_known).max() {
        tracing::warn!(
            database = newer,
            binary = newest_known,
            "the database schema is newer than this binary knows; an older node is running against it"
        );
    }
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())",
            &[version],
        )?;
        applied.push(*version);
    }
    tx.commit()?;
    if !applied.is_empty() {
        tracing::info!(versions = ?applied, "applied PostgreSQL schema migrations");
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn versions_start_at_one_and_increase_by_one() {
        for (i, (v, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v as usize, i + 1, "migration versions are 1, 2, 3, ...");
            assert!(!sql.trim().is_empty(), "migration {v} is empty");
        }
    }
}
