//! The compliance archive's schema as numbered SQL files, applied at start exactly as the store's are (see
//! `store/postgres/migrations.rs`), but with a bookkeeping table and an advisory lock of its own: the archive
//! may share the store's database or not, and its versions never mix with the store's.

use postgres::Client;

/// Every migration, in the order it is applied: (version, SQL).
pub const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    include_str!("../../migrations/compliance/0001_messages.sql"),
)];

/// The advisory lock key nodes take while migrating the archive (ASCII "complian" as an i64).
const MIGRATION_LOCK: i64 = 0x636f_6d70_6c69_616e;

/// Brings the archive's schema up to the last entry of [`MIGRATIONS`]; returns the versions it applied.
pub fn migrate(client: &mut Client) -> Result<Vec<i32>, postgres::Error> {
    let mut tx = client.transaction()?;
    // Held until commit or rollback: a second node waits here instead of racing on CREATE TABLE.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS compliance_schema_migrations (
             version    int PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM compliance_schema_migrations", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO compliance_schema_migrations (version) VALUES ($1)",
            &[version],
        )?;
        applied.push(*version);
    }
    tx.commit()?;
    if !applied.is_empty() {
        tracing::info!(versions = ?applied, "applied compliance archive migrations");
    }
    Ok(applied)
}
