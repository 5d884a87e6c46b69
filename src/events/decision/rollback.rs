//! `faultline.rollback`: what the rollback agent concluded about a deploy.
//!
//! One type covers the whole life of a deploy under watch: each analysis
//! (`analysis`, `inconclusive`), the rollback it may lead to (`initiated`,
//! `step`, `approval_required`), and how that ended (`succeeded`, `failed`,
//! `ineffective`, `blocked`, `aborted`). `from_version` is always the version
//! under suspicion (the new deploy) and `to_version` the rollback point, so a
//! consumer never has to guess which way a phase points.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::events::time::Timestamp;

/// Where the analysis or rollback of a deploy stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RollbackPhase {
    /// An analysis interval was judged (`verdict` pass, marginal or fail).
    Analysis,
    /// An analysis interval could not be judged (no data or too few
    /// requests), or a finished rollback had no traffic to validate it.
    Inconclusive,
    /// A rollback started: the first step to carry out.
    Initiated,
    /// A later step of a stepped rollback (gradual, canary reverse, staged).
    Step,
    /// The rollback is complete and the error rate is back under its limit.
    Succeeded,
    /// The rollback could not be carried out: no acknowledgement, or the
    /// actuator reported failure, after every attempt.
    Failed,
    /// The rollback was carried out but the error rate did not recover: the
    /// fault is not the deploy. Never followed by a second rollback.
    Ineffective,
    /// A rollback was called for but is not allowed to run automatically
    /// (irreversible migration, storm guard, revision already rolled back,
    /// no rollback point), or a deploy started while deploys are frozen.
    Blocked,
    /// The chosen strategy needs an operator's `approve_rollback` first.
    ApprovalRequired,
    /// An operator's `abort_rollback` stopped it (or a new deploy superseded it).
    Aborted,
}

/// How traffic goes back to the rollback point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RollbackStrategy {
    /// All traffic back to the stable version in one step.
    Immediate,
    /// Traffic back in configured steps (`gradual_steps`).
    Gradual,
    /// The canary weight walked down by `canary_step` per step.
    CanaryReverse,
    /// The active stack switched back to the previous one.
    BlueGreen,
    /// A database point-in-time restore to the deploy's start: needs approval.
    DatabasePitr,
    /// Region by region, validating each wave before the next.
    Staged,
    /// Immediate, plus deploys of the service frozen and people paged.
    Emergency,
}

impl RollbackStrategy {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Immediate => "immediate",
            Self::Gradual => "gradual",
            Self::CanaryReverse => "canary_reverse",
            Self::BlueGreen => "blue_green",
            Self::DatabasePitr => "database_pitr",
            Self::Staged => "staged",
            Self::Emergency => "emergency",
        }
    }
}

/// The safety rule that blocked a rollback (or a deploy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BlockCause {
    /// The deploy ran a migration that cannot be undone.
    IrreversibleMigration,
    /// This version was already rolled back automatically once.
    AlreadyRolledBack,
    /// Too many automatic rollbacks of the service within the hour.
    StormGuard,
    /// No known-good or previous version to go back to.
    NoRollbackPoint,
    /// Deploys of the service are frozen.
    Frozen,
}

/// The outcome of one analysis interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Score at or above the pass score and no critical metric failing.
    Pass,
    /// Between the marginal and pass scores: neither counts against the
    /// budget nor resets a run of failures (the hysteresis band).
    Marginal,
    /// A critical metric failed or the score is below the marginal score.
    Fail,
    /// Too few requests, or none: held, never read as success or failure.
    Inconclusive,
}

/// How one metric compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricVerdict {
    /// Within its limit and not significantly worse than the baseline.
    Pass,
    /// Over its limit, or significantly and materially above the baseline.
    High,
    /// Significantly and materially below the baseline (better; passes).
    Low,
    /// No samples of this metric in the interval.
    NoData,
}

/// One metric of an analysis: the new version against its limit and baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricCheck {
    /// `error_rate` (percent) or `latency_p99` (ms).
    pub name: String,
    /// The new version's value in the interval; null without samples.
    pub observed: Option<f64>,
    /// The configured maximum.
    pub limit: f64,
    /// The baseline's value (stable version, or the pre-deploy period); null without one.
    pub baseline: Option<f64>,
    /// One-sided Mann–Whitney U p-value that the new version is worse; null without a baseline.
    pub p_value: Option<f64>,
    /// Samples of the new version (requests, or windows).
    pub samples: u64,
    /// Samples of the baseline.
    pub baseline_samples: u64,
    /// The metric's verdict.
    pub verdict: MetricVerdict,
    /// A failing critical metric fails the analysis whatever the score.
    pub critical: bool,
    /// Reported only: never counts in the score or the verdict.
    pub dry_run: bool,
}

/// `faultline.rollback`: an analysis result or a rollback step for a service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackDecision {
    /// What this decision is.
    pub phase: RollbackPhase,
    /// The rollback strategy, once one is chosen.
    pub strategy: Option<RollbackStrategy>,
    /// The version under suspicion (the deploy being analysed or rolled back).
    pub from_version: String,
    /// The rollback point: the last known-good version, else the previous one.
    pub to_version: Option<String>,
    /// Step of the rollback this decision asks for, from 1; 0 outside a rollback.
    pub step: u32,
    /// Steps the rollback has; 0 outside a rollback.
    pub steps: u32,
    /// Percent of traffic on `from_version` after this decision, when it is a weighted split.
    pub canary_weight: Option<u32>,
    /// Regions this step covers (staged rollbacks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Attempt at carrying out this step, from 1 (retries after no acknowledgement).
    pub attempt: u32,
    /// Analysis score, 0–100; null when nothing was judged.
    pub score: Option<f64>,
    /// The analysis verdict, when this decision reports one.
    pub verdict: Option<Verdict>,
    /// Each metric, observed against its limit and baseline.
    pub metrics: Vec<MetricCheck>,
    /// Requests of the new version in the interval judged.
    pub requests: u64,
    /// Failed analyses counted against the budget (cumulative or consecutive).
    pub failures: u32,
    /// Failed analyses that trigger a rollback.
    pub budget: u32,
    /// Restore point of a `database_pitr` rollback (the deploy's start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_to: Option<Timestamp>,
    /// The service's last known-good version after this decision.
    pub known_good: Option<String>,
    /// People must look: an automatic path ended or needs a human.
    pub escalate: bool,
    /// Deploys of the service are frozen (until an `unfreeze` command).
    pub freeze: bool,
    /// Which safety rule stopped it (for `blocked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<BlockCause>,
    /// One human line.
    pub reason: String,
}
