//! Sliding windows of call outcomes.
//!
//! Both windows hold [`Tally`]s (calls, failed, slow) rather than single
//! outcomes, so a `faultline.window` event with thousands of requests costs one
//! entry, not thousands.
//!
//! * [`CountWindow`]: the last N outcomes. Entries are kept in arrival order;
//!   when the total passes N the oldest entry is trimmed, partially if needed,
//!   keeping its failure and slow proportions (integer arithmetic rounded half
//!   up, so the result is deterministic).
//! * [`TimeWindow`]: the last N seconds in per-second buckets (resilience4j's
//!   time-based window). A window event is spread over the seconds of its
//!   interval in proportion to overlap, as if its calls had arrived evenly.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::events::time::NANOS_PER_SEC;
use crate::events::Timestamp;

/// Outcome counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Recorded calls.
    pub calls: u64,
    /// Of which failed.
    pub failed: u64,
    /// Of which slow.
    pub slow: u64,
}

impl Tally {
    /// Adds another tally.
    pub fn add(&mut self, o: Tally) {
        self.calls += o.calls;
        self.failed += o.failed;
        self.slow += o.slow;
    }

    fn sub(&mut self, o: Tally) {
        self.calls -= o.calls;
        self.failed -= o.failed;
        self.slow -= o.slow;
    }

    /// This tally scaled to `calls` calls, proportions kept, rounded half up.
    pub fn scaled_to(self, calls: u64) -> Tally {
        if self.calls == 0 || calls >= self.calls {
            return if calls >= self.calls {
                self
            } else {
                Tally::default()
            };
        }
        let part = |x: u64| {
            ((u128::from(x) * u128::from(calls) * 2 + u128::from(self.calls))
                / (2 * u128::from(self.calls))) as u64
        };
        Tally {
            calls,
            failed: part(self.failed).min(calls),
            slow: part(self.slow).min(calls),
        }
    }

    /// Failure rate in percent.
    pub fn failure_rate(self) -> f64 {
        self.failed as f64 * 100.0 / self.calls as f64
    }

    /// Slow-call rate in percent.
    pub fn slow_rate(self) -> f64 {
        self.slow as f64 * 100.0 / self.calls as f64
    }
}

/// The last `size` outcomes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountWindow {
    size: u64,
    entries: VecDeque<Tally>,
    total: Tally,
}

impl CountWindow {
    /// An empty window of `size` outcomes.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            entries: VecDeque::new(),
            total: Tally::default(),
        }
    }

    /// Records outcomes, evicting the oldest beyond `size`.
    pub fn add(&mut self, o: Tally) {
        if o.calls == 0 {
            return;
        }
        let o = if o.calls > self.size {
            o.scaled_to(self.size)
        } else {
            o
        };
        self.entries.push_back(o);
        self.total.add(o);
        while self.total.calls > self.size {
            let excess = self.total.calls - self.size;
            let front = self
                .entries
                .front_mut()
                .expect("total > 0 implies an entry");
            if front.calls <= excess {
                let gone = *front;
                self.entries.pop_front();
                self.total.sub(gone);
            } else {
                let kept = front.scaled_to(front.calls - excess);
                let gone = Tally {
                    calls: excess,
                    failed: front.failed - kept.failed,
                    slow: front.slow - kept.slow,
                };
                *front = kept;
                self.total.sub(gone);
            }
        }
    }

    /// Everything in the window.
    pub fn tally(&self) -> Tally {
        self.total
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Bucket {
    second: i64,
    tally: Tally,
}

/// The last `size` seconds, per-second buckets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    size: i64,
    buckets: VecDeque<Bucket>,
    total: Tally,
}

impl TimeWindow {
    /// An empty window of `size` seconds.
    pub fn new(size: u32) -> Self {
        Self {
            size: i64::from(size),
            buckets: VecDeque::new(),
            total: Tally::default(),
        }
    }

    /// Oldest bucket still inside the window when the clock reads `now`.
    fn oldest(&self, now: Timestamp) -> i64 {
        bucket_of(now.nanos()) - self.size + 1
    }

    /// Drops buckets that have slid out of the window at `now`.
    pub fn expire(&mut self, now: Timestamp) {
        let oldest = self.oldest(now);
        while let Some(b) = self.buckets.front().copied().filter(|b| b.second < oldest) {
            self.buckets.pop_front();
            self.total.sub(b.tally);
        }
    }

    fn add_at(&mut self, second: i64, o: Tally) {
        if o.calls == 0 {
            return;
        }
        self.total.add(o);
        let pos = self.buckets.iter().rposition(|b| b.second <= second);
        match pos {
            Some(i) if self.buckets[i].second == second => self.buckets[i].tally.add(o),
            Some(i) => self.buckets.insert(i + 1, Bucket { second, tally: o }),
            None => self.buckets.push_front(Bucket { second, tally: o }),
        }
    }

