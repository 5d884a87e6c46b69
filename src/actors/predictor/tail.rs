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
    (-p.clamp(MIN_P, 1.0).log10()).clamp(0.0, MAX_SURPRISE) + 0.0
}

/// A surprise mapped onto [0, 1].
pub fn score(surprise: f64) -> f64 {
    if surprise.is_nan() {
        return 0.0;
    }
    (surprise / SCORE_SCALE).clamp(0.0, 1.0) + 0.0
}

/// Where the tail model starts: exceedances of 3σ.
const TAIL_AT: f64 = 3.0;
/// Weight of the Gaussian prior on the exceedance rate, in points.
const PRIOR_POINTS: f64 = 200.0;
/// Weight of the Gaussian prior on the mean excess, in exceedances: light,
/// because the predictive tail already allows for how little is known.
pub const PRIOR_EXCEEDANCES: f64 = 10.0;
/// Memory of the exceedance rate, in points, and of the mean excess, in exceedances.
const RATE_MEMORY: f64 = 2000.0;
const EXCESS_MEMORY: f64 = 200.0;
/// Points rarer than this under the current model are not learned from.
pub const LEARN_P: f64 = 1e-6;
/// Weight of an anomalous point in the excess estimates: a spike teaches the
/// tail about as much as a tenth of an ordinary exceedance, so a second
/// spike a few hours later still pages, while a blip that recurs every day
/// for weeks is eventually learned as normal.
const ANOMALY_WEIGHT: f64 = 0.1;
/// E[Z − 3 | Z > 3] for a standard normal.
const GAUSSIAN_EXCESS: f64 = 0.283;

/// How heavy a series' tails really are: a peaks-over-threshold model of
/// standardised residuals beyond 3σ, as in SPOT (Siffer et al., KDD 2017).
///
/// Excesses over 3σ follow a generalised Pareto distribution whose shape ξ
/// and scale s are fitted by the method of moments from the running mean
/// and second moment of the excesses (ξ = ½(1 − m²/v), s = ½m(1 + m²/v),
/// ξ clamped to [0, ½]): `p(z) = max(p_normal(z), rate · tail(z − 3))`.
///
/// When the fit says the tail is exponential (ξ = 0) its scale is still an
/// estimate from few exceedances, so the tail is the *predictive* one: with
/// the exponential rate uncertain (a Gamma posterior resting on `n`
/// exceedances, prior included) excesses follow a Lomax distribution,
/// `tail(x) = (1 + x/(n·s))^(−n)`. It is heavier than the plug-in
/// exponential while little has been seen and tends to it as evidence
/// grows, so a young heavy-tailed series does not page for its first 10σ
/// blip while a long-watched Gaussian one keeps its sensitivity.
///
/// The model starts at Gaussian-like values (rate 0.27 %, excess of mean
/// 0.283, worth [`PRIOR_EXCEEDANCES`] exceedances) and learns from the series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TailModel {
    points: u32,
    exceedances: u32,
    rate: f64,
    excess: f64,
    excess_sq: f64,
}

impl TailModel {
    fn prior_rate(direction: Direction) -> f64 {
        let tails = if direction == Direction::Both {
            2.0
        } else {
            1.0
        };
        tails * Normal::standard().sf(TAIL_AT)
    }

    fn estimates(&self, direction: Direction) -> (f64, f64, f64) {
        if self.points == 0 {
            let m = GAUSSIAN_EXCESS;
            (Self::prior_rate(direction), m, 2.0 * m * m)
        } else {
            (self.rate, self.excess, self.excess_sq)
        }
    }

    /// Exceedances the excess estimates rest on, prior included.
    fn evidence(&self) -> f64 {
        (PRIOR_EXCEEDANCES + f64::from(self.exceedances)).min(EXCESS_MEMORY)
    }

    /// Generalised Pareto shape and scale of the excesses.
    fn gpd(m: f64, m2: f64) -> (f64, f64) {
        let var = (m2 - m * m).max(1e-12);
        let ratio = m * m / var;
        let shape = (0.5 * (1.0 - ratio)).clamp(0.0, 0.5);
        let scale = if shape < 1e-3 {
            m
        } else {
            0.5 * m * (1.0 + ratio)
        };
        (shape, scale)
    }

