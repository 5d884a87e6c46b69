//! Retry storms: call amplification on one edge against its baseline.
//!
//! A caller that retries turns each request it serves into several calls
//! to its callee. The amplification of edge `a->b` in an interval is the
//! calls `b` saw from `a` per request `a` itself served, over the median of
//! that ratio in healthy intervals. Normal fan-out (three calls per
//! request, say) is in the baseline, so only a *rise* counts, and a traffic
//! spike moves numerator and denominator together and does not. A storm is
//! answered with a retry budget and lifted when the ratio has been back
//! under half the threshold's excess, and the callee has recovered, for
//! `lift_after` intervals: the budget alone brings the ratio down, so the
//! ratio alone would lift it while the callee is still overloaded and the
//! storm would start again.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::baseline::median;
use super::config::GuardConfig;

/// One edge's amplification history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Storm {
    ratios: VecDeque<f64>,
    /// A retry budget is in force.
    pub active: bool,
    healthy: u32,
}

/// What an interval changed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StormStep {
    /// A storm began: budget it.
    Budget {
        /// Ratio over baseline.
        amplification: f64,
        /// Calls per caller request now.
        ratio: f64,
        /// Calls per caller request normally.
        baseline: f64,
    },
    /// The storm is over.
    Lift {
        /// Ratio over baseline now.
        amplification: f64,
    },
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Storm {
    /// Takes an interval with `calls` on the edge and `inbound` requests
    /// served by the caller; `recovered`: the callee is healthy again.
    pub fn observe(
        &mut self,
        calls: u64,
        inbound: u64,
        recovered: bool,
        c: &GuardConfig,
    ) -> Option<StormStep> {
        if inbound < c.min_calls || calls == 0 {
            return None;
        }
        let ratio = calls as f64 / inbound as f64;
        if self.ratios.len() < c.min_history {
            self.learn(ratio, c.history);
            return None;
        }
        let baseline = median(&mut self.ratios.iter().copied().collect::<Vec<_>>());
        let amplification = ratio / baseline.max(f64::MIN_POSITIVE);
        let calm = amplification < 1.0 + (c.storm_amplification - 1.0) / 2.0;
        if !self.active {
            if amplification >= c.storm_amplification && calls >= c.min_calls {
                self.active = true;
                self.healthy = 0;
                return Some(StormStep::Budget {
                    amplification: round2(amplification),
                    ratio: round2(ratio),
                    baseline: round2(baseline),
                });
            }
            if calm {
                self.learn(ratio, c.history);
            }
            return None;
        }
        if !calm || !recovered {
            self.healthy = 0;
            return None;
        }
        self.healthy += 1;
        if self.healthy < c.lift_after {
            return None;
        }
        self.active = false;
        self.healthy = 0;
        Some(StormStep::Lift {
            amplification: round2(amplification),
        })
    }

    fn learn(&mut self, ratio: f64, keep: usize) {
        self.ratios.push_back(ratio);
        if self.ratios.len() > keep {
            self.ratios.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amplification_budgets_and_lifts_with_hysteresis() {
        let c = GuardConfig::default();
        let mut s = Storm::default();
        // Normal fan-out: 3 calls per request, traffic doubling is no storm.
        for inbound in [100, 100, 200, 200, 100, 100, 400] {
            assert_eq!(s.observe(3 * inbound, inbound, true, &c), None);
        }
        assert_eq!(
            s.observe(900, 100, true, &c),
            Some(StormStep::Budget {
                amplification: 3.0,
                ratio: 9.0,
                baseline: 3.0
            })
        );
        // 1.6x is not calm (calm is under 1.5x): the count restarts.
        assert_eq!(s.observe(450, 100, true, &c), None);
        assert_eq!(s.observe(480, 100, true, &c), None);
        assert_eq!(s.observe(300, 100, true, &c), None);
        assert_eq!(s.observe(300, 100, true, &c), None);
        assert_eq!(s.observe(480, 100, true, &c), None);
        assert_eq!(s.observe(300, 100, true, &c), None);
        assert_eq!(s.observe(300, 100, true, &c), None);
        assert_eq!(
            s.observe(310, 100, true, &c),
            Some(StormStep::Lift {
                amplification: 1.03
            })
        );
        assert!(!s.active);
    }

    #[test]
    fn the_budget_stays_while_the_callee_has_not_recovered() {
        let c = GuardConfig::default();
        let mut s = Storm::default();
        for _ in 0..7 {
            s.observe(300, 100, true, &c);
        }
        assert!(matches!(
            s.observe(900, 100, true, &c),
            Some(StormStep::Budget { .. })
        ));
        // Calm calls under the budget, but the callee still failing: no lift.
        for _ in 0..10 {
            assert_eq!(s.observe(300, 100, false, &c), None);
        }
        assert!(s.active);
        assert_eq!(s.observe(300, 100, true, &c), None);
        assert_eq!(s.observe(300, 100, true, &c), None);
        assert!(matches!(
            s.observe(300, 100, true, &c),
            Some(StormStep::Lift { .. })
        ));
    }

    #[test]
    fn too_little_traffic_says_nothing() {
        let c = GuardConfig::default();
        let mut s = Storm::default();
        for _ in 0..10 {
            assert_eq!(s.observe(30, 10, true, &c), None);
        }
        assert!(s.ratios.is_empty());
    }
}
