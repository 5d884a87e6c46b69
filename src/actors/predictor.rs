//! The predictor agent: streaming anomaly detection and SLO-breach
//! forecasting per service signal.
//!
//! * [`tail`]: p-values, surprise and the shared score scale.
//! * [`holt`]: robust damped local-trend smoothing (used twice).
//! * Detectors, each O(1) per point: [`level`], [`seasonal`],
//!   [`changepoint`], [`shift`]; merged by [`combine`] in [`ensemble`].
//! * [`forecast`]: damped-trend forecast of SLO breach.
//! * [`signal`]: observations to points, per service, instance and version.
//! * [`alarm`]: hysteresis, so decisions come on crossings only.
//! * [`config`]: `[predictor]` in the policy file.
//! * [`core`]: the agent.

pub mod alarm;
pub mod changepoint;
pub mod combine;
pub mod config;
pub mod core;
pub mod ensemble;
pub mod forecast;
pub mod holt;
pub mod level;
pub mod seasonal;
pub mod shift;
pub mod signal;
pub mod tail;

pub use self::core::{PredictorAgent, NAME};

/// Deterministic pseudo-noise for the detectors' tests.
#[cfg(test)]
pub(crate) mod testing {
    /// Uniform-ish in [−1, 1], a pure function of `i`.
    pub fn noise(i: u32) -> f64 {
        f64::from((i.wrapping_mul(2_654_435_761) >> 16) % 2001) / 1000.0 - 1.0
    }
}
