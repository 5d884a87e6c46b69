//! Outlier detection with Envoy's semantics, as pure functions of one
//! analysis interval's tallies.
//!
//! * **Success rate**: among hosts with at least `request_volume` requests
//!   in the interval, and only if there are `minimum_hosts` of them, a host
//!   whose success rate is below `mean − factor·σ` is an outlier, if its
//!   failures are also significant: at least that many would happen by
//!   chance, at the other hosts' failure rate, with probability below
//!   `significance` (binomial tail; the rate smoothed by one failure in two
//!   requests so that a pool without failures does not make one failure
//!   damning).
//! * **Failure percentage**: among hosts with enough volume (and enough such
//!   hosts), a host failing at least `threshold` percent is an outlier.
//! * **Ejection time** is `base × n` for the n-th ejection, capped.

use statrs::distribution::{Binomial, DiscreteCDF};

use super::config::RouterConfig;
use crate::events::decision::EjectionTrigger;

/// One host's interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Requests.
    pub requests: u64,
    /// Failed ones.
    pub failures: u64,
}

impl Tally {
    /// Success rate, percent.
    pub fn success_rate(self) -> f64 {
        if self.requests == 0 {
            100.0
        } else {
            100.0 * (self.requests - self.failures.min(self.requests)) as f64 / self.requests as f64
        }
    }
}

/// An outlier found by an interval analysis.
#[derive(Clone, Debug, PartialEq)]
pub struct Outlier {
    /// Index into the tallies given.
    pub index: usize,
    /// Which rule.
    pub trigger: EjectionTrigger,
    /// Its success rate or failure percentage.
    pub observed: f64,
    /// The limit it crossed.
    pub threshold: f64,
}

/// Outliers among `tallies` (success rate first, then failure percentage;
/// each host at most once), in index order within each rule.
pub fn analyse(tallies: &[Tally], c: &RouterConfig) -> Vec<Outlier> {
    let mut out: Vec<Outlier> = Vec::new();
    let volume: Vec<usize> = (0..tallies.len())
        .filter(|&i| tallies[i].requests >= c.success_rate_request_volume.max(1))
        .collect();
    if volume.len() >= c.success_rate_minimum_hosts.max(1) as usize {
        let rates: Vec<f64> = volume.iter().map(|&i| tallies[i].success_rate()).collect();
        let n = rates.len() as f64;
        let mean = rates.iter().sum::<f64>() / n;
        let sd = (rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
        let threshold = mean - c.success_rate_stdev_factor * sd;
        let (all_requests, all_failures) = volume.iter().fold((0, 0), |(r, f), &i| {
            (r + tallies[i].requests, f + tallies[i].failures)
        });
        for (&i, &r) in volume.iter().zip(&rates) {
            let t = tallies[i];
            let others = (all_requests - t.requests, all_failures - t.failures);
            if r < threshold && significant(t, others, c.success_rate_significance) {
                out.push(Outlier {
                    index: i,
                    trigger: EjectionTrigger::SuccessRate,
                    observed: round2(r),
                    threshold: round2(threshold),
                });
            }
        }
    }
    if c.failure_percentage_threshold > 0.0 {
        let volume: Vec<usize> = (0..tallies.len())
            .filter(|&i| tallies[i].requests >= c.failure_percentage_request_volume.max(1))
            .collect();
        if volume.len() >= c.failure_percentage_minimum_hosts.max(1) as usize {
            for i in volume {
                let failed = 100.0 - tallies[i].success_rate();
                if failed >= c.failure_percentage_threshold && !out.iter().any(|o| o.index == i) {
                    out.push(Outlier {
                        index: i,
                        trigger: EjectionTrigger::FailurePercentage,
                        observed: round2(failed),
                        threshold: c.failure_percentage_threshold,
                    });
                }
            }
        }
    }
    out
}

/// Whether `host`'s failures are unlikely (below `level`) at the failure
/// rate of `others` (requests, failures); always with `level` 0.
fn significant(host: Tally, others: (u64, u64), level: f64) -> bool {
    if level <= 0.0 || host.failures == 0 {
        return level <= 0.0;
    }
    let rate = (others.1 as f64 + 1.0) / (others.0 as f64 + 2.0);
    let Ok(b) = Binomial::new(rate.clamp(0.0, 1.0), host.requests) else {
        return false;
    };
    // P(X ≥ failures) = P(X > failures − 1).
    b.sf(host.failures - 1) < level
}

/// Whether host `i` failed significantly more than the others in `tallies`
/// (the binomial test of the success-rate rule, at `level`, or any
/// failures at all with `level` 0).
pub fn worse_than_others(tallies: &[Tally], i: usize, level: f64) -> bool {
    let (requests, failures) = tallies
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != i)
        .fold((0, 0), |(r, f), (_, t)| (r + t.requests, f + t.failures));
    tallies[i].failures > 0 && significant(tallies[i], (requests, failures), level)
}

