//! From observations to points: the predictor's signals in event time.
//!
//! Each watched series (a service, one of its instances, or one of its
//! versions) collects observations into the open bucket of its current
//! interval. `faultline.request` events fall into fixed buckets of
//! `interval_s`, keyed by event time; a `faultline.window` lands in the bucket
//! holding its end, bringing its own interval. When the agent's clock passes
//! a bucket's end plus the allowed lateness, the bucket closes into one point
//! per signal:
//!
//! * error rate, percent (needs `min_requests` calls);
//! * p99 and p50 latency, ms: windows' own quantiles (request-weighted mean
//!   across the windows of the bucket, an approximation when several
//!   instances report separately), else from request latencies via a
//!   log-spaced histogram (25 % wide bins, so within ±12 %);
//! * throughput, calls per second over the covered time.
//!
//! An empty bucket is a missing point, not zero traffic: a publisher that
//! stops reporting is not a service whose users left. Memory per series is
//! one open bucket (the histogram only when requests carry latencies).

use serde::{Deserialize, Serialize};

use crate::events::decision::SignalKind;
use crate::events::observation::{Outcome, Request, Window};

/// Which series of a service.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Facet {
    /// The whole service.
    Service,
    /// One instance.
    Instance(String),
    /// One version.
    Version(String),
}

const HIST_BASE_MS: f64 = 0.1;
const HIST_RATIO: f64 = 1.25;
const HIST_BINS: usize = 64;

/// An open interval's tallies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Start of the interval, ns.
    pub start: i64,
    /// End of the interval, ns (the point's time).
    pub end: i64,
    requests: u64,
    errors: u64,
    /// Time covered, ns: the bucket for requests, the longest window for windows.
    covered_ns: i64,
    hist: Vec<u32>,
    p50_sum: f64,
    p50_weight: f64,
    p99_sum: f64,
    p99_weight: f64,
}

/// One closed interval's signal values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// End of the interval, ns.
    pub t: i64,
    /// Calls in it.
    pub requests: u64,
    /// Values by signal (`None`: not enough data).
    pub values: [Option<f64>; 4],
}

/// Whether a request failed, from its outcome or status (5xx and 0 fail).
pub fn failed(r: &Request) -> Option<bool> {
    match r.outcome {
        Some(Outcome::Success) => Some(false),
        Some(Outcome::Failure) => Some(true),
        Some(Outcome::Ignored) => None,
        None => Some(matches!(r.status, Some(0) | Some(500..=599))),
    }
}

impl Bucket {
    /// An empty bucket over `[start, end)`.
    pub fn new(start: i64, end: i64) -> Self {
        Self {
            start,
            end,
            requests: 0,
            errors: 0,
            covered_ns: 0,
            hist: Vec::new(),
            p50_sum: 0.0,
            p50_weight: 0.0,
            p99_sum: 0.0,
            p99_weight: 0.0,
        }
    }

    /// Adds one request outcome.
    pub fn add_request(&mut self, failed: bool, latency_ms: Option<f64>) {
        self.requests += 1;
        self.errors += u64::from(failed);
        self.covered_ns = self.end - self.start;
        if let Some(ms) = latency_ms {
            if self.hist.is_empty() {
                self.hist = vec![0; HIST_BINS];
            }
            let bin = if ms <= HIST_BASE_MS {
                0
            } else {
                ((ms / HIST_BASE_MS).ln() / HIST_RATIO.ln()).floor() as usize + 1
            };
            self.hist[bin.min(HIST_BINS - 1)] += 1;
        }
    }

