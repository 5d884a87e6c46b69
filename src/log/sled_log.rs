//! The embedded log on sled.
//!
//! Layout: tree `log` maps the big-endian sequence to the msgpack-encoded
//! record (so keys sort in log order); tree `snapshots` maps a name to the
//! covered sequence (8 bytes, big-endian) followed by the state. A batch is one
//! sled `Batch`, applied atomically; with [`Durability::Sync`] it is flushed to
//! disk before `append` returns, so an acknowledged record survives `kill -9`.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use super::{EventLog, LogError, Seq, Snapshot};
use crate::events::{Codec, Event};

/// When appended records reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every append is flushed before it returns (the node's setting).
    Sync,
    /// Appends are flushed by [`EventLog::flush`], on drop, and by sled's background flusher.
    Buffered,
}

/// A durable log in a sled database directory.
pub struct SledLog {
    path: PathBuf,
    db: sled::Db,
    log: sled::Tree,
    snapshots: sled::Tree,
    ids: sled::Tree,
    dlq: sled::Tree,
    meta: sled::Tree,
    last: Seq,
    durability: Durability,
}

impl SledLog {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path, durability: Durability) -> Result<Self, LogError> {
        Self::open_with_cache(dir, durability, DEFAULT_CACHE)
    }

    /// Opens the log with a page cache of at most `cache` bytes. Reading a
    /// log once from end to end (`faultline replay`) gains nothing from
    /// sled's default 1 GiB, which a long log would otherwise fill.
    pub fn open_with_cache(
        dir: &Path,
        durability: Durability,
        cache: u64,
    ) -> Result<Self, LogError> {
        let path = dir.to_path_buf();
        let err = |source| LogError::Storage {
            path: path.display().to_string(),
            source,
        };
        let db = open_db(dir, cache).map_err(err)?;
        let log = db.open_tree("log").map_err(err)?;
        let snapshots = db.open_tree("snapshots").map_err(err)?;
        let ids = db.open_tree("ids").map_err(err)?;
        let dlq = db.open_tree("dlq").map_err(err)?;
        let meta = db.open_tree("meta").map_err(err)?;
        let last = match log.last().map_err(err)? {
            Some((k, _)) => seq_of(&k),
            None => 0,
        };
        Ok(Self {
            path,
            db,
            log,
            snapshots,
            ids,
            dlq,
            meta,
            last,
            durability,
        })
    }

    /// Appends the events whose `id` has not been logged before, in one atomic
    /// step with their ids, so a publisher that retries after a crash cannot
    /// log an event twice. Returns, per event, `Ok(seq)` for a new one or
    /// `Err(seq)` naming where the same id was logged.
    pub fn append_unique(&mut self, batch: &[Event]) -> Result<Vec<Result<Seq, Seq>>, LogError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        use sled::Transactional;
        let mut outcome = Vec::with_capacity(batch.len());
        let mut next = self.last + 1;
        let mut fresh: Vec<(Seq, &Event)> = Vec::new();
        for event in batch {
            let earlier = fresh
                .iter()
                .find(|(_, e)| e.id == event.id)
                .map(|(s, _)| *s);
            let logged = match earlier {
                Some(s) => Some(s),
                None => self
                    .ids
                    .get(event.id.as_bytes())
                    .map_err(|e| self.storage(e))?
                    .map(|v| seq_of(&v)),
            };
            match logged {
                Some(s) => outcome.push(Err(s)),
                None => {
                    fresh.push((next, event));
                    outcome.push(Ok(next));
                    next += 1;
                }
            }
        }
        if fresh.is_empty() {
            return Ok(outcome);
        }
        let encoded: Vec<(Seq, &str, Vec<u8>)> = fresh
            .iter()
            .map(|(s, e)| (*s, e.id.as_str(), Codec::MsgPack.encode(e)))
            .collect();
        (&self.log, &self.ids)
            .transaction(|(log, ids)| {
                for (seq, id, bytes) in &encoded {
                    log.insert(&seq.to_be_bytes(), bytes.as_slice())?;
                    ids.insert(id.as_bytes(), &seq.to_be_bytes())?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => self.storage(e),
                TransactionError::Abort(()) => unreachable!("the transaction never aborts"),
            })?;
        if self.durability == Durability::Sync {
            self.db.flush().map_err(|e| self.storage(e))?;
        }
        self.last = next - 1;
        Ok(outcome)
    }

    /// Up to `max` stored records from `from` as they are stored (msgpack),
    /// for readers that decode themselves or compare bytes.
    pub fn read_raw_from(&self, from: Seq, max: usize) -> Result<Vec<(Seq, sled::IVec)>, LogError> {
        let mut out = Vec::with_capacity(max.min(4096));
        for item in self.log.range(from.max(1).to_be_bytes()..).take(max) {
            let (k, v) = item.map_err(|e| self.storage(e))?;
            out.push((seq_of(&k), v));
        }
        Ok(out)
    }

    /// The policy text in force when the log was last written (see [`POLICY_META`]).
    pub fn policy(&self) -> Result<Option<String>, LogError> {
        Ok(self
            .meta(POLICY_META)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Records the policy text in force (`process`, `simulate` and the node do).
    pub fn set_policy(&mut self, text: &str) -> Result<(), LogError> {
        self.set_meta(POLICY_META, text.as_bytes())
    }

    /// Forgets the ids of records before `seq`: a publisher retrying an event
    /// that old is not deduplicated any more (the dedupe window).
    pub fn forget_ids_before(&mut self, seq: Seq) -> Result<usize, LogError> {
        let mut old = Vec::new();
        for item in self.ids.iter() {
            let (k, v) = item.map_err(|e| self.storage(e))?;
            if seq_of(&v) < seq {
                old.push(k);
            }
        }
        for k in &old {
            self.ids.remove(k).map_err(|e| self.storage(e))?;
        }
        Ok(old.len())
    }

    /// Keeps rejected input (reason, message and the original bytes) in the
    /// `dlq` tree; returns its number there.
    pub fn dead_letter(
        &mut self,
        reason: &str,
        message: &str,
        original: &[u8],
    ) -> Result<u64, LogError> {
        let n = self.db.generate_id().map_err(|e| self.storage(e))?;
        let value = rmp_serde::to_vec_named(&DeadLetter {
            reason: reason.to_owned(),
            message: message.to_owned(),
            original: original.to_vec(),
        })
        .expect("dead letters encode");
        self.dlq
            .insert(n.to_be_bytes(), value)
            .map_err(|e| self.storage(e))?;
        Ok(n)
    }

    /// Every dead letter kept, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, LogError> {
        let mut out = Vec::new();
        for item in self.dlq.iter() {
            let (k, v) = item.map_err(|e| self.storage(e))?;
            out.push(rmp_serde::from_slice(&v).map_err(|e| LogError::Corrupt {
                seq: seq_of(&k),
                message: format!("dead letter: {e}"),
            })?);
        }
        Ok(out)
    }

    /// A small value the node keeps beside the log (e.g. the last config hash).
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, LogError> {
        Ok(self
            .meta
            .get(key.as_bytes())
            .map_err(|e| self.storage(e))?
            .map(|v| v.to_vec()))
    }

    /// Stores a value read back by [`SledLog::meta`].
    pub fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), LogError> {
        self.meta
            .insert(key.as_bytes(), value)
            .map_err(|e| self.storage(e))?;
        Ok(())
    }

    fn storage(&self, source: sled::Error) -> LogError {
        LogError::Storage {
            path: self.path.display().to_string(),
            source,
        }
    }
}

