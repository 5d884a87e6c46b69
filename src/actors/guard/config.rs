//! Guard configuration: `[guard]` in the policy file.
//!
//! ```toml
//! [guard]
//! interval_s = 10                # bucket length (event time): one point per service
//! history = 30                   # healthy points in each service's baseline
//! min_history = 6                # points before its own statistics judge a service
//! min_calls = 20                 # fewer calls in a point: not judged
//! z_threshold = 4.0              # robust z of the change that marks a service anomalous
//! min_error_rate = 5.0           # percent; an error rate below this is never anomalous
//! min_latency_ratio = 1.5        # latency must also be this many times its baseline median
//! min_anomalous = 2              # anomalous services together that start localisation
//! min_confidence = 0.5           # ranking confidence needed before containing
//! open_edges_error_rate = 10.0   # root cause failing this much: open its dependents' edges
//! isolate_error_rate = 50.0      # ... this much (or its breaker open): isolate it
//! shed_tiers = ["low"]           # caller tiers shed from a degraded (slow) root cause
//! storm_amplification = 2.0      # calls per caller request this many times the baseline: storm
//! retry_budget_percent = 20.0    # the budget a storm gets (Envoy and Linkerd default to 20 %)
//! lift_after = 3                 # healthy points of the root cause before containment lifts
//! edge_ttl_s = 600               # learned edges with no traffic this long age out
//! ```
//!
//! The thresholds are deliberately those of robust statistics (a modified
//! z-score of 3.5 is Iglewicz and Hoaglin's outlier rule; 4 leaves room for
//! the noise of 10-second points) and of the proxies (the 20 % retry
//! budget), not values fitted to any test set.

use serde::Deserialize;

use crate::config::{fraction, non_negative, percent, positive, seconds, Problems};
use crate::events::observation::Tier;

/// `[guard]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawGuard {
    pub interval_s: Option<u64>,
    pub history: Option<usize>,
    pub min_history: Option<usize>,
    pub min_calls: Option<u64>,
    pub z_threshold: Option<f64>,
    pub min_error_rate: Option<f64>,
    pub min_latency_ratio: Option<f64>,
    pub min_anomalous: Option<usize>,
    pub min_confidence: Option<f64>,
    pub open_edges_error_rate: Option<f64>,
    pub isolate_error_rate: Option<f64>,
    pub shed_tiers: Option<Vec<Tier>>,
    pub storm_amplification: Option<f64>,
    pub retry_budget_percent: Option<f64>,
    pub lift_after: Option<u32>,
    pub edge_ttl_s: Option<u64>,
}

/// The validated `[guard]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct GuardConfig {
    /// Bucket length, ms.
    pub interval_ms: u64,
    /// Healthy points kept per baseline.
    pub history: usize,
    /// Points needed before a service is judged by its own statistics.
    pub min_history: usize,
    /// Calls a point needs to be judged.
    pub min_calls: u64,
    /// Robust z of the change that marks a service anomalous.
    pub z_threshold: f64,
    /// Error rate (percent) below which errors never mark a service.
    pub min_error_rate: f64,
    /// Latency must be this many times the baseline median to mark a service.
    pub min_latency_ratio: f64,
    /// Anomalous services together that start localisation.
    pub min_anomalous: usize,
    /// Ranking confidence needed before containing.
    pub min_confidence: f64,
    /// Root-cause error rate (percent) that opens its dependents' edges.
    pub open_edges_error_rate: f64,
    /// Root-cause error rate (percent) that isolates it.
    pub isolate_error_rate: f64,
    /// Caller tiers shed from a degraded root cause.
    pub shed_tiers: Vec<Tier>,
    /// Amplification against the baseline that marks a retry storm.
    pub storm_amplification: f64,
    /// Retry budget given to a storm, percent of requests.
    pub retry_budget_percent: f64,
    /// Healthy points before containment lifts.
    pub lift_after: u32,
    /// Learned edges idle this long age out, ms.
    pub edge_ttl_ms: u64,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self::from_raw(&RawGuard::default(), &mut Problems::default())
    }
}

