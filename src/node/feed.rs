//! One read of the log shared by every agent.
//!
//! Each agent is an independent fold over the whole log, but reading the
//! log once per agent multiplies the cost of consuming it by the number of
//! agents (on JetStream, six ordered consumers where one would do). The feed
//! reads the log once into a bounded window of recent decoded records;
//! agents take their next batch from the window when it holds it, wait on
//! the feed when they are at its head, and fall back to a reader of their
//! own only when they are behind the window (after a restart from an older
//! snapshot), rejoining once they reach it.
//!
//! Every reader of the window (each agent, and on JetStream the ingest
//! checker) reports how far it has read ([`Feed::reached`]). The window is
//! evicted up to the slowest of them, and the feed stops reading while it is
//! full: a slow reader slows the feed (bounded memory) instead of being
//! skipped. A reader the feed did not wait for would fall behind the window
//! and read the log again on its own: twice the decoding here and a second
//! consumer on the server. Correctness does not depend on
//! the feed: records are identified by sequence, and an agent applies each
//! sequence once, whichever way it was read.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::backend::{Backend, Record};
use super::Shared;
use crate::log::Seq;

/// Records the window holds at most.
pub const CAPACITY: usize = 16_384;

/// Records read together from the log, shared by every reader: one
/// reference count per chunk, not per record, so seven readers on two
/// threads do not bounce a counter between cores for every record.
pub type Chunk = Arc<[Record]>;

/// Records handed to a reader, in log order: a range of each chunk.
#[derive(Default)]
pub struct Batch {
    parts: Vec<(Chunk, std::ops::Range<usize>)>,
    len: usize,
}

impl Batch {
    /// A batch of records read outside the feed.
    pub fn of(records: Vec<Record>) -> Self {
        let len = records.len();
        Self {
            parts: vec![(Chunk::from(records), 0..len)],
            len,
        }
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The records in order.
    pub fn iter(&self) -> impl Iterator<Item = &Record> {
        self.parts.iter().flat_map(|(c, r)| c[r.clone()].iter())
    }

    fn push(&mut self, chunk: &Chunk, range: std::ops::Range<usize>) {
        self.len += range.len();
        self.parts.push((chunk.clone(), range));
    }
}

/// What the feed has for a reader that wants `next`.
pub enum Take {
    /// Records from `next` on.
    Records(Batch),
    /// `next` is past the feed's head: wait for it.
    Ahead,
    /// `next` is older than the window: read it yourself.
    Behind,
}

#[derive(Default)]
struct Window {
    /// Non-empty chunks in log order.
    chunks: VecDeque<Chunk>,
    /// Records in `chunks`.
    records: usize,
    /// The sequence the feed reads next.
    head: Seq,
}

/// The shared window and its wake-ups.
#[derive(Default)]
pub struct Feed {
    window: RwLock<Window>,
    /// The last sequence each reader has consumed.
    cursors: Mutex<BTreeMap<&'static str, Seq>>,
    /// New records arrived.
    pub arrived: tokio::sync::Notify,
    /// A reader advanced (room may have been made).
    pub advanced: tokio::sync::Notify,
}

impl Feed {
    /// Up to `max` records from `next`.
    pub fn take(&self, next: Seq, max: usize) -> Take {
        let w = self.window.read().unwrap_or_else(|p| p.into_inner());
        if next >= w.head {
            return Take::Ahead;
        }
        match w.chunks.front() {
            Some(c) if c[0].0 <= next => {}
            _ => return Take::Behind,
        }
        // The first chunk that ends at or after `next`.
        let at = w.chunks.partition_point(|c| c[c.len() - 1].0 < next);
        let mut batch = Batch::default();
        for chunk in w.chunks.iter().skip(at) {
            let from = if batch.is_empty() {
                chunk.partition_point(|r| r.0 < next)
            } else {
                0
            };
            let to = chunk.len().min(from + (max - batch.len()));
            batch.push(chunk, from..to);
            if batch.len() >= max {
                break;
            }
        }
        Take::Records(batch)
    }

