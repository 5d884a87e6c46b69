//! Rollback configuration: `[rollback]` in the policy file.
//!
//! ```toml
//! [rollback]
//! interval_s = 60                 # analysis interval (event time)
//! min_requests = 50               # fewer requests of the new version: inconclusive
//! failure_budget = 3              # failed analyses that trigger a rollback
//! budget = "consecutive"          # or "cumulative" (Flagger's threshold)
//! pass_score = 75                 # score at or above: pass
//! marginal_score = 50             # below: fail; in between: marginal (hysteresis band)
//! alpha = 0.05                    # Mann–Whitney significance, one-sided
//! baseline_window_s = 600         # pre-deploy period compared with for rolling/recreate deploys
//! bake_time_s = 600               # healthy time after completion before known-good
//! no_data_escalation_s = 600      # inconclusive for lack of any data this long: escalate
//! validate_intervals = 3          # intervals after a rollback for the error rate to recover
//! max_rollbacks_per_hour = 3      # storm guard, per service
//! stability_period_s = 300        # after a rollback ends, hold further automatic ones
//! ack_timeout_s = 30              # wait for faultline.actuation, doubled per retry
//! max_attempts = 3                # attempts per step before the rollback fails
//! emergency_error_rate = 50       # error rate (%) that makes a rollback an emergency
//! strategy = "auto"               # or one of the seven strategies
//! gradual_steps = [50, 0]         # percent left on the bad version after each step
//! canary_step = 10                # canary_reverse: weight taken off per step
//!
//! [rollback.metrics.error_rate]   # percent of failed requests
//! max = 5.0
//! critical = true
//! min_delta = 1.0                 # effect-size guard: at least this much above baseline ...
//! min_ratio = 1.5                 # ... and this many times it
//! weight = 1.0                    # share in the score
//! dry_run = false                 # report only
//!
//! [rollback.metrics.latency_p99]  # ms
//! max = 1000.0
//! critical = true
//! min_delta = 20.0
//! min_ratio = 1.2
//!
//! [rollback.service.payments]
//! strategy = "database_pitr"      # per-service preference
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{non_negative, percent, positive, seconds, Problems};
use crate::events::decision::RollbackStrategy;

/// How failed analyses are counted against the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetMode {
    /// A run of failures; a pass resets it (a marginal result does not).
    Consecutive,
    /// Every failure since the deploy started (Flagger's `threshold`).
    Cumulative,
}

/// The metrics judged, in report order.
pub const METRICS: [&str; 2] = ["error_rate", "latency_p99"];

/// `[rollback.metrics.<name>]` as written.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawMetric {
    pub max: Option<f64>,
    pub critical: Option<bool>,
    pub min_delta: Option<f64>,
    pub min_ratio: Option<f64>,
    pub weight: Option<f64>,
    pub dry_run: Option<bool>,
}

/// `[rollback.service.<name>]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawService {
    pub strategy: Option<String>,
}

/// `[rollback]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawRollback {
    pub interval_s: Option<u64>,
    pub min_requests: Option<u64>,
    pub failure_budget: Option<u32>,
    pub budget: Option<BudgetMode>,
    pub pass_score: Option<f64>,
    pub marginal_score: Option<f64>,
    pub alpha: Option<f64>,
    pub baseline_window_s: Option<u64>,
    pub bake_time_s: Option<u64>,
    pub no_data_escalation_s: Option<u64>,
    pub validate_intervals: Option<u32>,
    pub max_rollbacks_per_hour: Option<u32>,
    pub stability_period_s: Option<u64>,
    pub ack_timeout_s: Option<u64>,
    pub max_attempts: Option<u32>,
    pub emergency_error_rate: Option<f64>,
    pub strategy: Option<String>,
    pub gradual_steps: Option<Vec<u32>>,
    pub canary_step: Option<u32>,
    #[serde(default)]
    pub metrics: BTreeMap<String, RawMetric>,
    #[serde(default)]
    pub service: BTreeMap<String, RawService>,
}

/// One metric's validated settings.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricConfig {
    /// `error_rate` or `latency_p99`.
    pub name: &'static str,
    /// The threshold: above it the metric is high whatever the baseline.
    pub max: f64,
    /// Failing it fails the analysis whatever the score.
    pub critical: bool,
    /// Effect-size guard: the new version must exceed the baseline by this much ...
    pub min_delta: f64,
    /// ... and by this factor, to be judged significantly worse.
    pub min_ratio: f64,
    /// Share in the score.
    pub weight: f64,
    /// Reported, never acted on.
    pub dry_run: bool,
}

/// A strategy choice: one strategy, or selection from context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preference {
    /// Choose from the deploy strategy, severity and regions.
    Auto,
    /// Always this one.
    Fixed(RollbackStrategy),
}