    /// Records outcomes observed over the interval `(end - interval_ms, end]`,
    /// spread evenly over the seconds it covers (bucket `k` holds `(k-1 s, k s]`,
    /// so an instant exactly on a second boundary belongs to the second it
    /// ends). The share that falls before the window is dropped, as it would
    /// have expired. Returns false, recording nothing, when the whole interval
    /// is older than the window at `now`: a late record.
    pub fn add_spread(
        &mut self,
        o: Tally,
        end: Timestamp,
        interval_ms: u64,
        now: Timestamp,
    ) -> bool {
        self.expire(now);
        let oldest = self.oldest(now);
        let end_ns = end.nanos();
        let last = bucket_of(end_ns);
        if last < oldest {
            return false;
        }
        let interval_ns = interval_ms.min((i64::MAX / 1_000_000) as u64) as i64 * 1_000_000;
        let start_ns = end_ns.saturating_sub(interval_ns);
        if interval_ns == 0 {
            self.add_at(last, o);
            return true;
        }
        let span = (end_ns - start_ns) as u128;
        let share = |x: u64, upto: u128| (u128::from(x) * upto / span) as u64;
        let upto = |covered: u128| Tally {
            calls: share(o.calls, covered),
            failed: share(o.failed, covered),
            slow: share(o.slow, covered),
        };
        let first = start_ns.div_euclid(NANOS_PER_SEC) + 1;
        let from = first.max(oldest);
        // The part before the window counts towards the cumulative shares only.
        let mut covered = (from
            .saturating_sub(1)
            .saturating_mul(NANOS_PER_SEC)
            .clamp(start_ns, end_ns)
            - start_ns) as u128;
        let mut given = upto(covered);
        for k in from..=last {
            let lo = ((k - 1) * NANOS_PER_SEC).max(start_ns);
            let hi = (k * NANOS_PER_SEC).min(end_ns);
            covered += (hi - lo) as u128;
            let now_upto = upto(covered);
            let part = Tally {
                calls: now_upto.calls - given.calls,
                failed: now_upto.failed - given.failed,
                slow: now_upto.slow - given.slow,
            };
            given = now_upto;
            self.add_at(k, part);
        }
        true
    }

    /// Everything in the window at `now`.
    pub fn tally(&mut self, now: Timestamp) -> Tally {
        self.expire(now);
        self.total
    }
}

/// Bucket of an instant: the second it ends, `ceil(ns / 1e9)`.
fn bucket_of(ns: i64) -> i64 {
    -(-ns).div_euclid(NANOS_PER_SEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(calls: u64, failed: u64, slow: u64) -> Tally {
        Tally {
            calls,
            failed,
            slow,
        }
    }

    #[test]
    fn count_window_evicts_oldest_first() {
        let mut w = CountWindow::new(4);
        for f in [1, 1, 0, 0, 0] {
            w.add(t(1, f, 0));
        }
        assert_eq!(w.tally(), t(4, 1, 0));
    }

    #[test]
    fn count_window_trims_an_aggregate_proportionally() {
        let mut w = CountWindow::new(10);
        w.add(t(10, 10, 0));
        w.add(t(5, 0, 5));
        assert_eq!(w.tally(), t(10, 5, 5));
        w.add(t(100, 50, 0));
        assert_eq!(w.tally(), t(10, 5, 0));
    }

    #[test]
    fn time_window_expires_by_the_clock() {
        let mut w = TimeWindow::new(3);
        let s = |x: i64| Timestamp::from_millis(x * 1000);
        assert!(w.add_spread(t(1, 1, 0), s(10), 0, s(10)));
        assert!(w.add_spread(t(1, 0, 0), s(12), 0, s(12)));
        assert_eq!(w.tally(s(12)), t(2, 1, 0));
        assert_eq!(w.tally(s(13)), t(1, 0, 0));
        assert!(
            !w.add_spread(t(1, 1, 0), s(9), 0, s(13)),
            "older than the window is late"
        );
    }

    #[test]
    fn time_window_spreads_an_interval() {
        let mut w = TimeWindow::new(10);
        let s = |x: i64| Timestamp::from_millis(x * 1000);
        // 60 calls over 60 s, window of 10 s: only the last 10 s worth count.
        assert!(w.add_spread(t(60, 60, 0), s(100), 60_000, s(100)));
        assert_eq!(w.tally(s(100)), t(10, 10, 0));
        // 10 calls over 2 s land in 2 buckets; one slides out a second later.
        let mut w = TimeWindow::new(2);
        w.add_spread(t(10, 4, 0), s(50), 2_000, s(50));
        assert_eq!(w.tally(s(50)), t(10, 4, 0));
        assert_eq!(w.tally(s(51)), t(5, 2, 0));
    }
}
