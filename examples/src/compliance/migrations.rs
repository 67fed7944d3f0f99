//! The compliance archive's schema as numbered SQL files, applied at start exactly as the store's are (see
//! `store/postgres/migrations.rs`), but with a bookkeeping table and an advisory lock of its own: the archive
//! may share the store's database or not, and its versions never mix with the store's.

use postgres::Client;

use crate::store::postgres::migrations::{Schema, apply};

/// Every migration, in the order it is applied: (version, SQL).
pub const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    include_str!("../../migrations/compliance/0001_messages.sql"),
)];

/// The archive's schema: its own bookkeeping table and advisory lock (ASCII "complian" as an i64).
pub const SCHEMA: Schema = Schema {
    name: "compliance archive",
    table: "compliance_schema_migrations",
    lock: 0x636f_6d70_6c69_616e,
    migrations: MIGRATIONS,
};

/// Brings the archive's schema up to the last entry of [`MIGRATIONS`]; returns the versions it applied.
pub fn migrate(client: &mut Client) -> Result<Vec<i32>, postgres::Error> {
    apply(client, &SCHEMA)
}
