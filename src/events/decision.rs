//! Decision payloads: what agents conclude.
//!
//! Every decision carries the numbers that drove it and a one-line human
//! `reason`, so an incident can be explained from the log alone. Rates are
//! percentages (0–100), as in the breaker configuration.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::observation::Scope;
use super::time::Timestamp;

mod containment;
mod incident;
mod rollback;
pub use containment::{Candidate, ContainmentAction, ContainmentDecision};
pub use incident::{
    Coordination, CoordinationStrategy, CoordinationVerdict, EscalationTrigger, IncidentDecision,
    IncidentPhase, IncidentStatus, Severity, TimelineEntry,
};
pub use rollback::{
    BlockCause, MetricCheck, MetricVerdict, RollbackDecision, RollbackPhase, RollbackStrategy,
    Verdict,
};

/// States of a circuit breaker (resilience4j's, plus nothing else).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow; outcomes are recorded.
    Closed,
    /// Calls are rejected until `open_until`.
    Open,
    /// A limited number of probe calls decide between closed and open.
    HalfOpen,
    /// Held open by an operator.
    ForcedOpen,
    /// Switched off by an operator: calls flow, nothing is recorded.
    Disabled,
    /// Outcomes are recorded and crossings reported, but calls always flow.
    MetricsOnly,
}

impl BreakerState {
    /// The wire name (`half_open`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::ForcedOpen => "forced_open",
            Self::Disabled => "disabled",
            Self::MetricsOnly => "metrics_only",
        }
    }

    /// Whether calls are being refused in this state (half-open refuses all but its probes).
    pub fn is_tripped(self) -> bool {
        matches!(self, Self::Open | Self::HalfOpen | Self::ForcedOpen)
    }
}

/// What caused a breaker decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerTrigger {
    /// Failure rate reached the threshold.
    FailureRate,
    /// Slow-call rate reached the threshold.
    SlowCallRate,
    /// Failures in the window reached the absolute count.
    ErrorCount,
    /// That many failures in a row.
    ConsecutiveFailures,
    /// Probe calls in half-open were healthy.
    ProbesHealthy,
    /// The open wait elapsed.
    OpenWaitElapsed,
    /// Half-open lasted longer than its maximum.
    HalfOpenTimeout,
    /// An operator command.
    Command,
    /// The share of open service breakers crossed the system threshold.
    OpenServices,
}

/// `faultline.breaker`: a breaker changed state (or, in metrics-only mode, crossed a threshold).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerDecision {
    /// Scope of the breaker.
    pub scope: Scope,
    /// Breaker within the scope: `svc`, `caller->callee`, `svc/instance` or `_system`.
    pub target: String,
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
    /// What caused it.
    pub trigger: BreakerTrigger,
    /// Failure rate of the window in percent; null below the minimum number of calls.
    pub failure_rate: Option<f64>,
    /// Slow-call rate of the window in percent; null below the minimum number of calls.
    pub slow_call_rate: Option<f64>,
    /// Calls recorded in the window (for the system scope: services known).
    pub calls: u64,
    /// Failed calls in the window (for the system scope: services tripped).
    pub failed: u64,
    /// Slow calls in the window.
    pub slow: u64,
    /// The threshold that was compared (percent, or a count for count triggers).
    pub threshold: f64,
    /// Probe calls allowed, when the new state is half-open.
    pub permitted_calls: Option<u32>,
    /// When the open state ends, when the new state is open.
    pub open_until: Option<Timestamp>,
    /// One human line.
    pub reason: String,
}

/// A service signal the predictor watches.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// Failed calls, percent.
    ErrorRate,
    /// 99th-percentile latency, ms.
    LatencyP99,
    /// Median latency, ms.
    LatencyP50,
    /// Calls per second.
    Throughput,
}

impl SignalKind {
    /// All signals, in a fixed order.
    pub const ALL: [SignalKind; 4] = [
        SignalKind::ErrorRate,
        SignalKind::LatencyP99,
        SignalKind::LatencyP50,
        SignalKind::Throughput,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ErrorRate => "error_rate",
            Self::LatencyP99 => "latency_p99",
            Self::LatencyP50 => "latency_p50",
            Self::Throughput => "throughput",
        }
    }

    /// The unit of its values.
    pub fn unit(self) -> &'static str {
        match self {
            Self::ErrorRate => "%",
            Self::LatencyP99 | Self::LatencyP50 => "ms",
            Self::Throughput => "req/s",
        }
    }
}