    /// Like [`Feed::take`], but at the head waits up to `wait` for records to
    /// arrive: never `Ahead` (an empty batch means nothing came in time).
    pub async fn take_or_wait(&self, next: Seq, max: usize, wait: Duration) -> Take {
        let arrived = self.arrived.notified();
        tokio::pin!(arrived);
        // Registered before looking, so a push in between is not missed.
        arrived.as_mut().enable();
        match self.take(next, max) {
            Take::Ahead => {
                let _ = tokio::time::timeout(wait, arrived).await;
                match self.take(next, max) {
                    Take::Ahead => Take::Records(Batch::default()),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// `reader` has consumed every record up to `seq` (a restarted reader
    /// may move back). Wakes the feed if it waits for room.
    pub fn reached(&self, reader: &'static str, seq: Seq) {
        self.cursors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(reader, seq);
        self.advanced.notify_one();
    }

    /// Where the feed starts: after the slowest reader's cursor.
    pub fn start(&self) -> Seq {
        let cursors = self.cursors.lock().unwrap_or_else(|p| p.into_inner());
        cursors.values().min().copied().unwrap_or(0) + 1
    }

    /// Drops chunks every reader in the window has consumed; returns how
    /// many records remain. Readers behind the window read on their own and
    /// do not hold it back.
    fn evict(&self) -> usize {
        let cursors = self
            .cursors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut w = self.window.write().unwrap_or_else(|p| p.into_inner());
        let first = w.chunks.front().map_or(w.head, |c| c[0].0);
        let floor = (cursors.values())
            .copied()
            .filter(|done| done + 1 >= first)
            .min()
            .unwrap_or(w.head.saturating_sub(1));
        let mut gone = Vec::new();
        while w.chunks.front().is_some_and(|c| c[c.len() - 1].0 <= floor) {
            let chunk = w.chunks.pop_front().expect("checked above");
            w.records -= chunk.len();
            gone.push(chunk);
        }
        let left = w.records;
        // Freed after the lock is released: dropping the last reference
        // to a chunk frees 512 decoded records, and readers taking batches
        // (which block their worker thread on this lock) need not wait for it.
        drop(w);
        drop(gone);
        left
    }

    fn push(&self, batch: Vec<Record>, head: Seq) {
        let mut w = self.window.write().unwrap_or_else(|p| p.into_inner());
        if !batch.is_empty() {
            w.records += batch.len();
            w.chunks.push_back(Chunk::from(batch));
        }
        w.head = head;
    }
}

/// Reads the log from `from` into the feed until the node stops.
pub async fn run(backend: Backend, shared: Arc<Shared>, from: Seq) {
    let feed = &shared.feed;
    feed.window.write().unwrap_or_else(|p| p.into_inner()).head = from;
    let mut reader = None;
    while !shared.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        if feed.evict() >= CAPACITY {
            let _ = tokio::time::timeout(Duration::from_millis(20), feed.advanced.notified()).await;
            continue;
        }
        let head = feed.window.read().unwrap_or_else(|p| p.into_inner()).head;
        let r = match &mut reader {
            Some(r) => r,
            None => match backend.reader(head).await {
                Ok(r) => reader.insert(r),
                Err(e) => {
                    tracing::warn!(error = %e, "feed: opening a reader failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        match r.next_batch(512, Duration::from_millis(200)).await {
            Ok(batch) if batch.is_empty() => {}
            Ok(batch) => {
                let head = batch.last().map_or(head, |(s, _)| s + 1);
                feed.push(batch, head);
                feed.arrived.notify_waiters();
            }
            Err(e) => {
                tracing::warn!(error = %e, "feed: reading the log failed; reopening");
                reader = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Rejection;

    /// Records `from..=to` (invalid ones: the feed does not look inside).
    fn records(from: Seq, to: Seq) -> Vec<Record> {
        (from..=to)
            .map(|s| (s, Err(Rejection::invalid("id", "", "test"))))
            .collect()
    }

    fn seqs(t: Take) -> Vec<Seq> {
        match t {
            Take::Records(b) => {
                let seqs: Vec<Seq> = b.iter().map(|r| r.0).collect();
                assert_eq!(seqs.len(), b.len());
                seqs
            }
            Take::Ahead => panic!("ahead"),
            Take::Behind => panic!("behind"),
        }
    }

    /// A feed holding chunks 1..=3, 4..=4 and 5..=9, head 10.
    fn feed() -> Feed {
        let f = Feed::default();
        f.push(records(1, 3), 4);
        f.push(records(4, 4), 5);
        f.push(Vec::new(), 5);
        f.push(records(5, 9), 10);
        f
    }

    #[test]
    fn takes_across_chunks_from_any_record_up_to_max() {
        let f = feed();
        assert_eq!(seqs(f.take(1, 100)), (1..=9).collect::<Vec<_>>());
        assert_eq!(seqs(f.take(2, 3)), vec![2, 3, 4]);
        assert_eq!(seqs(f.take(4, 2)), vec![4, 5]);
        assert_eq!(seqs(f.take(6, 1)), vec![6]);
        assert_eq!(seqs(f.take(9, 5)), vec![9]);
        assert!(matches!(f.take(10, 5), Take::Ahead));
    }

    #[test]
    fn skips_gaps_in_sequence_numbers() {
        // JetStream sequences have holes where messages were deleted.
        let f = Feed::default();
        f.push(vec![records(1, 1).remove(0), records(5, 5).remove(0)], 6);
        f.push(records(8, 9), 10);
        assert_eq!(seqs(f.take(2, 10)), vec![5, 8, 9]);
        assert_eq!(seqs(f.take(6, 10)), vec![8, 9]);
    }

    #[test]
    fn evicts_only_what_every_reader_in_the_window_has_consumed() {
        let f = feed();
        f.reached("fast", 9);
        f.reached("slow", 4);
        // Chunks 1..=3 and 4..=4 are done by both; 5..=9 is not.
        assert_eq!(f.evict(), 5);
        assert!(matches!(f.take(4, 1), Take::Behind));
        assert_eq!(seqs(f.take(5, 1)), vec![5]);
        // A reader that restarted far behind reads on its own and does not
        // hold the window: only readers inside it count.
        f.reached("restarted", 0);
        f.reached("slow", 9);
        assert_eq!(f.evict(), 0);
        assert!(matches!(f.take(9, 1), Take::Behind));
        assert_eq!(f.start(), 1);
    }

    #[test]
    fn a_reader_that_has_not_read_yet_holds_the_window_from_its_start() {
        let f = feed();
        f.reached("agent", 9);
        f.reached("ingest", 0);
        assert_eq!(f.evict(), 9, "ingest has consumed nothing yet");
        f.reached("ingest", 3);
        assert_eq!(f.evict(), 6);
    }
}
