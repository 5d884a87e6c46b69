//! Smooth weighted round robin (nginx): deterministic, spreads each
//! target's turns evenly through the cycle instead of bunching them, and
//! costs one pass over the weights per pick.
//!
//! Every pick adds each weight to its running credit, takes the target with
//! the most credit (the first on ties) and charges it the total. Over any
//! `Σw` consecutive picks each target is chosen exactly `w` times, so the
//! picks repeat with period `Σw`: [`cycle`] precomputes one period (weights
//! reduced by their gcd) and a pick becomes an index into it.

/// Running credits for a fixed list of weights.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmoothWrr {
    credit: Vec<i64>,
}

impl SmoothWrr {
    /// Picks an index by `weights` (non-positive weights are never picked);
    /// `None` when no weight is positive. The credits reset when the number
    /// of weights changes.
    pub fn pick(&mut self, weights: &[i64]) -> Option<usize> {
        if self.credit.len() != weights.len() {
            self.credit = vec![0; weights.len()];
        }
        let mut total = 0;
        let mut best: Option<(usize, i64)> = None;
        for (i, (&w, c)) in weights.iter().zip(self.credit.iter_mut()).enumerate() {
            if w <= 0 {
                continue;
            }
            *c += w;
            total += w;
            if best.is_none_or(|(_, b)| *c > b) {
                best = Some((i, *c));
            }
        }
        let (b, _) = best?;
        self.credit[b] -= total;
        Some(b)
    }

    /// Forgets the credits.
    pub fn reset(&mut self) {
        self.credit.clear();
    }
}

/// Longest cycle [`cycle`] precomputes.
pub const MAX_CYCLE: i64 = 1 << 16;

/// One whole period of smooth weighted round robin over `weights`, as
/// indices; `None` when no weight is positive or the period (weights
/// divided by their gcd) exceeds [`MAX_CYCLE`].
pub fn cycle(weights: &[i64]) -> Option<Vec<u32>> {
    let g = weights
        .iter()
        .filter(|&&w| w > 0)
        .fold(0, |g, &w| gcd(g, w));
    if g == 0 {
        return None;
    }
    let reduced: Vec<i64> = weights.iter().map(|&w| w.max(0) / g).collect();
    let period: i64 = reduced.iter().sum();
    if period > MAX_CYCLE {
        return None;
    }
    let mut wrr = SmoothWrr::default();
    (0..period)
        .map(|_| wrr.pick(&reduced).map(|i| i as u32))
        .collect()
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_target_gets_its_weight_per_cycle_interleaved() {
        let mut w = SmoothWrr::default();
        let picks: Vec<_> = (0..7).map(|_| w.pick(&[5, 1, 1]).unwrap()).collect();
        assert_eq!(picks, vec![0, 0, 1, 0, 2, 0, 0]);
        let mut counts = [0; 3];
        for _ in 0..700 {
            counts[w.pick(&[5, 1, 1]).unwrap()] += 1;
        }
        assert_eq!(counts, [500, 100, 100]);
    }

    #[test]
    fn a_cycle_is_one_period_of_picks() {
        assert_eq!(cycle(&[10, 2, 2]).unwrap(), vec![0, 0, 1, 0, 2, 0, 0]);
        let mut w = SmoothWrr::default();
        let live: Vec<u32> = (0..14)
            .map(|_| w.pick(&[5, 1, 1]).unwrap() as u32)
            .collect();
        let c = cycle(&[5, 1, 1]).unwrap();
        assert_eq!(live, [c.clone(), c].concat());
        assert_eq!(cycle(&[0, 0]), None);
        assert_eq!(cycle(&[MAX_CYCLE, 1]), None);
    }

    #[test]
    fn zero_weights_are_skipped_and_none_when_all_zero() {
        let mut w = SmoothWrr::default();
        assert!((0..10).all(|_| w.pick(&[0, 3, 0]) == Some(1)));
        assert_eq!(w.pick(&[0, 0]), None);
        assert_eq!(w.pick(&[]), None);
    }
}
