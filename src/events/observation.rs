//! Observation payloads: what services publish about themselves.
//!
//! Field names are part of the public contract (publishers in any language use
//! them), so they are spelled out here once and the JSON Schemas in `schemas/`
//! are generated from these types. Every field a publisher may not know is
//! optional. Unknown fields are rejected rather than ignored: a misspelt
//! `latency` instead of `latency_ms` would otherwise silently disable slow-call
//! detection.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::subject::TOKEN_PATTERN;

/// How a single call ended, when the publisher classifies it itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Counts as a success whatever the status.
    Success,
    /// Counts as a failure whatever the status.
    Failure,
    /// Not counted at all (e.g. a client cancellation).
    Ignored,
}

/// `faultline.request`: one call handled by `subject`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Instance (pod, host) that handled the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TOKEN_PATTERN))]
    pub instance: Option<String>,
    /// Region of that instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Deployed version that handled the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The calling service, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TOKEN_PATTERN))]
    pub caller: Option<String>,
    /// Route or method name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// HTTP-like status; 0 means a transport error. Required unless `outcome` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 999))]
    pub status: Option<u16>,
    /// Publisher's own classification; overrides `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Call duration in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub latency_ms: Option<f64>,
}

impl Request {
    /// Whether the call failed by the default rule: the publisher's
    /// `outcome` if given, else status 0 (transport error) or 5xx. `None` for
    /// calls that are not counted at all (`outcome: ignored`, or no status).
    /// The breaker has its own configurable classification; the router and
    /// the rollback agent use this one.
    pub fn failed(&self) -> Option<bool> {
        match self.outcome {
            Some(Outcome::Ignored) => None,
            Some(Outcome::Failure) => Some(true),
            Some(Outcome::Success) => Some(false),
            None => self.status.map(|s| s == 0 || s >= 500),
        }
    }
}

/// Latency summary of a window, in milliseconds.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencySummary {
    /// Median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub p50: Option<f64>,
    /// 90th percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub p90: Option<f64>,
    /// 99th percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub p99: Option<f64>,
    /// Maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub max: Option<f64>,
    /// Arithmetic mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub mean: Option<f64>,
}

/// `faultline.window`: counts over an interval ending at the event's `time`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Instance the counts are for, if per instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TOKEN_PATTERN))]
    pub instance: Option<String>,
    /// Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Calling service, if the counts are per caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TOKEN_PATTERN))]
    pub caller: Option<String>,
    /// Route or method name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Length of the interval in milliseconds (> 0).
    #[schemars(range(min = 1))]
    pub interval_ms: u64,
    /// Calls in the interval.
    pub requests: u64,
    /// Failed calls among them (≤ `requests`).
    pub errors: u64,
    /// Calls at or above the slow-call duration (≤ `requests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<u64>,
    /// Latency summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<LatencySummary>,
}

/// Health status reported by a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Fully serving.
    Healthy,
    /// Serving with reduced capacity or quality.
    Degraded,
    /// Failing its probe.
    Unhealthy,
    /// Not reachable.
    Offline,
    /// Probe could not decide.
    Unknown,
}

/// `faultline.health`: a probe result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Instance probed (absent: the service as a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TOKEN_PATTERN))]
    pub instance: Option<String>,
    /// Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Probe verdict.
    pub status: HealthStatus,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Phase of a deploy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeployPhase {
    /// Rollout began.
    Started,
    /// Rollout advanced (e.g. canary weight changed).
    Progressed,
    /// Rollout finished.
    Completed,
    /// Rollout failed.
    Failed,
    /// Rollout was aborted.
    Aborted,
}

/// Rollout strategy of a deploy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeployStrategy {
    /// Weighted canary.
    Canary,
    /// Two stacks, switch.
    BlueGreen,
    /// Instance by instance.
    Rolling,
    /// Stop all, start all.
    Recreate,
}

/// `faultline.deploy`: a deploy changed phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// Phase reached.
    pub phase: DeployPhase,
    /// Version being deployed.
    pub version: String,
    /// Version it replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// Rollout strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<DeployStrategy>,
    /// Percentage of traffic on the new version (0–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub canary_weight: Option<u8>,
    /// The deploy ran a migration that cannot be undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub irreversible_migration: Option<bool>,
    /// Regions the deploy covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
}

/// A declared dependency of the subject service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// Service called.
    #[schemars(pattern(TOKEN_PATTERN))]
    pub callee: String,
    /// The subject cannot serve without it.
    #[serde(default)]
    pub critical: bool,
}

/// A declared instance of the subject service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceInfo {
    /// Instance id.
    #[schemars(pattern(TOKEN_PATTERN))]
    pub id: String,
    /// Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Version running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Business tier of a service.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Revenue stops without it.
    Critical,
    /// Important.
    High,
    /// Default.
    Standard,
    /// Best effort.
    Low,
}

/// Service level objective.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Target success fraction, e.g. 0.999.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub availability: Option<f64>,
    /// Target p99 latency in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub latency_p99_ms: Option<f64>,
}

/// `faultline.topology`: what the subject service declares about itself.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Services it calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
    /// Its instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceInfo>,
    /// Business tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Revenue at stake per minute of outage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub revenue_per_minute: Option<f64>,
    /// Objectives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
}

/// Result of carrying out a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActuationStatus {
    /// Carried out.
    Succeeded,
    /// Could not be carried out.
    Failed,
}

/// `faultline.actuation`: an actuator reports on a decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Actuation {
    /// `id` of the decision carried out.
    pub decision_id: String,
    /// What happened.
    pub status: ActuationStatus,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Operator action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandAction {
    /// Hold a breaker open until told otherwise.
    ForceOpen,
    /// Close a breaker (fresh window).
    ForceClose,
    /// Stop a breaker: always allow, record nothing.
    Disable,
    /// Record and report, never trip.
    MetricsOnly,
    /// Back to closed with a fresh window and no backoff history.
    Reset,
    /// Stop a rollback in progress.
    AbortRollback,
    /// Approve a rollback that needs approval.
    ApproveRollback,
    /// Allow deploys of a frozen service again (after an emergency rollback
    /// or a blocked irreversible migration), and clear the storm guard.
    Unfreeze,
    /// Acknowledge an incident.
    Acknowledge,
    /// Resolve an incident.
    Resolve,
}

/// Scope a command or breaker applies to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every call to a service.
    Service,
    /// Calls from one caller to one callee; target `caller->callee`.
    Edge,
    /// Calls to one instance; target `service/instance`.
    Instance,
    /// The whole system; target `_system`.
    System,
}

/// `faultline.command`: an operator action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// What to do.
    pub action: CommandAction,
    /// Which scope (default `service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Which target in that scope (default: the event's subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Who asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `faultline.tick`: time passes; no fields.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tick {}

/// `faultline.config`: the policy in force from this point of the log on.
///
/// A node appends one when it starts with a configuration that differs from
/// the last one logged, so replays and incident bundles know which policy
/// produced the decisions that follow. Agents ignore it.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigRecord {
    /// The policy's hash (FNV-1a 64 of the file text, hex), as snapshots carry it.
    pub hash: String,
    /// The policy file's text (empty for the built-in defaults).
    pub content: String,
}
