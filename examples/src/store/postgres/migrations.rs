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
    (6, include_str!("../../../migrations/0006_room_archive.sql")),
];

/// The store's schema: its migrations, bookkeeping table and advisory lock.
pub const STORE: Schema = Schema {
    name: "PostgreSQL schema",
    table: "schema_migrations",
    // ASCII "presence" as an i64.
    lock: 0x7072_6573_656e_6365,
    migrations: MIGRATIONS,
};

/// A set of numbered migrations applied to one database with their own bookkeeping table and advisory lock, so
/// that two schemas sharing a database (the store's, the compliance archive's) never mix their versions.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// What the log calls it.
    pub name: &'static str,
    /// The table that records applied versions (a fixed name from this crate, never user input).
    pub table: &'static str,
    /// The transaction-scoped advisory lock key taken while migrating.
    pub lock: i64,
    /// (version, SQL), in order.
    pub migrations: &'static [(i32, &'static str)],
}

/// Brings the database's store schema up to the last entry of [`MIGRATIONS`]; returns the versions it applied.
pub fn migrate(client: &mut Client) -> Result<Vec<i32>, postgres::Error> {
    apply(client, &STORE)
}

/// Brings `schema` up to its last migration; returns the versions it applied.
pub fn apply(client: &mut Client, schema: &Schema) -> Result<Vec<i32>, postgres::Error> {
    let table = schema.table;
    let mut tx = client.transaction()?;
    // Held until commit or rollback: a second node blocks here instead of racing on CREATE TABLE.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&schema.lock])?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (
             version    int PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )"
    ))?;
    let done: Vec<i32> = tx
        .query(&format!("SELECT version FROM {table}"), &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let newest_known = schema.migrations.last().map_or(0, |(v, _)| *v);
    if let Some(newer) = done.iter().copied().filter(|v| *v > newest_known).max() {
        tracing::warn!(
            schema = schema.name,
            database = newer,
            binary = newest_known,
            "the database schema is newer than this binary knows; an older node is running against it"
        );
    }
    let mut applied = Vec::new();
    for (version, sql) in schema.migrations {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql)?;
        tx.execute(
            &format!("INSERT INTO {table} (version, applied_at) VALUES ($1, now())"),
            &[version],
        )?;
        applied.push(*version);
    }
    tx.commit()?;
    if !applied.is_empty() {
        tracing::info!(schema = schema.name, versions = ?applied, "applied migrations");
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
