//! Router configuration: `[router]` in the policy file. Defaults are
//! Envoy's outlier detection and load balancing defaults.
//!
//! ```toml
//! [router]
//! interval_s = 10                        # outlier analysis interval (event time)
//! consecutive_5xx = 5                    # failures in a row that eject (0: off)
//! base_ejection_time_s = 30              # ejection time = base × ejections ...
//! max_ejection_time_s = 300              # ... capped here
//! max_ejection_percent = 10              # share of hosts ejected at most (one always may be)
//! success_rate_stdev_factor = 1.9        # eject below mean − factor·σ of success rates
//! success_rate_minimum_hosts = 5         # hosts with enough volume needed for that
//! success_rate_request_volume = 100      # requests in the interval for a host to count
//! success_rate_significance = 0.00001    # ... and only if sampling alone explains it this rarely (0: off)
//! failure_percentage_threshold = 85      # eject at or above this failure percentage (0: off)
//! failure_percentage_minimum_hosts = 5
//! failure_percentage_request_volume = 50
//! overprovisioning_factor = 1.4          # Envoy priority levels
//! panic_threshold = 50                   # percent healthy below which health is ignored
//! regions = ["eu-west-1", "us-east-1"]   # failover order; others follow alphabetically
//! ```
//!
//! Envoy ships failure-percentage ejection with enforcement off; here it is
//! on, because a host failing 85 % of its calls is never worth keeping.
//!
//! Envoy's success-rate rule alone (below mean − 1.9·σ) misfires on healthy
//! fleets: when every host fails a fraction of a percent, σ is tiny and a
//! host with a few unlucky failures falls below it; in the simulator that
//! ejected a healthy host somewhere every interval. Here a success-rate
//! outlier must also be *significant*: the chance of at least its failures,
//! were it failing at the other hosts' rate (binomial), must be below
//! `success_rate_significance`.

use serde::Deserialize;

use crate::client::locality::{OVERPROVISIONING, PANIC_THRESHOLD};
use crate::config::{percent, Problems};

/// `[router]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawRouter {
    pub interval_s: Option<u64>,
    pub consecutive_5xx: Option<u32>,
    pub base_ejection_time_s: Option<u64>,
    pub max_ejection_time_s: Option<u64>,
    pub max_ejection_percent: Option<f64>,
    pub success_rate_stdev_factor: Option<f64>,
    pub success_rate_minimum_hosts: Option<u32>,
    pub success_rate_request_volume: Option<u64>,
    pub success_rate_significance: Option<f64>,
    pub failure_percentage_threshold: Option<f64>,
    pub failure_percentage_minimum_hosts: Option<u32>,
    pub failure_percentage_request_volume: Option<u64>,
    pub overprovisioning_factor: Option<f64>,
    pub panic_threshold: Option<f64>,
    pub regions: Option<Vec<String>>,
}

/// The validated `[router]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct RouterConfig {
    /// Outlier analysis interval, ms.
    pub interval_ms: u64,
    /// Failures in a row that eject; 0 disables.
    pub consecutive_5xx: u32,
    /// Base ejection time, ms.
    pub base_ejection_ms: u64,
    /// Longest ejection, ms.
    pub max_ejection_ms: u64,
    /// Percent of hosts that may be ejected at once (at least one may).
    pub max_ejection_percent: f64,
    /// Success-rate outlier factor.
    pub success_rate_stdev_factor: f64,
    /// Hosts with volume needed for success-rate ejection.
    pub success_rate_minimum_hosts: u32,
    /// Requests per interval for a host to count in success-rate ejection.
    pub success_rate_request_volume: u64,
    /// Largest chance that sampling alone gives a success-rate outlier's
    /// failures; 0 disables the check (Envoy's rule alone).
    pub success_rate_significance: f64,
    /// Failure percentage that ejects; 0 disables.
    pub failure_percentage_threshold: f64,
    /// Hosts with volume needed for failure-percentage ejection.
    pub failure_percentage_minimum_hosts: u32,
    /// Requests per interval for a host to count in failure-percentage ejection.
    pub failure_percentage_request_volume: u64,
    /// Envoy's overprovisioning factor.
    pub overprovisioning: f64,
    /// Percent healthy below which health is ignored.
    pub panic_threshold: f64,
    /// Region failover order.
    pub regions: Vec<String>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self::from_raw(&RawRouter::default(), &mut Problems::default())
    }
}

impl RouterConfig {
    /// Validates the raw section, adding every problem to `problems`.
    pub fn from_raw(raw: &RawRouter, problems: &mut Problems) -> Self {
        let p = "router";
        let interval_s = raw.interval_s.unwrap_or(10);
        if interval_s == 0 {
            problems.add(format!("{p}.interval_s"), "must be greater than 0");
        }
        let base = raw.base_ejection_time_s.unwrap_or(30);
        let max = raw.max_ejection_time_s.unwrap_or(300.max(base));
        if base == 0 {
            problems.add(
                format!("{p}.base_ejection_time_s"),
                "must be greater than 0",
            );
        }
        if max < base {
            problems.add(
                format!("{p}.max_ejection_time_s"),
                format!("{max} is below base_ejection_time_s ({base})"),
            );
        }
        let factor = raw.success_rate_stdev_factor.unwrap_or(1.9);
        if !(factor.is_finite() && factor > 0.0) {
            problems.add(
                format!("{p}.success_rate_stdev_factor"),
                format!("{factor} must be a positive number"),
            );
        }
        let significance = raw.success_rate_significance.unwrap_or(1e-5);
        if !(0.0..1.0).contains(&significance) {
            problems.add(
                format!("{p}.success_rate_significance"),
                format!("{significance} must be at least 0 and below 1 (0 switches it off)"),
            );
        }
        let overprovisioning = raw.overprovisioning_factor.unwrap_or(OVERPROVISIONING);
        if !(overprovisioning.is_finite() && overprovisioning >= 1.0) {
            problems.add(
                format!("{p}.overprovisioning_factor"),
                format!("{overprovisioning} is below 1 (it scales health up, never down)"),
            );
        }
        let regions = raw.regions.clone().unwrap_or_default();
        for (i, r) in regions.iter().enumerate() {
            if regions[..i].contains(r) {
                problems.add(format!("{p}.regions"), format!("{r:?} is listed twice"));
            }
        }
        Self {
            interval_ms: interval_s.saturating_mul(1000),
            consecutive_5xx: raw.consecutive_5xx.unwrap_or(5),
            base_ejection_ms: base.saturating_mul(1000),
            max_ejection_ms: max.saturating_mul(1000),
            max_ejection_percent: percent(
                raw.max_ejection_percent,
                10.0,
                &format!("{p}.max_ejection_percent"),
                problems,
            ),
            success_rate_stdev_factor: factor,
            success_rate_minimum_hosts: raw.success_rate_minimum_hosts.unwrap_or(5),
            success_rate_request_volume: raw.success_rate_request_volume.unwrap_or(100),
            success_rate_significance: significance,
            failure_percentage_threshold: percent(
                raw.failure_percentage_threshold,
                85.0,
                &format!("{p}.failure_percentage_threshold"),
                problems,
            ),
            failure_percentage_minimum_hosts: raw.failure_percentage_minimum_hosts.unwrap_or(5),
            failure_percentage_request_volume: raw.failure_percentage_request_volume.unwrap_or(50),
            overprovisioning,
            panic_threshold: percent(
                raw.panic_threshold,
                PANIC_THRESHOLD,
                &format!("{p}.panic_threshold"),
                problems,
            ),
            regions,
        }
    }
}