/// What a prediction says now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PredictionStatus {
    /// The signal is behaving unusually (score at or above the alarm threshold).
    Anomaly,
    /// The SLO is likely to be breached within the horizon (risk at or above its threshold).
    BreachRisk,
    /// Back to normal: neither holds any more.
    Clear,
}

/// One detector's evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectorScore {
    /// `level`, `seasonal`, `changepoint` or `shift`.
    pub name: String,
    /// Its score, 0–1.
    pub score: f64,
}

/// `faultline.prediction`: a signal started or stopped looking wrong, or its
/// SLO breach became (un)likely within the horizon. Emitted on crossings
/// only, never once per point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prediction {
    /// The signal.
    pub signal: SignalKind,
    /// Instance, when the signal is one instance's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Version, when the signal is one version's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The new status.
    pub status: PredictionStatus,
    /// Anomaly score, 0–1 (0.5 means "one in 100 000").
    pub score: f64,
    /// Probability that the SLO is breached within `horizon_s`, 0–1.
    pub risk: f64,
    /// Forecast horizon, seconds.
    pub horizon_s: u64,
    /// When the forecast crosses the SLO limit, if within the horizon.
    pub predicted_breach_at: Option<Timestamp>,
    /// The SLO limit compared with, in the signal's unit (none for signals without an SLO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_limit: Option<f64>,
    /// Each detector's evidence.
    pub detectors: Vec<DetectorScore>,
    /// What the baseline expected, in the signal's unit.
    pub baseline: f64,
    /// What was observed.
    pub observed: f64,
    /// One human line.
    pub reason: String,
}

/// How the router is sending a service's traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RouteStrategy {
    /// Every selectable instance, by weight.
    Weighted,
    /// Local region first, spilling to others as its health drops (Envoy
    /// priority levels with the overprovisioning factor).
    LocalityPriority,
    /// Versions split by the canary weight the rollback agent decided.
    CanarySplit,
    /// Too few healthy instances: traffic spreads over all of them, healthy
    /// or not, rather than overloading the few (Envoy's panic mode).
    Panic,
}

/// What a route weight is about.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RouteLevel {
    /// One region's share.
    Region,
    /// One version's share.
    Version,
    /// One instance's share.
    Instance,
}

/// One share of traffic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteWeight {
    /// What `target` names.
    pub level: RouteLevel,
    /// The region, version or instance.
    pub target: String,
    /// Percent of the traffic; the weights of one level sum to 100.
    pub weight: u32,
}

/// Why an instance was taken out of selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EjectionTrigger {
    /// That many 5xx (failures) in a row.
    #[serde(rename = "consecutive_5xx")]
    Consecutive5xx,
    /// Success rate below the hosts' mean − factor·σ.
    SuccessRate,
    /// Failure percentage at or above the threshold.
    FailurePercentage,
    /// Its instance breaker is open.
    Breaker,
    /// Its health checks say so.
    Health,
}

impl EjectionTrigger {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consecutive5xx => "consecutive_5xx",
            Self::SuccessRate => "success_rate",
            Self::FailurePercentage => "failure_percentage",
            Self::Breaker => "breaker",
            Self::Health => "health",
        }
    }
}

/// An instance out of selection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ejection {
    /// The instance.
    pub instance: String,
    /// Why.
    pub trigger: EjectionTrigger,
    /// Back in selection at this time; null while its cause lasts (breaker, health).
    pub until: Option<Timestamp>,
    /// Times it has been ejected (the ejection time is base × this, capped).
    pub ejections: u32,
    /// The number compared: failures in a row, success rate or failure percentage.
    pub observed: f64,
    /// What it was compared with.
    pub threshold: f64,
}

/// `faultline.route`: a service's routing table changed materially.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteDecision {
    /// How traffic is being sent.
    pub strategy: RouteStrategy,
    /// Shares of traffic, at region, version and instance level.
    pub weights: Vec<RouteWeight>,
    /// Instances out of selection.
    pub ejected: Vec<Ejection>,
    /// Instances known.
    pub hosts: u32,
    /// Instances healthy and not ejected.
    pub healthy_hosts: u32,
    /// One human line.
    pub reason: String,
}
