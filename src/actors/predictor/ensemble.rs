//! The detector ensemble for one series: what `faultline detect` runs on a
//! CSV column and what the predictor runs on every service signal.
//!
//! Per point, in order:
//!
//! 1. [`seasonal`](super::seasonal) judges the point against the same time in
//!    earlier cycles and, once seasonality is established, deseasonalises it
//!    (the other detectors restart at that moment, since the series they
//!    watch changed meaning);
//! 2. [`level`](super::level) judges the deseasonalised point against the
//!    robust local forecast;
//! 3. [`changepoint`](super::changepoint) accumulates sustained deviation from
//!    a slow flat reference (until seasonality is settled, about 1.5
//!    periods, only while the series is flat: before a daily rise has been
//!    seen once, it cannot be told from a ramp);
//! 4. [`shift`](super::shift) compares the recent residual distribution with
//!    the reference one;
//! 5. [`combine`](super::combine) merges the votes and applies the
//!    persistence-rewarding, self-calibrating post-processing.
//!
//! Everything is O(1) per point; the state is a few hundred bytes plus the
//! seasonal profile. No alarms (score 0) until `warmup_points` points.

use serde::{Deserialize, Serialize};

use super::changepoint::Cusum;
use super::combine::{harmonic_mean_p, Likelihood, NAMES};
use super::level::Level;
use super::seasonal::Seasonal;
use super::shift::Shift;
use super::tail::{self, surprise, Direction};

/// Largest spread around the flat reference, in units of point-to-point
/// noise, at which the changepoint detector is armed before seasonality is
/// settled.
const WANDER_LIMIT: f64 = 2.0;

/// Ensemble settings shared by all series (`[predictor.detector]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectorConfig {
    /// Season length in nanoseconds; 0 turns the seasonal detector off.
    pub season_period_ns: i64,
    /// Bins per season.
    pub season_bins: u32,
    /// Points before any score is reported.
    pub warmup_points: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            season_period_ns: 86_400 * 1_000_000_000,
            season_bins: 144,
            warmup_points: 200,
        }
    }
}

/// What kind of series it is: which way is bad, and the smallest change
/// that is meaningful (so a flat series does not make noise of rounding).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SignalParams {
    /// Which deviations count.
    pub direction: Direction,
    /// Smallest scale, in the series' unit.
    pub min_abs: f64,
    /// Smallest scale, as a fraction of the level.
    pub min_rel: f64,
}

/// For a metric nothing is known about (`faultline detect`).
pub const GENERIC: SignalParams = SignalParams {
    direction: Direction::Both,
    min_abs: 1e-9,
    min_rel: 1e-3,
};

/// The verdict on one point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Assessment {
    /// Anomaly score in [0, 1].
    pub score: f64,
    /// Each detector's own score in [0, 1], in [`NAMES`] order (0 when abstaining).
    pub detectors: [f64; 4],
    /// What the baseline expected, in the series' unit.
    pub expected: f64,
    /// The point.
    pub observed: f64,
    /// The point's distance from the expectation in units of noise (σ).
    pub z: f64,
}

impl Assessment {
    /// Detector names with their scores.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        NAMES.iter().copied().zip(self.detectors)
    }
}

/// Detector state for one series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ensemble {
    n: u32,
    first: Option<i64>,
    seasonal: Seasonal,
    level: Level,
    cusum: Cusum,
    shift: Shift,
    likelihood: Likelihood,
}

impl Ensemble {
    /// A fresh ensemble.
    pub fn new(config: &DetectorConfig) -> Self {
        let bins = if config.season_period_ns > 0 {
            config.season_bins
        } else {
            0
        };
        Self {
            seasonal: Seasonal::new(bins),
            ..Self::default()
        }
    }

    /// Points seen.
    pub fn points(&self) -> u32 {
        self.n
    }

