//! Detector 4, `shift`: has the *distribution* of residuals changed?
//!
//! One-step residuals from the level detector are standardised by a *slow*
//! scale of their own (mean absolute deviation with gain 1/200), so that a
//! variance that triples is still visible after the level detector's quicker
//! scale has adapted to it, and binned at
//! −3, −2, −1, 0, 1, 2, 3 σ (8 bins). The last [`RECENT`] bins sit in a ring;
//! a point leaving the ring enters the reference histogram (exponentially
//! forgetting, about [`REFERENCE`] points), so the reference is always the
//! distribution *before* the recent window. The G statistic
//! `G = 2 Σ Oᵢ ln(Oᵢ/Eᵢ)` (twice the relative entropy of recent against
//! reference, times the count) is χ² with 7 degrees of freedom when nothing
//! changed; its tail probability (statrs) is the vote. It sees what the mean
//! detectors cannot: a variance that triples while the mean stays put, or a
//! residual distribution that turns lopsided. Only a recent window with
//! more mass beyond 2σ than the reference counts (above 2σ for a signal
//! where only increases matter): a series that turns calmer is not news.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::holt::MAD_TO_SIGMA;
use super::tail::{Direction, MIN_P};

/// Recent window, in points.
pub const RECENT: usize = 32;
/// Effective size of the reference histogram, in points.
const REFERENCE: f64 = 400.0;
/// Reference points needed before voting.
const MIN_REFERENCE: f64 = 100.0;
const BINS: usize = 8;
/// Gain of the slow residual scale.
const SCALE_GAIN: f64 = 0.005;

fn bin(z: f64) -> u8 {
    // Bins (−∞,−3) [−3,−2) … [3,∞); NaN lands in the middle.
    if z.is_nan() {
        return 4;
    }
    let b = (z.clamp(-3.5, 3.5) + 4.0).floor() as i64;
    b.clamp(0, BINS as i64 - 1) as u8
}

/// Shift detector state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    n: u32,
    dev: f64,
    reference: [f64; BINS],
    ref_total: f64,
    ring: Vec<u8>,
    head: usize,
    counts: [u16; BINS],
}

impl Shift {
    /// Folds in a one-step residual; returns a p-value (1 while warming up).
    pub fn update(&mut self, residual: f64, floor: f64, direction: Direction) -> f64 {
        self.n = self.n.saturating_add(1);
        let sigma = (self.dev * MAD_TO_SIGMA).max(floor);
        let z = if self.n == 1 { 0.0 } else { residual / sigma };
        let gain = SCALE_GAIN.max(1.0 / f64::from(self.n));
        let clipped = if self.n > 10 {
            residual.clamp(-4.0 * sigma, 4.0 * sigma)
        } else {
            residual
        };
        self.dev += gain * (clipped.abs() - self.dev);
        let b = bin(z);
        if self.ring.len() < RECENT {
            self.ring.push(b);
        } else {
            let old = self.ring[self.head] as usize;
            self.ring[self.head] = b;
            self.head = (self.head + 1) % RECENT;
            self.counts[old] -= 1;
            let keep = 1.0 - 1.0 / REFERENCE;
            for r in &mut self.reference {
                *r *= keep;
            }
            self.reference[old] += 1.0;
            self.ref_total = self.ref_total * keep + 1.0;
        }
        self.counts[b as usize] += 1;
        if !self.warm() {
            return 1.0;
        }
        let n = RECENT as f64;
        let denom = self.ref_total + 0.5 * BINS as f64;
        // Only a change towards the tails counts: more erratic or displaced
        // is news, calmer is not.
        let (recent, reference): (f64, f64) = match direction {
            Direction::Up => (
                self.counts[6..].iter().map(|&c| f64::from(c)).sum(),
                self.reference[6..].iter().sum(),
            ),
            Direction::Down => (
                self.counts[..2].iter().map(|&c| f64::from(c)).sum(),
                self.reference[..2].iter().sum(),
            ),
            Direction::Both => (
                self.counts[..2]
                    .iter()
                    .chain(&self.counts[6..])
                    .map(|&c| f64::from(c))
                    .sum(),
                self.reference[..2].iter().chain(&self.reference[6..]).sum(),
            ),
        };
        if recent / n <= reference / self.ref_total {
            return 1.0;
        }
        let mut g = 0.0;
        for (i, &o) in self.counts.iter().enumerate() {
            if o > 0 {
                let o = f64::from(o);
                let e = n * (self.reference[i] + 0.5) / denom;
                g += o * (o / e).ln();
            }
        }
        let g = 2.0 * g;
        if g <= 0.0 {
            return 1.0;
        }
        let chi = ChiSquared::new((BINS - 1) as f64).expect("positive degrees of freedom");
        chi.sf(g).clamp(MIN_P, 1.0)
    }

    /// Whether it has enough recent and reference points to vote.
    pub fn warm(&self) -> bool {
        self.ring.len() == RECENT && self.ref_total >= MIN_REFERENCE
    }

    /// Starts over.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.ring.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Roughly standard normal pseudo-noise (sum of four uniforms, scaled).
    fn z(i: u32) -> f64 {
        let u = |k: u32| {
            f64::from(
                (i.wrapping_mul(4)
                    .wrapping_add(k)
                    .wrapping_mul(2_654_435_761)
                    >> 8)
                    % 10_001,
            ) / 10_000.0
        };
        (u(0) + u(1) + u(2) + u(3) - 2.0) * 3f64.sqrt()
    }

    #[test]
    fn bins_cover_the_line() {
        assert_eq!(bin(-10.0), 0);
        assert_eq!(bin(-2.5), 1);
        assert_eq!(bin(-0.5), 3);
        assert_eq!(bin(0.0), 4);
        assert_eq!(bin(2.5), 6);
        assert_eq!(bin(9.0), 7);
        assert_eq!(bin(f64::NAN), 4);
    }

    #[test]
    fn quiet_on_stationary_noise_then_sees_variance_triple() {
        let mut s = Shift::default();
        let mut min_p: f64 = 1.0;
        for i in 0..3000 {
            min_p = min_p.min(s.update(z(i), 1e-9, Direction::Both));
        }
        assert!(min_p > 1e-5, "min p on noise {min_p}");
        let mut p = 1.0;
        for i in 0..RECENT as u32 {
            p = s.update(3.0 * z(i + 5000), 1e-9, Direction::Both);
        }
        assert!(p < 1e-6, "p after variance change {p}");
    }

    #[test]
    fn one_sided_needs_more_upper_tail() {
        let mut s = Shift::default();
        for i in 0..1000 {
            s.update(z(i), 1e-9, Direction::Up);
        }
        let mut p = 0.0;
        for _ in 0..RECENT {
            p = s.update(-3.5, 1e-9, Direction::Up);
        }
        assert_eq!(p, 1.0);
        for _ in 0..RECENT {
            p = s.update(3.5, 1e-9, Direction::Up);
        }
        assert!(p < 1e-9);
    }
}
