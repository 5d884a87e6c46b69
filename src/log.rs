//! The append-only log: the single source of truth.
//!
//! Records are numbered contiguously from 1. An append takes a batch and either
//! stores all of it or none of it, so a cause and the decisions it produced are
//! never separated by a crash. Snapshots live beside the log, each tagged with
//! the sequence it covers, so a restart is "restore snapshot, replay the tail".
//!
//! Backends: [`SledLog`] (embedded, durable, the default) and [`MemoryLog`]
//! (offline processing and tests). The JetStream backend arrives with the node.

mod memory;
mod sled_log;

use std::ops::RangeInclusive;

pub use memory::MemoryLog;
pub use sled_log::{DeadLetter, Durability, SledLog, POLICY_META};

use crate::events::Event;

/// A log sequence number; the first record is 1.
pub type Seq = u64;

/// A snapshot and the last sequence it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Last sequence applied to the state in `bytes`.
    pub covers: Seq,
    /// Encoded state.
    pub bytes: Vec<u8>,
}

/// What can go wrong with a log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The storage engine failed.
    #[error("log storage at {path}: {source}")]
    Storage {
        /// Where the log lives.
        path: String,
        /// The engine's error.
        #[source]
        source: sled::Error,
    },
    /// A stored record does not decode: the log is damaged or from another version.
    #[error("record {seq} in the log does not decode: {message}")]
    Corrupt {
        /// Its sequence.
        seq: Seq,
        /// The decoder's message.
        message: String,
    },
    /// Sequence numbers are not contiguous.
    #[error("the log has a gap: expected sequence {expected}, found {found}")]
    Gap {
        /// The sequence that should come next.
        expected: Seq,
        /// The one that did.
        found: Seq,
    },
}

/// The log interface every backend implements.
pub trait EventLog {
    /// Appends a batch atomically and returns the sequences it was given.
    /// When this returns, the batch is as durable as the backend promises.
    fn append(&mut self, batch: &[Event]) -> Result<RangeInclusive<Seq>, LogError>;

    /// Up to `max` records starting at `from` (inclusive), in order.
    fn read_from(&self, from: Seq, max: usize) -> Result<Vec<(Seq, Event)>, LogError>;

    /// The last sequence written (0 when empty).
    fn last_seq(&self) -> Seq;

    /// Stores the snapshot named `name`, replacing any earlier one.
    fn put_snapshot(&mut self, name: &str, snapshot: &Snapshot) -> Result<(), LogError>;

    /// The snapshot named `name`, if any.
    fn get_snapshot(&self, name: &str) -> Result<Option<Snapshot>, LogError>;

    /// Makes everything appended so far durable.
    fn flush(&mut self) -> Result<(), LogError>;
}

/// Reads every record from `from` to the end, in batches.
pub fn read_all(log: &dyn EventLog, from: Seq) -> Result<Vec<(Seq, Event)>, LogError> {
    let mut out = Vec::new();
    let mut next = from.max(1);
    loop {
        let batch = log.read_from(next, 4096)?;
        let Some(&(last, _)) = batch.last() else {
            return Ok(out);
        };
        for (seq, _) in &batch {
            if *seq != next {
                return Err(LogError::Gap {
                    expected: next,
                    found: *seq,
                });
            }
            next += 1;
        }
        debug_assert_eq!(next, last + 1);
        out.extend(batch);
    }
}
