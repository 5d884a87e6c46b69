//! Adaptive failure-rate threshold.
//!
//! A fixed 50 % threshold is wrong for most services: one whose normal error
//! rate is 8 % (a search that returns many 5xx on bad queries) trips on noise
//! at 5 %, and one that is normally spotless can burn most of its error budget
//! before reaching 50 %. The adaptive threshold follows the service's own
//! closed-state history:
//!
//! ```text
//! sample    = failure rate (percent) of each block of `minimum_number_of_calls`
//!             outcomes recorded while closed
//! mean, var = exponentially weighted (weight `alpha` per sample)
//! threshold = clamp(mean + k·σ, floor, ceiling)          once `warmup_samples` seen
//!           = failure_rate_threshold                      before that
//! ```
//!
//! Blocks (not single outcomes) are sampled so that σ measures the spread of
//! window-sized rates, which is what the threshold is compared with. Nothing is
//! learned while open, half-open or in metrics-only, so an incident does not
//! teach the breaker that failing is normal.

use serde::{Deserialize, Serialize};

use super::config::Adaptive;
use super::window::Tally;

/// Learned baseline of one circuit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    mean: f64,
    var: f64,
    samples: u64,
    block: Tally,
}

impl Baseline {
    /// Feeds closed-state outcomes; `block_size` is the minimum number of calls.
    pub fn learn(&mut self, o: Tally, block_size: u64, params: &Adaptive) {
        self.block.add(o);
        if self.block.calls >= block_size.max(1) {
            let x = self.block.failure_rate();
            self.block = Tally::default();
            if self.samples == 0 {
                self.mean = x;
            } else {
                let diff = x - self.mean;
                let incr = params.alpha * diff;
                self.mean += incr;
                self.var = (1.0 - params.alpha) * (self.var + diff * incr);
            }
            self.samples += 1;
        }
    }

    /// The failure-rate threshold in force.
    pub fn threshold(&self, params: &Adaptive, fixed: f64) -> f64 {
        if self.samples < params.warmup_samples {
            return fixed;
        }
        (self.mean + params.k * self.var.sqrt()).clamp(params.floor, params.ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Adaptive {
        Adaptive {
            k: 3.0,
            floor: 2.0,
            ceiling: 100.0,
            alpha: 0.1,
            warmup_samples: 5,
        }
    }

    fn feed(b: &mut Baseline, rates: &[u64]) {
        for &r in rates {
            b.learn(
                Tally {
                    calls: 100,
                    failed: r,
                    slow: 0,
                },
                100,
                &params(),
            );
        }
    }

    #[test]
    fn noisy_service_gets_a_higher_threshold() {
        let mut b = Baseline::default();
        feed(&mut b, &[8, 7, 9, 8, 10, 6, 8, 9, 7, 8]);
        let t = b.threshold(&params(), 5.0);
        assert!(t > 9.0 && t < 15.0, "threshold {t}");
    }

    #[test]
    fn clean_service_trips_early_but_not_below_the_floor() {
        let mut b = Baseline::default();
        feed(&mut b, &[0, 0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(b.threshold(&params(), 50.0), 2.0);
    }

    #[test]
    fn fixed_threshold_until_warm() {
        let mut b = Baseline::default();
        feed(&mut b, &[8, 8, 8, 8]);
        assert_eq!(b.threshold(&params(), 50.0), 50.0);
    }
}
