//! What a run measured, in 10-second buckets: user-facing requests per
//! entry (outcome and latency) and calls per service (outcome after
//! retries, as the caller saw it). The report derives everything from
//! these: success ratio, SLO minutes, revenue, charts.

use super::windows::Hist;
use super::world::World;

/// Length of a bucket, ms.
pub const BUCKET_MS: f64 = 10_000.0;

/// User-facing requests into one entry over one bucket.
#[derive(Clone, Debug, Default)]
pub struct UserBucket {
    /// Requests.
    pub requests: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Their latencies.
    pub latency: Hist,
}

/// One run's measurements.
#[derive(Clone, Debug)]
pub struct Tally {
    /// Per entry, per bucket.
    pub users: Vec<Vec<UserBucket>>,
    /// Per service, per bucket: (calls, failed calls).
    pub calls: Vec<Vec<(u64, u64)>>,
}

impl Tally {
    /// Empty buckets covering `duration` ms.
    pub fn new(w: &World, duration: f64) -> Self {
        let n = (duration / BUCKET_MS).ceil().max(1.0) as usize;
        Self {
            users: vec![vec![UserBucket::default(); n]; w.entries.len()],
            calls: vec![vec![(0, 0); n]; w.services.len()],
        }
    }

    /// The bucket of time `t` ms.
    pub fn bucket(&self, t: f64) -> usize {
        ((t / BUCKET_MS) as usize).min(self.calls[0].len() - 1)
    }

    /// Counts a user-facing request.
    pub fn user(&mut self, bucket: usize, entry: usize, ok: bool, ms: f64) {
        let b = &mut self.users[entry][bucket];
        b.requests += 1;
        b.failed += u64::from(!ok);
        b.latency.add(ms);
    }

    /// Counts a call into `service`.
    pub fn call(&mut self, bucket: usize, service: usize, ok: bool) {
        let c = &mut self.calls[service][bucket];
        c.0 += 1;
        c.1 += u64::from(!ok);
    }

    /// User-facing (requests, failed) over the whole run.
    pub fn totals(&self) -> (u64, u64) {
        self.users
            .iter()
            .flatten()
            .fold((0, 0), |(r, f), b| (r + b.requests, f + b.failed))
    }

    /// Buckets in the run.
    pub fn len(&self) -> usize {
        self.calls[0].len()
    }

    /// Whether the run has no buckets (never: at least one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
