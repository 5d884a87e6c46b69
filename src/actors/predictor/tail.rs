//! Tail probabilities and the surprise scale every detector reports on.
//!
//! Detectors speak in p-values: how likely a point at least this unusual is
//! under the detector's model of normal. `surprise = −log10 p` turns them into
//! an additive, readable scale (3 = one in a thousand), capped at
//! [`MAX_SURPRISE`]; `score = surprise / SCORE_SCALE` maps it onto [0, 1], so a
//! score of 0.5 means "one in 100 000" and 1 means "one in 10¹⁰ or rarer".
//! CDFs come from statrs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

/// Smallest p-value reported; rarer is not more informative.
pub const MIN_P: f64 = 1e-12;
/// `−log10(MIN_P)`.
pub const MAX_SURPRISE: f64 = 12.0;
/// Surprise that maps to a score of 1.
pub const SCORE_SCALE: f64 = 10.0;

/// Which deviations count as unusual.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Only increases (error rate, latency: a drop is good news).
    Up,
    /// Only decreases.
    Down,
    /// Both (throughput, an unknown metric).
    #[default]
    Both,
}

impl Direction {
    /// The part of `z` that points the way that matters (0 otherwise), with
    /// the number of tails tested.
    fn oriented(self, z: f64) -> (f64, f64) {
        match self {
            Self::Up => (z.max(0.0), 1.0),
            Self::Down => ((-z).max(0.0), 1.0),
            Self::Both => (z.abs(), 2.0),
        }
    }

    /// Whether a signed deviation points the way that matters.
    pub fn counts(self, deviation: f64) -> bool {
        match self {
            Self::Up => deviation > 0.0,
            Self::Down => deviation < 0.0,
            Self::Both => deviation != 0.0,
        }
    }
}

/// Tail probability of a standard normal `z` in `direction`.
pub fn normal_p(z: f64, direction: Direction) -> f64 {
    let (z, tails) = direction.oriented(z);
    if z == 0.0 {
        return 1.0;
    }
    (tails * Normal::standard().sf(z)).clamp(MIN_P, 1.0)
}

/// `−log10 p`, in [0, MAX_SURPRISE].
pub fn surprise(p: f64) -> f64 {
    if p.is_nan() {
        return 0.0;
    }
    (-p.clamp(MIN_P, 1.0).log10()).clamp(0.0, MAX_SURPRISE)
}

/// A surprise mapped onto [0, 1].
pub fn score(surprise: f64) -> f64 {
    if surprise.is_nan() {
        return 0.0;
    }
    (surprise / SCORE_SCALE).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tails_match_tables() {
        assert!((normal_p(1.959_964, Direction::Both) - 0.05).abs() < 1e-6);
        assert!((normal_p(1.644_854, Direction::Up) - 0.05).abs() < 1e-6);
        assert_eq!(normal_p(-3.0, Direction::Up), 1.0);
        assert!((normal_p(-3.0, Direction::Down) - 0.001_349_9).abs() < 1e-6);
        assert_eq!(normal_p(100.0, Direction::Both), MIN_P);
    }

    #[test]
    fn surprise_and_score_are_bounded() {
        assert_eq!(surprise(1.0), 0.0);
        assert!((surprise(1e-3) - 3.0).abs() < 1e-12);
        assert_eq!(surprise(0.0), MAX_SURPRISE);
        assert_eq!(surprise(f64::NAN), 0.0);
        assert_eq!(score(MAX_SURPRISE), 1.0);
        assert_eq!(score(5.0), 0.5);
        assert_eq!(score(-1.0), 0.0);
    }
}
