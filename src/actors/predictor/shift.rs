//! Detector 4, `shift`: has the *distribution* of residuals changed?
//!
//! Standardised residuals from the level detector are binned at
//! −3, −2, −1, 0, 1, 2, 3 σ (8 bins). The last [`RECENT`] bins sit in a ring;
//! a point leaving the ring enters the reference histogram (exponentially
//! forgetting, about [`REFERENCE`] points), so the reference is always the
//! distribution *before* the recent window. The G statistic
//! `G = 2 Σ Oᵢ ln(Oᵢ/Eᵢ)` (twice the relative entropy of recent against
//! reference, times the count) is χ² with 7 degrees of freedom when nothing
//! changed; its tail probability (statrs) is the vote. It sees what the mean
//! detectors cannot: a variance that triples while the mean stays put, or a
//! residual distribution that turns lopsided. For one-sided signals only a
//! recent window with more mass above 2σ than the reference counts.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::tail::{Direction, MIN_P};

/// Recent window, in points.
pub const RECENT: usize = 32;
/// Effective size of the reference histogram, in points.
const REFERENCE: f64 = 400.0;
/// Reference points needed before voting.
const MIN_REFERENCE: f64 = 100.0;
const BINS: usize = 8;

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
    reference: [f64; BINS],
    ref_total: f64,
    ring: Vec<u8>,
    head: usize,
    counts: [u16; BINS],
}

impl Shift {
    /// Folds in a standardised residual; returns a p-value (1 while warming up).
    pub fn update(&mut self, z: f64, direction: Direction) -> f64 {
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
        if direction != Direction::Both {
            let (recent, reference) = match direction {
                Direction::Up => (&self.counts[6..], &self.reference[6..]),
                _ => (&self.counts[..2], &self.reference[..2]),
            };
            let recent: f64 = recent.iter().map(|&c| f64::from(c)).sum::<f64>() / n;
            let reference: f64 = reference.iter().sum::<f64>() / self.ref_total;
            if recent <= reference {
                return 1.0;
            }
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
            min_p = min_p.min(s.update(z(i), Direction::Both));
        }
        assert!(min_p > 1e-5, "min p on noise {min_p}");
        let mut p = 1.0;
        for i in 0..RECENT as u32 {
            p = s.update(3.0 * z(i + 5000), Direction::Both);
        }
        assert!(p < 1e-6, "p after variance change {p}");
    }

    #[test]
    fn one_sided_needs_more_upper_tail() {
        let mut s = Shift::default();
        for i in 0..1000 {
            s.update(z(i), Direction::Up);
        }
        let mut p = 0.0;
        for _ in 0..RECENT {
            p = s.update(-3.5, Direction::Up);
        }
        assert_eq!(p, 1.0);
        for _ in 0..RECENT {
            p = s.update(3.5, Direction::Up);
        }
        assert!(p < 1e-9);
    }
}