    /// Adds one window.
    pub fn add_window(&mut self, w: &Window) {
        self.requests += w.requests;
        self.errors += w.errors;
        let span = i64::try_from(w.interval_ms)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1_000_000);
        self.covered_ns = self.covered_ns.max(span);
        if let Some(l) = &w.latency_ms {
            let weight = w.requests.max(1) as f64;
            if let Some(p) = l.p50 {
                self.p50_sum += weight * p;
                self.p50_weight += weight;
            }
            if let Some(p) = l.p99 {
                self.p99_sum += weight * p;
                self.p99_weight += weight;
            }
        }
    }

    fn hist_quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.hist.iter().map(|&c| u64::from(c)).sum();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut seen = 0.0;
        for (i, &c) in self.hist.iter().enumerate() {
            let next = seen + f64::from(c);
            if next >= rank && c > 0 {
                if i == 0 {
                    return Some(HIST_BASE_MS);
                }
                // Geometric interpolation within the bin.
                let lo = HIST_BASE_MS * HIST_RATIO.powi(i as i32 - 1);
                let frac = ((rank - seen) / f64::from(c)).clamp(0.0, 1.0);
                return Some(lo * HIST_RATIO.powf(frac));
            }
            seen = next;
        }
        None
    }

    /// The point this bucket makes; `None` when it saw nothing.
    pub fn close(&self, min_requests: u64) -> Option<Point> {
        if self.requests == 0 {
            return None;
        }
        let enough = self.requests >= min_requests;
        let mean = |sum: f64, w: f64| (w > 0.0).then(|| sum / w);
        let p99 = mean(self.p99_sum, self.p99_weight).or_else(|| self.hist_quantile(0.99));
        let p50 = mean(self.p50_sum, self.p50_weight).or_else(|| self.hist_quantile(0.5));
        let covered_s = self.covered_ns.max(1) as f64 / 1e9;
        let mut values = [None; 4];
        for (v, kind) in values.iter_mut().zip(SignalKind::ALL) {
            *v = match kind {
                SignalKind::ErrorRate => {
                    enough.then(|| 100.0 * self.errors as f64 / self.requests as f64)
                }
                SignalKind::LatencyP99 => p99.filter(|_| enough),
                SignalKind::LatencyP50 => p50.filter(|_| enough),
                SignalKind::Throughput => Some(self.requests as f64 / covered_s),
            };
        }
        Some(Point {
            t: self.end,
            requests: self.requests,
            values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::observation::LatencySummary;

    const SEC: i64 = 1_000_000_000;

    #[test]
    fn requests_make_rates_and_quantiles() {
        let mut b = Bucket::new(0, 10 * SEC);
        for i in 0..100 {
            b.add_request(
                i % 10 == 0,
                Some(if i == 99 { 900.0 } else { 50.0 + f64::from(i) }),
            );
        }
        let p = b.close(20).unwrap();
        assert_eq!(p.values[0], Some(10.0));
        let p99 = p.values[1].unwrap();
        assert!((130.0..=1000.0).contains(&p99), "p99 {p99}");
        let p50 = p.values[2].unwrap();
        assert!((p50 - 100.0).abs() < 12.0, "p50 {p50}");
        assert_eq!(p.values[3], Some(10.0));
    }

    #[test]
    fn too_few_requests_give_throughput_only() {
        let mut b = Bucket::new(0, 10 * SEC);
        b.add_request(true, Some(5.0));
        let p = b.close(20).unwrap();
        assert_eq!(p.values[..3], [None, None, None]);
        assert_eq!(p.values[3], Some(0.1));
        assert!(Bucket::new(0, SEC).close(1).is_none());
    }

    #[test]
    fn windows_bring_their_own_interval_and_quantiles() {
        let mut b = Bucket::new(0, 10 * SEC);
        let w = |requests, p99| Window {
            interval_ms: 60_000,
            requests,
            errors: requests / 100,
            latency_ms: Some(LatencySummary {
                p99: Some(p99),
                p50: Some(p99 / 4.0),
                ..LatencySummary::default()
            }),
            ..Window::default()
        };
        b.add_window(&w(600, 100.0));
        b.add_window(&w(1800, 200.0));
        let p = b.close(20).unwrap();
        assert_eq!(p.values[0], Some(1.0));
        assert_eq!(p.values[1], Some(175.0));
        assert_eq!(p.values[3], Some(40.0));
    }

    #[test]
    fn failure_follows_outcome_then_status() {
        let r = |status, outcome| Request {
            status,
            outcome,
            ..Request::default()
        };
        assert_eq!(failed(&r(Some(503), None)), Some(true));
        assert_eq!(failed(&r(Some(404), None)), Some(false));
        assert_eq!(failed(&r(Some(0), None)), Some(true));
        assert_eq!(failed(&r(Some(200), Some(Outcome::Failure))), Some(true));
        assert_eq!(failed(&r(Some(500), Some(Outcome::Ignored))), None);
    }
}
