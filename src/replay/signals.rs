//! Signals per service over time: calls, errors and an approximate p99
//! latency in fixed buckets, for the timeline's "key signal changes" and the
//! report's chart.
//!
//! Memory is bounded whatever the range: a bucket starts at 10 s and doubles
//! (merging neighbours) whenever a range would need more than
//! [`MAX_BUCKETS`] of them. Latency is kept as a histogram of quarter-octave
//! bins from 0.25 ms: single requests add their latency, windows add their
//! p99 weighted by their calls, so a bucket's p99 is exact to a bin for
//! requests and a call-weighted p99 of p99s for windows.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::events::{Data, Event, Timestamp};

/// Buckets a series may hold before the width doubles.
pub const MAX_BUCKETS: i64 = 720;
/// The first bucket width.
pub const FIRST_WIDTH_MS: i64 = 10_000;
const BINS: usize = 64;
const LOWEST_MS: f64 = 0.25;

#[derive(Clone, Debug, Default)]
struct Cell {
    calls: u64,
    errors: u64,
    latency: Vec<u64>,
}

impl Cell {
    fn add_latency(&mut self, ms: f64, weight: u64) {
        if !(ms.is_finite() && weight > 0) {
            return;
        }
        if self.latency.is_empty() {
            self.latency = vec![0; BINS];
        }
        self.latency[bin(ms)] += weight;
    }

    fn merge(&mut self, other: &Cell) {
        self.calls += other.calls;
        self.errors += other.errors;
        for (i, n) in other.latency.iter().enumerate() {
            if *n > 0 {
                if self.latency.is_empty() {
                    self.latency = vec![0; BINS];
                }
                self.latency[i] += n;
            }
        }
    }

    fn p99(&self) -> Option<f64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = total - total / 100;
        let mut seen = 0;
        for (i, n) in self.latency.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(upper(i));
            }
        }
        None
    }
}

fn bin(ms: f64) -> usize {
    if ms <= LOWEST_MS {
        return 0;
    }
    ((4.0 * (ms / LOWEST_MS).log2()).ceil() as usize).min(BINS - 1)
}

/// The upper edge of bin `i`, in ms.
fn upper(i: usize) -> f64 {
    LOWEST_MS * 2f64.powf(i as f64 / 4.0)
}

/// One bucket of one service, as reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// Bucket start.
    pub time: Timestamp,
    /// Calls in the bucket.
    pub calls: u64,
    /// Failed calls, percent of calls.
    pub error_rate: f64,
    /// Approximate p99 latency (ms), when any call had one.
    pub p99_ms: Option<f64>,
}

/// Every service's series.
#[derive(Clone, Debug, Default)]
pub struct Signals {
    width_ms: i64,
    origin: Option<i64>,
    series: BTreeMap<String, BTreeMap<i64, Cell>>,
}

impl Signals {
    /// Empty, 10 s buckets.
    pub fn new() -> Self {
        Self {
            width_ms: FIRST_WIDTH_MS,
            ..Self::default()
        }
    }

    /// Bucket width now.
    pub fn width_ms(&self) -> i64 {
        self.width_ms
    }

    /// Adds an observation (requests and windows; other records are ignored).
    pub fn observe(&mut self, e: &Event) {
        let (calls, errors, latency) = match &e.data {
            Data::Request(r) => match r.failed() {
                None => return,
                Some(f) => (1, u64::from(f), r.latency_ms.map(|l| (l, 1))),
            },
            Data::Window(w) => (
                w.requests,
                w.errors,
                w.latency_ms
                    .as_ref()
                    .and_then(|l| l.p99)
                    .map(|p| (p, w.requests)),
            ),
            _ => return,
        };
        let ms = e.time.nanos().div_euclid(1_000_000);
        let origin = *self
            .origin
            .get_or_insert(ms - ms.rem_euclid(FIRST_WIDTH_MS));
        if ms < origin {
            // Earlier than anything seen: move the origin back by whole buckets.
            let shift = (origin - ms + self.width_ms - 1) / self.width_ms;
            for s in self.series.values_mut() {
                *s = std::mem::take(s)
                    .into_iter()
                    .map(|(k, c)| (k + shift, c))
                    .collect();
            }
            self.origin = Some(origin - shift * self.width_ms);
        }
        let origin = self.origin.expect("set above");
        let mut index = (ms - origin) / self.width_ms;
        while index >= MAX_BUCKETS {
            self.widen();
            index = (ms - origin) / self.width_ms;
        }
        let cell = self
            .series
            .entry(e.subject.clone())
            .or_default()
            .entry(index)
            .or_default();
        cell.calls += calls;
        cell.errors += errors;
        if let Some((l, w)) = latency {
            cell.add_latency(l, w);
        }
    }

    fn widen(&mut self) {
        self.width_ms *= 2;
        for s in self.series.values_mut() {
            let mut merged: BTreeMap<i64, Cell> = BTreeMap::new();
            for (k, c) in std::mem::take(s) {
                merged.entry(k / 2).or_default().merge(&c);
            }
            *s = merged;
        }
    }

    /// Each service's points in time order.
    pub fn series(&self) -> BTreeMap<String, Vec<Point>> {
        let origin = self.origin.unwrap_or(0);
        self.series
            .iter()
            .map(|(service, cells)| {
                let points = cells
                    .iter()
                    .map(|(k, c)| Point {
                        time: Timestamp::from_millis(origin + k * self.width_ms),
                        calls: c.calls,
                        error_rate: if c.calls == 0 {
                            0.0
                        } else {
                            100.0 * c.errors as f64 / c.calls as f64
                        },
                        p99_ms: c.p99(),
                    })
                    .collect();
                (service.clone(), points)
            })
            .collect()
    }
}