/// The validated `[rollback]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct RollbackConfig {
    /// Analysis interval, ms.
    pub interval_ms: u64,
    /// Requests below which an interval is inconclusive.
    pub min_requests: u64,
    /// Failed analyses that trigger a rollback.
    pub failure_budget: u32,
    /// How failures are counted.
    pub budget: BudgetMode,
    /// Score at or above which an analysis passes.
    pub pass_score: f64,
    /// Score below which an analysis fails.
    pub marginal_score: f64,
    /// Significance level of the Mann–Whitney test.
    pub alpha: f64,
    /// Pre-deploy baseline period, ms.
    pub baseline_window_ms: u64,
    /// Bake time before known-good, ms.
    pub bake_ms: u64,
    /// No data for this long escalates, ms.
    pub no_data_escalation_ms: u64,
    /// Intervals for the error rate to recover after a rollback.
    pub validate_intervals: u32,
    /// Storm guard: automatic rollbacks per service per hour.
    pub max_rollbacks_per_hour: u32,
    /// Hold after a rollback ends, ms.
    pub stability_ms: u64,
    /// Acknowledgement timeout of the first attempt, ms.
    pub ack_timeout_ms: u64,
    /// Attempts per step.
    pub max_attempts: u32,
    /// Error rate (%) that makes a rollback an emergency.
    pub emergency_error_rate: f64,
    /// Strategy preference for services without their own.
    pub strategy: Preference,
    /// Per-service strategy preferences.
    pub services: BTreeMap<String, Preference>,
    /// Gradual: percent left on the bad version after each step, ending at 0.
    pub gradual_steps: Vec<u32>,
    /// Canary reverse: weight taken off per step.
    pub canary_step: u32,
    /// The metrics, in [`METRICS`] order.
    pub metrics: Vec<MetricConfig>,
}

impl Default for RollbackConfig {
    fn default() -> Self {
        Self::from_raw(&RawRollback::default(), &mut Problems::default())
    }
}

const STRATEGIES: [RollbackStrategy; 7] = [
    RollbackStrategy::Immediate,
    RollbackStrategy::Gradual,
    RollbackStrategy::CanaryReverse,
    RollbackStrategy::BlueGreen,
    RollbackStrategy::DatabasePitr,
    RollbackStrategy::Staged,
    RollbackStrategy::Emergency,
];

fn preference(v: Option<&str>, path: &str, problems: &mut Problems) -> Preference {
    match v {
        None | Some("auto") => Preference::Auto,
        Some(name) => match STRATEGIES.iter().find(|s| s.as_str() == name) {
            Some(s) => Preference::Fixed(*s),
            None => {
                let names: Vec<&str> = STRATEGIES.iter().map(|s| s.as_str()).collect();
                problems.add(
                    path,
                    format!("{name:?} is not a strategy (auto, {})", names.join(", ")),
                );
                Preference::Auto
            }
        },
    }
}

fn metric(name: &'static str, raw: &RawMetric, problems: &mut Problems) -> MetricConfig {
    let p = format!("rollback.metrics.{name}");
    let (max, delta, ratio) = match name {
        "error_rate" => (5.0, 1.0, 1.5),
        _ => (1000.0, 20.0, 1.2),
    };
    let max = if name == "error_rate" {
        percent(raw.max, max, &format!("{p}.max"), problems)
    } else {
        non_negative(raw.max, max, &format!("{p}.max"), problems)
    };
    let min_ratio = raw.min_ratio.unwrap_or(ratio);
    if !(min_ratio.is_finite() && min_ratio >= 1.0) {
        problems.add(
            format!("{p}.min_ratio"),
            format!("{min_ratio} is below 1 (worse means larger)"),
        );
    }
    MetricConfig {
        name,
        max,
        critical: raw.critical.unwrap_or(true),
        min_delta: non_negative(raw.min_delta, delta, &format!("{p}.min_delta"), problems),
        min_ratio,
        weight: non_negative(raw.weight, 1.0, &format!("{p}.weight"), problems),
        dry_run: raw.dry_run.unwrap_or(false),
    }
}

impl RollbackConfig {
    /// How long attempt `attempt` (from 1) of a step waits for its
    /// acknowledgement: the timeout, doubled for every retry.
    pub fn ack_wait_ms(&self, attempt: u32) -> u64 {
        self.ack_timeout_ms
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
    }

    /// The settings of metric `name` (one of [`METRICS`]).
    pub fn metric(&self, name: &str) -> &MetricConfig {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .expect("a known metric")
    }

    /// The strategy preference for `service`.
    pub fn preference(&self, service: &str) -> Preference {
        self.services.get(service).copied().unwrap_or(self.strategy)
    }

