//! The combiner: detectors' votes to one anomaly score in [0, 1].
//!
//! **Vote.** Each detector reports a p-value; they are merged with fixed
//! weights by the weighted harmonic mean p-value (Wilson, PNAS 2019),
//! `p = Σwᵢ / Σ(wᵢ/pᵢ)`, which stays valid when the detectors are dependent
//! (they all watch the same series) and lets one confident detector carry the
//! vote without the others diluting it. The weights are fixed and
//! documented in [`WEIGHTS`]; nothing is trained on labels. A detector that is
//! warming up or inactive abstains and the others are renormalised.
//!
//! **Likelihood post-processing.** The vote's surprise `e = −log10 p` is
//! turned into evidence `m` that rewards persistence: the mean of the last
//! [`PERSIST`] surprises, or a lone point's surprise less [`LONE_DISCOUNT`]
//! (a single outlier needs about thirty times stronger evidence than a run),
//! whichever is larger. Two readings of `m` are then taken, and the smaller
//! wins:
//!
//! * *absolute*: `m` itself, the evidence under the detectors' models;
//! * *relative*: the normal tail of `m` against this series' own long-run
//!   distribution of `m` (as in Numenta's anomaly likelihood), so a series
//!   whose detectors are routinely surprised (heavy tails, autocorrelation)
//!   must be surprising *for itself* before it alarms.
//!
//! The final surprise maps to a score with [`super::tail::score`]: 0.5 is
//! "one in 100 000", the default alarm threshold.

use serde::{Deserialize, Serialize};

use super::tail::{normal_p, surprise, Direction, MIN_P};

/// Names of the detectors, in vote order.
pub const NAMES: [&str; 4] = ["level", "seasonal", "changepoint", "shift"];

/// Fixed vote weights, in [`NAMES`] order: the point detectors (level and
/// seasonal) and the sustained-change detectors (changepoint and shift) get
/// half the say each; within each pair the one with the sharper model leads.
pub const WEIGHTS: [f64; 4] = [0.40, 0.15, 0.30, 0.15];

/// Surprises averaged for persistence.
pub const PERSIST: usize = 4;
/// Discount, in decades, for a lone surprising point.
pub const LONE_DISCOUNT: f64 = 1.5;
/// Long-run memory of the evidence distribution, in points.
const LONG_RUN: f64 = 1000.0;
/// Smallest long-run spread of the evidence, in decades.
const MIN_SPREAD: f64 = 0.25;

/// Weighted harmonic mean of p-values; `None` entries abstain. 1 if all abstain.
pub fn harmonic_mean_p(ps: &[Option<f64>; 4]) -> f64 {
    let (mut w, mut s) = (0.0, 0.0);
    for (p, weight) in ps.iter().zip(WEIGHTS) {
        if let Some(p) = p {
            w += weight;
            s += weight / p.clamp(MIN_P, 1.0);
        }
    }
    if s == 0.0 {
        1.0
    } else {
        (w / s).clamp(MIN_P, 1.0)
    }
}

/// Post-processing state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Likelihood {
    recent: [f64; PERSIST],
    head: usize,
    n: u32,
    mean: f64,
    var: f64,
}

impl Likelihood {
    /// Folds in the vote's surprise `e`; returns the final surprise.
    pub fn update(&mut self, e: f64) -> f64 {
        self.recent[self.head] = e;
        self.head = (self.head + 1) % PERSIST;
        let persisted = self.recent.iter().sum::<f64>() / PERSIST as f64;
        let m = persisted.max(e - LONE_DISCOUNT);

        let spread = self.var.sqrt().max(MIN_SPREAD);
        let relative = if self.n == 0 {
            0.0
        } else {
            surprise(normal_p((m - self.mean) / spread, Direction::Up))
        };

        // Learn the long-run distribution, winsorised so an incident does not
        // teach the series that incidents are normal.
        self.n = self.n.saturating_add(1);
        let gain = (1.0 / f64::from(self.n)).max(1.0 / LONG_RUN);
        let mc = if self.n > 1 {
            m.min(self.mean + 3.0 * spread)
        } else {
            m
        };
        let d = mc - self.mean;
        self.mean += gain * d;
        self.var = (1.0 - gain) * (self.var + gain * d * d);

        m.min(relative)
    }

    /// The long-run mean evidence, in decades.
    pub fn typical(&self) -> f64 {
        self.mean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_confident_detector_carries_the_vote() {
        let p = harmonic_mean_p(&[Some(1e-10), Some(0.5), Some(0.5), Some(0.5)]);
        assert!(p < 1e-9 / WEIGHTS[0] && p > 1e-10, "{p}");
        assert_eq!(harmonic_mean_p(&[None, None, None, None]), 1.0);
        let renormalised = harmonic_mean_p(&[Some(1e-6), None, None, None]);
        assert!((renormalised - 1e-6).abs() < 1e-12);
    }

    #[test]
    fn sustained_evidence_beats_a_single_outlier_of_the_same_size() {
        let quiet = |l: &mut Likelihood| {
            for i in 0..500 {
                l.update(0.3 + 0.2 * f64::from(i % 3));
            }
        };
        let mut single = Likelihood::default();
        quiet(&mut single);
        let lone = single.update(5.0);
        let mut run = Likelihood::default();
        quiet(&mut run);
        let mut sustained = 0.0;
        for _ in 0..PERSIST {
            sustained = run.update(5.0);
        }
        assert!(
            sustained > lone + 1.0,
            "sustained {sustained} vs lone {lone}"
        );
        assert!(sustained >= 4.9);
    }

    #[test]
    fn a_routinely_surprised_series_must_surprise_itself() {
        let mut l = Likelihood::default();
        for i in 0..2000 {
            l.update(if i % 5 == 0 { 6.0 } else { 1.0 });
        }
        assert!(l.typical() > 1.5);
        let f = l.update(6.0);
        assert!(f < 3.0, "final surprise {f}");
    }
}