/// How long the `n`-th ejection (1-based) lasts, ms.
pub fn ejection_ms(n: u32, c: &RouterConfig) -> u64 {
    c.base_ejection_ms
        .saturating_mul(u64::from(n.max(1)))
        .min(c.max_ejection_ms)
}

/// Hosts that may be ejected at once out of `hosts`: the configured share,
/// rounded down, but always at least one.
pub fn max_ejected(hosts: usize, c: &RouterConfig) -> usize {
    ((hosts as f64 * c.max_ejection_percent / 100.0).floor() as usize).max(1)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(requests: u64, failures: u64) -> Tally {
        Tally { requests, failures }
    }

    #[test]
    fn success_rate_outlier_below_mean_minus_factor_sigma() {
        let c = RouterConfig::default();
        let mut hosts = vec![t(200, 2); 9];
        hosts.push(t(200, 60)); // 70 % success
        let o = analyse(&hosts, &c);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].index, 9);
        assert_eq!(o[0].trigger, EjectionTrigger::SuccessRate);
        assert_eq!(o[0].observed, 70.0);
        // mean 96.1, σ 8.7: threshold 96.1 − 1.9·8.7 = 79.57.
        assert!((o[0].threshold - 79.57).abs() < 0.01, "{}", o[0].threshold);
    }

    #[test]
    fn a_few_unlucky_failures_on_a_healthy_fleet_are_not_an_outlier() {
        let c = RouterConfig::default();
        // Nine hosts at 0.5 % failures, one at 1.2 %: below mean − 1.9·σ,
        // but 7 failures in 600 at a 0.5 % rate happen 1.4 % of the time.
        let mut hosts = vec![t(600, 3); 9];
        hosts.push(t(600, 7));
        assert!(analyse(&hosts, &c).is_empty());
        // Envoy's rule alone ejects it.
        let envoy = RouterConfig {
            success_rate_significance: 0.0,
            ..c.clone()
        };
        assert_eq!(analyse(&hosts, &envoy).len(), 1);
        // A real outlier (5 % failures) is significant.
        hosts[9] = t(600, 30);
        assert_eq!(analyse(&hosts, &c)[0].index, 9);
    }

    #[test]
    fn too_few_hosts_with_volume_means_no_success_rate_verdict() {
        let c = RouterConfig::default();
        let mut hosts = vec![t(200, 0); 3];
        hosts.push(t(200, 100));
        hosts.push(t(99, 0)); // below the volume
        assert!(analyse(&hosts, &c)
            .iter()
            .all(|o| o.trigger != EjectionTrigger::SuccessRate));
    }

    #[test]
    fn failure_percentage_ejects_hosts_failing_most_calls() {
        let c = RouterConfig {
            success_rate_minimum_hosts: 100,
            ..RouterConfig::default()
        };
        let mut hosts = vec![t(60, 0); 4];
        hosts.push(t(60, 54)); // 90 %
        let o = analyse(&hosts, &c);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].trigger, EjectionTrigger::FailurePercentage);
        assert_eq!(o[0].observed, 90.0);
    }

    #[test]
    fn ejection_time_grows_and_caps_and_the_share_allows_one() {
        let c = RouterConfig::default();
        assert_eq!(ejection_ms(1, &c), 30_000);
        assert_eq!(ejection_ms(3, &c), 90_000);
        assert_eq!(ejection_ms(11, &c), 300_000);
        assert_eq!(max_ejected(5, &c), 1);
        assert_eq!(max_ejected(30, &c), 3);
    }
}
