//! Detector 2, `seasonal`: the same time in earlier cycles.
//!
//! The period (a day by default) is cut into bins; each bin learns the mean
//! and mean absolute deviation of the points that fall in it, with a gain
//! per *cycle* (about a quarter of the weight goes to the newest cycle
//! whatever the sampling rate), so the profile remembers several days.
//!
//! After one full period the profile is compared with a flat baseline: when
//! subtracting it removes at least half the variance, seasonality is real and
//! the detector becomes active (and stays so). From then on it votes with the
//! tail probability of the point against its bin, and it hands the other
//! detectors the deseasonalised value `x − (bin mean − profile mean)`, so
//! a regular evening peak is not an anomaly for them either. A series without
//! a season never activates it and loses nothing.
//!
//! Memory: `bins` × 24 bytes (3.4 KiB for the default 144 ten-minute bins).

use serde::{Deserialize, Serialize};

use super::holt::MAD_TO_SIGMA;
use super::tail::{Direction, TailModel};

/// Weight of the newest cycle in a bin's statistics.
const CYCLE_GAIN: f64 = 0.25;
/// Points compared before seasonality may be declared (and at least half a period's worth).
const MIN_COMPARED: u32 = 50;
/// Residual variance must fall below this share of the flat variance.
const EXPLAINED: f64 = 0.5;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Bin {
    mean: f64,
    dev: f64,
    n: u32,
}

/// The seasonal profile of one series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Seasonal {
    bins: Vec<Bin>,
    first: Option<i64>,
    last: Option<i64>,
    spacing_ns: f64,
    seen: u32,
    mean_sum: f64,
    filled: u32,
    flat_mean: f64,
    flat_var: f64,
    resid_var: f64,
    compared: u32,
    active: bool,
    tail: TailModel,
}

/// One point's verdict.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeasonalVerdict {
    /// Subtract from the point to deseasonalise it (0 while inactive).
    pub offset: f64,
    /// Tail probability against the bin (1 while inactive).
    pub p: f64,
    /// Seasonality was declared on this point.
    pub activated: bool,
}

impl Seasonal {
    /// A profile of `bins` bins (none when `bins` is 0: the detector is off).
    pub fn new(bins: u32) -> Self {
        Self {
            bins: vec![Bin::default(); bins as usize],
            ..Self::default()
        }
    }

    /// Whether enough of a period has been compared to decide on seasonality
    /// (whichever way it went).
    pub fn settled(&self, period_ns: i64) -> bool {
        let per_period = period_ns as f64 / self.spacing_ns.max(1.0);
        self.active
            || (self.compared >= MIN_COMPARED && f64::from(self.compared) >= per_period / 2.0)
    }

    /// Whether the profile has no bins (the detector is off).
    pub fn disabled(&self) -> bool {
        self.bins.is_empty()
    }

    /// Whether seasonality has been declared.
    pub fn active(&self) -> bool {
        self.active
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.bins.capacity() * std::mem::size_of::<Bin>()
    }

