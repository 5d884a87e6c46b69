//! `faultline detect` and `faultline eval-detect`: the predictor's detector
//! ensemble on a single metric series.

pub mod eval;
pub mod synth;