impl GuardConfig {
    /// Validates the raw section, adding every problem to `problems`.
    pub fn from_raw(raw: &RawGuard, problems: &mut Problems) -> Self {
        let p = |k: &str| format!("guard.{k}");
        let history = positive(raw.history, 30, &p("history"), problems);
        let min_history = raw.min_history.unwrap_or(6.min(history));
        if min_history > history || min_history < 3 {
            problems.add(
                p("min_history"),
                format!(
                    "{min_history} is outside 3..=history ({history}): a median needs a few points"
                ),
            );
        }
        let z_threshold = positive(raw.z_threshold, 4.0, &p("z_threshold"), problems);
        let min_latency_ratio = non_negative(
            raw.min_latency_ratio,
            1.5,
            &p("min_latency_ratio"),
            problems,
        );
        let min_anomalous = positive(raw.min_anomalous, 2, &p("min_anomalous"), problems);
        let min_confidence = fraction(
            raw.min_confidence,
            0.5,
            &p("min_confidence"),
            false,
            problems,
        );
        let open = percent(
            raw.open_edges_error_rate,
            10.0,
            &p("open_edges_error_rate"),
            problems,
        );
        let isolate = percent(
            raw.isolate_error_rate,
            50.0,
            &p("isolate_error_rate"),
            problems,
        );
        if isolate < open {
            problems.add(
                p("isolate_error_rate"),
                format!("{isolate} is below open_edges_error_rate ({open}): isolation is the stronger step"),
            );
        }
        let storm = raw.storm_amplification.unwrap_or(2.0);
        if !(storm.is_finite() && storm > 1.0) {
            problems.add(
                p("storm_amplification"),
                format!("{storm} must be above 1 (a multiple of the baseline)"),
            );
        }
        Self {
            interval_ms: seconds(raw.interval_s, 10, 1, &p("interval_s"), problems),
            history,
            min_history,
            min_calls: raw.min_calls.unwrap_or(20),
            z_threshold,
            min_error_rate: percent(raw.min_error_rate, 5.0, &p("min_error_rate"), problems),
            min_latency_ratio,
            min_anomalous,
            min_confidence,
            open_edges_error_rate: open,
            isolate_error_rate: isolate,
            shed_tiers: raw.shed_tiers.clone().unwrap_or_else(|| vec![Tier::Low]),
            storm_amplification: storm,
            retry_budget_percent: percent(
                raw.retry_budget_percent,
                20.0,
                &p("retry_budget_percent"),
                problems,
            ),
            lift_after: positive(raw.lift_after, 3, &p("lift_after"), problems),
            edge_ttl_ms: seconds(raw.edge_ttl_s, 600, 1, &p("edge_ttl_s"), problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_with_its_value() {
        let raw: RawGuard = toml::from_str(
            "history = 4\nmin_history = 9\nisolate_error_rate = 5.0\nstorm_amplification = 0.5\nmin_confidence = 2.0",
        )
        .unwrap();
        let mut problems = Problems::default();
        GuardConfig::from_raw(&raw, &mut problems);
        let text: Vec<String> = problems
            .list()
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(
            text[0].starts_with("guard.isolate_error_rate: 5 is below"),
            "{text:?}"
        );
        assert!(
            text[1].starts_with("guard.min_confidence: 2 is outside [0, 1]"),
            "{text:?}"
        );
        assert!(
            text[2].starts_with("guard.min_history: 9 is outside"),
            "{text:?}"
        );
        assert!(
            text[3].starts_with("guard.storm_amplification: 0.5"),
            "{text:?}"
        );
    }

    #[test]
    fn defaults_are_valid() {
        let mut problems = Problems::default();
        let c = GuardConfig::from_raw(&RawGuard::default(), &mut problems);
        assert!(problems.list().is_empty());
        assert_eq!(
            (c.interval_ms, c.lift_after, c.shed_tiers.clone()),
            (10_000, 3, vec![Tier::Low])
        );
    }
}
