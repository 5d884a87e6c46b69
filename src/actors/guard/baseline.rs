//! One service's points and its robust baseline.
//!
//! Traffic is summed into a point per interval (calls, failures, a
//! call-weighted typical latency). Closed points are compared with the
//! service's own history by a robust z-score of the change,
//! `(x − median) / (1.4826 · MAD)`, the scorer BARO and the strongest
//! statistical root-cause rankers use: the median and the median absolute
//! deviation ignore the outliers an incident adds, and 1.4826 makes the MAD
//! a standard deviation for normal noise. A floor under the MAD keeps a
//! perfectly flat history (an error rate that is always 0) from turning the
//! first failed call into an infinite z. Only healthy points enter the
//! history, so an incident never becomes the baseline it is judged against.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Smallest spread of an error rate, percentage points.
const ERROR_FLOOR: f64 = 1.0;
/// Smallest spread of a latency, as a share of its median (and at least 1 ms).
const LATENCY_FLOOR: f64 = 0.05;

/// A closed point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Calls in the interval.
    pub calls: u64,
    /// Failed calls.
    pub failures: u64,
    /// Failed calls, percent.
    pub error_rate: f64,
    /// Call-weighted typical latency, ms (none without latency data).
    pub latency: Option<f64>,
}

/// How a point compares with the baseline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Robust z of the error rate (0 without history).
    pub z_error: f64,
    /// Robust z of the latency.
    pub z_latency: f64,
    /// Latency over its baseline median (1 without either).
    pub latency_ratio: f64,
}

impl Change {
    /// The larger of the two z-scores: the size of the change.
    pub fn magnitude(&self) -> f64 {
        self.z_error.max(self.z_latency)
    }
}

/// Running sums of the open point and the history of healthy ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    calls: u64,
    failures: u64,
    latency_sum: f64,
    latency_calls: u64,
    errors: VecDeque<f64>,
    latencies: VecDeque<f64>,
}

/// The median of `values` (which it sorts); `values` must not be empty.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Median and MAD of `history`.
fn spread(history: &VecDeque<f64>) -> (f64, f64) {
    let mut v: Vec<f64> = history.iter().copied().collect();
    let m = median(&mut v);
    for x in v.iter_mut() {
        *x = (*x - m).abs();
    }
    (m, median(&mut v))
}

fn z(x: f64, median: f64, mad: f64, floor: f64) -> f64 {
    (x - median) / (1.4826 * mad).max(floor)
}

impl Baseline {
    /// Adds `calls` calls of which `failures` failed, with a typical latency.
    pub fn add(&mut self, calls: u64, failures: u64, latency: Option<f64>) {
        self.calls += calls;
        self.failures += failures.min(calls);
        if let Some(l) = latency.filter(|l| l.is_finite() && *l >= 0.0) {
            self.latency_sum += l * calls as f64;
            self.latency_calls += calls;
        }
    }

    /// Closes the open point (none if it saw no calls).
    pub fn close(&mut self) -> Option<Point> {
        let p = (self.calls > 0).then(|| Point {
            calls: self.calls,
            failures: self.failures,
            error_rate: 100.0 * self.failures as f64 / self.calls as f64,
            latency: (self.latency_calls > 0).then(|| self.latency_sum / self.latency_calls as f64),
        });
        self.calls = 0;
        self.failures = 0;
        self.latency_sum = 0.0;
        self.latency_calls = 0;
        p
    }

    /// Healthy points in the history.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether the history is empty.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `p` against the history.
    pub fn change(&self, p: &Point) -> Change {
        if self.errors.is_empty() {
            return Change {
                latency_ratio: 1.0,
                ..Change::default()
            };
        }
        let (m, mad) = spread(&self.errors);
        let z_error = z(p.error_rate, m, mad, ERROR_FLOOR);
        let (z_latency, latency_ratio) = match (p.latency, self.latencies.is_empty()) {
            (Some(l), false) => {
                let (m, mad) = spread(&self.latencies);
                let floor = (LATENCY_FLOOR * m).max(1.0);
                (z(l, m, mad, floor), if m > 0.0 { l / m } else { 1.0 })
            }
            _ => (0.0, 1.0),
        };
        Change {
            z_error,
            z_latency,
            latency_ratio,
        }
    }

    /// Adds a healthy point to the history, keeping the newest `keep`.
    pub fn learn(&mut self, p: &Point, keep: usize) {
        self.errors.push_back(p.error_rate);
        if self.errors.len() > keep {
            self.errors.pop_front();
        }
        if let Some(l) = p.latency {
            self.latencies.push_back(l);
            if self.latencies.len() > keep {
                self.latencies.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(error_rate: f64, latency: f64) -> Point {
        Point {
            calls: 100,
            failures: error_rate as u64,
            error_rate,
            latency: Some(latency),
        }
    }

    #[test]
    fn a_point_sums_calls_and_weights_latency_by_calls() {
        let mut b = Baseline::default();
        b.add(10, 1, Some(100.0));
        b.add(30, 3, Some(20.0));
        b.add(5, 9, None);
        let p = b.close().unwrap();
        assert_eq!((p.calls, p.failures), (45, 9));
        assert_eq!(p.error_rate, 20.0);
        assert_eq!(p.latency, Some(40.0));
        assert_eq!(b.close(), None, "a point with no calls is no point");
    }

    #[test]
    fn the_change_is_a_robust_z_that_ignores_one_outlier() {
        let mut b = Baseline::default();
        for (e, l) in [
            (1.0, 50.0),
            (2.0, 52.0),
            (1.0, 48.0),
            (3.0, 50.0),
            (2.0, 51.0),
            (90.0, 900.0),
        ] {
            b.learn(&point(e, l), 30);
        }
        // median 2, MAD 1 → σ 1.4826; the 90 % outlier moves neither.
        let c = b.change(&point(17.0, 51.0));
        assert!((c.z_error - 15.0 / 1.4826).abs() < 1e-9, "{c:?}");
        assert!(c.z_latency.abs() < 1.0, "{c:?}");
        assert!((c.latency_ratio - 51.0 / 50.5).abs() < 1e-9);
    }

    #[test]
    fn a_flat_history_uses_the_floor_not_zero() {
        let mut b = Baseline::default();
        for _ in 0..6 {
            b.learn(&point(0.0, 100.0), 30);
        }
        let c = b.change(&point(3.0, 130.0));
        assert_eq!(c.z_error, 3.0);
        assert_eq!(c.z_latency, 6.0);
        assert_eq!(c.magnitude(), 6.0);
    }

    #[test]
    fn history_keeps_the_newest_points() {
        let mut b = Baseline::default();
        for i in 0..10 {
            b.learn(&point(i as f64, 10.0), 4);
        }
        assert_eq!(b.len(), 4);
        assert_eq!(b.change(&point(7.5, 10.0)).z_error, 0.0);
    }
}
