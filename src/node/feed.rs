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
//! The window is evicted up to the slowest agent that reads from it, and
//! the feed stops reading while it is full: a slow agent slows the feed
//! (bounded memory) instead of being skipped. Correctness does not depend on
//! the feed: records are identified by sequence, and an agent applies each
//! sequence once, whichever way it was read.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::backend::{Backend, Record};
use super::Shared;
use crate::log::Seq;

/// Records the window holds at most.
pub const CAPACITY: usize = 16_384;

/// What the feed has for an agent that wants `next`.
pub enum Take {
    /// Records from `next` on.
    Records(Vec<Arc<Record>>),
    /// `next` is past the feed's head: wait for it.
    Ahead,
    /// `next` is older than the window: read it yourself.
    Behind,
}

#[derive(Default)]
struct Window {
    records: VecDeque<Arc<Record>>,
    /// The sequence the feed reads next.
    head: Seq,
}

/// The shared window and its wake-ups.
#[derive(Default)]
pub struct Feed {
    window: RwLock<Window>,
    /// New records arrived.
    pub arrived: tokio::sync::Notify,
    /// An agent advanced (room may have been made).
    pub advanced: tokio::sync::Notify,
}

impl Feed {
    /// Up to `max` records from `next`.
    pub fn take(&self, next: Seq, max: usize) -> Take {
        let w = self.window.read().unwrap_or_else(|p| p.into_inner());
        if next >= w.head {
            return Take::Ahead;
        }
        let first = match w.records.front() {
            Some(r) => r.0,
            None => return Take::Behind,
        };
        if next < first {
            return Take::Behind;
        }
        let at = w.records.partition_point(|r| r.0 < next);
        Take::Records(w.records.iter().skip(at).take(max).cloned().collect())
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
                    Take::Ahead => Take::Records(Vec::new()),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// Drops records every reading agent has applied; returns how many remain.
    fn evict(&self, shared: &Shared) -> usize {
        let mut w = self.window.write().unwrap_or_else(|p| p.into_inner());
        let first = w.records.front().map_or(w.head, |r| r.0);
        let floor = (shared.statuses().values())
            .map(|s| s.applied)
            .filter(|applied| applied + 1 >= first)
            .min()
            .unwrap_or(w.head.saturating_sub(1));
        while w.records.front().is_some_and(|r| r.0 <= floor) {
            w.records.pop_front();
        }
        w.records.len()
    }

    fn push(&self, batch: Vec<Record>, head: Seq) {
        let mut w = self.window.write().unwrap_or_else(|p| p.into_inner());
        w.records.extend(batch.into_iter().map(Arc::new));
        w.head = head;
    }
}

/// Reads the log from `from` into the feed until the node stops.
pub async fn run(backend: Backend, shared: Arc<Shared>, from: Seq) {
    let feed = &shared.feed;
    feed.window.write().unwrap_or_else(|p| p.into_inner()).head = from;
    let mut reader = None;
    while !shared.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        if feed.evict(&shared) >= CAPACITY {
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