    /// Bytes held, including the heap.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.seasonal.heap_bytes() + self.shift.heap_bytes()
    }

    /// Judges `x` observed at `t` (ns since the epoch), then learns from it.
    pub fn update(
        &mut self,
        t: i64,
        x: f64,
        config: &DetectorConfig,
        signal: &SignalParams,
    ) -> Assessment {
        self.n = self.n.saturating_add(1);
        let first = *self.first.get_or_insert(t);
        let dir = signal.direction;
        let reference = if self.level.warm() {
            self.level.level()
        } else {
            x
        };
        let floor = signal.min_abs.max(signal.min_rel * reference.abs());

        let seasonal = self
            .seasonal
            .update(t, x, config.season_period_ns, floor, dir);
        if seasonal.activated {
            self.level.restart();
            self.cusum.reset();
            self.shift.reset();
        }
        let y = x - seasonal.offset;
        let level_warm = self.level.warm();
        let level = self.level.update(y, floor, dir);
        // Until the seasonal question is settled, a daily rise cannot be told
        // from a ramp. The changepoint detector is armed before that only
        // once a quarter of a period has been seen and while the series stays
        // flat (its spread around the slow reference within twice its
        // point-to-point noise): a series that wanders, seasonally or
        // otherwise, waits for the verdict.
        let settled = config.season_period_ns <= 0
            || self.seasonal.disabled()
            || self.seasonal.settled(config.season_period_ns);
        let flat = level_warm
            && 4 * (t - first) >= config.season_period_ns
            && self.cusum.flat_sigma() <= WANDER_LIMIT * self.level.scale().max(floor);
        let armed = settled || flat;
        let cusum_p = self.cusum.update(y, floor, dir, armed);
        let shift_p = if level_warm {
            self.shift.update(level.residual, floor, dir)
        } else {
            1.0
        };

        let votes = [
            level_warm.then_some(level.p),
            self.seasonal.active().then_some(seasonal.p),
            (armed && self.cusum.warm()).then_some(cusum_p),
            self.shift.warm().then_some(shift_p),
        ];
        let evidence = self.likelihood.update(surprise(harmonic_mean_p(&votes)));
        let warm = self.n > config.warmup_points;
        let mut detectors = [0.0; 4];
        if warm {
            for (d, v) in detectors.iter_mut().zip(votes) {
                *d = v.map_or(0.0, |p| tail::score(surprise(p)));
            }
        }
        Assessment {
            score: if warm { tail::score(evidence) } else { 0.0 },
            detectors,
            expected: level.expected + seasonal.offset,
            observed: x,
            z: level.z,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::predictor::testing::noise;

    const MIN: i64 = 60_000_000_000;

    fn run(series: impl Iterator<Item = f64>) -> Vec<f64> {
        let config = DetectorConfig::default();
        let mut e = Ensemble::new(&config);
        series
            .enumerate()
            .map(|(i, x)| e.update(i as i64 * 5 * MIN, x, &config, &GENERIC).score)
            .collect()
    }

    #[test]
    fn silent_during_warmup_and_on_clean_noise() {
        let scores = run((0..3000).map(|i| 50.0 + noise(i)));
        assert!(scores[..30].iter().all(|&s| s == 0.0));
        let max = scores.iter().copied().fold(0.0, f64::max);
        assert!(max < 0.5, "max score on noise {max}");
    }

    #[test]
    fn a_level_shift_alarms_quickly() {
        let scores = run((0..1500).map(|i| if i < 1000 { 50.0 } else { 56.0 } + noise(i)));
        let first = scores.iter().position(|&s| s >= 0.5).expect("alarm");
        assert!((1000..1005).contains(&first), "first alarm at {first}");
    }

    #[test]
    fn memory_is_bounded() {
        let config = DetectorConfig::default();
        let mut e = Ensemble::new(&config);
        for i in 0..5000u32 {
            e.update(i64::from(i) * MIN, noise(i), &config, &GENERIC);
        }
        assert!(e.memory_bytes() < 16 * 1024, "{} bytes", e.memory_bytes());
    }
}
