//! Detector 3, `changepoint`: Page's CUSUM for sustained level shifts and
//! ramps.
//!
//! Points are standardised against a slow, robust, flat reference (mean and
//! mean absolute deviation with gain 1/200, Huber-clipped) and accumulated:
//!
//! ```text
//! S⁺ₜ = max(0, S⁺ₜ₋₁ + zₜ − k)      S⁻ₜ = max(0, S⁻ₜ₋₁ − zₜ − k)
//! ```
//!
//! Autocorrelated noise makes runs of same-signed deviations common, which a
//! plain CUSUM mistakes for shifts; so `z` is first scaled by
//! `√((1 − ρ)/(1 + ρ))`, the long-run standard deviation of an AR(1) with
//! lag-1 autocorrelation ρ (estimated online), which restores the nominal
//! false-alarm rate.
//!
//! With `k = 0.5` the statistic is tuned to shifts of about one σ. Each `z` is
//! clipped to ±4 before it is added, so one spike cannot trip it: it answers
//! "has the level moved and stayed moved", which the level detector (which
//! follows the local trend) cannot. Under no change the stationary tail is
//! approximately `P(S > s) ≈ e^{−2ks}` (the random-walk approximation with
//! drift −k and unit variance), which is the p-value it reports. `S` is capped
//! so that after a shift has been absorbed into the reference the detector
//! calms down within a bounded number of points.

use serde::{Deserialize, Serialize};

use super::holt::MAD_TO_SIGMA;
use super::tail::{Direction, MIN_P};

/// Allowance k, in σ.
const K: f64 = 0.5;
/// Largest accumulated statistic.
const CAP: f64 = 24.0;
/// Largest single contribution, in σ.
const Z_CLIP: f64 = 4.0;
/// Gain of the reference mean and scale (about 200 points of memory).
const GAIN: f64 = 0.005;
/// Gain of the autocorrelation estimate (slower still, so that a ramp in
/// progress does not pass for autocorrelated noise).
const RHO_GAIN: f64 = 0.002;
/// Points before the reference is trusted.
pub const WARMUP: u32 = 30;

/// CUSUM state of one series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cusum {
    n: u32,
    mean: f64,
    dev: f64,
    up: f64,
    down: f64,
    last_z: f64,
    lag1: f64,
    var: f64,
}

impl Cusum {
    /// Whether it has seen enough points to vote.
    pub fn warm(&self) -> bool {
        self.n >= WARMUP
    }

    /// The accumulated statistic in `direction`.
    pub fn statistic(&self, direction: Direction) -> f64 {
        match direction {
            Direction::Up => self.up,
            Direction::Down => self.down,
            Direction::Both => self.up.max(self.down),
        }
    }

    /// σ of deviations from the flat reference.
    pub fn flat_sigma(&self) -> f64 {
        self.dev * MAD_TO_SIGMA
    }

    /// Folds in `y`; returns the p-value of the statistic (1 while warming
    /// up). With `armed` false the reference still learns but the statistic
    /// is held at zero, so nothing accumulated while disarmed fires later.
    pub fn update(&mut self, y: f64, floor: f64, direction: Direction, armed: bool) -> f64 {
        self.n = self.n.saturating_add(1);
        if self.n == 1 {
            self.mean = y;
            return 1.0;
        }
        let sigma = (self.dev * MAD_TO_SIGMA).max(floor);
        let r = y - self.mean;
        let warm = self.n > WARMUP;
        let gain = GAIN.max(1.0 / f64::from(self.n));
        let z = (r / sigma).clamp(-Z_CLIP, Z_CLIP);
        // Lag-1 autocorrelation of the standardised deviations.
        let rho_gain = RHO_GAIN.max(1.0 / f64::from(self.n));
        self.lag1 += rho_gain * (z * self.last_z - self.lag1);
        self.var += rho_gain * (z * z - self.var);
        self.last_z = z;
        if !armed {
            self.up = 0.0;
            self.down = 0.0;
        } else if warm {
            let rho = (self.lag1 / self.var.max(1e-12)).clamp(0.0, 0.9);
            let z = z * ((1.0 - rho) / (1.0 + rho)).sqrt();
            self.up = (self.up + z - K).clamp(0.0, CAP);
            self.down = (self.down - z - K).clamp(0.0, CAP);
        }
        let rc = if warm {
            r.clamp(-3.0 * sigma, 3.0 * sigma)
        } else {
            r
        };
        self.mean += gain * rc;
        self.dev += gain * (rc.abs() - self.dev);
        if !warm || !armed {
            return 1.0;
        }
        let tails = if direction == Direction::Both {
            2.0
        } else {
            1.0
        };
        (tails * (-2.0 * K * self.statistic(direction)).exp()).clamp(MIN_P, 1.0)
    }

    /// Starts over (after the series it watches changed meaning).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::predictor::testing::noise;

    #[test]
    fn a_sustained_shift_accumulates_a_single_spike_does_not() {
        let mut c = Cusum::default();
        for i in 0..500 {
            assert!(
                c.update(10.0 + noise(i), 1e-9, Direction::Both, true) > 1e-3,
                "point {i}"
            );
        }
        // One spike of 50σ adds at most Z_CLIP − K.
        let p = c.update(40.0, 1e-9, Direction::Both, true);
        assert!(p > (-2.0 * K * (Z_CLIP - K + 1.0)).exp(), "spike p {p}");
        for i in 0..10 {
            c.update(10.0 + noise(i), 1e-9, Direction::Both, true);
        }
        // A shift of 2σ (σ ≈ 0.72 for this noise) for 20 points.
        let mut p = 1.0;
        for i in 0..20 {
            p = c.update(11.5 + noise(i), 1e-9, Direction::Both, true);
        }
        assert!(p < 1e-6, "shift p {p}");
    }

    #[test]
    fn one_sided_ignores_the_other_way() {
        let mut c = Cusum::default();
        for i in 0..200 {
            c.update(10.0 + noise(i), 1e-9, Direction::Up, true);
        }
        let mut p = 0.0;
        for i in 0..30 {
            p = c.update(7.0 + noise(i), 1e-9, Direction::Up, true);
        }
        assert_eq!(p, 1.0);
        assert!(c.statistic(Direction::Down) > 10.0);
    }

    #[test]
    fn calms_down_after_the_reference_absorbs_a_shift() {
        let mut c = Cusum::default();
        for i in 0..200 {
            c.update(noise(i), 1e-9, Direction::Both, true);
        }
        let mut last = 0.0;
        for i in 0..3000 {
            last = c.update(5.0 + noise(i), 1e-9, Direction::Both, true);
        }
        assert!(last > 0.1, "p {last}");
        c.reset();
        assert!(!c.warm());
    }
}