    /// Validates the raw section, adding every problem to `problems`.
    pub fn from_raw(raw: &RawRollback, problems: &mut Problems) -> Self {
        let p = "rollback";
        for name in raw.metrics.keys() {
            if !METRICS.contains(&name.as_str()) {
                problems.add(
                    format!("{p}.metrics.{name}"),
                    format!("unknown metric (known: {})", METRICS.join(", ")),
                );
            }
        }
        let metrics: Vec<MetricConfig> = METRICS
            .iter()
            .map(|m| {
                metric(
                    m,
                    &raw.metrics.get(*m).cloned().unwrap_or_default(),
                    problems,
                )
            })
            .collect();
        let pass_score = percent(raw.pass_score, 75.0, &format!("{p}.pass_score"), problems);
        let marginal_score = percent(
            raw.marginal_score,
            50.0,
            &format!("{p}.marginal_score"),
            problems,
        );
        if marginal_score > pass_score {
            problems.add(
                format!("{p}.marginal_score"),
                format!("{marginal_score} is above pass_score ({pass_score})"),
            );
        }
        let alpha = raw.alpha.unwrap_or(0.05);
        if !(alpha > 0.0 && alpha < 1.0) {
            problems.add(format!("{p}.alpha"), format!("{alpha} is outside (0, 1)"));
        }
        let gradual_steps = raw.gradual_steps.clone().unwrap_or_else(|| vec![50, 0]);
        let descending = gradual_steps.windows(2).all(|w| w[0] > w[1]);
        if gradual_steps.last() != Some(&0) || !descending || gradual_steps[0] > 100 {
            problems.add(
                format!("{p}.gradual_steps"),
                format!(
                    "{gradual_steps:?} must fall strictly from at most 100 and end at 0 (percent left on the bad version)"
                ),
            );
        }
        let canary_step = raw.canary_step.unwrap_or(10);
        if canary_step == 0 || canary_step > 100 {
            problems.add(
                format!("{p}.canary_step"),
                format!("{canary_step} is outside 1..=100"),
            );
        }
        let services = raw
            .service
            .iter()
            .map(|(name, s)| {
                let path = format!("{p}.service.{name}.strategy");
                (
                    name.clone(),
                    preference(s.strategy.as_deref(), &path, problems),
                )
            })
            .collect();
        let secs = |v, d, min, key: &str, problems: &mut Problems| {
            seconds(v, d, min, &format!("{p}.{key}"), problems)
        };
        Self {
            interval_ms: secs(raw.interval_s, 60, 1, "interval_s", problems),
            min_requests: raw.min_requests.unwrap_or(50),
            failure_budget: positive(
                raw.failure_budget,
                3,
                &format!("{p}.failure_budget"),
                problems,
            ),
            budget: raw.budget.unwrap_or(BudgetMode::Consecutive),
            pass_score,
            marginal_score,
            alpha,
            baseline_window_ms: secs(raw.baseline_window_s, 600, 0, "baseline_window_s", problems),
            bake_ms: secs(raw.bake_time_s, 600, 0, "bake_time_s", problems),
            no_data_escalation_ms: secs(
                raw.no_data_escalation_s,
                600,
                0,
                "no_data_escalation_s",
                problems,
            ),
            validate_intervals: positive(
                raw.validate_intervals,
                3,
                &format!("{p}.validate_intervals"),
                problems,
            ),
            max_rollbacks_per_hour: positive(
                raw.max_rollbacks_per_hour,
                3,
                &format!("{p}.max_rollbacks_per_hour"),
                problems,
            ),
            stability_ms: secs(
                raw.stability_period_s,
                300,
                0,
                "stability_period_s",
                problems,
            ),
            ack_timeout_ms: secs(raw.ack_timeout_s, 30, 1, "ack_timeout_s", problems),
            max_attempts: positive(raw.max_attempts, 3, &format!("{p}.max_attempts"), problems),
            emergency_error_rate: percent(
                raw.emergency_error_rate,
                50.0,
                &format!("{p}.emergency_error_rate"),
                problems,
            ),
            strategy: preference(raw.strategy.as_deref(), &format!("{p}.strategy"), problems),
            services,
            gradual_steps,
            canary_step,
            metrics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn defaults_are_flagger_like_with_a_statistical_judge() {
        let c = RollbackConfig::default();
        assert_eq!(c.interval_ms, 60_000);
        assert_eq!(c.failure_budget, 3);
        assert_eq!(c.budget, BudgetMode::Consecutive);
        assert_eq!(c.metric("error_rate").max, 5.0);
        assert_eq!(c.preference("any"), Preference::Auto);
    }

    #[test]
    fn every_problem_is_reported_with_its_value() {
        let err = Config::from_toml(
            "[rollback]\nstrategy = \"yolo\"\ngradual_steps = [50, 60]\nalpha = 2\n\
             pass_score = 40\n[rollback.metrics.cpu]\nmax = 1\n\
             [rollback.service.db]\nstrategy = \"pitr\"\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        for want in [
            "rollback.strategy: \"yolo\" is not a strategy",
            "rollback.gradual_steps: [50, 60] must fall",
            "rollback.alpha: 2 is outside (0, 1)",
            "rollback.marginal_score: 50 is above pass_score (40)",
            "rollback.metrics.cpu: unknown metric",
            "rollback.service.db.strategy: \"pitr\" is not a strategy",
        ] {
            assert!(err.contains(want), "{want:?} missing from:\n{err}");
        }
    }

    #[test]
    fn per_service_preference_wins() {
        let c = Config::from_toml("[rollback.service.db]\nstrategy = \"database_pitr\"\n", "t")
            .unwrap();
        assert_eq!(
            c.rollback.preference("db"),
            Preference::Fixed(RollbackStrategy::DatabasePitr)
        );
        assert_eq!(c.rollback.preference("api"), Preference::Auto);
    }
}
