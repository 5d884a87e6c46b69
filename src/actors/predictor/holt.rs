//! Robust damped local-trend smoothing: Holt's linear method with Gardner and
//! McKenzie's damped trend, in error-correction form, with Huber-clipped
//! updates.
//!
//! ```text
//! forecast  x̂ₜ   = ℓₜ₋₁ + φ·bₜ₋₁
//! error     eₜ   = clip(xₜ − x̂ₜ, ±c·σ)          (Huber: one outlier moves the
//! level     ℓₜ   = x̂ₜ + α·eₜ                     state by at most α·c·σ)
//! trend     bₜ   = φ·bₜ₋₁ + α·β·eₜ
//! scale     σₜ   = σₜ₋₁ + γ·(1.2533·|eₜ| − σₜ₋₁)  (mean absolute error → σ)
//! ```
//!
//! Both the level detector (one-step residuals) and the breach forecaster
//! (h-step extrapolation) use it. Every update is O(1); the state is four
//! numbers. The first points use running means (`1/n` gains) so the state does
//! not depend on an arbitrary initial value.

use serde::{Deserialize, Serialize};

/// √(π/2): turns a mean absolute deviation of Gaussian noise into σ.
pub const MAD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;

/// Points before residuals are clipped (the scale is meaningless before).
const UNCLIPPED_POINTS: u32 = 5;

/// Smoothing constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HoltParams {
    /// Level gain α.
    pub alpha: f64,
    /// Trend gain β (the trend moves by α·β·e).
    pub beta: f64,
    /// Damping φ (1 = undamped).
    pub phi: f64,
    /// Scale gain γ.
    pub gamma: f64,
    /// Huber clip c, in scales.
    pub clip: f64,
}

/// State of one smoothed series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Holt {
    n: u32,
    level: f64,
    trend: f64,
    scale: f64,
}

/// What one update saw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// The one-step forecast the point was compared with.
    pub predicted: f64,
    /// `x − predicted`, unclipped.
    pub residual: f64,
    /// The scale before the update, never below the floor.
    pub scale: f64,
}

impl Holt {
    /// Points seen.
    pub fn points(&self) -> u32 {
        self.n
    }

    /// Current level ℓ.
    pub fn level(&self) -> f64 {
        self.level
    }

    /// Current trend b, per step.
    pub fn trend(&self) -> f64 {
        self.trend
    }

    /// Current one-step error scale σ (not floored).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Forecast `h` steps ahead: ℓ + b·(φ + φ² + … + φʰ).
    pub fn forecast(&self, h: f64, phi: f64) -> f64 {
        self.level + self.trend * damped_sum(h, phi)
    }

    /// Folds in `x`; `floor` bounds the scale from below (a constant series
    /// would otherwise make every change infinitely surprising).
    pub fn update(&mut self, x: f64, p: &HoltParams, floor: f64) -> Step {
        if self.n == 0 {
            self.n = 1;
            self.level = x;
            return Step {
                predicted: x,
                residual: 0.0,
                scale: floor,
            };
        }
        self.n = self.n.saturating_add(1);
        let predicted = self.level + p.phi * self.trend;
        let residual = x - predicted;
        let scale = self.scale.max(floor);
        let e = if self.n > UNCLIPPED_POINTS {
            residual.clamp(-p.clip * scale, p.clip * scale)
        } else {
            residual
        };
        let warm = 1.0 / f64::from(self.n);
        let alpha = p.alpha.max(warm);
        let gamma = p.gamma.max(warm);
        self.level = predicted + alpha * e;
        self.trend = p.phi * self.trend + alpha * p.beta * e;
        self.scale += gamma * (MAD_TO_SIGMA * e.abs() - self.scale);
        Step {
            predicted,
            residual,
            scale,
        }
    }
}

/// φ + φ² + … + φʰ for real `h ≥ 0` (`h` when φ = 1).
pub fn damped_sum(h: f64, phi: f64) -> f64 {
    if (phi - 1.0).abs() < 1e-12 {
        h
    } else {
        phi * (1.0 - phi.powf(h)) / (1.0 - phi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: HoltParams = HoltParams {
        alpha: 0.2,
        beta: 0.1,
        phi: 0.98,
        gamma: 0.05,
        clip: 3.0,
    };

    #[test]
    fn follows_a_line_without_lag_when_undamped() {
        let p = HoltParams { phi: 1.0, ..P };
        let mut h = Holt::default();
        let mut last = Step {
            predicted: 0.0,
            residual: 0.0,
            scale: 0.0,
        };
        for i in 0..400 {
            last = h.update(10.0 + 0.5 * f64::from(i), &p, 1e-9);
        }
        assert!(last.residual.abs() < 0.05, "residual {}", last.residual);
        assert!((h.trend() - 0.5).abs() < 0.05, "trend {}", h.trend());
    }

    #[test]
    fn one_outlier_moves_the_level_by_at_most_alpha_clip_scale() {
        let mut h = Holt::default();
        for i in 0..200 {
            h.update(if i % 2 == 0 { 99.0 } else { 101.0 }, &P, 1e-9);
        }
        let before = h.level();
        let s = h.update(1e6, &P, 1e-9);
        assert!(s.residual > 9e5);
        assert!((h.level() - before).abs() <= P.alpha * P.clip * s.scale + 1.0);
    }

    #[test]
    fn scale_estimates_gaussian_sigma_from_mean_absolute_error() {
        // Alternating ±1 around 0 has |e| ≈ 1 once the level settles.
        let mut h = Holt::default();
        for i in 0..2000 {
            h.update(if i % 2 == 0 { 1.0 } else { -1.0 }, &P, 1e-9);
        }
        assert!(
            (h.scale() - 1.1 * MAD_TO_SIGMA).abs() < 0.3,
            "{}",
            h.scale()
        );
    }

    #[test]
    fn floor_bounds_the_scale_of_a_constant_series() {
        let mut h = Holt::default();
        for _ in 0..50 {
            h.update(5.0, &P, 0.5);
        }
        let s = h.update(6.0, &P, 0.5);
        assert_eq!(s.scale, 0.5);
        assert_eq!(s.residual, 1.0);
    }

    #[test]
    fn damped_forecast_levels_off() {
        assert_eq!(damped_sum(10.0, 1.0), 10.0);
        let far = damped_sum(1e6, 0.9);
        assert!((far - 9.0).abs() < 1e-9);
        assert!((damped_sum(1.0, 0.9) - 0.9).abs() < 1e-12);
    }
}
