//! Compliance archiving in the runtime: where the engine's [`Output::Comply`](crate::Output::Comply) records go,
//! and what a failed write does to the messages they describe.
//!
//! An embedder plugs a [`Compliance`] sink (the `presenced` binary's writes to PostgreSQL) with a [`Mode`]:
//!
//! - [`Mode::Required`]: a message is not delivered, held offline or acknowledged unless its record was written.
//!   The engine thread writes each commit group's records (one [`Compliance::write`] call) before the group's
//!   store writes; when it fails, the group fails exactly like a failed store commit: its store writes are not
//!   applied, its messages bounce to their local senders with a `wait`-type `<internal-server-error/>`, its
//!   answers become that error (see `driver.rs`). Nothing is retried: the sender sends again.
//! - [`Mode::BestEffort`]: records of what went out are handed to a writer thread of their own, off the delivery
//!   path, in batches; a failed write or a full queue loses those records with a `warn` log and a count in
//!   `presenced_compliance_failures_total`, and messages flow regardless.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use tracing::warn;

use super::metrics::Metrics;
use crate::compliance::Record;

/// Where compliance records are written. Called on the engine thread in [`Mode::Required`] (so it may block, as
/// a store does, and its latency is every message's latency) and on a writer thread in [`Mode::BestEffort`].
pub trait Compliance: Send + Sync {
    /// Writes `records` durably, all or none; called with at least one record.
    fn write(&self, records: &[Record]) -> Result<(), ComplianceError>;
}

/// Why records could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComplianceError {
    /// The archive could not be reached or refused the write; the text names it and the cause.
    #[error("compliance archive: {0}")]
    Backend(String),
}

/// What a failed compliance write does to the messages it describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Messages flow; records that cannot be written are counted and logged.
    #[default]
    BestEffort,
    /// A message goes nowhere unless its record was written.
    Required,
}

/// A compliance sink and its mode, given to [`spawn_with`](super::spawn_with).
#[derive(Clone)]
pub struct ComplianceHook {
    /// Where records go.
    pub sink: Arc<dyn Compliance>,
    /// What a failed write does.
    pub mode: Mode,
}

impl std::fmt::Debug for ComplianceHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComplianceHook")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Engine batches that may wait for the best-effort writer; past it records are dropped (and counted) rather
/// than let a slow archive grow the process without bound.
const QUEUED_BATCHES: usize = 1024;
/// The most records coalesced into one best-effort write.
const MAX_WRITE: usize = 4096;

/// The best-effort writer thread and the bounded queue feeding it. Dropping it lets the thread write what is
/// queued (in one last attempt) and waits for it.
pub(crate) struct Background {
    tx: Option<SyncSender<Vec<Record>>>,
    thread: Option<JoinHandle<()>>,
    metrics: Arc<Metrics>,
}

impl Background {
    pub(crate) fn start(sink: Arc<dyn Compliance>, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(QUEUED_BATCHES);
        let m = metrics.clone();
        let thread = std::thread::Builder::new()
            .name("presence-compliance".into())
            .spawn(move || write_loop(&*sink, &rx, &m))?;
        Ok(Background {
            tx: Some(tx),
            thread: Some(thread),
            metrics,
        })
    }

    /// Queues records for writing, or counts them lost when the queue is full.
    pub(crate) fn send(&self, records: Vec<Record>) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(records) {
            Ok(()) => {}
            Err(TrySendError::Full(records) | TrySendError::Disconnected(records)) => {
                warn!(
                    records = records.len(),
                    "compliance writer is behind: records dropped"
                );
                self.metrics.compliance_failed("queue_full", records.len());
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_loop(sink: &dyn Compliance, rx: &Receiver<Vec<Record>>, metrics: &Metrics) {
    while let Ok(mut records) = rx.recv() {
        // Whatever queued up while the last write ran goes in this one: a slow archive gets fewer, larger writes.
        while records.len() < MAX_WRITE
            && let Ok(more) = rx.try_recv()
        {
            records.extend(more);
        }
        match sink.write(&records) {
            Ok(()) => metrics.compliance_written(records.len()),
            Err(e) => {
                warn!(records = records.len(), error = %e, "compliance write failed; records lost (best-effort mode)");
                metrics.compliance_failed("write", records.len());
            }
        }
    }
}