    /// Judges `x` at time `t` (ns) for a period of `period_ns`, then learns.
    pub fn update(
        &mut self,
        t: i64,
        x: f64,
        period_ns: i64,
        floor: f64,
        direction: Direction,
    ) -> SeasonalVerdict {
        let idle = SeasonalVerdict {
            offset: 0.0,
            p: 1.0,
            activated: false,
        };
        if self.bins.is_empty() || period_ns <= 0 {
            return idle;
        }
        let first = *self.first.get_or_insert(t);
        if let Some(last) = self.last {
            let dt = (t - last).max(0) as f64;
            self.spacing_ns = if self.spacing_ns == 0.0 {
                dt
            } else {
                self.spacing_ns + 0.05 * (dt - self.spacing_ns)
            };
        }
        self.last = Some(t);
        let nbins = self.bins.len() as i64;
        let idx = (i128::from(t.rem_euclid(period_ns)) * i128::from(nbins) / i128::from(period_ns))
            as usize;
        let bin = self.bins[idx];
        let mut verdict = idle;
        // The flat baseline and the comparison remember about one period.
        let per_period = (period_ns as f64 / self.spacing_ns.max(1.0)).max(1.0);
        self.seen = self.seen.saturating_add(1);

        if bin.n > 0 && t - first >= period_ns {
            let residual = x - bin.mean;
            // The scale is read before this point can inflate it.
            let sigma = (bin.dev * MAD_TO_SIGMA)
                .max(self.resid_var.sqrt())
                .max(floor);
            let flat = x - self.flat_mean;
            let g = (1.0 / f64::from(self.compared + 1)).max(1.0 / per_period);
            self.resid_var += g * (residual * residual - self.resid_var);
            self.flat_var += g * (flat * flat - self.flat_var);
            self.compared = self.compared.saturating_add(1);
            if !self.active
                && self.compared >= MIN_COMPARED
                && f64::from(self.compared) >= per_period / 2.0
                && self.resid_var < EXPLAINED * self.flat_var
            {
                self.active = true;
                verdict.activated = true;
            }
            if self.active {
                verdict.offset = bin.mean - self.mean_sum / f64::from(self.filled.max(1));
                if bin.n >= 2 {
                    let z = residual / sigma;
                    verdict.p = self.tail.p(z, direction);
                    self.tail.learn(z, direction);
                }
            }
        }

        // Learn.
        self.flat_mean += (1.0 / f64::from(self.seen)).max(1.0 / per_period) * (x - self.flat_mean);
        let per_cycle = (period_ns as f64 / nbins as f64 / self.spacing_ns.max(1.0)).max(1.0);
        let gain = (1.0 / f64::from(bin.n + 1)).max(CYCLE_GAIN / per_cycle);
        let r = x - bin.mean;
        let r = if bin.n >= 2 {
            let lim = 3.0 * (bin.dev * MAD_TO_SIGMA).max(floor);
            r.clamp(-lim, lim)
        } else {
            r
        };
        let b = &mut self.bins[idx];
        let old = b.mean;
        if b.n == 0 {
            b.mean = x;
        } else {
            b.mean += gain * r;
            b.dev += gain * (r.abs() - b.dev);
        }
        if b.n == 0 {
            self.filled += 1;
            self.mean_sum += b.mean;
        } else {
            self.mean_sum += b.mean - old;
        }
        b.n = b.n.saturating_add(1);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000_000;
    const STEP: i64 = 300_000_000_000; // 5 minutes

    fn noise(i: i64) -> f64 {
        crate::actors::predictor::testing::noise(i as u32)
    }

    fn daily(i: i64) -> f64 {
        let phase = (i * STEP % DAY) as f64 / DAY as f64 * std::f64::consts::TAU;
        100.0 + 30.0 * phase.sin() + noise(i)
    }

    #[test]
    fn learns_a_daily_profile_and_deseasonalises() {
        let mut s = Seasonal::new(144);
        let mut activated_at = None;
        for i in 0..(4 * DAY / STEP) {
            let v = s.update(i * STEP, daily(i), DAY, 1e-6, Direction::Both);
            if v.activated {
                activated_at = Some(i);
            }
            if i > 3 * DAY / STEP {
                // The deseasonalised value is near the profile mean.
                assert!((daily(i) - v.offset - 100.0).abs() < 5.0, "point {i}");
                assert!(v.p > 1e-5, "point {i}: p {}", v.p);
            }
        }
        let at = activated_at.expect("seasonality declared");
        assert!(
            at * STEP >= DAY && at * STEP < 2 * DAY,
            "activated at point {at}"
        );
        // The same value at the trough is anomalous.
        let trough = 3 * DAY / 4;
        let v = s.update(5 * DAY + trough, 130.0, DAY, 1e-6, Direction::Both);
        assert!(v.p < 1e-6, "p {}", v.p);
    }

    #[test]
    fn never_activates_without_a_season() {
        let mut s = Seasonal::new(144);
        for i in 0..(4 * DAY / STEP) {
            let v = s.update(i * STEP, 50.0 + noise(i), DAY, 1e-6, Direction::Both);
            assert_eq!(v.offset, 0.0);
            assert_eq!(v.p, 1.0);
        }
        assert!(!s.active());
    }

    #[test]
    fn off_when_no_bins_or_period() {
        let mut s = Seasonal::new(0);
        assert_eq!(s.update(0, 1.0, DAY, 0.0, Direction::Both).p, 1.0);
        let mut s = Seasonal::new(10);
        assert_eq!(s.update(0, 1.0, 0, 0.0, Direction::Both).offset, 0.0);
        assert_eq!(s.heap_bytes(), 10 * 24);
    }
}