/// Error-rate levels a change is reported between (percent).
const ERROR_LEVELS: [f64; 3] = [1.0, 5.0, 20.0];
/// Buckets with fewer calls say too little to report a change.
const MIN_CALLS: u64 = 10;

/// A signal moving to another level.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// Bucket start.
    pub time: Timestamp,
    /// The service.
    pub service: String,
    /// `error_rate` or `p99_ms`.
    pub signal: &'static str,
    /// The value before.
    pub before: f64,
    /// The value now.
    pub after: f64,
    /// In words.
    pub summary: String,
}

/// Whether two buckets' error rates differ by more than chance: a pooled
/// two-proportion z of at least [`MIN_Z`] (one failed call in forty is not a change).
fn significant(a: &Point, b: &Point) -> bool {
    let (na, nb) = (a.calls as f64, b.calls as f64);
    let pooled = (a.error_rate * na + b.error_rate * nb) / 100.0 / (na + nb);
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    se > 0.0 && ((a.error_rate - b.error_rate) / 100.0).abs() / se >= MIN_Z
}

/// How many standard errors an error-rate change must span to be reported.
const MIN_Z: f64 = 3.0;

/// Where each series crosses a level: error rate across 1 %, 5 % and 20 %
/// (when the change is beyond chance);
/// p99 latency across 2x, 4x and 8x the service's median p99 in the range.
pub fn changes(series: &BTreeMap<String, Vec<Point>>) -> Vec<Change> {
    let mut out = Vec::new();
    for (service, points) in series {
        let points: Vec<&Point> = points.iter().filter(|p| p.calls >= MIN_CALLS).collect();
        let level = |r: f64| ERROR_LEVELS.iter().filter(|l| r >= **l).count();
        for pair in points.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if level(a.error_rate) != level(b.error_rate) && significant(a, b) {
                out.push(Change {
                    time: b.time,
                    service: service.clone(),
                    signal: "error_rate",
                    before: a.error_rate,
                    after: b.error_rate,
                    summary: format!(
                        "{service} error rate {:.1}% -> {:.1}%",
                        a.error_rate, b.error_rate
                    ),
                });
            }
        }
        let mut p99s: Vec<f64> = points.iter().filter_map(|p| p.p99_ms).collect();
        if p99s.is_empty() {
            continue;
        }
        p99s.sort_by(f64::total_cmp);
        let median = p99s[p99s.len() / 2];
        let level = |v: f64| [2.0, 4.0, 8.0].iter().filter(|m| v >= *m * median).count();
        let with: Vec<(&Point, f64)> = points
            .iter()
            .filter_map(|p| p.p99_ms.map(|v| (*p, v)))
            .collect();
        for pair in with.windows(2) {
            let ((_, a), (pb, b)) = (pair[0], pair[1]);
            if level(a) != level(b) {
                out.push(Change {
                    time: pb.time,
                    service: service.clone(),
                    signal: "p99_ms",
                    before: a,
                    after: b,
                    summary: format!(
                        "{service} p99 {a:.0} ms -> {b:.0} ms (median {median:.0} ms)"
                    ),
                });
            }
        }
    }
    out.sort_by(|a, b| (a.time, &a.service).cmp(&(b.time, &b.service)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::observation::Window;

    fn window(service: &str, at_s: i64, requests: u64, errors: u64, p99: f64) -> Event {
        let mut e = crate::engine::tick(Timestamp::from_millis(at_s * 1000));
        e.subject = service.to_owned();
        e.data = Data::Window(Window {
            interval_ms: 10_000,
            requests,
            errors,
            latency_ms: Some(crate::events::observation::LatencySummary {
                p99: Some(p99),
                ..Default::default()
            }),
            ..Default::default()
        });
        e
    }

    #[test]
    fn error_rate_and_latency_changes_are_found() {
        let mut s = Signals::new();
        for t in 0..30 {
            let bad = (10..20).contains(&t);
            s.observe(&window(
                "checkout",
                t * 10,
                100,
                if bad { 30 } else { 0 },
                if bad { 400.0 } else { 50.0 },
            ));
        }
        let series = s.series();
        assert_eq!(series["checkout"].len(), 30);
        let found = changes(&series);
        let kinds: Vec<_> = found
            .iter()
            .map(|c| (c.signal, c.time.epoch_second()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("error_rate", 100),
                ("p99_ms", 100),
                ("error_rate", 200),
                ("p99_ms", 200)
            ]
        );
    }

    #[test]
    fn long_ranges_widen_buckets_instead_of_growing() {
        let mut s = Signals::new();
        for t in 0..10_000 {
            s.observe(&window("a", t * 10, 10, 1, 5.0));
        }
        let series = s.series();
        assert!(
            series["a"].len() as i64 <= MAX_BUCKETS,
            "{}",
            series["a"].len()
        );
        assert_eq!(series["a"].iter().map(|p| p.calls).sum::<u64>(), 100_000);
        assert!(s.width_ms() > FIRST_WIDTH_MS);
    }

    #[test]
    fn earlier_records_move_the_origin() {
        let mut s = Signals::new();
        s.observe(&window("a", 100, 10, 0, 5.0));
        s.observe(&window("a", 45, 10, 10, 5.0));
        let p = &s.series()["a"];
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].time.epoch_second(), 40);
        assert_eq!(p[0].error_rate, 100.0);
    }

    #[test]
    fn p99_comes_from_the_histogram() {
        let mut c = Cell::default();
        for i in 1..=100 {
            c.add_latency(f64::from(i), 1);
        }
        let p = c.p99().unwrap();
        assert!((99.0..=120.0).contains(&p), "{p}");
    }
}
