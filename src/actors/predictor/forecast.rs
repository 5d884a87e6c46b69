//! Short-horizon forecasting of SLO breach.
//!
//! A robust damped Holt smoother ([`super::holt`]) follows the raw signal
//! (not the deseasonalised one: the SLO applies to what users see). Its
//! `h`-step forecast is `ℓ + b·(φ + … + φʰ)`; the forecast error of Holt's
//! linear method grows as
//!
//! ```text
//! σ²ₕ = σ² · (1 + α² Σⱼ₌₁ʰ⁻¹ (1 + jβ)²)        (Hyndman et al., class 2)
//! ```
//!
//! so the breach probability within the horizon is the normal tail of the
//! limit at the forecast, taken at the step where it is largest (the next
//! step or the horizon, since the forecast is monotone). The predicted breach
//! time is where the mean forecast crosses the limit, solved in closed form;
//! none when it does not cross within the horizon. Steps are converted to
//! time with the observed spacing of points.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use super::holt::{damped_sum, Holt, HoltParams};

/// Smoothing for forecasting: steadier than the level detector's, so one
/// noisy point does not swing the trend.
pub const PARAMS: HoltParams = HoltParams {
    alpha: 0.3,
    beta: 0.1,
    phi: 0.98,
    gamma: 0.05,
    clip: 4.0,
};

/// Points before a forecast is trusted.
pub const WARMUP: u32 = 20;

/// Forecaster state for one signal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Forecaster {
    holt: Holt,
    last: Option<i64>,
    spacing_ns: f64,
}

/// What the forecast says about one limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Breach {
    /// Probability of exceeding the limit within the horizon.
    pub risk: f64,
    /// When the mean forecast crosses the limit (ns), if within the horizon;
    /// `now` when the level is already above it.
    pub at: Option<i64>,
}

impl Forecaster {
    /// Folds in `x` observed at `t` (ns).
    pub fn update(&mut self, t: i64, x: f64, floor: f64) {
        if let Some(last) = self.last {
            let dt = (t - last).max(0) as f64;
            self.spacing_ns = if self.spacing_ns == 0.0 {
                dt
            } else {
                self.spacing_ns + 0.1 * (dt - self.spacing_ns)
            };
        }
        self.last = Some(t);
        self.holt.update(x, &PARAMS, floor);
    }

    /// Breach of `limit` within `horizon_ns` after `now`.
    pub fn breach(&self, now: i64, limit: f64, horizon_ns: i64, floor: f64) -> Breach {
        let none = Breach {
            risk: 0.0,
            at: None,
        };
        if self.holt.points() < WARMUP || self.spacing_ns <= 0.0 {
            return none;
        }
        let (level, trend, phi) = (self.holt.level(), self.holt.trend(), PARAMS.phi);
        if level >= limit {
            return Breach {
                risk: 1.0,
                at: Some(now),
            };
        }
        let steps = (horizon_ns as f64 / self.spacing_ns).max(1.0);
        let sigma = self.holt.scale().max(floor);
        let risk_at = |h: f64| {
            let mean = self.holt.forecast(h, phi);
            let hm1 = h - 1.0;
            let (a, b) = (PARAMS.alpha, PARAMS.beta);
            let growth = hm1 + b * hm1 * h + b * b * hm1 * h * (2.0 * hm1 + 1.0) / 6.0;
            let sd = sigma * (1.0 + a * a * growth).sqrt();
            Normal::standard().sf((limit - mean) / sd)
        };
        let risk = risk_at(1.0).max(risk_at(steps));
        let at = (trend > 0.0)
            .then(|| {
                let need = (limit - level) / trend;
                let reach = 1.0 - need * (1.0 - phi) / phi;
                (reach > 0.0).then(|| reach.ln() / phi.ln())
            })
            .flatten()
            .filter(|&h| {
                h <= steps && damped_sum(h, phi) * trend + level >= limit - 1e-9 * limit.abs()
            })
            .map(|h| now + (h * self.spacing_ns) as i64);
        Breach { risk, at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000_000;

    #[test]
    fn a_steady_climb_is_forecast_to_cross_before_it_does() {
        let mut f = Forecaster::default();
        // 100 ms rising 5 ms a minute; limit 500 ms is reached at minute 80.
        let mut first_warning = None;
        for i in 0..80i64 {
            let x = 100.0 + 5.0 * i as f64 + if i % 2 == 0 { 2.0 } else { -2.0 };
            f.update(i * MIN, x, 1e-6);
            let b = f.breach(i * MIN, 500.0, 15 * MIN, 1e-6);
            if b.risk >= 0.5 && first_warning.is_none() {
                first_warning = Some((i, b.at.expect("a crossing time")));
            }
        }
        let (i, at) = first_warning.expect("warned");
        assert!((60..=70).contains(&i), "warned at minute {i}");
        let predicted_minute = at as f64 / MIN as f64;
        assert!(
            (predicted_minute - 80.0).abs() < 5.0,
            "predicted minute {predicted_minute}"
        );
    }

    #[test]
    fn a_flat_signal_far_below_the_limit_has_no_risk() {
        let mut f = Forecaster::default();
        for i in 0..200i64 {
            f.update(i * MIN, 100.0 + if i % 2 == 0 { 3.0 } else { -3.0 }, 1e-6);
        }
        let b = f.breach(200 * MIN, 500.0, 15 * MIN, 1e-6);
        assert!(b.risk < 1e-6, "risk {}", b.risk);
        assert_eq!(b.at, None);
    }

    #[test]
    fn already_above_the_limit_is_certain() {
        let mut f = Forecaster::default();
        for i in 0..30i64 {
            f.update(i * MIN, 600.0, 1e-6);
        }
        let b = f.breach(30 * MIN, 500.0, 15 * MIN, 1e-6);
        assert_eq!(b.risk, 1.0);
        assert_eq!(b.at, Some(30 * MIN));
    }
}