/// sled's own default page cache, for logs a node writes.
const DEFAULT_CACHE: u64 = 1 << 30;

/// Opens the database, waiting (up to about two seconds) for the directory lock
/// when an earlier handle in this process is still shutting down: sled's
/// background flusher releases the file lock a moment after the last handle is
/// dropped, so a restart in the same process (a supervisor reopening the log)
/// would otherwise fail spuriously. A lock held by another process is reported
/// once the wait runs out.
fn open_db(dir: &Path, cache: u64) -> Result<sled::Db, sled::Error> {
    let mut attempts = 0;
    loop {
        match sled::Config::new().path(dir).cache_capacity(cache).open() {
            Err(sled::Error::Io(e))
                if attempts < 100 && e.to_string().contains("could not acquire lock") =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Input the embedded node refused, kept with the reason and original bytes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    /// The rejection token (`invalid`, `malformed`, ...).
    pub reason: String,
    /// The full message.
    pub message: String,
    /// The bytes as received.
    pub original: Vec<u8>,
}

/// Meta key of the policy text the log's writer ran, so `faultline replay`
/// knows the policy in force for logs without `faultline.config` records
/// (those `process` and `simulate` keep).
pub const POLICY_META: &str = "policy";

fn seq_of(key: &[u8]) -> Seq {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[..8]);
    u64::from_be_bytes(b)
}

impl EventLog for SledLog {
    fn append(&mut self, batch: &[Event]) -> Result<RangeInclusive<Seq>, LogError> {
        let first = self.last + 1;
        let mut b = sled::Batch::default();
        for (i, event) in batch.iter().enumerate() {
            let seq = first + i as Seq;
            b.insert(&seq.to_be_bytes(), Codec::MsgPack.encode(event));
        }
        self.log.apply_batch(b).map_err(|e| self.storage(e))?;
        if self.durability == Durability::Sync {
            self.db.flush().map_err(|e| self.storage(e))?;
        }
        self.last += batch.len() as Seq;
        Ok(first..=self.last)
    }

    fn read_from(&self, from: Seq, max: usize) -> Result<Vec<(Seq, Event)>, LogError> {
        let mut out = Vec::new();
        for item in self.log.range(from.max(1).to_be_bytes()..).take(max) {
            let (k, v) = item.map_err(|e| self.storage(e))?;
            let seq = seq_of(&k);
            let event = Codec::MsgPack.decode(&v).map_err(|e| LogError::Corrupt {
                seq,
                message: e.to_string(),
            })?;
            out.push((seq, event));
        }
        Ok(out)
    }

    fn last_seq(&self) -> Seq {
        self.last
    }

    fn put_snapshot(&mut self, name: &str, snapshot: &Snapshot) -> Result<(), LogError> {
        let mut value = Vec::with_capacity(8 + snapshot.bytes.len());
        value.extend_from_slice(&snapshot.covers.to_be_bytes());
        value.extend_from_slice(&snapshot.bytes);
        self.snapshots
            .insert(name.as_bytes(), value)
            .map_err(|e| self.storage(e))?;
        self.db.flush().map_err(|e| self.storage(e))?;
        Ok(())
    }

    fn get_snapshot(&self, name: &str) -> Result<Option<Snapshot>, LogError> {
        let Some(v) = self
            .snapshots
            .get(name.as_bytes())
            .map_err(|e| self.storage(e))?
        else {
            return Ok(None);
        };
        if v.len() < 8 {
            return Err(LogError::Corrupt {
                seq: 0,
                message: format!("snapshot {name:?} is truncated"),
            });
        }
        Ok(Some(Snapshot {
            covers: seq_of(&v),
            bytes: v[8..].to_vec(),
        }))
    }

    fn flush(&mut self) -> Result<(), LogError> {
        self.db.flush().map_err(|e| self.storage(e))?;
        Ok(())
    }
}

impl Drop for SledLog {
    fn drop(&mut self) {
        let _ = self.db.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Data, Timestamp};

    fn tick(n: i64) -> Event {
        Event {
            id: format!("t{n}"),
            source: "test".into(),
            subject: "_system".into(),
            time: Timestamp::from_millis(n),
            datacontenttype: None,
            causeseq: None,
            causeid: None,
            data: Data::Tick(Default::default()),
        }
    }

    #[test]
    fn append_read_reopen_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = SledLog::open(dir.path(), Durability::Sync).unwrap();
            assert_eq!(log.append(&[tick(1), tick(2)]).unwrap(), 1..=2);
            assert_eq!(log.append(&[tick(3)]).unwrap(), 3..=3);
            log.put_snapshot(
                "engine",
                &Snapshot {
                    covers: 2,
                    bytes: vec![7, 8],
                },
            )
            .unwrap();
        }
        let log = SledLog::open(dir.path(), Durability::Sync).unwrap();
        assert_eq!(log.last_seq(), 3);
        let all = super::super::read_all(&log, 1).unwrap();
        assert_eq!(
            all.iter()
                .map(|(s, e)| (*s, e.id.as_str()))
                .collect::<Vec<_>>(),
            [(1, "t1"), (2, "t2"), (3, "t3")]
        );
        assert_eq!(log.read_from(3, 10).unwrap()[0].1, tick(3));
        let snap = log.get_snapshot("engine").unwrap().unwrap();
        assert_eq!((snap.covers, snap.bytes), (2, vec![7, 8]));
        assert!(log.get_snapshot("other").unwrap().is_none());
    }
}
