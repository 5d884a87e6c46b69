//! An in-memory log for offline processing and tests.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use super::{EventLog, LogError, Seq, Snapshot};
use crate::events::Event;

/// A log held in a `Vec`; nothing survives the process.
#[derive(Clone, Debug, Default)]
pub struct MemoryLog {
    records: Vec<Event>,
    snapshots: BTreeMap<String, Snapshot>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every record, in order (index 0 is sequence 1).
    pub fn records(&self) -> &[Event] {
        &self.records
    }
}

impl EventLog for MemoryLog {
    fn append(&mut self, batch: &[Event]) -> Result<RangeInclusive<Seq>, LogError> {
        let first = self.records.len() as Seq + 1;
        self.records.extend_from_slice(batch);
        Ok(first..=self.records.len() as Seq)
    }

    fn read_from(&self, from: Seq, max: usize) -> Result<Vec<(Seq, Event)>, LogError> {
        let start = from.max(1) as usize - 1;
        Ok(self
            .records
            .iter()
            .enumerate()
            .skip(start)
            .take(max)
            .map(|(i, e)| (i as Seq + 1, e.clone()))
            .collect())
    }

    fn last_seq(&self) -> Seq {
        self.records.len() as Seq
    }

    fn put_snapshot(&mut self, name: &str, snapshot: &Snapshot) -> Result<(), LogError> {
        self.snapshots.insert(name.to_owned(), snapshot.clone());
        Ok(())
    }

    fn get_snapshot(&self, name: &str) -> Result<Option<Snapshot>, LogError> {
        Ok(self.snapshots.get(name).cloned())
    }

    fn flush(&mut self) -> Result<(), LogError> {
        Ok(())
    }
}
