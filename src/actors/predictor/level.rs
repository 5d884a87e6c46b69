//! Detector 1, `level`: how far a point is from the robust local forecast.
//!
//! A robust damped Holt smoother ([`super::holt`]) predicts each point from
//! the ones before; the standardised one-step residual `z = (x − x̂)/σ` gives a
//! normal tail probability. Following the local trend keeps smooth movements
//! (a daily ramp-up the seasonal profile has not learned yet) from looking
//! anomalous, while a spike or an abrupt shift leaves a large residual.
//! Huber-clipped updates keep one outlier from dragging the baseline, and the
//! clipped residual scale makes σ robust the way the MAD is. The tail
//! probability comes from a [`TailModel`] that learns how heavy this
//! series' tails are.

use serde::{Deserialize, Serialize};

use super::holt::{Holt, HoltParams};
use super::tail::{Direction, TailModel};

/// Smoothing for the level detector: quick enough to follow a diurnal curve
/// sampled every 5 minutes, slow enough that a shift stays visible for a few
/// points (with the clip, the level closes at most α·c·σ = 0.6σ per point).
pub const PARAMS: HoltParams = HoltParams {
    alpha: 0.2,
    beta: 0.1,
    phi: 0.95,
    gamma: 0.01,
    clip: 3.0,
};

/// Points before the detector votes.
pub const WARMUP: u32 = 10;

/// The level detector's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Level {
    holt: Holt,
    tail: TailModel,
}

/// One point's verdict.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LevelVerdict {
    /// What the baseline expected.
    pub expected: f64,
    /// Standardised residual (0 while warming up).
    pub z: f64,
    /// Unstandardised one-step residual.
    pub residual: f64,
    /// Tail probability (1 while warming up).
    pub p: f64,
}

impl Level {
    /// Whether it has seen enough points to vote.
    pub fn warm(&self) -> bool {
        self.holt.points() >= WARMUP
    }

    /// The noise scale σ of one-step residuals.
    pub fn scale(&self) -> f64 {
        self.holt.scale()
    }

    /// The current level.
    pub fn level(&self) -> f64 {
        self.holt.level()
    }

    /// Forgets the baseline (the series changed meaning) but keeps what it
    /// learned about the noise's tails.
    pub fn restart(&mut self) {
        self.holt = Holt::default();
    }

    /// Judges `x`, then learns from it.
    pub fn update(&mut self, x: f64, floor: f64, direction: Direction) -> LevelVerdict {
        let warm = self.warm();
        let step = self.holt.update(x, &PARAMS, floor);
        if !warm {
            return LevelVerdict {
                expected: step.predicted,
                z: 0.0,
                residual: step.residual,
                p: 1.0,
            };
        }
        let z = step.residual / step.scale;
        let p = self.tail.p(z, direction);
        self.tail.learn(z, direction);
        LevelVerdict {
            expected: step.predicted,
            z,
            residual: step.residual,
            p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::predictor::testing::noise as noisy;

    #[test]
    fn quiet_until_warm_then_flags_a_spike() {
        let mut d = Level::default();
        for i in 0..WARMUP {
            assert_eq!(d.update(100.0 + noisy(i), 1e-6, Direction::Both).p, 1.0);
        }
        for i in WARMUP..300 {
            let v = d.update(100.0 + noisy(i), 1e-6, Direction::Both);
            assert!(v.p > 1e-4, "point {i}: p {}", v.p);
        }
        let v = d.update(120.0, 1e-6, Direction::Both);
        assert!(v.p < 1e-9, "spike p {}", v.p);
        assert!((v.expected - 100.0).abs() < 1.0);
    }

    #[test]
    fn direction_ignores_good_news() {
        let mut d = Level::default();
        for i in 0..200 {
            d.update(10.0 + noisy(i), 1e-6, Direction::Up);
        }
        assert_eq!(d.update(-50.0, 1e-6, Direction::Up).p, 1.0);
        assert!(d.update(80.0, 1e-6, Direction::Up).p < 1e-9);
    }

    #[test]
    fn a_smooth_curve_is_not_anomalous() {
        // A daily sine sampled every 5 minutes, amplitude 10σ of the noise.
        let mut d = Level::default();
        let mut min_p: f64 = 1.0;
        for i in 0..2000u32 {
            let phase = f64::from(i) / 288.0 * std::f64::consts::TAU;
            let v = d.update(100.0 + 10.0 * phase.sin() + noisy(i), 1e-6, Direction::Both);
            if i > 300 {
                min_p = min_p.min(v.p);
            }
        }
        assert!(min_p > 1e-4, "min p {min_p}");
    }
}
