//! Compliance archiving to PostgreSQL: the `presenced` binary's [`Compliance`] sink.
//!
//! Every record the engine emits (see `presence_core::compliance`) becomes one row of `compliance_messages`, a
//! table documented in README.md ("Compliance archiving") and created by `examples/migrations/compliance/` at
//! start. Its tables and migration bookkeeping are all named `compliance_…`, so the archive can live in the
//! store's database or in one of its own. One [`Compliance::write`] is one statement, so a batch is archived all
//! or none. Connections come from the store's [`Pool`], which reconnects after PostgreSQL restarts.

mod config;
pub mod migrations;

pub use config::{ComplianceConfig, ComplianceMode};

use std::sync::Arc;

use presence_core::compliance::{Record, kind_name};
use presence_core::runtime::{Compliance, ComplianceError, ComplianceHook};

use crate::store::postgres::pool::Pool;

/// Why the archive could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL is not a PostgreSQL URL.
    #[error("compliance archive: {0}")]
    Url(String),
    /// The archive's tables could not be created (or the database could not be reached to create them); the
    /// text names the database, without its password.
    #[error("compliance archive: creating its tables failed: {0}")]
    Migrate(String),
}

/// The compliance archive in a PostgreSQL database.
#[derive(Debug)]
pub struct PgCompliance {
    pool: Pool,
}

impl PgCompliance {
    /// Connects with a pool of at most `pool` connections and brings the archive's schema up to date.
    pub fn connect(url: &str, pool: usize) -> Result<Self, OpenError> {
        let pool = Pool::new(url, pool).map_err(|e| OpenError::Url(e.to_string()))?;
        pool.run(migrations::migrate)
            .map_err(|e| OpenError::Migrate(e.to_string()))?;
        Ok(PgCompliance { pool })
    }

    /// The runtime hook for this archive in the configured mode.
    pub fn hook(self, mode: ComplianceMode) -> ComplianceHook {
        ComplianceHook {
            sink: Arc::new(self),
            mode: match mode {
                ComplianceMode::BestEffort => presence_core::runtime::ComplianceMode::BestEffort,
                ComplianceMode::Required => presence_core::runtime::ComplianceMode::Required,
            },
        }
    }
}

/// The records as column arrays, for one `INSERT … SELECT FROM unnest(…)`: a batch is one round trip.
#[derive(Default)]
struct Columns {
    millis: Vec<i64>,
    sender: Vec<String>,
    /// Each row's recipients joined by newlines: unnest cannot take an array of arrays, and no address can hold a
    /// control character (RFC 7622 disallows them in every part).
    recipients: Vec<String>,
    room: Vec<Option<String>>,
    id: Vec<Option<String>>,
    kind: Vec<&'static str>,
    body: Vec<String>,
}

impl Columns {
    fn of(records: &[Record]) -> Self {
        let mut c = Columns::default();
        for r in records {
            c.millis
                .push(i64::try_from(r.stamp.as_millis()).unwrap_or(i64::MAX));
            c.sender.push(r.sender.to_string());
            c.recipients.push(
                r.recipients
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
            c.room.push(r.room.as_ref().map(ToString::to_string));
            c.id.push(r.id.clone());
            c.kind.push(kind_name(r.kind));
            c.body.push(r.body.clone());
        }
        c
    }
}

const INSERT: &str = "INSERT INTO compliance_messages
         (sent_at, sender, recipients, room, message_id, kind, body)
     SELECT to_timestamp(ms / 1000.0), sender, string_to_array(recipients, E'\\n'), room, message_id, kind, body
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
         AS t(ms, sender, recipients, room, message_id, kind, body)";

impl Compliance for PgCompliance {
    fn write(&self, records: &[Record]) -> Result<(), ComplianceError> {
        let c = Columns::of(records);
        self.pool
            .run(|client| {
                client.execute(
                    INSERT,
                    &[
                        &c.millis,
                        &c.sender,
                        &c.recipients,
                        &c.room,
                        &c.id,
                        &c.kind,
                        &c.body,
                    ],
                )
            })
            .map(drop)
            .map_err(|e| ComplianceError::Backend(e.to_string()))
    }
}
