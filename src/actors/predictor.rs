//! The predictor agent: streaming anomaly detection and SLO-breach
//! forecasting per service signal.
//!
//! * [`tail`]: p-values, surprise and the shared score scale.
//! * [`holt`]: robust damped local-trend smoothing (used twice).
//! * Detectors, each O(1) per point: [`level`], [`seasonal`],
//!   [`changepoint`], [`shift`]; merged by [`combine`] in [`ensemble`].

pub mod alarm;
pub mod changepoint;
pub mod combine;
pub mod config;
pub mod ensemble;
pub mod holt;
pub mod level;
pub mod seasonal;
pub mod shift;
pub mod tail;