    /// Tail probability of `z` under the learned tail.
    pub fn p(&self, z: f64, direction: Direction) -> f64 {
        let (oriented, _) = direction.oriented(z);
        let gaussian = normal_p(z, direction);
        let (rate, m, m2) = self.estimates(direction);
        let (shape, scale) = Self::gpd(m, m2);
        let x = oriented - TAIL_AT;
        let n = self.evidence();
        let tail = if x < 0.0 {
            rate * (-x / scale).exp()
        } else if shape < 1e-3 {
            rate * (1.0 + x / (n * scale)).powf(-n)
        } else {
            rate * (1.0 + shape * x / scale).powf(-1.0 / shape)
        };
        gaussian.max(tail.min(1.0)).clamp(MIN_P, 1.0)
    }

    /// The excess over 3σ at which the learned tail reaches `p`.
    fn excess_at(&self, p: f64, direction: Direction) -> f64 {
        let (rate, m, m2) = self.estimates(direction);
        let (shape, scale) = Self::gpd(m, m2);
        let odds = (rate / p).max(1.0);
        if shape < 1e-3 {
            let n = self.evidence();
            n * scale * (odds.powf(1.0 / n) - 1.0)
        } else {
            scale / shape * (odds.powf(shape) - 1.0)
        }
    }

    /// Learns from one standardised residual. A point the model calls
    /// anomalous (p below [`LEARN_P`]) is learned as if it sat at that
    /// quantile and at [`ANOMALY_WEIGHT`]: one anomaly does not teach the
    /// model that anomalies are normal (as SPOT keeps them out of its peaks),
    /// yet a blip that recurs every day widens the tail a little each time
    /// until it is no longer news. Heavy tails are learned from the bottom up
    /// the same way.
    pub fn learn(&mut self, z: f64, direction: Direction) {
        let cap = TAIL_AT + self.excess_at(LEARN_P, direction);
        let (rate, m, m2) = self.estimates(direction);
        let (oriented, _) = direction.oriented(z);
        self.points = self.points.saturating_add(1);
        let g = (1.0 / (PRIOR_POINTS + f64::from(self.points))).max(1.0 / RATE_MEMORY);
        let hit = oriented > TAIL_AT;
        self.rate = rate + g * (f64::from(u8::from(hit)) - rate);
        self.excess = m;
        self.excess_sq = m2;
        if hit {
            self.exceedances = self.exceedances.saturating_add(1);
            let g =
                (1.0 / (PRIOR_EXCEEDANCES + f64::from(self.exceedances))).max(1.0 / EXCESS_MEMORY);
            let weight = if oriented > cap { ANOMALY_WEIGHT } else { 1.0 };
            let g = g * weight;
            let x = (oriented.min(cap) - TAIL_AT).min(30.0);
            self.excess += g * (x - self.excess);
            self.excess_sq += g * (x * x - self.excess_sq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_model_starts_gaussian_and_learns_heavy_tails() {
        let mut t = TailModel::default();
        let fresh = t.p(7.0, Direction::Both);
        assert!(
            fresh < 1e-6 && fresh >= normal_p(7.0, Direction::Both),
            "{fresh}"
        );
        // A series where one point in 20 is a 5σ blip.
        for i in 0..4000 {
            t.learn(if i % 20 == 0 { 5.0 } else { 0.5 }, Direction::Both);
        }
        let learned = t.p(7.0, Direction::Both);
        assert!(learned > 1e-3, "{learned}");
        // Still monotone.
        assert!(t.p(9.0, Direction::Both) < learned);
        assert!(t.p(1.0, Direction::Both) >= t.p(2.0, Direction::Both));
    }

    #[test]
    fn evidence_of_light_tails_sharpens_the_model() {
        // Standard-normal-like residuals: exceedances of 3σ are rare and
        // small. The more of them seen, the less the predictive tail hedges.
        let mut t = TailModel::default();
        let fresh = t.p(8.0, Direction::Up);
        for i in 0..20_000u32 {
            let z = if i % 740 == 0 {
                3.25
            } else {
                f64::from(i % 7) / 7.0
            };
            t.learn(z, Direction::Up);
        }
        let learned = t.p(8.0, Direction::Up);
        assert!(
            learned < fresh / 100.0,
            "fresh {fresh:e}, learned {learned:e}"
        );
        assert!(learned >= normal_p(8.0, Direction::Up));
    }

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
