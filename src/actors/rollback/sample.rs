//! What an analysis interval collects: request and error counts, and the
//! samples the statistical judge ranks, in bounded memory.
//!
//! Samples are kept as a histogram over log-spaced buckets 1 % wide
//! (`ln(1 + v) / ln 1.01`), so ties are exact, ranks need no sort, and a
//! service sending a million requests a minute costs at most a few hundred
//! buckets per metric. The Mann–Whitney test only needs order, which the
//! buckets keep; quantiles come back within 1 %.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::events::observation::{Request, Window};

const STEP: f64 = 0.009_950_330_853_168_083; // ln 1.01

/// The bucket of a non-negative value.
pub fn bucket(v: f64) -> u32 {
    if v.is_finite() && v > 0.0 {
        ((v.ln_1p() / STEP).round()).min(f64::from(u32::MAX)) as u32
    } else {
        0
    }
}

/// The value a bucket stands for.
pub fn value(bucket: u32) -> f64 {
    (f64::from(bucket) * STEP).exp_m1()
}

/// A weighted histogram of samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Hist {
    counts: BTreeMap<u32, u64>,
    n: u64,
    sum: f64,
}

impl Hist {
    /// Adds `v` with weight `w`.
    pub fn add(&mut self, v: f64, w: u64) {
        if w == 0 || !v.is_finite() {
            return;
        }
        *self.counts.entry(bucket(v)).or_default() += w;
        self.n += w;
        self.sum += v.max(0.0) * w as f64;
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Hist) {
        for (b, c) in &other.counts {
            *self.counts.entry(*b).or_default() += c;
        }
        self.n += other.n;
        self.sum += other.sum;
    }

    /// Total weight.
    pub fn n(&self) -> u64 {
        self.n
    }

    /// Exact mean of the samples added.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// The `q` quantile (nearest rank), within the bucket width.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (b, c) in &self.counts {
            seen += c;
            if seen >= rank {
                return Some(value(*b));
            }
        }
        None
    }

    /// Buckets with their counts, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.counts.iter().map(|(b, c)| (*b, *c))
    }
}

/// One side of an analysis interval (new version, baseline, or the whole service).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Requests counted.
    pub requests: u64,
    /// Failed among them.
    pub errors: u64,
    /// Error-rate samples, percent: one per request (0 or 100) or per window.
    pub error_samples: Hist,
    /// Latency samples, ms: one per request, or one p99 per window.
    pub latency_samples: Hist,
    /// Latency weighted by requests (a window's p99 counts for its requests),
    /// for the observed p99.
    pub latency_weighted: Hist,
}

impl Tally {
    /// Counts one request; ignored outcomes are not counted.
    pub fn request(&mut self, r: &Request) {
        let Some(f) = r.failed() else { return };
        self.requests += 1;
        self.errors += u64::from(f);
        self.error_samples.add(if f { 100.0 } else { 0.0 }, 1);
        if let Some(l) = r.latency_ms {
            self.latency_samples.add(l, 1);
            self.latency_weighted.add(l, 1);
        }
    }

    /// Counts one window.
    pub fn window(&mut self, w: &Window) {
        if w.requests == 0 {
            return;
        }
        let errors = w.errors.min(w.requests);
        self.requests += w.requests;
        self.errors += errors;
        self.error_samples
            .add(100.0 * errors as f64 / w.requests as f64, 1);
        if let Some(p99) = w.latency_ms.as_ref().and_then(|l| l.p99) {
            self.latency_samples.add(p99, 1);
            self.latency_weighted.add(p99, w.requests);
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.error_samples.merge(&other.error_samples);
        self.latency_samples.merge(&other.latency_samples);
        self.latency_weighted.merge(&other.latency_weighted);
    }

    /// Failed requests in percent.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| 100.0 * self.errors as f64 / self.requests as f64)
    }

    /// The 99th percentile of latency, weighted by requests.
    pub fn p99(&self) -> Option<f64> {
        self.latency_weighted.quantile(0.99)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::observation::Outcome;

    #[test]
    fn buckets_keep_order_and_are_one_percent_wide() {
        let mut last = 0;
        for v in [0.0, 0.5, 1.0, 10.0, 100.0, 250.0, 1000.0, 60_000.0] {
            let b = bucket(v);
            assert!(b >= last, "{v}");
            last = b;
            let back = value(b);
            assert!(
                (back - v).abs() <= 0.006 * (1.0 + v),
                "{v} came back as {back}"
            );
        }
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(f64::NAN), 0);
    }

    #[test]
    fn quantiles_and_means() {
        let mut h = Hist::default();
        for v in 1..=100 {
            h.add(f64::from(v), 1);
        }
        assert_eq!(h.mean(), Some(50.5));
        let p99 = h.quantile(0.99).unwrap();
        assert!((p99 - 99.0).abs() < 1.0, "{p99}");
        assert_eq!(Hist::default().quantile(0.5), None);
    }

    #[test]
    fn windows_and_requests_both_count() {
        let mut t = Tally::default();
        t.window(&Window {
            interval_ms: 1000,
            requests: 90,
            errors: 9,
            ..Default::default()
        });
        t.request(&Request {
            status: Some(503),
            latency_ms: Some(12.0),
            ..Default::default()
        });
        t.request(&Request {
            outcome: Some(Outcome::Ignored),
            ..Default::default()
        });
        assert_eq!((t.requests, t.errors), (91, 10));
        assert_eq!(t.error_samples.n(), 2);
        assert!((t.error_rate().unwrap() - 100.0 * 10.0 / 91.0).abs() < 1e-9);
    }
}
