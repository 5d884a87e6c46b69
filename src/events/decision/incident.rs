//! `faultline.incident`: what the hub makes of the other agents' decisions.
//!
//! An incident groups related decisions (same service, or connected through
//! the dependency graph, within a window), carries severity and business
//! impact, and records the hub's coordination verdicts when two agents want
//! to act on the same service, so replay explains why an action waited.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::events::time::Timestamp;

/// What happened to the incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentPhase {
    /// The first significant decision opened it (`timeline` holds it).
    Opened,
    /// A related decision joined, severity changed, a signal came back, or
    /// the hub coordinated an action (`coordination`).
    Updated,
    /// People must look (`escalation` says why). Once per trigger.
    Escalated,
    /// Every involved signal is healthy; resolution waits for the stability period.
    Mitigated,
    /// Healthy for the stability period, or an operator's `resolve` (`timeline` holds everything).
    Resolved,
    /// An operator's `acknowledge`.
    Acknowledged,
}

/// Where the incident stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Some involved signal is unhealthy.
    Open,
    /// All involved signals are healthy; waiting out the stability period.
    Mitigated,
    /// Over.
    Resolved,
}

/// How bad it is, from tier, impact and breadth.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// One low-value service, little revenue at risk.
    #[default]
    Low,
    /// Some revenue or several services.
    Medium,
    /// A high-tier service, much revenue or many services.
    High,
    /// Revenue stops: people are paged.
    Critical,
}

impl Severity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// One decision in an incident's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimelineEntry {
    /// When.
    pub time: Timestamp,
    /// The decision's `id`.
    pub decision_id: String,
    /// `type` of the decision without the `faultline.` prefix (`breaker`, ...).
    pub kind: String,
    /// The service it is about.
    pub service: String,
    /// One line.
    pub summary: String,
}

/// How the hub settles two agents acting on one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CoordinationStrategy {
    /// Every action proceeds; the hub only records the overlap.
    Parallel,
    /// One acting agent per service: a later action waits for the first to end.
    Sequential,
    /// The agent earlier in `priority` wins; a lower one waits while it acts.
    Priority,
    /// By cause: a rollback of a deploy goes first and containment of that
    /// service waits for its verdict; otherwise protective actions proceed
    /// together (see the hub's module doc).
    Adaptive,
}

impl CoordinationStrategy {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parallel => "parallel",
            Self::Sequential => "sequential",
            Self::Priority => "priority",
            Self::Adaptive => "adaptive",
        }
    }
}

/// The hub's say on one action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CoordinationVerdict {
    /// It goes ahead although another agent acts on the service.
    Proceed,
    /// It waits: enforcers must not apply `decision_id` until released.
    Hold,
    /// A held action may now be applied.
    Release,
    /// A held action is dropped: what it answered has been dealt with.
    Cancel,
}

impl CoordinationVerdict {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proceed => "proceed",
            Self::Hold => "hold",
            Self::Release => "release",
            Self::Cancel => "cancel",
        }
    }
}

/// A coordination outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Coordination {
    /// The strategy in force.
    pub strategy: CoordinationStrategy,
    /// The verdict.
    pub verdict: CoordinationVerdict,
    /// The decision it is about.
    pub decision_id: String,
    /// The agent that made it.
    pub agent: String,
    /// Its action (`isolate`, `initiated`, ...).
    pub action: String,
    /// The service both act on.
    pub service: String,
    /// The agent already acting on the service, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// Why people must look.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EscalationTrigger {
    /// The incident reached `critical`.
    Critical,
    /// A rollback was called for but may not run automatically.
    RollbackBlocked,
    /// A rollback was carried out and did not help.
    RollbackIneffective,
    /// The rollback storm guard stopped automatic rollbacks.
    StormGuard,
}

/// `faultline.incident`: an incident changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentDecision {
    /// `inc-<log sequence of the decision that opened it>`: stable under replay.
    pub incident_id: String,
    /// What happened.
    pub phase: IncidentPhase,
    /// Status after this decision.
    pub status: IncidentStatus,
    /// Severity after this decision.
    pub severity: Severity,
    /// Services involved, in name order.
    pub services: Vec<String>,
    /// The guard's root cause, once it has named one.
    pub root_cause: Option<String>,
    /// Revenue at risk per minute now.
    pub impact_per_minute: f64,
    /// Revenue lost so far (at-risk revenue integrated over event time).
    pub loss_estimate: f64,
    /// Every decision of the incident so far (on `opened` and `resolved`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineEntry>,
    /// The hub's say on an action (on `updated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordination: Option<Coordination>,
    /// Why people must look (on `escalated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<EscalationTrigger>,
    /// Who acknowledged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// One human line.
    pub reason: String,
}
